/**
 * Writes a message's queue file again with new lines at the top of its header block:
 * the content filter's added headers, a DKIM-Signature, Authentication-Results.
 *
 * Postfix counterpart: cleanup_milter.c, which inserts and deletes header records of a
 * queue file (Postfix's record format can point to an insertion; Postern's stores hold
 * a byte stream, so the file is copied).
 *
 * How: the old message is read back as a stream (MessageWriter.openWritten) before
 * the old writer is aborted (the stream stays readable), then a new writer under the
 * same queue ID takes `head` and the content. The leading `contentHeaderBytes` of the
 * content are its header block: header fields there that `dropHeader` matches (whole
 * logical fields, folded lines included) are left out. The content is scanned again
 * (line ends, 8-bit) and held to `messageSizeLimit`.
 *
 * Does not: commit — the caller commits the returned writer; on a failure the new
 * writer is aborted and the caller fails the transaction.
 *
 * SECURITY: memory is one chunk plus one logical header field while `dropHeader` is
 * applied.
 *
 * @module
 */

import { isAscii } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { MessageWriter, QueueStore } from '../queue/types.js';
import type { QueueId } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { ContentScanner } from './content-scanner.js';
import { waitForDrain } from './stream-util.js';

/** What to write, and where. */
export interface QueueFileRewrite {
  readonly store: QueueStore;
  readonly queueId: QueueId;
  /** The writer holding the old content; aborted before the new one is created. */
  readonly old: MessageWriter;
  /** Written first: header lines (each with CRLF). */
  readonly head: readonly Buffer[];
  /** Then this stream (opened before `old` is aborted). */
  readonly content: Readable;
  /** How many leading bytes of `content` are its header block (0: it is a body). */
  readonly contentHeaderBytes: number;
  /** A header field of the content's header block to leave out (its full text, unfolded lines joined). */
  readonly dropHeader?: (field: string) => boolean;
  readonly messageSizeLimit: number;
  readonly replaceStrayCr: boolean;
}

/** A queue file written again, to commit instead of the old one. */
export interface RewrittenQueueFile {
  readonly kind: 'rewritten';
  readonly writer: MessageWriter;
  readonly size: number;
  readonly headerSize: number;
  readonly eightBit: boolean;
}

/** The new queue file, or why there is none. */
export type RewriteResult =
  | RewrittenQueueFile
  | { readonly kind: 'too-big' }
  | { readonly kind: 'failed'; readonly reason: string };

/** Copies the message as `r` says into a new writer under the same queue ID. */
export async function rewriteQueueFile(r: QueueFileRewrite): Promise<RewriteResult> {
  let writer: MessageWriter;
  try {
    await r.old.abort();
    writer = await r.store.create(r.queueId);
  } catch (err) {
    r.content.destroy();
    return { kind: 'failed', reason: `cannot write the queue file again: ${errorMessage(err)}` };
  }
  let failed: Error | undefined;
  writer.content.on('error', (err: Error) => {
    failed = err;
  });
  const scanner = new ContentScanner({ replaceStrayCr: r.replaceStrayCr });
  let size = 0;
  let headerSize = 0;
  const write = async (data: Buffer): Promise<void> => {
    if (data.length === 0) return;
    size += data.length;
    if (!writer.content.write(data)) await waitForDrain(writer.content);
  };
  try {
    for (const h of r.head) await write(h);
    headerSize = size;
    const fields = new HeaderFilter(r.contentHeaderBytes, r.dropHeader);
    for await (const chunk of r.content) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      const { header, body } = fields.push(b);
      for (const h of header) await write(h);
      headerSize += fields.takeHeaderBytes();
      await write(scanner.push(body));
      if (failed) throw failed;
      if (r.messageSizeLimit > 0 && size > r.messageSizeLimit) {
        r.content.destroy();
        await writer.abort().catch(() => undefined);
        return { kind: 'too-big' };
      }
    }
    for (const h of fields.end()) await write(h);
    headerSize += fields.takeHeaderBytes();
    await write(scanner.end());
    if (failed) throw failed;
    const eightBit = scanner.eightBit || r.head.some((h) => !isAscii(h));
    return { kind: 'rewritten', writer, size, headerSize, eightBit };
  } catch (err) {
    r.content.destroy();
    await writer.abort().catch(() => undefined);
    return { kind: 'failed', reason: `writing the new content failed: ${errorMessage(err)}` };
  }
}

/**
 * Splits the first `bytes` bytes of a stream (a header block, CRLF lines) into whole
 * header fields, leaving out those `drop` matches; the rest passes as body.
 */
class HeaderFilter {
  #left: number;
  readonly #drop: ((field: string) => boolean) | undefined;
  #line: Buffer[] = [];
  #field: Buffer[] = [];
  #kept = 0;

  constructor(bytes: number, drop: ((field: string) => boolean) | undefined) {
    this.#left = bytes;
    this.#drop = drop;
  }

  /** Header bytes kept since the last call. */
  takeHeaderBytes(): number {
    const n = this.#kept;
    this.#kept = 0;
    return n;
  }

  push(chunk: Buffer): { header: Buffer[]; body: Buffer } {
    if (this.#left === 0) return { header: [], body: chunk };
    const take = Math.min(this.#left, chunk.length);
    this.#left -= take;
    const header: Buffer[] = [];
    if (!this.#drop) {
      header.push(chunk.subarray(0, take));
      this.#kept += take;
    } else {
      let start = 0;
      const part = chunk.subarray(0, take);
      for (;;) {
        const nl = part.indexOf(0x0a, start);
        if (nl < 0) break;
        this.#line.push(part.subarray(start, nl + 1));
        this.#onLine(Buffer.concat(this.#line), header);
        this.#line = [];
        start = nl + 1;
      }
      if (start < part.length) this.#line.push(part.subarray(start));
      if (this.#left === 0) header.push(...this.end());
    }
    return { header, body: chunk.subarray(take) };
  }

  /** What is still held (a header block that did not end in a line end). */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.#line.length) this.#onLine(Buffer.concat(this.#line), out);
    this.#line = [];
    this.#flushField(out);
    return out;
  }

  #onLine(line: Buffer, out: Buffer[]): void {
    const first = line[0];
    // A folded line continues the field; anything else starts a new one (or ends the block).
    if ((first === 0x20 || first === 0x09) && this.#field.length) {
      this.#field.push(line);
      return;
    }
    this.#flushField(out);
    this.#field.push(line);
  }

  #flushField(out: Buffer[]): void {
    if (this.#field.length === 0) return;
    const field = Buffer.concat(this.#field);
    this.#field = [];
    if (this.#drop?.(field.toString('latin1').replace(/\r?\n/g, ''))) return;
    out.push(field);
    this.#kept += field.length;
  }
}
