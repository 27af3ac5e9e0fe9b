/**
 * CleanupTransaction: one message on its way into the queue — the state of one
 * cleanup(8) session behind the SubmissionTransaction contract of src/types.ts.
 *
 * Postfix counterpart: CLEANUP_STATE and cleanup_envelope.c / cleanup_message.c /
 * cleanup_final.c: envelope records are rewritten to canonical form, content is
 * checked and copied to the queue file, and the status bits decide the reply in
 * cleanup_strerror.c's order (cleanup-status.ts).
 *
 * The pieces: the envelope and its table mapping (cleanup-envelope.ts), the content
 * path from the client's bytes to the queue file (cleanup-content.ts), check effects
 * on the message (check-effects.ts), the content filter (filter-run.ts), the commit
 * stage (commit-stage.ts), the status bits and the failures that set them
 * (cleanup-state.ts, cleanup-status.ts). This file takes the envelope, feeds
 * `content` to the content path and commits.
 *
 * Failures never surface as an `error` event on `content`: they set a status bit, the
 * rest of the input is read and dropped, and `commit()` replies. REJECT from a check
 * replies with the check's text; DISCARD stops writing and commit replies 250.
 *
 * Envelope after content (QMQP): sender, recipients and actions may arrive after the
 * content. What the content needs at the end of its header block — the `for` clause of
 * Received, a missing From: — uses the envelope known at that moment, because holding
 * the body back until the envelope arrives would need unbounded memory. A prepended
 * header or `extractRecipients` applied after the header block was written fails the
 * message (internal protocol error): it is the caller's bug.
 *
 * Internal mail (`source.internal`: bounces, notices) skips header/body checks and the
 * content filter unless `internalMailFilterClasses` names its class (`bounce` for
 * component `bounce`, `notify` otherwise); address mapping still applies, as Postfix.
 *
 * Does not: Milters, `in_flow_delay`, `receive_override_options`.
 *
 * SECURITY: every content byte and envelope string is untrusted; memory per
 * transaction is bounded by the content path's (cleanup-content.ts) and the envelope's
 * limits.
 *
 * @module
 */

import { Writable } from 'node:stream';
import { QueueStoreError } from '../errors.js';
import type { MessageWriter, NewMessageRecord } from '../queue/types.js';
import { SmtpReply } from '../smtp-reply.js';
import type {
  Address,
  NewRecipient,
  QueueId,
  Recipient,
  SenderParams,
  SubmissionAction,
  SubmissionResult,
  SubmissionSource,
  SubmissionTransaction,
} from '../types.js';
import { errorMessage } from '../util/error-message.js';
import type { Mutable } from '../util/mutable.js';
import { ExpansionLimitError } from './address-mapping.js';
import { CleanupContent } from './cleanup-content.js';
import type { CleanupContext } from './cleanup-context.js';
import { CleanupEnvelope, type PendingRecipient } from './cleanup-envelope.js';
import { CleanupState } from './cleanup-state.js';
import { BAD, DEFER, RCPT, statusReply, WRITE } from './cleanup-status.js';
import { runCommitStage } from './commit-stage.js';

export { DUPLICATE_FILTER_LIMIT } from './cleanup-envelope.js';

const CONTENT_HIGH_WATER_MARK = 64 * 1024;

/** The resolve function of the promise captureResolve() was last the executor of. */
let capturedResolve: (() => void) | undefined;

function captureResolve(resolve: () => void): void {
  capturedResolve = resolve;
}

export class CleanupTransaction implements SubmissionTransaction {
  readonly queueId: QueueId;
  readonly content: Writable;

  readonly #ctx: CleanupContext;
  readonly #source: SubmissionSource;
  #writer: MessageWriter;
  readonly #arrivalTime: number;
  readonly #env: CleanupEnvelope;
  readonly #state: CleanupState;
  readonly #message: CleanupContent;
  #commitPromise: Promise<SubmissionResult> | undefined;

