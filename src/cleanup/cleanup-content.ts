/**
 * CleanupContent: the content path of one Cleanup transaction — the bytes a client
 * streams, checked, completed and copied to the queue file as they arrive.
 *
 * Postfix counterpart: cleanup_message.c (header and body processing, missing-header
 * repair at the end of the header block) and cleanup_out.c (writing the queue file).
 *
 * Data path: each chunk goes through ContentScanner (size, 8-bit, line ends, stray CR)
 * and HeaderParser (one logical header at a time). Each primary header goes through
 * PrimaryHeaders (primary-headers.ts: checks and their edits, `messageDropHeaders`,
 * address rewriting, `sendmail -t` addresses) and is written. Ahead of the first
 * header come Postern's Received header (not for internal mail) and prepended headers;
 * at the end of the header block come missing headers (local clients) and the empty
 * line. The body passes through in the chunks it came in — through MimeInspector only
 * when a check table is configured. Each piece is written to the store's MessageWriter
 * (and to the content filter) as it arrives; when either asks to wait, `push()` waits,
 * so backpressure reaches the client's socket.
 *
 * Size: `messageSizeLimit` applies to the content bytes as the client sent them (what
 * a client's SIZE= declares), not counting the headers Postern adds.
 *
 * Does not: throw for a failure of the message (it sets a status bit in CleanupState
 * and stops writing), or commit (cleanup-transaction.ts).
 *
 * SECURITY: every content byte is untrusted; memory is bounded by one logical header
 * (`headerSizeLimit`), one chunk, the MIME inspector's bounded state and — with a
 * content filter — the kept header block (at most `headerSizeLimit`).
 *
 * @module
 */

import type { MessageWriter } from '../queue/types.js';
import type { Address, SubmissionSource } from '../types.js';
import type { Mutable } from '../util/mutable.js';
import { applyCheckEffect, type CheckEffectTarget } from './check-effects.js';
import type { CleanupContext } from './cleanup-context.js';
import type { CleanupEnvelope } from './cleanup-envelope.js';
import type { CleanupState } from './cleanup-state.js';
import { BAD, HOPS, SIZE } from './cleanup-status.js';
import { ContentChecks } from './content-checks.js';
import type { ContentFilter } from './content-filter.js';
import { ContentScanner } from './content-scanner.js';
import { FilterRun } from './filter-run.js';
import { type HeaderEvent, HeaderParser } from './header-parser.js';
import { MimeInspector } from './mime-inspector.js';
import { missingHeaders } from './missing-headers.js';
import { PrimaryHeaders } from './primary-headers.js';
import { type ReceivedHeaderInput, receivedHeader } from './received-header.js';
import { waitForDrain } from './stream-util.js';

const CRLF = Buffer.from('\r\n');

/** The transaction's side of the content path. */
export interface CleanupContentHost {
  readonly ctx: CleanupContext;
  readonly state: CleanupState;
  readonly source: SubmissionSource;
  readonly env: CleanupEnvelope;
  /** Where the content goes until the commit. */
  readonly writer: MessageWriter;
  readonly arrivalTime: number;
  /** Canonical form of an address; undefined after a failure it recorded. */
  rewrite(address: Address): Address | undefined;
  /** A recipient taken from the headers (`sendmail -t`). */
  addRecipient(address: Address): void;
}

export class CleanupContent {
  readonly #h: CleanupContentHost;
  readonly #scanner: ContentScanner;
  readonly #parser: HeaderParser;
  readonly #addHeaders: boolean;
  readonly #checks: ContentChecks | undefined;
  #mime: MimeInspector | undefined;
  readonly #filter: ContentFilter | undefined;
  readonly #headers: PrimaryHeaders;

  readonly #prepends: string[] = [];
  #started = false;
  #headersDone = false;
  #outBytes = 0;
  #headerSize = 0;
  #hops = 0;
  /** Where PrimaryHeaders writes: the output list of the chunk being handled. */
  #out: Buffer[] = [];

