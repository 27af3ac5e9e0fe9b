/**
 * Reading a journal segment front to back at recovery: every frame that passes its
 * checks is handed to a visitor, a damaged stretch is skipped by searching for the
 * next frame that checks out, and what follows the last good frame is reported as
 * the tail (a torn write in the newest segment). A segment written into preallocated
 * space has zeros after its last frame: `nonZeroEnd` tells that tail from a torn one.
 *
 * The segment is read in 1 MiB pieces through one buffer, so memory stays bounded
 * whatever the segment's size; only a frame larger than that (a record with thousands
 * of recipients) makes the buffer grow to its size, which the frame format bounds
 * (MAX_FRAME_BODY) and the file's length bounds again.
 * Content is checksummed as it goes by and never kept.
 *
 * Postfix counterpart: the record reader (record.c, rec_get) that stops at a bad
 * record; Postern's frames carry a magic and a CRC so a reader can also step over one.
 *
 * SECURITY: a length is believed only after the frame's CRC holds, and never beyond
 * the end of the file; a candidate frame found while searching must pass the same
 * checks.
 *
 * @module
 */

import type { QueueId } from '../../../types.js';
import {
  checkFrameBody,
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  type FrameHead,
  FrameType,
  readFrameHead,
} from './journal-format.js';
import { type JournalFile, ZERO_CHUNK, zeroChunk } from './journal-io.js';

/** Bytes read at a time. */
const CHUNK = 1024 * 1024;

/** One frame that passed its checks. Buffers are valid only during the visit. */
export interface ScannedFrame {
  readonly type: FrameType;
  readonly flags: number;
  readonly queueId: QueueId;
  /** Offset of the frame in the segment. */
  readonly offset: number;
  /** Offset just past it. */
  readonly end: number;
  /** Offset and length of what follows the ID in the body. */
  readonly restOffset: number;
  readonly restLength: number;
  /** For a message: the record's length (it starts at restOffset + 4). */
  readonly recordLength: number;
  /** For a state frame: its JSON (valid during the visit only). */
  readonly json: Buffer | undefined;
}

/** A stretch of a segment that holds no valid frame. */
export interface DamagedRange {
  readonly offset: number;
  readonly length: number;
}

/** What a scan found apart from the frames. */
export interface ScanResult {
  /** Offset just past the last good frame (where the tail starts). */
  readonly end: number;
  /** Damaged stretches followed by good frames. */
  readonly damaged: readonly DamagedRange[];
  /** Bytes after the last good frame, up to `limit`. */
  readonly tail: number;
}

/** A sliding view of a file. */
class Window {
  buffer = Buffer.allocUnsafe(CHUNK);
  /** File offset of buffer[0]. */
  start = 0;
  /** Valid bytes in buffer. */
  length = 0;

  constructor(
    readonly file: JournalFile,
    readonly limit: number,
  ) {}

  /**
   * Makes [at, at + n) readable (or as much of it as lies before the limit) and
   * returns the buffer index of `at`. The window then starts at `at` and is filled as
   * far as its buffer goes; it grows only for a frame larger than a chunk.
   */
  async ensure(at: number, n: number): Promise<number> {
    const want = Math.min(n, this.limit - at);
    if (at >= this.start && at + want <= this.start + this.length) return at - this.start;
    const inside = at >= this.start && at < this.start + this.length;
    const kept = inside ? this.start + this.length - at : 0;
    const target =
      want > this.buffer.length ? Buffer.allocUnsafe(Math.max(CHUNK, want)) : this.buffer;
    // Buffer#copy handles overlapping ranges of one buffer.
    if (kept > 0) this.buffer.copy(target, 0, at - this.start, this.length);
    this.buffer = target;
    this.start = at;
    this.length = kept;
    const goal = Math.min(this.buffer.length, this.limit - at);
    while (this.length < goal) {
      const { bytesRead } = await this.file.read(
        this.buffer,
        this.length,
        goal - this.length,
        at + this.length,
      );
      if (bytesRead === 0) break;
      this.length += bytesRead;
    }
    return 0;
  }
}

