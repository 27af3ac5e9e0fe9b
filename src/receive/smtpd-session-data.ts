/**
 * Message content for an SMTP session: DATA (dot-stuffed, ended by CRLF.CRLF) and
 * BDAT chunks (RFC 3030 CHUNKING, counted bytes), streamed into the Submission
 * transaction chunk by chunk with backpressure.
 *
 * Postfix counterpart: smtpd.c receive_data() and Postfix 3.4's BDAT support
 * (smtpd_chat/ smtpd.c bdat_cmd): like Postfix, Postern does not offer BINARYMIME, so
 * BDAT content stays line-based — a bare LF becomes CRLF — and goes through Cleanup
 * exactly as DATA content does.
 *
 * Does not: commit (the session does), dot-unstuff BDAT (there is no stuffing in BDAT).
 *
 * SECURITY: the size is counted on what arrives and checked against
 * `message_size_limit` while streaming; once over, content is read and dropped so
 * that the session stays in sync, and nothing more reaches the queue. A BDAT chunk is
 * consumed exactly — never more, never less — whatever the session decides about it,
 * so a chunk's bytes can never be read as commands.
 *
 * STANDARDS: RFC 5321 section 4.1.1.4 (DATA), RFC 3030 (CHUNKING), RFC 1870 section 6.
 *
 * @module
 */

import type { Writable } from 'node:stream';
import { DataReader } from './smtpd-data-reader.js';
import type { BareNewlinePolicy } from './smtpd-parameters.js';
import type { SessionIo } from './smtpd-session-io.js';

/** How a DATA phase ended. */
export interface DataOutcome {
  readonly end: 'ok' | 'lost' | 'timeout';
  readonly size: number;
  readonly tooBig: boolean;
  readonly bareLf: boolean;
}

/** Streams DATA content into `content` (or drops it when undefined). */
export async function receiveData(
  io: SessionIo,
  content: Writable | undefined,
  policy: BareNewlinePolicy,
  limit: number,
): Promise<DataOutcome> {
  const reader = new DataReader(policy);
  const pieces: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  for (;;) {
    const chunk = io.input.takeChunk();
    if (chunk === undefined) {
      if (io.eof) return { end: 'lost', size, tooBig, bareLf: reader.sawBareLf };
      const why = await io.waitInput();
      if (why === 'timeout') return { end: 'timeout', size, tooBig, bareLf: reader.sawBareLf };
      continue;
    }
    pieces.length = 0;
    const end = reader.feed(chunk, 0, pieces);
    let needDrain = false;
    if (pieces.length > 0) {
      let n = 0;
      for (const p of pieces) n += p.length;
      size += n;
      if (!tooBig && limit > 0 && size > limit) tooBig = true;
      if (!tooBig && content) {
        const buf = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, n);
        needDrain = !content.write(buf);
      }
    }
    if (end >= 0) {
      if (end < chunk.length) io.input.unshift(chunk.subarray(end));
      return { end: 'ok', size, tooBig, bareLf: reader.sawBareLf };
    }
    if (needDrain && content && !content.destroyed) {
      await io.waitDrain(content);
      if (io.closed) return { end: 'lost', size, tooBig, bareLf: reader.sawBareLf };
    }
  }
}

/** State of one BDAT transaction across its chunks. */
export class BdatState {
  /** Bytes of content (after bare-LF normalisation) so far. */
  size = 0;
  tooBig = false;
  /** The last byte of the previous chunk was a CR. */
  #lastCr = false;
  sawBareLf = false;

  /** Copies `chunk` with every bare LF turned into CRLF (a CRLF may straddle chunks). */
  normalize(chunk: Buffer): Buffer {
    let from = 0;
    let out: Buffer[] | undefined;
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) {
      const prevCr = i > 0 ? chunk[i - 1] === 0x0d : this.#lastCr;
      if (prevCr) continue;
      this.sawBareLf = true;
      out ??= [];
      out.push(chunk.subarray(from, i), CRLF);
      from = i + 1;
    }
    if (chunk.length > 0) this.#lastCr = chunk[chunk.length - 1] === 0x0d;
    if (!out) return chunk;
    out.push(chunk.subarray(from));
    return Buffer.concat(out);
  }
}

const CRLF = Buffer.from('\r\n');

/**
 * Reads exactly `count` bytes of one BDAT chunk, writing them (normalised) to
 * `content` unless it is undefined or the size limit was passed.
 */
export async function receiveBdatChunk(
  io: SessionIo,
  count: number,
  content: Writable | undefined,
  state: BdatState,
  limit: number,
): Promise<'ok' | 'lost' | 'timeout'> {
  let left = count;
  while (left > 0) {
    let chunk = io.input.takeChunk();
    if (chunk === undefined) {
      if (io.eof) return 'lost';
      const why = await io.waitInput();
      if (why === 'timeout') return 'timeout';
      continue;
    }
    if (chunk.length > left) {
      io.input.unshift(chunk.subarray(left));
      chunk = chunk.subarray(0, left);
    }
    left -= chunk.length;
    const piece = state.normalize(chunk);
    state.size += piece.length;
    if (!state.tooBig && limit > 0 && state.size > limit) state.tooBig = true;
    if (!state.tooBig && content && !content.destroyed) {
      if (!content.write(piece)) {
        await io.waitDrain(content);
        if (io.closed) return 'lost';
      }
    }
  }
  return 'ok';
}
