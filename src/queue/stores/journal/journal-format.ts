/**
 * The on-disk format of the queue journal: segment headers and the frames appended
 * after them, with a length and a CRC-32 on every frame so that a torn tail or a
 * damaged frame is recognised and skipped, never trusted.
 *
 * A journal is a directory of segment files named by a 16-hex-digit sequence number
 * (`0000000000000001.seg`, ...). Each segment starts with a header, then frames, only
 * ever appended. A segment file may be longer than its frames: space preallocated for
 * them is zeros, which no frame starts with (the frame magic's first byte is 0xF1), so
 * the valid length of a segment is the end of its last good frame, not the file's
 * size. All integers are little-endian.
 *
 * Segment header (48 bytes, written and synced before any frame goes in):
 *
 * ```
 * 0   8  magic "PSTNJRNL"
 * 8   4  format version (1)
 * 12  4  header size (48) = offset of the first frame
 * 16  8  sequence number of this segment (also its file name)
 * 24  8  sequence number of the segment written before this one, or 0 for none
 * 32  8  that segment's valid length when this one was started: its bytes past
 *        it were abandoned (a batch that failed to write or sync) and are ignored
 * 40  4  reserved (0)
 * 44  4  CRC-32 of bytes 0..43
 * ```
 *
 * Frame (16-byte header, then the body):
 *
 * ```
 * 0   4  frame magic F1 4A 52 4E
 * 4   4  CRC-32 of bytes 8 .. 16+L (length, type, flags, id length and the body)
 * 8   4  L = body length
 * 12  1  type: 1 message, 2 outcomes, 3 state, 4 moved, 5 removed
 * 13  1  flags (message: bit 0 = committed into hold)
 * 14  1  N = queue ID length (6..40)
 * 15  1  reserved (0)
 * 16  L  body: the queue ID (N bytes), then by type:
 *          message   u32 record length R, R bytes of JSON (the stored MessageRecord,
 *                    every recipient pending), the content (CRLF, dot-unstuffed)
 *          outcomes  JSON array of RecipientOutcome
 *          state     JSON JournalStateChange (a ReleaseTarget, or {"state":"incoming"})
 *          moved     nothing: the message now lives in a per-message file
 *          removed   nothing: the message is gone
 * ```
 *
 * The CRC covers the length, so a damaged length is caught as surely as damaged data;
 * the frame magic lets a reader find the next frame after a damaged one (a candidate
 * is believed only if its own CRC holds).
 *
 * Checksums: CRC-32 from node:zlib (`zlib.crc32`, Node >= 20.15 and >= 22.2; the queue
 * file format needs it too, so the package's `engines` field asks for it). It detects
 * every burst error up to 32 bits and random damage with probability 1 - 2^-32, which
 * is what a torn write or a flipped sector looks like; it is not a defence against
 * deliberate forgery, which needs write access to the queue directory anyway.
 *
 * Postfix counterpart: the queue file record format (rec_type.h, record.c), where
 * cleanup(8) ends a file with an END record so an incomplete file is recognised.
 * Postern's journal holds many messages per file so that one fdatasync can make many
 * of them durable (group commit).
 *
 * SECURITY: every byte read back is untrusted: lengths are bounded before anything is
 * allocated, a queue ID must have the shape isQueueId accepts, and JSON is checked for
 * the fields the journal relies on; a bad frame is reported, never thrown to the caller
 * or trusted.
 *
 * Does not do: any I/O (see segment-scan.ts and group-commit.ts).
 *
 * @module
 */

import { crc32 } from 'node:zlib';
import { isQueueId } from '../../../queue-id.js';
import type { QueueId } from '../../../types.js';
import type { RecipientOutcome, ReleaseTarget } from '../../types.js';

/** The journal format this code writes and reads. */
export const JOURNAL_FORMAT_VERSION = 1;
export const SEGMENT_MAGIC = Buffer.from('PSTNJRNL', 'latin1');
export const SEGMENT_HEADER_SIZE = 48;
export const FRAME_MAGIC = Buffer.from([0xf1, 0x4a, 0x52, 0x4e]);
const FRAME_MAGIC_U32 = FRAME_MAGIC.readUInt32LE(0);
export const FRAME_HEADER_SIZE = 16;
/**
 * Largest frame body a reader accepts (a hostile or damaged length is not allocated):
 * a record may be large (a message with thousands of recipients), content is at most
 * the journal's inline limit.
 */
export const MAX_FRAME_BODY = 72 * 1024 * 1024;
/** File name of a segment: 16 hex digits and `.seg`. */
const SEGMENT_NAME = /^([0-9a-f]{16})\.seg$/;

