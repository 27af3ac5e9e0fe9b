/**
 * The queue file format of FileQueueStore: one file per message holding its content,
 * its record and the updates appended since.
 *
 * Layout (all integers little-endian):
 *
 * ```
 * 0   8  magic "POSTERN1"
 * 8   4  preamble size (40) = offset of the content
 * 12  4  reserved (0)
 * 16  8  content length C
 * 24  4  record length R
 * 28  4  CRC-32 of the record
 * 32  4  CRC-32 of bytes 0..31
 * 36  4  reserved (0)
 * 40     content (C bytes, CRLF, dot-unstuffed)
 * 40+C   record (R bytes of JSON: MessageRecord with every recipient pending)
 * ...    update frames: u32 length L, u32 CRC-32 of the payload, L bytes of JSON
 * ```
 *
 * Update frames carry outcomes (`{"outcomes":[...]}`) and releases
 * (`{"release":{"state":"deferred","dueAt":...}}`). Frames are only appended, so a
 * crash can at worst leave a torn last frame; a reader stops at the first frame that
 * is short or fails its CRC, and the writer appends over it.
 *
 * Postfix counterpart: the queue file records of rec_type.h / record.c, where the
 * envelope and content share one file and recipients are marked done in place.
 * Postern appends instead of rewriting, so a torn write never damages what was there.
 *
 * SECURITY: every byte read is untrusted: lengths are bounded before any allocation,
 * JSON is checked for the fields the store relies on, and any failure is a
 * CorruptMessageError (the store moves the file aside), never a crash.
 *
 * @module
 */

import { crc32 } from 'node:zlib';
import { CorruptMessageError } from '../../errors.js';
import type { QueueId } from '../../types.js';
import { applyOutcomes } from '../lease.js';
import type { MessageRecord, RecipientOutcome, ReleaseTarget } from '../types.js';

export const MAGIC = Buffer.from('POSTERN1', 'latin1');
export const PREAMBLE_SIZE = 40;
/** Frame header: length and CRC. */
const FRAME_HEADER = 8;
/** Largest record or update frame a reader accepts (a hostile length is not allocated). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
/** Largest content a reader accepts. */
export const MAX_CONTENT_BYTES = 2 ** 40;

/** One appended update. */
export type UpdateFrame =
  | { readonly outcomes: readonly RecipientOutcome[] }
  | { readonly release: ReleaseTarget };

/** The preamble for a file with `contentLength` bytes of content and this record. */
export function encodePreamble(contentLength: number, record: Buffer): Buffer {
  const b = Buffer.alloc(PREAMBLE_SIZE);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(PREAMBLE_SIZE, 8);
  b.writeBigUInt64LE(BigInt(contentLength), 16);
  b.writeUInt32LE(record.length, 24);
  b.writeUInt32LE(crc32(record), 28);
  b.writeUInt32LE(crc32(b.subarray(0, 32)), 32);
  return b;
}

/** The record as stored. */
export function encodeRecord(record: MessageRecord): Buffer {
  return Buffer.from(recordText(record), 'utf8');
}

/** The record as stored, as text (its UTF-8 bytes are encodeRecord's). */
export function recordText(record: MessageRecord): string {
  return JSON.stringify(record);
}

/** One update frame, ready to append. */
export function encodeFrame(frame: UpdateFrame): Buffer {
  const payload = Buffer.from(JSON.stringify(frame), 'utf8');
  const b = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  b.writeUInt32LE(payload.length, 0);
  b.writeUInt32LE(crc32(payload), 4);
  payload.copy(b, FRAME_HEADER);
  return b;
}

/** What a preamble says. */
export interface Preamble {
  readonly contentLength: number;
  readonly recordLength: number;
  readonly recordCrc: number;
}

/** Reads a preamble; throws CorruptMessageError if it is not one. */
export function decodePreamble(queueId: QueueId, b: Buffer): Preamble {
  if (b.length < PREAMBLE_SIZE)
    throw new CorruptMessageError(queueId, 'file is shorter than its preamble');
  if (!b.subarray(0, 8).equals(MAGIC))
    throw new CorruptMessageError(queueId, 'bad magic (not a Postern queue file)');
  if (b.readUInt32LE(32) !== crc32(b.subarray(0, 32)))
    throw new CorruptMessageError(queueId, 'preamble checksum mismatch');
  if (b.readUInt32LE(8) !== PREAMBLE_SIZE)
    throw new CorruptMessageError(queueId, 'unknown preamble size');
  const contentLength = b.readBigUInt64LE(16);
  if (contentLength > BigInt(MAX_CONTENT_BYTES))
    throw new CorruptMessageError(queueId, 'content length out of range');
  const recordLength = b.readUInt32LE(24);
  if (recordLength === 0 || recordLength > MAX_RECORD_BYTES)
    throw new CorruptMessageError(queueId, 'record length out of range');
  return { contentLength: Number(contentLength), recordLength, recordCrc: b.readUInt32LE(28) };
}

