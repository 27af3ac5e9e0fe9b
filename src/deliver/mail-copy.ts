/**
 * Message copying for mailboxes and commands: the queued content (CRLF, dot-unstuffed)
 * turned into what a mailbox file or a command expects, plus the Delivered-To loop scan.
 *
 * Postfix counterpart: global/mail_copy.c (From_ line, prepended Return-Path,
 * X-Original-To and Delivered-To, `>From ` quoting, dot-stuffing, line-end conversion,
 * the trailing blank line of an mbox) and global/delivered_hdr.c (which Delivered-To
 * headers a message already carries).
 *
 * Lines are processed as they stream: memory is bounded by one chunk plus at most
 * `LINE_PIECE` bytes of a line start. A line longer than that passes through in pieces
 * (only a line's start is ever quoted). A last line without a line end gets one.
 *
 * Does not: write anything (maildir.ts, mbox.ts, command-delivery.ts do) or decide
 * which headers to prepend (the agents do, through `deliveryHeaders`).
 *
 * SECURITY: header values built from addresses are stripped of control characters so
 * an address cannot add a header line.
 *
 * STANDARDS: RFC 5322 section 2.2 (header fields, folding), the mbox "From_" convention
 * (RFC 4155).
 *
 * @module
 */

import type { Readable } from 'node:stream';
import { formatAddress } from '../address/address.js';
import { PosternError } from '../errors.js';
import type { Address } from '../types.js';
import { errorMessage } from '../util/error-message.js';

/** Most header bytes scanned for Delivered-To (bounded memory). */
const LOOP_SCAN_LIMIT = 1024 * 1024;

/** Longest line start held back while deciding on quoting. */
const LINE_PIECE = 8192;

/** Thrown when the content source fails (as opposed to the mailbox or the command). */
export class ContentReadError extends PosternError {
  constructor(cause: unknown) {
    super('POSTERN_ERR_CONTENT_READ', `cannot read the queued message: ${errorMessage(cause)}`, {
      cause,
    });
    this.name = 'ContentReadError';
  }
}

/** How to copy. */
export interface CopyOptions {
  /** Bytes written first, already in the target form (From_ line, prepended headers). */
  readonly head?: Buffer;
  /** Line end written. @default '\r\n' */
  readonly eol?: '\n' | '\r\n';
  /** Prefix `>` to lines that start with `From ` (mbox, pipe flag `>`). */
  readonly quoteFrom?: boolean;
  /** Prefix `.` to lines that start with `.` (pipe flag `.`). */
  readonly dotStuff?: boolean;
  /** Append an empty line (mbox, pipe flag `B`). */
  readonly blankLine?: boolean;
}

/** A value made safe for one header line: no control characters. */
export function headerValue(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, '?');
}

/** Which of local(8)'s headers to prepend. */
export interface DeliveryHeaderOptions {
  readonly returnPath?: Address;
  readonly originalTo?: Address;
  readonly deliveredTo?: Address;
  /** @default '\r\n' */
  readonly eol?: '\n' | '\r\n';
}

/** Return-Path, X-Original-To, Delivered-To in Postfix's order (mail_copy.c). */
export function deliveryHeaders(options: DeliveryHeaderOptions): string {
  const eol = options.eol ?? '\r\n';
  let out = '';
  if (options.returnPath !== undefined)
    out += `Return-Path: <${headerValue(formatAddress(options.returnPath))}>${eol}`;
  if (options.originalTo !== undefined)
    out += `X-Original-To: ${headerValue(formatAddress(options.originalTo))}${eol}`;
  if (options.deliveredTo !== undefined)
    out += `Delivered-To: ${headerValue(formatAddress(options.deliveredTo).toLowerCase())}${eol}`;
  return out;
}

/** Reads `content` as Buffers, wrapping read failures in ContentReadError. */
export async function* contentChunks(content: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  const iterator = content[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<unknown>;
    try {
      next = await iterator.next();
    } catch (err) {
      throw new ContentReadError(err);
    }
    if (next.done) return;
    const v = next.value;
    yield Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'latin1');
  }
}

/**
 * The content transformed per `options`: CRLF or LF input lines are written with
 * `eol`, quoted and stuffed as asked, after `head`, with an optional blank line after.
 */