/** Frame types. */
export const FrameType = {
  message: 1,
  outcomes: 2,
  state: 3,
  moved: 4,
  removed: 5,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Message frame flag: the message was committed into `hold`. */
export const FLAG_HOLD = 1;

/**
 * A change of a journalled message's state: a release (to deferred, hold or corrupt,
 * as the store's ReleaseTarget) or a requeue to incoming.
 */
export type JournalStateChange = ReleaseTarget | { readonly state: 'incoming' };

/** The file name of segment `sequence`. */
export function segmentName(sequence: number): string {
  return `${sequence.toString(16).padStart(16, '0')}.seg`;
}

/** The sequence number a segment file name stands for, or undefined if it is none. */
export function parseSegmentName(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  const n = Number.parseInt(m[1]!, 16);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** The header of a new segment, vouching for `previousLength` bytes of `previous`. */
export function encodeSegmentHeader(
  sequence: number,
  previous: number,
  previousLength: number,
): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_SIZE);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32LE(JOURNAL_FORMAT_VERSION, 8);
  b.writeUInt32LE(SEGMENT_HEADER_SIZE, 12);
  b.writeBigUInt64LE(BigInt(sequence), 16);
  b.writeBigUInt64LE(BigInt(previous), 24);
  b.writeBigUInt64LE(BigInt(previousLength), 32);
  b.writeUInt32LE(crc32(b.subarray(0, 44)), 44);
  return b;
}

/** What a segment header says. */
export type SegmentHeader =
  | {
      readonly ok: true;
      readonly sequence: number;
      /** The segment written before this one (0: none). */
      readonly previous: number;
      /** Its valid length; bytes past it were abandoned. */
      readonly previousLength: number;
    }
  | { readonly ok: false; readonly reason: string; readonly newerVersion?: number };

function safeNumber(b: Buffer, at: number): number | undefined {
  const v = b.readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
}

/** Reads a segment header; never throws. */
export function decodeSegmentHeader(b: Buffer): SegmentHeader {
  if (b.length < SEGMENT_HEADER_SIZE) return { ok: false, reason: 'shorter than its header' };
  if (!b.subarray(0, 8).equals(SEGMENT_MAGIC)) return { ok: false, reason: 'bad magic' };
  if (b.readUInt32LE(44) !== crc32(b.subarray(0, 44)))
    return { ok: false, reason: 'header checksum mismatch' };
  const version = b.readUInt32LE(8);
  if (version !== JOURNAL_FORMAT_VERSION) {
    return {
      ok: false,
      reason: `format version ${version}`,
      ...(version > JOURNAL_FORMAT_VERSION ? { newerVersion: version } : {}),
    };
  }
  if (b.readUInt32LE(12) !== SEGMENT_HEADER_SIZE)
    return { ok: false, reason: 'unknown header size' };
  const sequence = safeNumber(b, 16);
  const previous = safeNumber(b, 24);
  const previousLength = safeNumber(b, 32);
  if (sequence === undefined || sequence === 0 || previous === undefined || previous >= sequence)
    return { ok: false, reason: 'sequence out of range' };
  if (previousLength === undefined) return { ok: false, reason: 'previous length out of range' };
  return { ok: true, sequence, previous, previousLength };
}

/**
 * Allocates a frame of `type` for `queueId` with `rest` bytes of body after the ID and
 * fills in everything but the CRC; returns it with the offset where `rest` begins.
 */
function allocFrame(
  type: FrameType,
  flags: number,
  queueId: QueueId,
  rest: number,
): { frame: Buffer; at: number } {
  const idLength = Buffer.byteLength(queueId, 'latin1');
  if (!isQueueId(queueId)) throw new TypeError(`invalid queue ID "${queueId.slice(0, 60)}"`);
  const bodyLength = idLength + rest;
  if (bodyLength > MAX_FRAME_BODY) {
    throw new RangeError(
      `a journal frame of ${bodyLength} bytes is over the ${MAX_FRAME_BODY}-byte limit`,
    );
  }
  // A message frame may be kept for the hand-off: its own allocation, never a slice of
  // the shared pool that would keep unrelated bytes alive and out of the budget.
  const size = FRAME_HEADER_SIZE + bodyLength;
  const frame =
    type === FrameType.message ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
  FRAME_MAGIC.copy(frame, 0);
  frame.writeUInt32LE(bodyLength, 8);
  frame[12] = type;
  frame[13] = flags;
  frame[14] = idLength;
  frame[15] = 0;
  frame.write(queueId, FRAME_HEADER_SIZE, 'latin1');
  return { frame, at: FRAME_HEADER_SIZE + idLength };
}

function sealFrame(frame: Buffer): Buffer {
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4);
  return frame;
}

/** Where the parts of an encoded message frame are, relative to the frame's start. */
export interface MessageFrameLayout {
  readonly recordOffset: number;
  readonly recordLength: number;
  readonly contentOffset: number;
  readonly contentLength: number;
}

/**
 * A message frame: the record JSON and the content copied into one buffer, so a batch
 * is one iovec per message and the content can be handed on as a slice of it. A
 * record given as its JSON text is encoded (UTF-8) straight into the frame.
 */
