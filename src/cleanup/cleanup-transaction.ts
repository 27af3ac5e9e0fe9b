/**
 * CleanupTransaction: one message on its way into the queue — the state of one
 * cleanup(8) session behind the SubmissionTransaction contract of src/types.ts.
 *
 * Postfix counterpart: CLEANUP_STATE and cleanup_envelope.c / cleanup_message.c /
 * cleanup_final.c: envelope records are rewritten to canonical form, content is
 * checked and copied to the queue file, and the status bits decide the reply in
 * cleanup_strerror.c's order (cleanup-status.ts).
 *
 * Data path: bytes written to `content` go through ContentScanner (size, 8-bit, line
 * ends, stray CR) and HeaderParser (one logical header at a time). Each primary header
 * goes through PrimaryHeaders (primary-headers.ts: checks and their edits,
 * `messageDropHeaders`, address rewriting, `sendmail -t` addresses) and is written.
 * The pieces: the envelope and its table mapping (cleanup-envelope.ts), check effects
 * on the message (check-effects.ts), the content filter (filter-run.ts), status bits
 * and replies (cleanup-status.ts).
 * Ahead of the first header come Postern's Received header (not for internal mail) and
 * prepended headers; at the end of the header block come missing headers (local
 * clients) and the empty line. The body passes through in the chunks it came in —
 * through MimeInspector only when a check table is configured. Each piece is written
 * to the store's MessageWriter (and to the content filter, content-filter.ts) as it
 * arrives; when either asks to wait, `content`'s write callback waits, so backpressure
 * reaches the client's socket.
 *
 * Failures never surface as an `error` event on `content`: they set a status bit, the
 * rest of the input is read and dropped, and `commit()` replies. REJECT from a check
 * replies with the check's text; DISCARD stops writing and commit replies 250.
 *
 * Size: `messageSizeLimit` applies to the content bytes as the client sent them (what
 * a client's SIZE= declares), not counting the headers Postern adds.
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
 * transaction is bounded by one logical header (`headerSizeLimit`), one chunk, the
 * MIME inspector's bounded state and — with a content filter — the kept header block
 * (at most `headerSizeLimit`).
 *
 * @module
 */

