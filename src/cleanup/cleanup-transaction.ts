/**
 * CleanupTransaction: one message on its way into the queue — the state of one
 * cleanup(8) session behind the SubmissionTransaction contract of src/types.ts.
 *
 * Postfix counterpart: CLEANUP_STATE and cleanup_envelope.c / cleanup_message.c /
 * cleanup_extracted.c / cleanup_final.c: envelope records are rewritten to canonical
 * form and de-duplicated (`duplicate_filter_limit`), content is checked and copied to
 * the queue file, and the status bits decide the reply in cleanup_strerror.c's order.
 *
 * Data path: bytes written to `content` go through ContentScanner (size, 8-bit, line
 * ends, stray CR) and HeaderParser (one logical header at a time), and the result is
 * written to the store's MessageWriter as it arrives. Ahead of the first header come
 * Postern's Received header (not for internal mail) and any prepended headers; at the
 * end of the header block come missing Message-Id/Date/From headers (for local
 * clients) and the empty line. The body passes through in the chunks it came in. When
 * the store's stream returns false, `content`'s write callback waits for `drain`, so
 * backpressure reaches the client's socket.
 *
 * Failures never surface as an `error` event on `content`: they set a status bit, the
 * rest of the input is read and dropped, and `commit()` replies:
 * `451 4.3.0 Error: queue file write error`, `451 4.3.0 Error: internal protocol error`,
 * `550 5.1.0 Error: no recipients specified`, `554 5.4.0 Error: too many hops`,
 * `552 5.3.4 Error: message file too big` (first match wins).
 *
 * Size: `messageSizeLimit` applies to the content bytes as the client sent them (what
 * a client's SIZE= declares), not counting the headers Postern adds.
 *
 * Envelope after content (QMQP): sender, recipients and actions may arrive after the
 * content. What the content needs at the end of its header block — the `for` clause of
 * Received, a missing From: — uses the envelope known at that moment, because holding
 * the body back until the envelope arrives would need unbounded memory; a From: that
 * would need a sender not given yet is not added. A prepended header applied after the
 * header block was written cannot be placed and fails the message (internal protocol
 * error), as it is the caller's bug.
 *
 * Does not: header or body checks, address rewriting inside headers, virtual alias
 * expansion, Milters.
 *
 * SECURITY: every content byte and envelope string is untrusted; memory per
 * transaction is bounded by one logical header (`headerSizeLimit`) plus one chunk.
 *
 * @module
 */

import { Writable } from 'node:stream';
import type { Parameters } from '../config/parameters.js';
import type { ComponentLogger } from '../log.js';
import type { MessageWriter, NewMessageRecord } from '../queue/types.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import { SmtpReply } from '../smtp-reply.js';
import type {
  Address,
  Clock,
  DsnNotifyKeyword,
  NewRecipient,
  QueueId,
  Recipient,
  SenderParams,
  SubmissionAction,
  SubmissionResult,
  SubmissionSource,
  SubmissionTransaction,
} from '../types.js';
import { ContentScanner } from './content-scanner.js';
import { type HeaderEvent, HeaderParser } from './header-parser.js';
import { type LocalHeaderRewriteClients, missingHeaders } from './missing-headers.js';
import { receivedHeader } from './received-header.js';

/** What every transaction of one Cleanup shares. */
export interface CleanupContext {
  readonly params: Parameters;
  readonly rewriter: Pick<Rewriter, 'rewrite'>;
  readonly clock: Clock;
  readonly log: ComponentLogger;
  readonly headerClients: LocalHeaderRewriteClients;
  /** `messageDropHeaders`, lower-cased. */
  readonly dropHeaders: ReadonlySet<string>;
}

/** Postfix's `duplicate_filter_limit`: how many recipients the duplicate filter remembers. */
export const DUPLICATE_FILTER_LIMIT = 1000;

/** Status bits, in cleanup_strerror.c's order of precedence. */
const STATUS = [
  {
    bit: 1 << 0,
    reply: () => new SmtpReply(451, '4.3.0', 'Error: temporary address rewriting failure'),
  },
  { bit: 1 << 1, reply: () => new SmtpReply(451, '4.3.0', 'Error: queue file write error') },
  { bit: 1 << 2, reply: () => new SmtpReply(451, '4.3.0', 'Error: internal protocol error') },
  { bit: 1 << 3, reply: () => new SmtpReply(550, '5.1.0', 'Error: no recipients specified') },
  { bit: 1 << 4, reply: () => new SmtpReply(554, '5.4.0', 'Error: too many hops') },
  { bit: 1 << 5, reply: () => new SmtpReply(552, '5.3.4', 'Error: message file too big') },
] as const;
const DEFER = 1 << 0;
const WRITE = 1 << 1;
const BAD = 1 << 2;
const RCPT = 1 << 3;
const HOPS = 1 << 4;
const SIZE = 1 << 5;