  /** `content` was ended (not merely destroyed). */
  #ended = false;
  readonly #contentDone: Promise<void>;
  #resolveContentDone!: () => void;

  constructor(
    ctx: CleanupContext,
    source: SubmissionSource,
    queueId: QueueId,
    writer: MessageWriter,
    arrivalTime: number,
  ) {
    this.#ctx = ctx;
    this.#source = source;
    this.queueId = queueId;
    this.#writer = writer;
    this.#arrivalTime = arrivalTime;
    const state = new CleanupState(queueId, ctx.log);
    this.#state = state;
    this.#env = new CleanupEnvelope(ctx);
    this.#message = new CleanupContent({
      ctx,
      state,
      source,
      env: this.#env,
      writer,
      arrivalTime,
      rewrite: (address) => this.#rewrite(address),
      addRecipient: (address) => this.addRecipient({ address }),
    });
    // Made with a shared executor: no closure of its own per message.
    this.#contentDone = new Promise(captureResolve);
    this.#resolveContentDone = capturedResolve!;
    capturedResolve = undefined;

    // A store stream that fails is a held WRITE error, never an unhandled event.
    writer.content.on('error', (err: Error) => state.writeFailed(err));

    this.content = new Writable({
      highWaterMark: CONTENT_HIGH_WATER_MARK,
      write: (chunk: Buffer, _encoding, callback) => {
        let pushed: Promise<void> | undefined;
        try {
          pushed = this.#message.push(chunk);
        } catch (err) {
          state.internalFailure(err);
        }
        if (!pushed) {
          callback();
          return;
        }
        pushed.then(
          () => callback(),
          (err: unknown) => {
            state.internalFailure(err);
            callback();
          },
        );
      },
      final: (callback) => {
        this.#onEnd().then(
          () => callback(),
          (err: unknown) => {
            state.internalFailure(err);
            callback();
          },
        );
      },
    });
    // The contract: `content` never emits 'error' to its user. Misuse (a write after
    // end, after abort) is absorbed here and shows up as a failed commit instead.
    this.content.on('error', () => {
      if (state.phase === 'open')
        state.fail(BAD, 'content stream misused (write after end or destroy)');
    });
    this.content.on('close', () => this.#resolveContentDone());
  }

  setSender(sender: Address, params: SenderParams = {}): void {
    if (!this.#acceptsEnvelope('setSender')) return;
    const rewritten = sender === '' ? '' : this.#rewrite(sender);
    if (rewritten === undefined) return;
    this.#env.setSender(rewritten, params);
  }

  addRecipient(recipient: NewRecipient): void {
    if (!this.#acceptsEnvelope('addRecipient')) return;
    const address = this.#rewrite(recipient.address);
    if (address === undefined) return;
    const pending: Mutable<PendingRecipient> = {
      address,
      originalAddress: recipient.originalAddress ?? recipient.address,
    };
    if (recipient.notify) pending.notify = recipient.notify;
    if (recipient.orcpt !== undefined) pending.orcpt = recipient.orcpt;
    this.#env.recipients.push(pending);
  }

  apply(action: SubmissionAction): void {
    if (!this.#acceptsEnvelope('apply')) return;
    const env = this.#env;
    switch (action.type) {
      case 'hold':
        env.hold = action.reason !== undefined ? { reason: action.reason } : {};
        return;
      case 'discard':
        env.discard = action.reason !== undefined ? { reason: action.reason } : {};
        return;
      case 'redirect': {
        const to = this.#rewrite(action.address);
        if (to !== undefined) env.redirect = to;
        return;
      }
      case 'bcc': {
        const to = this.#rewrite(action.address);
        if (to !== undefined) env.bccs.push(to);
        return;
      }
      case 'filter':
        env.filter = action.nexthop;
        return;
      case 'prepend':
        this.#message.prepend(action.header);
        return;
      case 'extractRecipients':
        if (this.#message.headersDone) {
          this.#state.fail(BAD, 'extractRecipients after the header block was written');
          return;
        }
        env.extract = true;
        return;
    }
  }

  commit(): Promise<SubmissionResult> {
    if (!this.#commitPromise) this.#commitPromise = this.#commit();
    return this.#commitPromise;
  }

  async abort(): Promise<void> {
    const state = this.#state;
    if (state.phase === 'committing' && this.#commitPromise) {
      // A commit in flight settles first; a message it made durable stays queued.
      await this.#commitPromise.catch(() => undefined);
    }
    if (state.phase === 'committed' || state.phase === 'aborted') return;
    state.phase = 'aborted';
    state.stop();
    if (!this.content.destroyed) this.content.destroy();
    this.#resolveContentDone();
    try {
      await this.#writer.abort();
    } catch (err) {
      this.#ctx.log.warning(
        this.queueId,
        `abort: cannot discard the queue file: ${errorMessage(err)}`,
      );
    }
  }

  #acceptsEnvelope(what: string): boolean {
    if (this.#state.phase === 'open') return true;
    this.#ctx.log.warning(this.queueId, `${what} after commit or abort ignored`);
    return false;
  }

  #rewrite(address: Address): Address | undefined {
    try {
      return this.#ctx.rewriter.rewrite(address);
    } catch (err) {
      this.#state.fail(DEFER, `address rewriting failed: ${errorMessage(err)}`);
      return undefined;
    }
  }

  async #onEnd(): Promise<void> {
    this.#ended = true;
    try {
      await this.#message.end();
    } finally {
      this.#resolveContentDone();
    }
  }

  async #commit(): Promise<SubmissionResult> {
    const state = this.#state;
    if (state.phase !== 'open') {
      return { reply: new SmtpReply(451, '4.3.0', 'Error: internal protocol error') };
    }
    state.phase = 'committing';
    if (!this.content.writableEnded && !this.content.destroyed) this.content.end();
    await this.#contentDone;
    if (!this.#ended) {
      // Destroyed before it ended: the message is incomplete.
      state.fail(BAD, 'the content stream was destroyed before it ended');
    }
    const env = this.#env;
    let size = this.#message.size;
    let headerSize = this.#message.headerSize;
    let eightBit = this.#message.eightBit;

    const filterRun = state.filterRun;
    if (filterRun && state.status === 0 && !env.discard) {
      const outcome = await filterRun.settle({
        writer: this.#writer,
        store: this.#ctx.store,
        headerSize,
        messageSizeLimit: this.#ctx.params.messageSizeLimit,
        replaceStrayCr: this.#ctx.params.cleanupReplaceStrayCrLf,
      });
      switch (outcome.kind) {
        case 'reply':
          return this.#failCommit(outcome.reply);
        case 'discard':
          env.discard = outcome.reason !== undefined ? { reason: outcome.reason } : {};
          break;
        case 'hold':
          env.hold = outcome.reason !== undefined ? { reason: outcome.reason } : {};
          break;
        case 'rewritten':
          this.#writer = outcome.writer;
          size = outcome.size;
          headerSize = outcome.headerSize;
          eightBit ||= outcome.eightBit;
          break;
        case 'queue':
          break;
      }
    } else {
      filterRun?.feed.close();
    }

    let recipients: Recipient[] = [];
    let sender: Address | undefined;
    if (state.status === 0 || (state.status & ~RCPT) === 0) {
      try {
        // Awaited only when a table was to be consulted.
        const mapped = env.mappedSenderNow();
        sender = mapped instanceof Promise ? await mapped : mapped;
        const final = env.finalRecipientsNow();
        recipients = final instanceof Promise ? await final : final;
      } catch (err) {
        if (err instanceof ExpansionLimitError) {
          this.#ctx.log.warning(this.queueId, err.message);
          state.status |= DEFER;
        } else {
          state.tableFailed('address mapping', err);
        }
      }
    }
    if (recipients.length === 0 && state.status === 0 && !env.discard) state.status |= RCPT;
    if (env.sender === undefined && state.status === 0)
      state.fail(BAD, 'no sender was given before commit');

    const failed = state.reply();
    if (failed) return this.#failCommit(failed);

    if (env.discard) {
      state.stopped = true;
      await this.#abortWriter();
      state.phase = 'failed';
      this.#ctx.log.info(this.queueId, `discard: ${env.discard.reason ?? 'discarded by request'}`);
      return { reply: new SmtpReply(250, '2.0.0', 'Ok: discarded') };
    }

    const stage = this.#ctx.commitStage;
    if (stage) {
      const staged = await runCommitStage(
        stage,
        { queueId: this.queueId, source: this.#source, sender: env.sender, headerSize },
        {
          writer: this.#writer,
          store: this.#ctx.store,
          log: this.#ctx.log,
          replaceStrayCr: this.#ctx.params.cleanupReplaceStrayCrLf,
        },
      );
      if (staged.reply) return this.#failCommit(staged.reply);
      if (staged.rewritten) {
        ({ writer: this.#writer, size, headerSize } = staged.rewritten);
        eightBit ||= staged.rewritten.eightBit;
      }
      if (staged.hold !== undefined) env.hold = { reason: staged.hold };
    }
    const p = env.senderParams;
    // Without a temporary object per absent field: ENVID and RET are rare, and the
    // optional fields after `source` are appended in the record's order.
    let record: Mutable<NewMessageRecord> = {
      queueId: this.queueId,
      sender: sender ?? '',
      recipients,
      bodyType: p.bodyType ?? '7BIT',
      smtputf8: p.smtputf8 ?? false,
      eightBit,
      size,
      headerSize,
      arrivalTime: this.#arrivalTime,
      warnTime: 0,
      source: this.#source,
    };
    if (p.envid !== undefined || p.ret !== undefined) record = withDsnFields(record, p);
    if (env.filter !== undefined) record.filter = env.filter;
    if (env.hold) {
      record.hold = true;
      if (env.hold.reason !== undefined) record.holdReason = env.hold.reason;
    }
    try {
      await this.#writer.commit(record);
    } catch (err) {
      // An outage the store has logged once is not logged again for each message refused.
      if (!(err instanceof QueueStoreError && err.outage))
        this.#ctx.log.warning(this.queueId, `queue file write error: ${errorMessage(err)}`);
      return this.#failCommit(statusReply(WRITE)!);
    }
    state.phase = 'committed';
    state.stopped = true;
    if (env.redirect !== undefined)
      this.#ctx.log.info(this.queueId, `redirect: to <${env.redirect}>`);
    if (env.hold) this.#ctx.log.info(this.queueId, `hold: ${env.hold.reason ?? 'held by request'}`);
    return {
      reply: SmtpReply.clean(250, '2.0.0', `Ok: queued as ${this.queueId}`),
      queueId: this.queueId,
    };
  }

  async #failCommit(reply: SmtpReply): Promise<SubmissionResult> {
    this.#state.stop();
    await this.#abortWriter();
    this.#state.phase = 'failed';
    return { reply };
  }

  async #abortWriter(): Promise<void> {
    try {
      await this.#writer.abort();
    } catch (err) {
      this.#ctx.log.warning(this.queueId, `cannot discard the queue file: ${errorMessage(err)}`);
    }
  }
}

/** The record with ENVID and RET in their place, after the recipients. */
function withDsnFields(
  record: Mutable<NewMessageRecord>,
  p: SenderParams,
): Mutable<NewMessageRecord> {
  const { queueId, sender, recipients, ...rest } = record;
  return {
    queueId,
    sender,
    recipients,
    ...(p.envid !== undefined ? { envid: p.envid } : {}),
    ...(p.ret !== undefined ? { ret: p.ret } : {}),
    ...rest,
  };
}
