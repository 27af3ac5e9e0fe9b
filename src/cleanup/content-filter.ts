/**
 * The content-filter hook: an application function that sees each message on its way
 * into the queue and decides — accept, reject, defer, discard or hold — optionally
 * adding headers or replacing the body. The building block of a custom gateway
 * (virus scanner, DLP, archive, spam score).
 *
 * Postfix counterpart: a before-queue content filter (SMTPD_PROXY_README) or a Milter
 * at end-of-message (MILTER_README): the client waits for the verdict, so a rejection
 * is a real SMTP reply rather than a bounce.
 *
 * Ownership and call order (one call per message):
 * 1. Cleanup calls `filter(envelope, message)` when the content starts. `message` is a
 *    Readable of the complete message as it will be queued — after header processing
 *    (Received, header_checks edits, dropped and rewritten headers, added missing
 *    headers) — CRLF line ends. The envelope is the one known at that moment
 *    (`recipients` after trivial-rewrite, before virtual alias expansion).
 * 2. The hook owns `message` and must read it to the end (or destroy it). The same
 *    bytes go to the queue store at the same time: each chunk is written to the store
 *    and pushed to `message`, and the next chunk is taken from the client only when
 *    both have taken the last one. A slow hook therefore slows the client (its socket
 *    pauses) instead of buffering: memory stays one chunk per message.
 * 3. It resolves with a Verdict once it has decided — usually after the end of
 *    `message`. If it resolves (or throws) before reading everything, the rest is no
 *    longer fed to it. A thrown error or rejected promise defers the message
 *    (`451 4.3.0`): when in doubt, defer.
 * 4. `commit()` waits for the verdict and then replies:
 *    - `accept`: queued as usual. With `headers`, those lines are added at the end of
 *      the header block; with `body`, that stream replaces the body (everything after
 *      the header block). Either makes Cleanup write the queue file again: the header
 *      block it kept (at most `headerSizeLimit` bytes), the new headers, then the new
 *      body — or, for `headers` alone, the original body read back from the queue
 *      file being written, which needs a store whose MessageWriter can re-read
 *      (`openWritten()`); with a store that cannot, the message is deferred and the
 *      reason logged. Cleanup owns and consumes `body`; size and 8-bit are counted
 *      again and `messageSizeLimit` applies.
 *    - `reject`: the reply is given to the client (5xx, or 4xx for a temporary one).
 *    - `defer`: `451 4.7.1` or the given 4xx reply.
 *    - `discard`: the client gets 250, nothing is queued.
 *    - `hold`: queued into the hold queue.
 * Mail Postern makes itself (bounces, notices) is not filtered unless
 * `internalMailFilterClasses` says so, as with header and body checks.
 *
 * Does not: time the hook out (the receiver's own timeouts apply to the client),
 * retry it, or run several hooks (compose them in one function).
 *
 * SECURITY: the hook sees content from untrusted clients; added header lines are made
 * single lines, and must look like `Name: value` or they are dropped with a warning.
 *
 * @module
 */

import { Readable } from 'node:stream';
import type { SmtpReply } from '../smtp-reply.js';
import type { Address, QueueId, SubmissionSource } from '../types.js';

/**
 * What a content filter is told about the message.
 *
 * @example
 * ```ts
 * const filter: ContentFilter = async (envelope: ContentFilterEnvelope) =>
 *   envelope.recipients.length > 100
 *     ? { action: 'reject', reply: new SmtpReply(550, '5.7.1', 'too many recipients') }
 *     : { action: 'accept' };
 * ```
 */
export interface ContentFilterEnvelope {
  /** The queue ID Cleanup gave the message. */
  readonly queueId: QueueId;
  /** The sender after trivial-rewrite, if given yet ('' = null sender). */
  readonly sender: Address | undefined;
  /** Recipients given so far, after trivial-rewrite. */
  readonly recipients: readonly Address[];
  /** Where the message came from (component, protocol, client). */
  readonly source: SubmissionSource;
}

/**
 * A content filter's decision.
 *
 * @example
 * ```ts
 * const verdict: ContentFilterVerdict = { action: 'accept', headers: ['X-Scanned: clean'] };
 * ```
 */
export type ContentFilterVerdict =
  | {
      readonly action: 'accept';
      /** Header lines (`X-Scanned: clean`, no CRLF) to add at the end of the header block. */
      readonly headers?: readonly string[];
      /** A replacement body (what follows the header block), consumed by Cleanup. */
      readonly body?: Readable;
    }
  | { readonly action: 'reject'; readonly reply: SmtpReply }
  | { readonly action: 'defer'; readonly reply?: SmtpReply }
  | { readonly action: 'discard'; readonly reason?: string }
  | { readonly action: 'hold'; readonly reason?: string };

/**
 * The hook. See the module documentation for ownership and call order.
 *
 * @example
 * ```ts
 * const filter: ContentFilter = async (_envelope, message) => {
 *   let bytes = 0;
 *   for await (const chunk of message) bytes += (chunk as Buffer).length;
 *   return bytes > 10_000_000 ? { action: 'hold', reason: 'large' } : { action: 'accept' };
 * };
 * const mta = new Mta({}, { contentFilter: filter });
 * ```
 */
export type ContentFilter = (
  envelope: ContentFilterEnvelope,
  message: Readable,
) => Promise<ContentFilterVerdict>;

/**
 * The feeding side of the tee: Cleanup pushes each chunk it writes to the store and
 * waits until the hook's stream wants more.
 */
export class FilterFeed {
  readonly stream: Readable;
  #wanting: (() => void) | undefined;
  #closed = false;

  constructor(highWaterMark = 64 * 1024) {
    this.stream = new Readable({
      highWaterMark,
      read: () => {
        const w = this.#wanting;
        this.#wanting = undefined;
        w?.();
      },
      destroy: (err, callback) => {
        this.#closed = true;
        const w = this.#wanting;
        this.#wanting = undefined;
        w?.();
        callback(err);
      },
    });
    // The hook may destroy its stream with an error; that is its business, not ours.
    this.stream.on('error', () => undefined);
  }

  /** Whether the hook no longer takes data (it finished or destroyed the stream). */
  get closed(): boolean {
    return this.#closed || this.stream.destroyed;
  }

  /** Pushes one chunk; resolves when the reader wants more (or stopped reading). */
  async push(chunk: Buffer): Promise<void> {
    if (this.closed || chunk.length === 0) return;
    if (this.stream.push(chunk)) return;
    await new Promise<void>((resolve) => {
      this.#wanting = resolve;
    });
  }

  /** Ends the message. */
  end(): void {
    if (this.closed) return;
    this.stream.push(null);
  }

  /** Stops feeding (the verdict came, or the transaction failed). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#wanting;
    this.#wanting = undefined;
    w?.();
    if (!this.stream.readableEnded) this.stream.destroy();
  }
}