import { Writable } from 'node:stream';
import type { Parameters } from '../config/parameters.js';
import { QueueStoreError, TableError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import type { MessageWriter, NewMessageRecord, QueueStore } from '../queue/types.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import { SmtpReply } from '../smtp-reply.js';
import type {
  Address,
  Clock,
  NewRecipient,
  QueueId,
  SenderParams,
  SubmissionAction,
  SubmissionResult,
  SubmissionSource,
  SubmissionTransaction,
} from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { type AddressMapping, type AddressTables, ExpansionLimitError } from './address-mapping.js';
import { applyCheckEffect, type CheckEffectTarget } from './check-effects.js';
import { CleanupEnvelope } from './cleanup-envelope.js';
import { BAD, CONT, DEFER, HOPS, RCPT, SIZE, statusReply, WRITE } from './cleanup-status.js';
import { type CommitStage, runCommitStage } from './commit-stage.js';
import { type CheckClass, type CheckTables, ContentChecks } from './content-checks.js';
import type { ContentFilter } from './content-filter.js';
import { ContentScanner } from './content-scanner.js';
import { FilterRun } from './filter-run.js';
import { type HeaderEvent, HeaderParser } from './header-parser.js';
import type { HeaderRewriting } from './header-rewriting.js';
import { MimeInspector } from './mime-inspector.js';
import { type LocalHeaderRewriteClients, missingHeaders } from './missing-headers.js';
import { PrimaryHeaders } from './primary-headers.js';
import { receivedHeader } from './received-header.js';
import { waitForDrain } from './stream-util.js';

export { DUPLICATE_FILTER_LIMIT } from './cleanup-envelope.js';

/** What every transaction of one Cleanup shares. */
export interface CleanupContext {
  readonly params: Parameters;
  readonly rewriter: Pick<Rewriter, 'rewrite'>;
  readonly clock: Clock;
  readonly log: ComponentLogger;
  readonly headerClients: LocalHeaderRewriteClients;
  /** `messageDropHeaders`, lower-cased. */
  readonly dropHeaders: ReadonlySet<string>;
  readonly store: QueueStore;
  readonly checkTables: CheckTables;
  readonly addressTables: AddressTables;
  readonly mapping: AddressMapping;
  readonly headerRewriting: HeaderRewriting;
  readonly contentFilter?: ContentFilter;
  /** Signing and authentication before the commit (commit-stage.ts). */
  readonly commitStage?: CommitStage;
}

const CRLF = Buffer.from('\r\n');
const CONTENT_HIGH_WATER_MARK = 64 * 1024;

type Phase = 'open' | 'committing' | 'committed' | 'failed' | 'aborted';

export class CleanupTransaction implements SubmissionTransaction {
  readonly queueId: QueueId;
  readonly content: Writable;

  readonly #ctx: CleanupContext;
  readonly #source: SubmissionSource;
  #writer: MessageWriter;
  readonly #arrivalTime: number;
  readonly #scanner: ContentScanner;
  readonly #parser: HeaderParser;
  readonly #addHeaders: boolean;
  readonly #env: CleanupEnvelope;
  readonly #checks: ContentChecks | undefined;
  #mime: MimeInspector | undefined;
  readonly #filter: ContentFilter | undefined;
  #filterRun: FilterRun | undefined;

  #phase: Phase = 'open';
  #status = 0;
  #deferReply: SmtpReply | undefined;
  #contentReply: SmtpReply | undefined;
  /** Stop writing to the store (an error is held, the message is discarded, or it is over). */
  #stopped = false;
  #commitPromise: Promise<SubmissionResult> | undefined;

  readonly #prepends: string[] = [];
  #started = false;
  #headersDone = false;
  #outBytes = 0;
  #headerSize = 0;
  #eightBit = false;
  #hops = 0;
  readonly #headers: PrimaryHeaders;
  /** Where PrimaryHeaders writes: the output list of the chunk being handled. */
  #out: Buffer[] = [];
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
    const { params } = ctx;
    this.#scanner = new ContentScanner({ replaceStrayCr: params.cleanupReplaceStrayCrLf });
    this.#parser = new HeaderParser({ headerSizeLimit: params.headerSizeLimit });
    const local = ctx.headerClients.matches(source);
    this.#addHeaders = !source.internal && (params.alwaysAddMissingHeaders || local);
    this.#env = new CleanupEnvelope({
      params,
      mapping: ctx.mapping,
      tables: ctx.addressTables,
    });
    const filtered = !source.internal || internalClassAllowed(params, source);
    if (filtered && ContentChecks.configured(ctx.checkTables)) {
      this.#checks = new ContentChecks(ctx.checkTables, {
        act: (where, line, action) => applyCheckEffect(this.#effects(), where, line, action),
        failed: (where, err) => this.#checkFailed(where, err),
      });
    }
    this.#filter = filtered ? ctx.contentFilter : undefined;
    this.#headers = new PrimaryHeaders({
      queueId,
      log: ctx.log,
      headerSizeLimit: params.headerSizeLimit,
      dropHeaders: ctx.dropHeaders,
      rewriting: ctx.headerRewriting,
      localContext: local,
      checks: this.#checks,
      extracting: () => this.#env.extract,
      stopped: () => this.#stopped,
      write: (data) => this.#pushHeader(this.#out, data),
      countHop: () => this.#countHop(),
      tableFailed: (what, err) => this.#tableFailed(what, err),
    });
    this.#contentDone = new Promise((resolve) => {
      this.#resolveContentDone = resolve;
    });

    // A store stream that fails is a held WRITE error, never an unhandled event.
    writer.content.on('error', (err: Error) => this.#writeFailed(err));

    this.content = new Writable({
      highWaterMark: CONTENT_HIGH_WATER_MARK,
      write: (chunk: Buffer, _encoding, callback) => {
        this.#onChunk(chunk).then(
          () => callback(),
          (err: unknown) => {
            this.#internalFailure(err);
            callback();
          },
        );
      },
      final: (callback) => {
        this.#onEnd().then(
          () => callback(),
          (err: unknown) => {
            this.#internalFailure(err);
            callback();
          },
        );
      },
    });
    // The contract: `content` never emits 'error' to its user. Misuse (a write after
    // end, after abort) is absorbed here and shows up as a failed commit instead.
    this.content.on('error', () => {
      if (this.#phase === 'open')
        this.#fail(BAD, 'content stream misused (write after end or destroy)');
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
    this.#env.recipients.push({
      address,
      originalAddress: recipient.originalAddress ?? recipient.address,
      ...(recipient.notify ? { notify: recipient.notify } : {}),
      ...(recipient.orcpt !== undefined ? { orcpt: recipient.orcpt } : {}),
    });
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
        this.#prepend(action.header);
        return;
      case 'extractRecipients':
        if (this.#headersDone) {
          this.#fail(BAD, 'extractRecipients after the header block was written');
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
    if (this.#phase === 'committing' && this.#commitPromise) {
      // A commit in flight settles first; a message it made durable stays queued.
      await this.#commitPromise.catch(() => undefined);
    }
    if (this.#phase === 'committed' || this.#phase === 'aborted') return;
    this.#phase = 'aborted';
    this.#stopped = true;
    this.#filterRun?.feed.close();
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

  // ---- envelope -------------------------------------------------------------------

  #acceptsEnvelope(what: string): boolean {
    if (this.#phase === 'open') return true;
    this.#ctx.log.warning(this.queueId, `${what} after commit or abort ignored`);
    return false;
  }

  #rewrite(address: Address): Address | undefined {
    try {
      return this.#ctx.rewriter.rewrite(address);
    } catch (err) {
      this.#fail(DEFER, `address rewriting failed: ${errorMessage(err)}`);
      return undefined;
    }
  }

  #prepend(header: string): void {
    const line = header.replace(/[\r\n\0]+/g, ' ').trimEnd();
    if (!/^[\x21-\x39\x3b-\x7e]+:/.test(line)) {
      this.#ctx.log.warning(
        this.queueId,
        `prepend: ignoring "${line.slice(0, 100)}": not a header line`,
      );
      return;
    }
    if (!this.#started) {
      this.#prepends.push(line);
    } else if (!this.#headersDone) {
      // The content has started: the line goes in at the current place in the header block.
      if (!this.#stopped) {
        const out: Buffer[] = [];
        this.#pushHeader(out, Buffer.from(`${line}\r\n`));
        void this.#emit(out);
      }
    } else {
      this.#fail(BAD, `prepend after the header block was written: "${line.slice(0, 100)}"`);
    }
  }

  // ---- content --------------------------------------------------------------------

  async #onChunk(chunk: Buffer): Promise<void> {
    if (this.#stopped) return;
    const normalised = this.#scanner.push(chunk);
    const limit = this.#ctx.params.messageSizeLimit;
    if (limit > 0 && this.#scanner.inputBytes > limit) {
      this.#fail(
        SIZE,
        `message size ${this.#scanner.inputBytes}+ exceeds messageSizeLimit ${limit}`,
      );
      return;
    }
    const out: Buffer[] = [];
    if (!this.#started) this.#start(out);
    await this.#handle(this.#parser.push(normalised), out);
    await this.#emit(out);
  }

  async #onEnd(): Promise<void> {
    this.#ended = true;
    try {
      if (this.#stopped) return;
      const out: Buffer[] = [];
      if (!this.#started) this.#start(out);
      const tail = this.#scanner.end();
      await this.#handle(this.#parser.push(tail), out);
      await this.#handle(this.#parser.end(), out);
      if (this.#mime && !this.#stopped) for (const b of await this.#mime.end()) this.#push(out, b);
      await this.#emit(out);
    } finally {
      this.#filterRun?.feed.end();
      this.#resolveContentDone();
    }
  }

  /** What goes before the first byte of content: Received, then prepended headers. */
  #start(out: Buffer[]): void {
    this.#started = true;
    const { params } = this.#ctx;
    if (this.#filter) {
      this.#filterRun = new FilterRun(
        this.#filter,
        {
          queueId: this.queueId,
          sender: this.#env.sender,
          recipients: this.#env.recipients.map((r) => r.address),
          source: this.#source,
        },
        this.#ctx.log,
        params.headerSizeLimit,
      );
    }
    if (!this.#source.internal) {
      const rcpts = this.#env.recipients;
      const only = rcpts.length === 1 ? rcpts[0] : undefined;
      const received = receivedHeader({
        source: this.#source,
        myhostname: params.myhostname,
        mailName: params.mailName,
        queueId: this.queueId,
        time: this.#arrivalTime,
        ...(only ? { recipient: only.originalAddress } : {}),
        ...(params.smtpdSaslAuthenticatedHeader && this.#source.authUser !== undefined
          ? { authenticatedSender: this.#source.authUser }
          : {}),
      });
      this.#pushHeader(out, Buffer.from(received, 'utf8'));
      this.#countHop();
    }
    for (const line of this.#prepends) this.#pushHeader(out, Buffer.from(`${line}\r\n`, 'utf8'));
    this.#prepends.length = 0;
  }

  async #handle(events: readonly HeaderEvent[], out: Buffer[]): Promise<void> {
    for (const event of events) {
      if (this.#stopped) return;
      switch (event.kind) {
        case 'header':
          this.#out = out;
          await this.#headers.header(event.field);
          break;
        case 'end':
          await this.#endOfHeaders(out);
          break;
        case 'body':
          if (this.#mime) for (const b of await this.#mime.push(event.data)) this.#push(out, b);
          else this.#push(out, event.data);
          break;
      }
    }
  }

  async #endOfHeaders(out: Buffer[]): Promise<void> {
    const { params, rewriter } = this.#ctx;
    if (this.#env.extract) {
      for (const address of this.#headers.extractedRecipients()) this.addRecipient({ address });
    }
    if (this.#addHeaders) {
      let mailerDaemon = 'MAILER-DAEMON';
      try {
        mailerDaemon = rewriter.rewrite(mailerDaemon);
      } catch {
        // Keep the bare name: the header is still valid without a domain.
      }
      let sender: Address | undefined;
      try {
        sender = await this.#env.mappedSender();
      } catch (err) {
        this.#tableFailed('sender address mapping', err);
        return;
      }
      const missing = missingHeaders({
        seen: this.#headers.seen,
        sender,
        mailerDaemon,
        queueId: this.queueId,
        myhostname: params.myhostname,
        time: this.#arrivalTime,
        undisclosedRecipientsHeader: params.undisclosedRecipientsHeader,
        ...(this.#env.senderParams.fullName ? { fullName: this.#env.senderParams.fullName } : {}),
      });
      for (const h of missing.headers) this.#pushHeader(out, Buffer.from(h, 'utf8'));
      if (missing.messageId !== undefined)
        this.#ctx.log.info(this.queueId, `message-id=${missing.messageId}`);
    }
    this.#pushHeader(out, CRLF);
    this.#headersDone = true;
    this.#headerSize = this.#outBytes;
    const checks = this.#checks;
    if (checks?.active && (checks.checksBody || checks.checksNestedHeaders)) {
      this.#mime = new MimeInspector({
        checks,
        nestingLimit: params.mimeNestingLimit,
        boundaryLengthLimit: params.mimeBoundaryLengthLimit,
        bodyChecksSizeLimit: params.bodyChecksSizeLimit,
        headerSizeLimit: params.headerSizeLimit,
        onNestingLimit: () =>
          this.#ctx.log.warning(
            this.queueId,
            `MIME nesting exceeds mimeNestingLimit ${params.mimeNestingLimit}: deeper parts are not inspected`,
          ),
      });
      this.#mime.start(this.#headers.contentType);
    }
  }

  #countHop(): void {
    this.#hops++;
    if (this.#hops >= this.#ctx.params.hopcountLimit) {
      this.#fail(
        HOPS,
        `too many hops: ${this.#hops} Received headers (hopcountLimit ${this.#ctx.params.hopcountLimit})`,
      );
    }
  }

  /** A header-block piece: kept for a content filter's rewrite, then written. */
  #pushHeader(out: Buffer[], data: Buffer): void {
    this.#filterRun?.keepHeader(data);
    this.#push(out, data);
  }

  #push(out: Buffer[], data: Buffer): void {
    if (data.length === 0) return;
    out.push(data);
    this.#outBytes += data.length;
  }

  /** Writes to the store (and the content filter), waiting when either asks for it. */
  async #emit(out: readonly Buffer[]): Promise<void> {
    const stream = this.#writer.content;
    let ok = true;
    for (const data of out) {
      if (this.#stopped) return;
      if (data.length === 0) continue;
      if (stream.destroyed || stream.writableEnded) {
        this.#writeFailed(new Error('the queue file stream closed early'));
        return;
      }
      ok = stream.write(data);
      if (this.#filterRun) await this.#filterRun.feed.push(data);
    }
    if (!ok && !this.#stopped) await waitForDrain(stream);
  }

  // ---- checks and the content filter -------------------------------------------------

  #effects(): CheckEffectTarget {
    return {
      queueId: this.queueId,
      source: this.#source,
      env: this.#env,
      log: this.#ctx.log,
      rewrite: (a) => this.#rewrite(a),
      reject: (reply) => {
        this.#contentReply = reply;
        this.#status |= CONT;
        this.#stopped = true;
        this.#filterRun?.feed.close();
      },
      discard: () => {
        this.#stopped = true;
        this.#filterRun?.feed.close();
      },
    };
  }

  #checkFailed(where: CheckClass, err: unknown): void {
    this.#tableFailed(`${where === 'body' ? 'body' : 'header'} checks`, err);
  }

  #tableFailed(what: string, err: unknown): void {
    const kind = err instanceof TableError ? err.kind : 'retry';
    const log = kind === 'config' ? this.#ctx.log.error : this.#ctx.log.warning;
    log.call(
      this.#ctx.log,
      this.queueId,
      `${what}: lookup problem -- message not accepted, try again later: ${errorMessage(err)}`,
    );
    this.#deferReply ??= new SmtpReply(
      451,
      '4.3.0',
      'Error: temporary lookup failure, try again later',
    );
    this.#status |= DEFER;
    this.#stopped = true;
    this.#filterRun?.feed.close();
  }

  // ---- failures -------------------------------------------------------------------

  #fail(bit: number, reason: string): void {
    if (this.#status === 0) this.#ctx.log.info(this.queueId, `reject: ${reason}`);
    this.#status |= bit;
    this.#stopped = true;
    this.#filterRun?.feed.close();
  }

  #writeFailed(err: Error): void {
    if (this.#phase === 'aborted' || this.#phase === 'committed') return;
    if ((this.#status & WRITE) === 0) {
      this.#ctx.log.warning(this.queueId, `queue file write error: ${errorMessage(err)}`);
    }
    this.#status |= WRITE;
    this.#stopped = true;
    this.#filterRun?.feed.close();
  }

  #internalFailure(err: unknown): void {
    this.#ctx.log.error(this.queueId, `unexpected error in the content path: ${errorMessage(err)}`);
    this.#status |= WRITE;
    this.#stopped = true;
    this.#filterRun?.feed.close();
  }

  // ---- commit ---------------------------------------------------------------------

  async #commit(): Promise<SubmissionResult> {
    if (this.#phase !== 'open') {
      return { reply: new SmtpReply(451, '4.3.0', 'Error: internal protocol error') };
    }
    this.#phase = 'committing';
    if (!this.content.writableEnded && !this.content.destroyed) this.content.end();
    await this.#contentDone;
    if (!this.#ended) {
      // Destroyed before it ended: the message is incomplete.
      this.#fail(BAD, 'the content stream was destroyed before it ended');
    }
    const env = this.#env;

    if (this.#filterRun && this.#status === 0 && !env.discard) {
      const outcome = await this.#filterRun.settle({
        writer: this.#writer,
        store: this.#ctx.store,
        headerSize: this.#headerSize,
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
          this.#outBytes = outcome.size;
          this.#headerSize = outcome.headerSize;
          this.#eightBit = this.#eightBit || outcome.eightBit;
          break;
        case 'queue':
          break;
      }
    } else {
      this.#filterRun?.feed.close();
    }

    let recipients: Awaited<ReturnType<CleanupEnvelope['finalRecipients']>> = [];
    let sender: Address | undefined;
    if (this.#status === 0 || (this.#status & ~RCPT) === 0) {
      try {
        sender = await env.mappedSender();
        recipients = await env.finalRecipients();
      } catch (err) {
        if (err instanceof ExpansionLimitError) {
          this.#ctx.log.warning(this.queueId, err.message);
          this.#status |= DEFER;
        } else {
          this.#tableFailed('address mapping', err);
        }
      }
    }
    if (recipients.length === 0 && this.#status === 0 && !env.discard) this.#status |= RCPT;
    if (env.sender === undefined && this.#status === 0)
      this.#fail(BAD, 'no sender was given before commit');

    const failed = statusReply(this.#status, {
      ...(this.#deferReply ? { defer: this.#deferReply } : {}),
      ...(this.#contentReply ? { content: this.#contentReply } : {}),
    });
    if (failed) return this.#failCommit(failed);

    if (env.discard) {
      this.#stopped = true;
      await this.#abortWriter();
      this.#phase = 'failed';
      this.#ctx.log.info(this.queueId, `discard: ${env.discard.reason ?? 'discarded by request'}`);
      return { reply: new SmtpReply(250, '2.0.0', 'Ok: discarded') };
    }

    const stage = this.#ctx.commitStage;
    if (stage) {
      const staged = await runCommitStage(
        stage,
        {
          queueId: this.queueId,
          source: this.#source,
          sender: env.sender,
          headerSize: this.#headerSize,
        },
        {
          writer: this.#writer,
          store: this.#ctx.store,
          log: this.#ctx.log,
          replaceStrayCr: this.#ctx.params.cleanupReplaceStrayCrLf,
        },
      );
      if (staged.reply) return this.#failCommit(staged.reply);
      if (staged.rewritten) {
        ({
          writer: this.#writer,
          size: this.#outBytes,
          headerSize: this.#headerSize,
        } = staged.rewritten);
        this.#eightBit ||= staged.rewritten.eightBit;
      }
      if (staged.hold !== undefined) env.hold = { reason: staged.hold };
    }
    const p = env.senderParams;
    const record: NewMessageRecord = {
      queueId: this.queueId,
      sender: sender ?? '',
      recipients,
      ...(p.envid !== undefined ? { envid: p.envid } : {}),
      ...(p.ret !== undefined ? { ret: p.ret } : {}),
      bodyType: p.bodyType ?? '7BIT',
      smtputf8: p.smtputf8 ?? false,
      eightBit: this.#eightBit || this.#scanner.eightBit,
      size: this.#outBytes,
      headerSize: this.#headerSize,
      arrivalTime: this.#arrivalTime,
      warnTime: 0,
      source: this.#source,
      ...(env.filter !== undefined ? { filter: env.filter } : {}),
      ...(env.hold
        ? {
            hold: true,
            ...(env.hold.reason !== undefined ? { holdReason: env.hold.reason } : {}),
          }
        : {}),
    };
    try {
      await this.#writer.commit(record);
    } catch (err) {
      // An outage the store has logged once is not logged again for each message refused.
      if (!(err instanceof QueueStoreError && err.outage))
        this.#ctx.log.warning(this.queueId, `queue file write error: ${errorMessage(err)}`);
      return this.#failCommit(statusReply(WRITE)!);
    }
    this.#phase = 'committed';
    this.#stopped = true;
    if (env.redirect !== undefined)
      this.#ctx.log.info(this.queueId, `redirect: to <${env.redirect}>`);
    if (env.hold) this.#ctx.log.info(this.queueId, `hold: ${env.hold.reason ?? 'held by request'}`);
    return {
      reply: new SmtpReply(250, '2.0.0', `Ok: queued as ${this.queueId}`),
      queueId: this.queueId,
    };
  }

  async #failCommit(reply: SmtpReply): Promise<SubmissionResult> {
    this.#stopped = true;
    this.#filterRun?.feed.close();
    await this.#abortWriter();
    this.#phase = 'failed';
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

/** Whether internal mail from `source` is in `internalMailFilterClasses`. */
function internalClassAllowed(params: Parameters, source: SubmissionSource): boolean {
  const cls = source.component === 'bounce' ? 'bounce' : 'notify';
  return params.internalMailFilterClasses.some((c) => c.trim().toLowerCase() === cls);
}