const CRLF = Buffer.from('\r\n');
const CONTENT_HIGH_WATER_MARK = 64 * 1024;

interface PendingRecipient {
  readonly address: Address;
  readonly originalAddress: Address;
  readonly notify?: readonly DsnNotifyKeyword[];
  readonly orcpt?: string;
}

type Phase = 'open' | 'committing' | 'committed' | 'failed' | 'aborted';

export class CleanupTransaction implements SubmissionTransaction {
  readonly queueId: QueueId;
  readonly content: Writable;

  readonly #ctx: CleanupContext;
  readonly #source: SubmissionSource;
  readonly #writer: MessageWriter;
  readonly #arrivalTime: number;
  readonly #scanner: ContentScanner;
  readonly #parser: HeaderParser;
  readonly #addHeaders: boolean;

  #phase: Phase = 'open';
  #status = 0;
  /** Stop writing to the store (an error is held, or the transaction is over). */
  #stopped = false;
  #commitPromise: Promise<SubmissionResult> | undefined;

  #sender: Address | undefined;
  #senderParams: SenderParams = {};
  readonly #recipients: PendingRecipient[] = [];
  readonly #dupFilter = new Set<string>();

  #hold: { reason?: string } | undefined;
  #discard: { reason?: string } | undefined;
  #redirect: Address | undefined;
  readonly #bccs: Address[] = [];
  #filter: string | undefined;
  readonly #prepends: string[] = [];