const RECIPIENT_STATES = new Set(['pending', 'sent', 'bounced']);
const RELEASE_STATES = new Set(['deferred', 'hold', 'corrupt']);
const OUTCOME_STATUSES = new Set(['sent', 'deferred', 'bounced']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and checks a stored record. */
export function decodeRecord(queueId: QueueId, bytes: Buffer, crc: number): MessageRecord {
  if (crc32(bytes) !== crc)
    throw new CorruptMessageError(queueId, 'record checksum mismatch (truncated file?)');
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new CorruptMessageError(queueId, 'record is not valid JSON');
  }
  if (!isObject(value)) throw new CorruptMessageError(queueId, 'record is not an object');
  if (value.formatVersion !== 1) {
    throw new CorruptMessageError(
      queueId,
      `unknown record format version ${String(value.formatVersion).slice(0, 20)}`,
    );
  }
  if (value.queueId !== queueId)
    throw new CorruptMessageError(queueId, 'record names another queue ID');
  if (typeof value.sender !== 'string')
    throw new CorruptMessageError(queueId, 'record has no sender');
  for (const key of ['size', 'headerSize', 'arrivalTime', 'warnTime'] as const) {
    if (typeof value[key] !== 'number')
      throw new CorruptMessageError(queueId, `record has no ${key}`);
  }
  if (!Array.isArray(value.recipients))
    throw new CorruptMessageError(queueId, 'record has no recipients');
  for (const r of value.recipients) {
    if (
      !isObject(r) ||
      typeof r.id !== 'number' ||
      typeof r.address !== 'string' ||
      !RECIPIENT_STATES.has(r.state as string)
    ) {
      throw new CorruptMessageError(queueId, 'record has a malformed recipient');
    }
  }
  return value as unknown as MessageRecord;
}

function checkFrame(queueId: QueueId, value: unknown): UpdateFrame {
  if (isObject(value) && Array.isArray(value.outcomes)) {
    for (const o of value.outcomes) {
      if (!isObject(o) || typeof o.recipientId !== 'number' || !isObject(o.outcome)) {
        throw new CorruptMessageError(queueId, 'malformed outcome update');
      }
      if (!OUTCOME_STATUSES.has(o.outcome.status as string))
        throw new CorruptMessageError(queueId, 'unknown outcome status');
    }
    return value as unknown as UpdateFrame;
  }
  if (
    isObject(value) &&
    isObject(value.release) &&
    RELEASE_STATES.has(value.release.state as string)
  ) {
    if (value.release.state === 'deferred' && typeof value.release.dueAt !== 'number') {
      throw new CorruptMessageError(queueId, 'deferred update without a due time');
    }
    return value as unknown as UpdateFrame;
  }
  throw new CorruptMessageError(queueId, 'unknown update');
}

/** A queue file's record with every update applied. */
export interface ParsedTail {
  readonly record: MessageRecord;
  /** Offset just past the last valid frame: where the next one goes. */
  readonly appendOffset: number;
  /** Bytes after `appendOffset` (a torn frame). */
  readonly tornBytes: number;
  /** The due time of the last release to deferred, if any. */
  readonly dueAt: number | undefined;
}

/**
 * Parses the record and the update frames that follow it. `tail` holds the file from
 * the record's offset to its end; `recordOffset` is that offset in the file.
 */
export function parseTail(
  queueId: QueueId,
  preamble: Preamble,
  tail: Buffer,
  recordOffset: number,
): ParsedTail {
  if (tail.length < preamble.recordLength)
    throw new CorruptMessageError(queueId, 'record is truncated');
  let record = decodeRecord(queueId, tail.subarray(0, preamble.recordLength), preamble.recordCrc);
  let dueAt: number | undefined;
  let pos = preamble.recordLength;
  while (tail.length - pos >= FRAME_HEADER) {
    const length = tail.readUInt32LE(pos);
    if (length > MAX_RECORD_BYTES || pos + FRAME_HEADER + length > tail.length) break;
    const payload = tail.subarray(pos + FRAME_HEADER, pos + FRAME_HEADER + length);
    if (crc32(payload) !== tail.readUInt32LE(pos + 4)) break;
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch {
      throw new CorruptMessageError(queueId, 'update frame is not valid JSON');
    }
    const frame = checkFrame(queueId, value);
    if ('outcomes' in frame) {
      record = applyOutcomes(record, frame.outcomes);
    } else {
      const target = frame.release;
      if (target.state === 'deferred') {
        dueAt = target.dueAt;
        if (target.warnTime !== undefined) record = { ...record, warnTime: target.warnTime };
      } else if (target.state === 'hold') {
        const { holdReason: _old, ...rest } = record;
        record = target.reason === undefined ? rest : { ...rest, holdReason: target.reason };
      }
    }
    pos += FRAME_HEADER + length;
  }
  return { record, appendOffset: recordOffset + pos, tornBytes: tail.length - pos, dueAt };
}