export function encodeMessageFrame(
  queueId: QueueId,
  record: Buffer | string,
  content: readonly Buffer[],
  hold: boolean,
): { frame: Buffer; layout: MessageFrameLayout } {
  let contentLength = 0;
  for (const c of content) contentLength += c.length;
  const recordLength =
    typeof record === 'string' ? Buffer.byteLength(record, 'utf8') : record.length;
  const { frame, at } = allocFrame(
    FrameType.message,
    hold ? FLAG_HOLD : 0,
    queueId,
    4 + recordLength + contentLength,
  );
  frame.writeUInt32LE(recordLength, at);
  if (typeof record === 'string') frame.write(record, at + 4, recordLength, 'utf8');
  else record.copy(frame, at + 4);
  let p = at + 4 + recordLength;
  const contentOffset = p;
  for (const c of content) {
    c.copy(frame, p);
    p += c.length;
  }
  return {
    frame: sealFrame(frame),
    layout: { recordOffset: at + 4, recordLength, contentOffset, contentLength },
  };
}

/** An outcomes, state, moved or removed frame. */
export function encodeUpdateFrame(
  type: Exclude<FrameType, typeof FrameType.message>,
  queueId: QueueId,
  payload?: unknown,
): Buffer {
  const json = payload === undefined ? undefined : Buffer.from(JSON.stringify(payload), 'utf8');
  const { frame, at } = allocFrame(type, 0, queueId, json?.length ?? 0);
  json?.copy(frame, at);
  return sealFrame(frame);
}

/** A frame header as read, before its body is checked. */
export interface FrameHead {
  readonly bodyLength: number;
  readonly crc: number;
  readonly type: FrameType;
  readonly flags: number;
  readonly idLength: number;
}

/**
 * Checks the 16 bytes at `at` as a frame header; undefined if they cannot be one. The
 * body's CRC still has to be checked (checkFrameBody).
 */
export function readFrameHead(b: Buffer, at: number): FrameHead | undefined {
  if (b.length - at < FRAME_HEADER_SIZE) return undefined;
  if (b.readUInt32LE(at) !== FRAME_MAGIC_U32) return undefined;
  const bodyLength = b.readUInt32LE(at + 8);
  const type = b[at + 12]!;
  const flags = b[at + 13]!;
  const idLength = b[at + 14]!;
  if (b[at + 15] !== 0 || type < FrameType.message || type > FrameType.removed) return undefined;
  if ((type === FrameType.message ? flags & ~FLAG_HOLD : flags) !== 0) return undefined;
  if (idLength < 6 || idLength > 40 || bodyLength < idLength || bodyLength > MAX_FRAME_BODY)
    return undefined;
  if (type === FrameType.message && bodyLength < idLength + 4) return undefined;
  return { bodyLength, crc: b.readUInt32LE(at + 4), type: type as FrameType, flags, idLength };
}

/**
 * Whether the frame whose header is at `at` in `b` (wholly in `b`) passes its CRC and
 * names a well-formed queue ID, which it returns.
 */
export function checkFrameBody(b: Buffer, at: number, head: FrameHead): QueueId | undefined {
  const end = at + FRAME_HEADER_SIZE + head.bodyLength;
  if (crc32(b.subarray(at + 8, end)) !== head.crc) return undefined;
  const id = b.toString('latin1', at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + head.idLength);
  if (!isQueueId(id)) return undefined;
  if (head.type === FrameType.message) {
    const recordLength = b.readUInt32LE(at + FRAME_HEADER_SIZE + head.idLength);
    if (recordLength === 0 || head.idLength + 4 + recordLength > head.bodyLength) return undefined;
  }
  return id;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const OUTCOME_STATUSES = new Set(['sent', 'deferred', 'bounced']);

/** Parses an outcomes frame's JSON; undefined if it is not one. */
export function parseOutcomes(json: Buffer): RecipientOutcome[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  for (const o of value) {
    if (!isObject(o) || typeof o.recipientId !== 'number' || !isObject(o.outcome)) return undefined;
    if (!OUTCOME_STATUSES.has(o.outcome.status as string)) return undefined;
  }
  return value as RecipientOutcome[];
}

/** Parses a state frame's JSON; undefined if it is not one. */
export function parseStateChange(json: Buffer): JournalStateChange | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  switch (value.state) {
    case 'incoming':
      return { state: 'incoming' };
    case 'deferred':
      if (typeof value.dueAt !== 'number' || !Number.isFinite(value.dueAt)) return undefined;
      if (value.warnTime !== undefined && typeof value.warnTime !== 'number') return undefined;
      return value as JournalStateChange;
    case 'hold':
      if (value.reason !== undefined && typeof value.reason !== 'string') return undefined;
      return value as JournalStateChange;
    case 'corrupt':
      if (typeof value.reason !== 'string') return undefined;
      return value as JournalStateChange;
    default:
      return undefined;
  }
}