/**
 * Checks the frame at file offset `at`: its header, then (reading it whole) its CRC.
 * Returns the header and its queue ID, or undefined.
 */
async function frameAt(
  w: Window,
  at: number,
): Promise<{ head: FrameHead; queueId: QueueId; index: number } | undefined> {
  if (w.limit - at < FRAME_HEADER_SIZE) return undefined;
  let index = await w.ensure(at, FRAME_HEADER_SIZE);
  const head = readFrameHead(w.buffer.subarray(0, w.length), index);
  if (!head) return undefined;
  const size = FRAME_HEADER_SIZE + head.bodyLength;
  if (at + size > w.limit) return undefined;
  index = await w.ensure(at, size);
  if (w.length - index < size) return undefined;
  const queueId = checkFrameBody(w.buffer, index, head);
  return queueId === undefined ? undefined : { head, queueId, index };
}

/** The next offset after `from` where a frame checks out, or undefined. */
async function resync(w: Window, from: number): Promise<number | undefined> {
  let at = from;
  while (at + FRAME_HEADER_SIZE <= w.limit) {
    const index = await w.ensure(at, CHUNK);
    const hit = w.buffer.subarray(0, w.length).indexOf(FRAME_MAGIC, index);
    if (hit < 0) {
      // Nothing in this window: go on from where a magic could still start.
      const next = w.start + w.length - (FRAME_MAGIC.length - 1);
      if (w.start + w.length >= w.limit || next <= at) return undefined;
      at = next;
      continue;
    }
    const candidate = w.start + hit;
    if (await frameAt(w, candidate)) return candidate;
    at = candidate + 1;
  }
  return undefined;
}

/**
 * Scans `file` from `from` to `limit`, calling `visit` for each good frame in order.
 */
export async function scanSegment(
  file: JournalFile,
  from: number,
  limit: number,
  visit: (frame: ScannedFrame) => void,
): Promise<ScanResult> {
  const w = new Window(file, limit);
  const damaged: DamagedRange[] = [];
  let at = from;
  let end = from;
  while (at < limit) {
    const found = await frameAt(w, at);
    if (!found) {
      const next = await resync(w, at + 1);
      if (next === undefined) break;
      damaged.push({ offset: at, length: next - at });
      at = next;
      continue;
    }
    const { head, queueId, index } = found;
    const restOffset = at + FRAME_HEADER_SIZE + head.idLength;
    const restIndex = index + FRAME_HEADER_SIZE + head.idLength;
    const restLength = head.bodyLength - head.idLength;
    const frameEnd = at + FRAME_HEADER_SIZE + head.bodyLength;
    visit({
      type: head.type,
      flags: head.flags,
      queueId,
      offset: at,
      end: frameEnd,
      restOffset,
      restLength,
      recordLength: head.type === FrameType.message ? w.buffer.readUInt32LE(restIndex) : 0,
      json:
        head.type === FrameType.state
          ? w.buffer.subarray(restIndex, restIndex + restLength)
          : undefined,
    });
    at = frameEnd;
    end = frameEnd;
  }
  return { end, damaged, tail: limit - end };
}

/**
 * The offset just past the last byte in [from, limit) of `file` that is not zero, or
 * `from` when all of it is zero (preallocated space never written). Reads the range
 * once, a chunk at a time, comparing each chunk with zeros (memcmp) and looking at
 * single bytes only in a chunk that is not all zero.
 */
export async function nonZeroEnd(file: JournalFile, from: number, limit: number): Promise<number> {
  const zeros = zeroChunk();
  const buffer = Buffer.allocUnsafe(Math.min(ZERO_CHUNK, Math.max(0, limit - from)));
  let end = from;
  let at = from;
  while (at < limit) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, limit - at), at);
    if (bytesRead === 0) break;
    if (!buffer.subarray(0, bytesRead).equals(zeros.subarray(0, bytesRead))) {
      let i = bytesRead - 1;
      while (buffer[i] === 0) i--;
      end = at + i + 1;
    }
    at += bytesRead;
  }
  return end;
}