  constructor(host: CleanupContentHost) {
    this.#h = host;
    const { ctx, source, state } = host;
    const { params } = ctx;
    this.#scanner = new ContentScanner({ replaceStrayCr: params.cleanupReplaceStrayCrLf });
    this.#parser = new HeaderParser({ headerSizeLimit: params.headerSizeLimit });
    const local = ctx.headerClients.matches(source);
    this.#addHeaders = !source.internal && (params.alwaysAddMissingHeaders || local);
    const filtered = !source.internal || internalClassAllowed(params, source);
    if (filtered && ContentChecks.configured(ctx.checkTables)) {
      this.#checks = new ContentChecks(ctx.checkTables, {
        act: (where, line, action) => applyCheckEffect(this.#effects(), where, line, action),
        failed: (where, err) =>
          state.tableFailed(`${where === 'body' ? 'body' : 'header'} checks`, err),
      });
    }
    this.#filter = filtered ? ctx.contentFilter : undefined;
    this.#headers = new PrimaryHeaders({
      queueId: state.queueId,
      log: ctx.log,
      headerSizeLimit: params.headerSizeLimit,
      dropHeaders: ctx.dropHeaders,
      rewriting: ctx.headerRewriting,
      localContext: local,
      checks: this.#checks,
      extracting: () => host.env.extract,
      stopped: () => state.stopped,
      write: (data) => this.#pushHeader(this.#out, data),
      countHop: () => this.#countHop(),
      tableFailed: (what, err) => state.tableFailed(what, err),
    });
  }

  /** The empty line after the header block was written. */
  get headersDone(): boolean {
    return this.#headersDone;
  }

  /** Bytes written to the queue file so far. */
  get size(): number {
    return this.#outBytes;
  }

  /** Bytes of the header block (the empty line included), once it is written. */
  get headerSize(): number {
    return this.#headerSize;
  }

  /** The content had a byte above 127. */
  get eightBit(): boolean {
    return this.#scanner.eightBit;
  }

  /**
   * One chunk from the client; a promise, settled when the store (and filter) can take
   * more, only when there is something to wait for.
   */
  push(chunk: Buffer): Promise<void> | undefined {
    const { ctx, state } = this.#h;
    if (state.stopped) return undefined;
    const normalised = this.#scanner.push(chunk);
    const limit = ctx.params.messageSizeLimit;
    if (limit > 0 && this.#scanner.inputBytes > limit) {
      state.fail(
        SIZE,
        `message size ${this.#scanner.inputBytes}+ exceeds messageSizeLimit ${limit}`,
      );
      return undefined;
    }
    const out: Buffer[] = [];
    if (!this.#started) this.#start(out);
    const handled = this.#handle(this.#parser.push(normalised), 0, out);
    return handled ? handled.then(() => this.#emit(out)) : this.#emit(out);
  }

  /** The end of the content: the last line, the header block's end if still open, MIME. */
  async end(): Promise<void> {
    try {
      if (this.#h.state.stopped) return;
      const out: Buffer[] = [];
      if (!this.#started) this.#start(out);
      // Each step waits only when it has something to wait for.
      const tail = this.#scanner.end();
      if (tail.length > 0) {
        const pushed = this.#handle(this.#parser.push(tail), 0, out);
        if (pushed) await pushed;
      }
      const ended = this.#handle(this.#parser.end(), 0, out);
      if (ended) await ended;
      if (this.#mime && !this.#h.state.stopped) {
        for (const b of await this.#mime.end()) this.#push(out, b);
      }
      const emitted = this.#emit(out);
      if (emitted) await emitted;
    } finally {
      this.#h.state.filterRun?.feed.end();
    }
  }

  /**
   * A header to prepend: held until the content starts, then written at the current
   * place in the header block; after the header block it fails the message.
   */
  prepend(header: string): void {
    const { ctx, state } = this.#h;
    const line = header.replace(/[\r\n\0]+/g, ' ').trimEnd();
    if (!/^[\x21-\x39\x3b-\x7e]+:/.test(line)) {
      ctx.log.warning(
        state.queueId,
        `prepend: ignoring "${line.slice(0, 100)}": not a header line`,
      );
      return;
    }
    if (!this.#started) {
      this.#prepends.push(line);
    } else if (!this.#headersDone) {
      if (!state.stopped) {
        const out: Buffer[] = [];
        this.#pushHeader(out, Buffer.from(`${line}\r\n`));
        void this.#emit(out);
      }
    } else {
      state.fail(BAD, `prepend after the header block was written: "${line.slice(0, 100)}"`);
    }
  }

  /** What goes before the first byte of content: Received, then prepended headers. */
  #start(out: Buffer[]): void {
    this.#started = true;
    const { ctx, state, source, env, arrivalTime } = this.#h;
    const { params } = ctx;
    if (this.#filter) {
      state.filterRun = new FilterRun(
        this.#filter,
        {
          queueId: state.queueId,
          sender: env.sender,
          recipients: env.recipients.map((r) => r.address),
          source,
        },
        ctx.log,
        params.headerSizeLimit,
      );
    }
    if (!source.internal) {
      const rcpts = env.recipients;
      const only = rcpts.length === 1 ? rcpts[0] : undefined;
      const input: Mutable<ReceivedHeaderInput> = {
        source,
        myhostname: params.myhostname,
        mailName: params.mailName,
        queueId: state.queueId,
        time: arrivalTime,
      };
      if (only) input.recipient = only.originalAddress;
      if (params.smtpdSaslAuthenticatedHeader && source.authUser !== undefined)
        input.authenticatedSender = source.authUser;
      const received = receivedHeader(input);
      this.#pushHeader(out, Buffer.from(received, 'utf8'));
      this.#countHop();
    }
    for (const line of this.#prepends) this.#pushHeader(out, Buffer.from(`${line}\r\n`, 'utf8'));
    this.#prepends.length = 0;
  }

  /** Handles events from `from` on; a promise only once one of them has to wait. */
  #handle(events: readonly HeaderEvent[], from: number, out: Buffer[]): Promise<void> | undefined {
    for (let i = from; i < events.length; i++) {
      if (this.#h.state.stopped) return undefined;
      const event = events[i]!;
      let pending: Promise<void> | undefined;
      switch (event.kind) {
        case 'header':
          this.#out = out;
          pending = this.#headers.header(event.field);
          break;
        case 'end':
          pending = this.#endOfHeaders(out);
          break;
        case 'body':
          if (this.#mime) pending = this.#mimeBody(event.data, out);
          else this.#push(out, event.data);
          break;
      }
      if (pending) return pending.then(() => this.#handle(events, i + 1, out));
    }
    return undefined;
  }

  async #mimeBody(data: Buffer, out: Buffer[]): Promise<void> {
    for (const b of await this.#mime!.push(data)) this.#push(out, b);
  }

  /** The end of the header block: missing headers, the empty line; waits only for a sender mapping. */
  #endOfHeaders(out: Buffer[]): Promise<void> | undefined {
    const { ctx, state, env } = this.#h;
    const { rewriter } = ctx;
    if (env.extract) {
      for (const address of this.#headers.extractedRecipients()) this.#h.addRecipient(address);
    }
    if (this.#addHeaders) {
      let mailerDaemon = 'MAILER-DAEMON';
      try {
        mailerDaemon = rewriter.rewrite(mailerDaemon);
      } catch {
        // Keep the bare name: the header is still valid without a domain.
      }
      const sender = env.mappedSenderNow();
      if (sender instanceof Promise) {
        return sender.then(
          (mapped) => this.#headersEnd(out, mailerDaemon, mapped),
          (err: unknown) => state.tableFailed('sender address mapping', err),
        );
      }
      this.#headersEnd(out, mailerDaemon, sender);
      return undefined;
    }
    this.#closeHeaders(out);
    return undefined;
  }

  /** Missing headers added (Postfix's always_add_missing_headers), then the empty line. */
  #headersEnd(out: Buffer[], mailerDaemon: string, sender: Address | undefined): void {
    const { ctx, state, env, arrivalTime } = this.#h;
    const { params } = ctx;
    const missing = missingHeaders({
      seen: this.#headers.seen,
      sender,
      mailerDaemon,
      queueId: state.queueId,
      myhostname: params.myhostname,
      time: arrivalTime,
      undisclosedRecipientsHeader: params.undisclosedRecipientsHeader,
      ...(env.senderParams.fullName ? { fullName: env.senderParams.fullName } : {}),
    });
    for (const h of missing.headers) this.#pushHeader(out, Buffer.from(h, 'utf8'));
    if (missing.messageId !== undefined)
      ctx.log.info(state.queueId, `message-id=${missing.messageId}`);
    this.#closeHeaders(out);
  }

  /** The empty line that ends the header block; MIME tracking of the body if checks want it. */
  #closeHeaders(out: Buffer[]): void {
    const { ctx, state } = this.#h;
    const { params } = ctx;
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
          ctx.log.warning(
            state.queueId,
            `MIME nesting exceeds mimeNestingLimit ${params.mimeNestingLimit}: deeper parts are not inspected`,
          ),
      });
      this.#mime.start(this.#headers.contentType);
    }
  }

  #countHop(): void {
    this.#hops++;
    const limit = this.#h.ctx.params.hopcountLimit;
    if (this.#hops >= limit) {
      this.#h.state.fail(
        HOPS,
        `too many hops: ${this.#hops} Received headers (hopcountLimit ${limit})`,
      );
    }
  }

  /** A header-block piece: kept for a content filter's rewrite, then written. */
  #pushHeader(out: Buffer[], data: Buffer): void {
    this.#h.state.filterRun?.keepHeader(data);
    this.#push(out, data);
  }

  #push(out: Buffer[], data: Buffer): void {
    if (data.length === 0) return;
    out.push(data);
    this.#outBytes += data.length;
  }

  /**
   * Writes to the store (and the content filter); a promise only when either asks to
   * wait. Without a filter nothing but the store's drain is waited for.
   */
  #emit(out: readonly Buffer[]): Promise<void> | undefined {
    const { state, writer } = this.#h;
    if (state.filterRun) return this.#emitFiltered(out, state.filterRun);
    const stream = writer.content;
    let ok = true;
    for (const data of out) {
      if (!this.#writable(data)) return undefined;
      if (data.length > 0) ok = stream.write(data);
    }
    return !ok && !state.stopped ? waitForDrain(stream) : undefined;
  }

  async #emitFiltered(out: readonly Buffer[], filterRun: FilterRun): Promise<void> {
    const { state, writer } = this.#h;
    const stream = writer.content;
    let ok = true;
    for (const data of out) {
      if (!this.#writable(data)) return;
      if (data.length === 0) continue;
      ok = stream.write(data);
      await filterRun.feed.push(data);
    }
    if (!ok && !state.stopped) await waitForDrain(stream);
  }

  /** Whether `data` may go on to the store: false once the message stopped or the stream closed. */
  #writable(data: Buffer): boolean {
    const { state, writer } = this.#h;
    if (state.stopped) return false;
    if (data.length === 0) return true;
    if (writer.content.destroyed || writer.content.writableEnded) {
      state.writeFailed(new Error('the queue file stream closed early'));
      return false;
    }
    return true;
  }

  /** What a check's action does to this message (check-effects.ts). */
  #effects(): CheckEffectTarget {
    const { ctx, state, source, env } = this.#h;
    return {
      queueId: state.queueId,
      source,
      env,
      log: ctx.log,
      rewrite: (a) => this.#h.rewrite(a),
      reject: (reply) => state.reject(reply),
      discard: () => state.stop(),
    };
  }
}

/** Whether internal mail from `source` is in `internalMailFilterClasses`. */
function internalClassAllowed(params: CleanupContext['params'], source: SubmissionSource): boolean {
  const cls = source.component === 'bounce' ? 'bounce' : 'notify';
  return params.internalMailFilterClasses.some((c) => c.trim().toLowerCase() === cls);
}
