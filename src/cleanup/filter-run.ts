/**
 * FilterRun: one message's pass through the content-filter hook — the tee that feeds
 * it, the header block kept for a rewrite, and turning its verdict into what the
 * transaction does (reply, discard, hold, or a rewritten queue file).
 *
 * Postfix counterpart: the end-of-message stage of a before-queue filter or Milter
 * (smtpd_proxy.c, cleanup_milter.c): the client waits for the verdict.
 * See content-filter.ts for the hook's contract (ownership, call order, verdicts).
 *
 * Does not: decide anything on its own — a hook that throws or returns nothing
 * defers the message (when in doubt, defer).
 *
 * SECURITY: added header lines are made single lines and must look like `Name:
 * value`; the rewritten content is scanned again (line ends, 8-bit) and held to
 * `messageSizeLimit`; memory is the kept header block (at most `headerSizeLimit`)
 * plus one chunk.
 *
 * @module
 */

import type { ComponentLogger } from '../log.js';
import type { MessageWriter, QueueStore } from '../queue/types.js';
import { SmtpReply } from '../smtp-reply.js';
import type { QueueId } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import {
  type ContentFilter,
  type ContentFilterEnvelope,
  type ContentFilterVerdict,
  FilterFeed,
} from './content-filter.js';
import { type RewrittenQueueFile, rewriteQueueFile } from './queue-file-rewrite.js';
import { skipBytes } from './stream-util.js';

const CRLF = Buffer.from('\r\n');

/** What the transaction must do after the verdict. */
export type FilterOutcome =
  | { readonly kind: 'queue' }
  | { readonly kind: 'reply'; readonly reply: SmtpReply }
  | { readonly kind: 'discard'; readonly reason?: string }
  | { readonly kind: 'hold'; readonly reason?: string }
  | RewrittenQueueFile;

/** The queue file as it stands when the verdict arrives. */
export interface FilterIo {
  readonly writer: MessageWriter;
  readonly store: QueueStore;
  readonly headerSize: number;
  readonly messageSizeLimit: number;
  readonly replaceStrayCr: boolean;
}

function failure(): SmtpReply {
  return new SmtpReply(451, '4.3.0', 'Error: content filter failure, try again later');
}

export class FilterRun {
  readonly feed: FilterFeed;
  readonly #verdict: Promise<ContentFilterVerdict>;
  readonly #log: ComponentLogger;
  readonly #queueId: QueueId;
  readonly #keepLimit: number;
  #kept: Buffer[] | undefined = [];
  #keptSize = 0;

  /** Starts the hook now; it reads `feed.stream` while the transaction pushes into it. */
  constructor(
    filter: ContentFilter,
    envelope: ContentFilterEnvelope,
    log: ComponentLogger,
    headerSizeLimit: number,
  ) {
    this.feed = new FilterFeed();
    this.#log = log;
    this.#queueId = envelope.queueId;
    this.#keepLimit = headerSizeLimit;
    const feed = this.feed;
    const verdict = (async () => filter(envelope, feed.stream))();
    // The hook may decide before reading everything: stop feeding it then.
    verdict.then(
      () => feed.close(),
      () => feed.close(),
    );
    this.#verdict = verdict;
  }

  /** Keeps a piece of the header block (dropped past the limit: no rewrite then). */
  keepHeader(data: Buffer): void {
    if (!this.#kept) return;
    this.#keptSize += data.length;
    if (this.#keptSize > this.#keepLimit) this.#kept = undefined;
    // A copy: header bytes may be views of the client's chunks, kept here until the commit.
    else this.#kept.push(Buffer.from(data));
  }

  /** Waits for the verdict and applies it. */
  async settle(io: FilterIo): Promise<FilterOutcome> {
    let verdict: ContentFilterVerdict;
    try {
      verdict = await this.#verdict;
    } catch (err) {
      this.#log.warning(this.#queueId, `content filter failed: ${errorMessage(err)}`);
      return { kind: 'reply', reply: failure() };
    }
    switch (verdict?.action) {
      case 'reject': {
        const r = verdict.reply.positive
          ? new SmtpReply(550, '5.7.1', verdict.reply.text)
          : verdict.reply;
        this.#log.info(this.#queueId, `reject: content filter: ${r.toString()}`);
        return { kind: 'reply', reply: r };
      }
      case 'defer': {
        const r = verdict.reply?.transient
          ? verdict.reply
          : new SmtpReply(
              451,
              '4.7.1',
              verdict.reply?.text ?? 'Error: content filter deferred the message',
            );
        this.#log.info(this.#queueId, `defer: content filter: ${r.toString()}`);
        return { kind: 'reply', reply: r };
      }
      case 'discard':
        return verdict.reason !== undefined
          ? { kind: 'discard', reason: verdict.reason }
          : { kind: 'discard' };
      case 'hold':
        return verdict.reason !== undefined
          ? { kind: 'hold', reason: verdict.reason }
          : { kind: 'hold' };
      case 'accept':
        if (verdict.headers?.length || verdict.body) return this.#rewrite(verdict, io);
        return { kind: 'queue' };
      default:
        this.#log.warning(this.#queueId, 'content filter returned no verdict: deferring');
        return { kind: 'reply', reply: failure() };
    }
  }

  /** Writes the queue file again with the filter's headers and/or body. */
  async #rewrite(
    verdict: Extract<ContentFilterVerdict, { action: 'accept' }>,
    io: FilterIo,
  ): Promise<FilterOutcome> {
    const fail = (reason: string): FilterOutcome => {
      this.#log.warning(this.#queueId, `content filter result not applied: ${reason}`);
      verdict.body?.destroy();
      return { kind: 'reply', reply: failure() };
    };
    const kept = this.#kept;
    if (!kept || kept.length === 0) return fail('the header block is larger than headerSizeLimit');
    let body = verdict.body;
    if (!body) {
      // A store whose writer can re-read what it holds (not part of the QueueStore
      // contract yet) lets `headers` alone keep the original body.
      if (!io.writer.openWritten) {
        return fail(
          'this queue store cannot re-read a message being written; give a replacement body',
        );
      }
      try {
        body = skipBytes(await io.writer.openWritten(), io.headerSize);
      } catch (err) {
        return fail(`cannot read the message back: ${errorMessage(err)}`);
      }
    }
    const headers = kept.slice(0, -1); // without the empty line
    for (const h of verdict.headers ?? []) {
      const line = h.replace(/[\r\n\0]+/g, ' ').trimEnd();
      if (!/^[\x21-\x39\x3b-\x7e]+:/.test(line)) {
        this.#log.warning(this.#queueId, `content filter header ignored: "${line.slice(0, 100)}"`);
        continue;
      }
      headers.push(Buffer.from(`${line}\r\n`, 'utf8'));
    }
    headers.push(CRLF);
    const result = await rewriteQueueFile({
      store: io.store,
      queueId: this.#queueId,
      old: io.writer,
      head: headers,
      content: body,
      contentHeaderBytes: 0,
      messageSizeLimit: io.messageSizeLimit,
      replaceStrayCr: io.replaceStrayCr,
    });
    switch (result.kind) {
      case 'rewritten':
        return result;
      case 'too-big':
        this.#log.info(
          this.#queueId,
          `reject: content filter body exceeds messageSizeLimit ${io.messageSizeLimit}`,
        );
        return { kind: 'reply', reply: new SmtpReply(552, '5.3.4', 'Error: message file too big') };
      case 'failed':
        return fail(result.reason);
    }
  }
}