export async function* copyMessage(
  content: AsyncIterable<unknown>,
  options: CopyOptions = {},
): AsyncGenerator<Buffer> {
  const eol = Buffer.from(options.eol ?? '\r\n', 'latin1');
  if (options.head && options.head.length > 0) yield options.head;
  // `start` holds the beginning of the current line while its first bytes decide quoting.
  let start: Buffer = Buffer.alloc(0);
  let atLineStart = true;
  let heldCr = false;
  const decidePrefix = (line: Buffer): Buffer | undefined => {
    if (options.quoteFrom && line.subarray(0, 5).toString('latin1') === 'From ')
      return Buffer.from('>');
    if (options.dotStuff && line[0] === 0x2e) return Buffer.from('.');
    return undefined;
  };
  const needMore = (line: Buffer): boolean =>
    line.length < 5 &&
    (options.quoteFrom === true || (options.dotStuff === true && line.length === 0));

  for await (const chunk of contentChunks(content)) {
    const out: Buffer[] = [];
    let pos = 0;
    if (heldCr) {
      // A CR at the end of the last chunk: a line end if this chunk starts with LF.
      heldCr = false;
      if (chunk[0] !== 0x0a) {
        if (atLineStart) start = Buffer.concat([start, Buffer.from('\r')]);
        else out.push(Buffer.from('\r'));
      }
    }
    while (pos < chunk.length) {
      const nl = chunk.indexOf(0x0a, pos);
      const end = nl < 0 ? chunk.length : nl;
      let body = chunk.subarray(pos, end);
      if (nl < 0 && body[body.length - 1] === 0x0d) {
        heldCr = true;
        body = body.subarray(0, body.length - 1);
      } else if (nl >= 0 && body[body.length - 1] === 0x0d) {
        body = body.subarray(0, body.length - 1);
      }
      if (atLineStart) {
        const line = start.length > 0 ? Buffer.concat([start, body]) : body;
        if (nl < 0 && needMore(line) && line.length < LINE_PIECE) {
          start = Buffer.from(line);
          break;
        }
        start = Buffer.alloc(0);
        const prefix = decidePrefix(line);
        if (prefix) out.push(prefix);
        out.push(line);
      } else {
        out.push(body);
      }
      if (nl >= 0) {
        out.push(eol);
        atLineStart = true;
        pos = nl + 1;
      } else {
        atLineStart = false;
        pos = chunk.length;
      }
    }
    if (out.length > 0) yield Buffer.concat(out);
  }
  const tail: Buffer[] = [];
  if (start.length > 0) {
    const prefix = decidePrefix(start);
    if (prefix) tail.push(prefix);
    tail.push(start);
  }
  if (heldCr && !atLineStart) tail.push(Buffer.from('\r'));
  // A message that does not end in a line end gets one.
  if (start.length > 0 || !atLineStart) tail.push(eol);
  if (options.blankLine) tail.push(eol);
  if (tail.length > 0) yield Buffer.concat(tail);
}

/**
 * The Delivered-To values in the header block of `content`, lower-cased (ASCII only,
 * latin1 view of the bytes), at most the first 1 MiB of header (delivered_hdr.c).
 */
export async function deliveredToSet(content: Readable): Promise<Set<string>> {
  const found = new Set<string>();
  let pending = '';
  let current = '';
  let scanned = 0;
  const finish = (): void => {
    const colon = current.indexOf(':');
    if (colon > 0 && current.slice(0, colon).trim().toLowerCase() === 'delivered-to') {
      found.add(asciiLower(current.slice(colon + 1).trim()));
    }
    current = '';
  };
  try {
    for await (const chunk of contentChunks(content)) {
      scanned += chunk.length;
      pending += chunk.toString('latin1');
      let from = 0;
      let nl = pending.indexOf('\n');
      while (nl >= 0) {
        const line = pending.slice(from, pending[nl - 1] === '\r' ? nl - 1 : nl);
        from = nl + 1;
        if (line === '') {
          finish();
          return found;
        }
        if (line[0] === ' ' || line[0] === '\t') current += line;
        else {
          finish();
          current = line;
        }
        nl = pending.indexOf('\n', from);
      }
      pending = pending.slice(from);
      if (scanned > LOOP_SCAN_LIMIT) return found;
    }
    finish();
    return found;
  } finally {
    content.destroy();
  }
}

/** The form of `address` that `deliveredToSet` values are compared with. */
export function deliveredToKey(address: Address): string {
  const text = headerValue(formatAddress(address).toLowerCase());
  return asciiLower(Buffer.from(text, 'utf8').toString('latin1'));
}

/** Lower-cases A-Z only, so byte strings compare the same whatever they encode. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}