  #started = false;
  #headersDone = false;
  #outBytes = 0;
  #headerSize = 0;
  #hops = 0;
  readonly #seen = new Set<string>();
  #truncationLogged = false;
  /** `content` was ended (not merely destroyed). */
  #ended = false;
  #contentDone: Promise<void>;
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
    this.#scanner = new ContentScanner({ replaceStrayCr: ctx.params.cleanupReplaceStrayCrLf });
    this.#parser = new HeaderParser({ headerSizeLimit: ctx.params.headerSizeLimit });
    this.#addHeaders =
      !source.internal && (ctx.params.alwaysAddMissingHeaders || ctx.headerClients.matches(source));
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
    this.#sender = rewritten;
    this.#senderParams = params;
  }

  addRecipient(recipient: NewRecipient): void {
    if (!this.#acceptsEnvelope('addRecipient')) return;
    const address = this.#rewrite(recipient.address);
    if (address === undefined) return;
    this.#addPending(this.#recipients, this.#dupFilter, {
      address,
      originalAddress: recipient.originalAddress ?? recipient.address,
      ...(recipient.notify ? { notify: recipient.notify } : {}),
      ...(recipient.orcpt !== undefined ? { orcpt: recipient.orcpt } : {}),
    });
  }

  apply(action: SubmissionAction): void {
    if (!this.#acceptsEnvelope('apply')) return;
    switch (action.type) {
      case 'hold':
        this.#hold = action.reason !== undefined ? { reason: action.reason } : {};
        return;
      case 'discard':
        this.#discard = action.reason !== undefined ? { reason: action.reason } : {};
        return;
      case 'redirect': {
        const to = this.#rewrite(action.address);
        if (to !== undefined) this.#redirect = to;
        return;
      }
      case 'bcc': {
        const to = this.#rewrite(action.address);
        if (to !== undefined) this.#bccs.push(to);
        return;
      }
      case 'filter':
        this.#filter = action.nexthop;
        return;
      case 'prepend':
        this.#prepend(action.header);
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
    if (!this.content.destroyed) this.content.destroy();
    this.#resolveContentDone();
    try {
      await this.#writer.abort();
    } catch (err) {
      this.#ctx.log.warning(
        this.queueId,
        `abort: cannot discard the queue file: ${errorText(err)}`,
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
      this.#fail(DEFER, `address rewriting failed: ${errorText(err)}`);
      return undefined;
    }
  }

  #addPending(list: PendingRecipient[], filter: Set<string>, r: PendingRecipient): void {
    const key = `${r.address}\n${r.notify ? [...r.notify].sort().join(',') : ''}`;
    if (filter.has(key)) return;
    if (filter.size < DUPLICATE_FILTER_LIMIT) filter.add(key);
    list.push(r);
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
        this.#push(out, Buffer.from(`${line}\r\n`));
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
    this.#handle(this.#parser.push(normalised), out);
    await this.#emit(out);
  }

  async #onEnd(): Promise<void> {
    this.#ended = true;
    try {
      if (this.#stopped) return;
      const out: Buffer[] = [];
      if (!this.#started) this.#start(out);
      const tail = this.#scanner.end();
      this.#handle(this.#parser.push(tail), out);
      this.#handle(this.#parser.end(), out);
      await this.#emit(out);
    } finally {
      this.#resolveContentDone();
    }
  }

  /** What goes before the first byte of content: Received, then prepended headers. */
  #start(out: Buffer[]): void {
    this.#started = true;
    const { params } = this.#ctx;
    if (!this.#source.internal) {
      const only = this.#recipients.length === 1 ? this.#recipients[0] : undefined;
      const received = receivedHeader({
        source: this.#source,
        myhostname: params.myhostname,
        mailName: params.mailName,
        queueId: this.queueId,
        time: this.#arrivalTime,
        ...(only ? { recipient: only.originalAddress } : {}),
      });
      this.#push(out, Buffer.from(received, 'utf8'));
      this.#countHop();
    }
    for (const line of this.#prepends) this.#push(out, Buffer.from(`${line}\r\n`, 'utf8'));
    this.#prepends.length = 0;
  }

  #handle(events: readonly HeaderEvent[], out: Buffer[]): void {
    for (const event of events) {
      if (this.#stopped) return;
      switch (event.kind) {
        case 'header': {
          const { field } = event;
          this.#seen.add(field.lowerName);
          if (field.lowerName === 'received') this.#countHop();
          if (field.lowerName === 'message-id')
            this.#ctx.log.info(this.queueId, `message-id=${field.value}`);
          if (field.truncated && !this.#truncationLogged) {
            this.#truncationLogged = true;
            this.#ctx.log.warning(
              this.queueId,
              `header ${field.name} longer than headerSizeLimit ${this.#ctx.params.headerSizeLimit}: excess discarded`,
            );
          }
          if (!this.#ctx.dropHeaders.has(field.lowerName)) this.#push(out, field.raw);
          break;
        }
        case 'end':
          this.#endOfHeaders(out);
          break;
        case 'body':
          this.#push(out, event.data);
          break;
      }
    }
  }

  #endOfHeaders(out: Buffer[]): void {
    if (this.#addHeaders) {
      const { params, rewriter } = this.#ctx;
      let mailerDaemon = 'MAILER-DAEMON';
      try {
        mailerDaemon = rewriter.rewrite(mailerDaemon);
      } catch {
        // Keep the bare name: the header is still valid without a domain.
      }
      const missing = missingHeaders({
        seen: this.#seen,
        sender: this.#sender,
        mailerDaemon,
        queueId: this.queueId,
        myhostname: params.myhostname,
        time: this.#arrivalTime,
      });
      for (const h of missing.headers) this.#push(out, Buffer.from(h, 'utf8'));
      if (missing.messageId !== undefined)
        this.#ctx.log.info(this.queueId, `message-id=${missing.messageId}`);
    }
    this.#push(out, CRLF);
    this.#headersDone = true;
    this.#headerSize = this.#outBytes;
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

  #push(out: Buffer[], data: Buffer): void {
    if (data.length === 0) return;
    out.push(data);
    this.#outBytes += data.length;
  }

  /** Writes to the store, waiting for `drain` when it asks for it. */
  async #emit(out: readonly Buffer[]): Promise<void> {
    const stream = this.#writer.content;
    let ok = true;
    for (const data of out) {
      if (this.#stopped) return;
      if (stream.destroyed || stream.writableEnded) {
        this.#writeFailed(new Error('the queue file stream closed early'));
        return;
      }
      ok = stream.write(data);
    }
    if (!ok && !this.#stopped) await waitForDrain(stream);
  }

  // ---- failures -------------------------------------------------------------------

  #fail(bit: number, reason: string): void {
    if (this.#status === 0) this.#ctx.log.info(this.queueId, `reject: ${reason}`);
    this.#status |= bit;
    this.#stopped = true;
  }

  #writeFailed(err: Error): void {
    if (this.#phase === 'aborted' || this.#phase === 'committed') return;
    if ((this.#status & WRITE) === 0) {
      this.#ctx.log.warning(this.queueId, `queue file write error: ${errorText(err)}`);
    }
    this.#status |= WRITE;
    this.#stopped = true;
  }

  #internalFailure(err: unknown): void {
    this.#ctx.log.error(this.queueId, `unexpected error in the content path: ${errorText(err)}`);
    this.#status |= WRITE;
    this.#stopped = true;
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

    const recipients = this.#finalRecipients();
    if (recipients.length === 0) this.#status |= RCPT;
    if (this.#sender === undefined && this.#status === 0)
      this.#fail(BAD, 'no sender was given before commit');

    const failed = STATUS.find((s) => (this.#status & s.bit) !== 0);
    if (failed) return this.#failCommit(failed.reply());

    if (this.#discard) {
      this.#stopped = true;
      await this.#abortWriter();
      this.#phase = 'failed';
      this.#ctx.log.info(
        this.queueId,
        `discard: ${this.#discard.reason ?? 'discarded by request'}`,
      );
      return { reply: new SmtpReply(250, '2.0.0', 'Ok: discarded') };
    }

    const p = this.#senderParams;
    const record: NewMessageRecord = {
      queueId: this.queueId,
      sender: this.#sender ?? '',
      recipients,
      ...(p.envid !== undefined ? { envid: p.envid } : {}),
      ...(p.ret !== undefined ? { ret: p.ret } : {}),
      bodyType: p.bodyType ?? '7BIT',
      smtputf8: p.smtputf8 ?? false,
      eightBit: this.#scanner.eightBit,
      size: this.#outBytes,
      headerSize: this.#headerSize,
      arrivalTime: this.#arrivalTime,
      warnTime: 0,
      source: this.#source,
      ...(this.#filter !== undefined ? { filter: this.#filter } : {}),
      ...(this.#hold
        ? {
            hold: true,
            ...(this.#hold.reason !== undefined ? { holdReason: this.#hold.reason } : {}),
          }
        : {}),
    };
    try {
      await this.#writer.commit(record);
    } catch (err) {
      this.#ctx.log.warning(this.queueId, `queue file write error: ${errorText(err)}`);
      return this.#failCommit(STATUS[1].reply());
    }
    this.#phase = 'committed';
    this.#stopped = true;
    if (this.#redirect !== undefined)
      this.#ctx.log.info(this.queueId, `redirect: to <${this.#redirect}>`);
    if (this.#hold)
      this.#ctx.log.info(this.queueId, `hold: ${this.#hold.reason ?? 'held by request'}`);
    return {
      reply: new SmtpReply(250, '2.0.0', `Ok: queued as ${this.queueId}`),
      queueId: this.queueId,
    };
  }

  async #failCommit(reply: SmtpReply): Promise<SubmissionResult> {
    this.#stopped = true;
    await this.#abortWriter();
    this.#phase = 'failed';
    return { reply };
  }

  async #abortWriter(): Promise<void> {
    try {
      await this.#writer.abort();
    } catch (err) {
      this.#ctx.log.warning(this.queueId, `cannot discard the queue file: ${errorText(err)}`);
    }
  }

  /** Recipients after REDIRECT and BCC, de-duplicated, with ids 0..n-1. */
  #finalRecipients(): Recipient[] {
    let list = this.#recipients;
    if (this.#redirect !== undefined) {
      const redirected: PendingRecipient[] = [];
      const filter = new Set<string>();
      for (const r of list) this.#addPending(redirected, filter, { ...r, address: this.#redirect });
      list = redirected;
    }
    if (this.#bccs.length > 0) {
      const filter = new Set<string>();
      const withBcc: PendingRecipient[] = [];
      for (const r of list) this.#addPending(withBcc, filter, r);
      for (const address of this.#bccs) {
        this.#addPending(withBcc, filter, { address, originalAddress: address, notify: ['NEVER'] });
      }
      list = withBcc;
    }
    return list.map((r, id) => ({
      id,
      address: r.address,
      originalAddress: r.originalAddress,
      ...(r.notify ? { notify: [...r.notify] } : {}),
      ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
    }));
  }
}

/** Resolves on `drain`, or when the stream errors or closes (the error is handled elsewhere). */
function waitForDrain(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
    stream.on('close', done);
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
