/**
 * Journal recovery: one pass over every segment at open that rebuilds, per live
 * message, where its record and content are, its state and due time, and where its
 * later frames are; and that puts the segments in order for appending again.
 *
 * Rules, in the order frames were written (segments by sequence, frames by offset):
 * - a message frame makes a live message (in `hold` if committed so, else `incoming`);
 *   a second one for the same queue ID is counted and ignored;
 * - an outcomes frame is noted for the message (applied when its record is read);
 * - a state frame sets its state and due time (deferred, hold, corrupt, incoming);
 * - a moved or removed frame ends it;
 * - a frame for a message the journal does not hold (its segment was reclaimed, or it
 *   moved to a per-message file) is counted and ignored.
 *
 * Damage: a segment is read only up to the length its successor's header vouches for
 * (bytes past it belong to a batch that failed and are abandoned: truncated). The
 * newest segment's tail after its last good frame is a torn write: it is ignored and
 * truncated, or, in a preallocated segment, overwritten with zeros and synced. Zeros
 * after the last good frame are preallocated space, not damage: nothing is reported,
 * and appends go on there after the restart (the newest segment is resumed when its
 * header and frames are sound). A stretch that does not parse followed by good
 * frames, or a bad stretch inside a vouched length, is damage: reported, skipped, and
 * the segment is kept aside (renamed `.damaged`) instead of deleted once nothing in it
 * is live. A newest segment with no valid header and no frames is a rotation that was
 * interrupted: it is removed.
 * A segment written by a newer format version stops the open with an error.
 *
 * Cost: every byte of every segment is read once (the zeros after the newest one's last
 * frame twice), sequentially, in 1 MiB pieces; content is checksummed and dropped,
 * only state frames are parsed. Memory is the table of live messages
 * (journal-table.ts), not the content.
 *
 * Postfix counterpart: qmgr(8)'s start-up scan of the queue directories and
 * postsuper(1)'s repair of damaged queue files.
 *
 * @module
 */

import { join } from 'node:path';
import { QueueStoreError } from '../../../errors.js';
import {
  decodeSegmentHeader,
  FLAG_HOLD,
  FrameType,
  JOURNAL_FORMAT_VERSION,
  parseSegmentName,
  parseStateChange,
  SEGMENT_HEADER_SIZE,
  type SegmentHeader,
  segmentName,
} from './journal-format.js';
import { type JournalFile, type JournalIo, readFully, writeZeros } from './journal-io.js';
import { DUE_HOLD, DUE_INCOMING, dueOf, JournalTable } from './journal-table.js';
import { nonZeroEnd, type ScannedFrame, scanSegment } from './segment-scan.js';
import { Segment, type SegmentSet } from './segment-set.js';

/** A damaged stretch of a segment, as reported. */
export interface JournalDamage {
  readonly segment: string;
  readonly offset: number;
  readonly length: number;
}

/** What recovery found. */
export interface JournalRecoveryReport {
  /** Segment files read. */
  readonly segments: number;
  /** Live messages rebuilt. */
  readonly messages: number;
  /** Good frames read. */
  readonly frames: number;
  /**
   * Bytes of a torn write ignored (and truncated or zeroed) at the end of the newest
   * segment; preallocated zeros after the last frame are not counted.
   */
  readonly tornBytes: number;
  /** Bytes past a vouched length (a failed batch) ignored and truncated; zeros not counted. */
  readonly abandonedBytes: number;
  /** Stretches that did not parse but were followed by good frames, or were vouched for. */
  readonly damaged: readonly JournalDamage[];
  /** Frames for messages the journal does not hold. */
  readonly orphanFrames: number;
  /** Second message frames for a queue ID already live. */
  readonly duplicateMessages: number;
  /** Frames that passed their CRC but whose contents did not parse. */
  readonly invalidFrames: number;
  /** Newest segment files without a valid header or frames, removed. */
  readonly discarded: readonly string[];
}

interface Found {
  readonly sequence: number;
  readonly path: string;
  readonly file: JournalFile;
  readonly size: number;
  readonly header: SegmentHeader;
}

/** Live messages in journal order, and what recovery found. */
export interface Recovered {
  readonly table: JournalTable;
  readonly report: JournalRecoveryReport;
  /** The newest segment, when appends may go on in it after its last frame. */
  readonly resume: Segment | undefined;
}

/** Opens and reads every segment header in `directory`, in sequence order. */
async function findSegments(directory: string, io: JournalIo): Promise<Found[]> {
  const sequences: number[] = [];
  for (const name of await io.readdir(directory)) {
    const sequence = parseSegmentName(name);
    if (sequence !== undefined) sequences.push(sequence);
  }
  sequences.sort((a, b) => a - b);
  const found: Found[] = [];
  try {
    for (const sequence of sequences) {
      const path = join(directory, segmentName(sequence));
      const file = await io.open(path, 'r+');
      found.push({ sequence, path, file, size: 0, header: { ok: false, reason: 'unread' } });
      const { size } = await file.stat();
      const header = decodeSegmentHeader(await readFully(file, 0, SEGMENT_HEADER_SIZE));
      found[found.length - 1] = { sequence, path, file, size, header };
      if (!header.ok && header.newerVersion !== undefined) {
        throw new QueueStoreError(
          `journal segment ${path} has format version ${header.newerVersion}; this Postern reads version ${JOURNAL_FORMAT_VERSION}. Run the newer Postern, or move the queue directory aside`,
        );
      }
      if (header.ok && header.sequence !== sequence) {
        found[found.length - 1] = {
          sequence,
          path,
          file,
          size,
          header: { ok: false, reason: 'header names another sequence' },
        };
      }
    }
  } catch (err) {
    for (const f of found) await f.file.close().catch(() => undefined);
    throw err;
  }
  return found;
}

/**
 * Recovers the journal in `directory` into `segments` (every segment found is adopted,
 * oldest first) and returns the live messages.
 */
export async function recoverJournal(
  directory: string,
  io: JournalIo,
  segments: SegmentSet,
): Promise<Recovered> {
  const found = await findSegments(directory, io);
  const table = new JournalTable();
  const damaged: JournalDamage[] = [];
  const discarded: string[] = [];
  let frames = 0;
  let tornBytes = 0;
  let abandonedBytes = 0;
  let orphanFrames = 0;
  let duplicateMessages = 0;
  let invalidFrames = 0;
  let resume: Segment | undefined;

  // What each segment's successor vouches for.
  const vouched = new Map<number, number>();
  for (const f of found) {
    if (f.header.ok && f.header.previous > 0)
      vouched.set(f.header.previous, f.header.previousLength);
  }

  const visitor = (segment: Segment) => (frame: ScannedFrame) => {
    frames++;
    const id = frame.queueId;
    if (frame.type === FrameType.message) {
      if (table.slot(id) !== undefined) {
        duplicateMessages++;
        return;
      }
      const contentOffset = frame.restOffset + 4 + frame.recordLength;
      table.add(
        id,
        segment.sequence,
        frame.offset,
        frame.recordLength,
        frame.end - contentOffset,
        (frame.flags & FLAG_HOLD) !== 0 ? DUE_HOLD : DUE_INCOMING,
      );
      segment.live++;
      return;
    }
    const slot = table.slot(id);
    if (slot === undefined) {
      orphanFrames++;
      return;
    }
    if (frame.type === FrameType.outcomes) {
      table.addUpdate(slot, segment.sequence, frame.restOffset, frame.restLength);
    } else if (frame.type === FrameType.state) {
      const change = frame.json && parseStateChange(frame.json);
      if (!change) {
        invalidFrames++;
        return;
      }
      table.addUpdate(slot, segment.sequence, frame.restOffset, frame.restLength);
      table.setDue(slot, dueOf(change));
    } else {
      const home = segments.get(table.segment(slot));
      table.delete(id);
      if (home) home.live--;
    }
  };

  try {
    for (const [i, f] of found.entries()) {
      segments.reserve(f.sequence);
      const newest = i === found.length - 1;
      const vouchedLength = vouched.get(f.sequence);
      let limit = vouchedLength ?? f.size;
      if (limit > f.size) {
        damaged.push({ segment: f.path, offset: f.size, length: limit - f.size });
        limit = f.size;
      }
      const segment = new Segment(f.sequence, f.path, f.file, SEGMENT_HEADER_SIZE);
      if (!f.header.ok) damaged.push({ segment: f.path, offset: 0, length: SEGMENT_HEADER_SIZE });
      const scan =
        limit > SEGMENT_HEADER_SIZE
          ? await scanSegment(f.file, SEGMENT_HEADER_SIZE, limit, visitor(segment))
          : { end: Math.min(limit, SEGMENT_HEADER_SIZE), damaged: [], tail: 0 };
      if (!f.header.ok && newest && scan.end <= SEGMENT_HEADER_SIZE) {
        // An interrupted rotation: nothing was ever acknowledged in it.
        damaged.pop();
        await f.file.close().catch(() => undefined);
        await io.unlink(f.path);
        discarded.push(f.path);
        continue;
      }
      for (const d of scan.damaged) damaged.push({ segment: f.path, ...d });
      let isDamaged = !f.header.ok || scan.damaged.length > 0 || limit < (vouchedLength ?? 0);
      let resumable = false;
      if (vouchedLength === undefined) {
        // No successor vouches for it: it was the newest, and its tail is a torn write
        // (or preallocated zeros, which are no tail at all).
        segment.size = scan.end;
        const torn = await tornEnd(f.file, scan.end, limit);
        tornBytes += torn - scan.end;
        segment.allocated = await clearTail(f.file, scan.end, torn, f.size);
        resumable = f.header.ok && !isDamaged && segment.allocated >= 0;
        segment.allocated = Math.max(segment.allocated, scan.end);
      } else {
        // Sealed: every byte up to the vouched length was synced, so a bad tail is damage.
        if (scan.tail > 0) {
          damaged.push({ segment: f.path, offset: scan.end, length: scan.tail });
          isDamaged = true;
        }
        segment.size = limit;
        if (f.size > limit) {
          abandonedBytes += (await nonZeroEnd(f.file, limit, f.size)) - limit;
          await f.file.truncate(limit).catch(() => undefined);
        }
      }
      segment.syncedSize = segment.size;
      segment.damaged = isDamaged;
      segments.adopt(segment);
      resume = resumable ? segment : undefined;
    }
  } catch (err) {
    for (const f of found) await f.file.close().catch(() => undefined);
    throw err;
  }

  return {
    table,
    resume,
    report: {
      segments: found.length,
      messages: table.size,
      frames,
      tornBytes,
      abandonedBytes,
      damaged,
      orphanFrames,
      duplicateMessages,
      invalidFrames,
      discarded,
    },
  };
}

/** Where the torn bytes after a newest segment's last frame end (`end`: none). */
async function tornEnd(file: JournalFile, end: number, limit: number): Promise<number> {
  return limit > end ? nonZeroEnd(file, end, limit) : end;
}

/**
 * Clears a torn tail [end, torn) of a file `size` bytes long: a tail that reaches the
 * end of the file is truncated; one followed by preallocated zeros is overwritten
 * with zeros and synced, so the space is kept and the bytes are not reported again
 * after the next restart. Returns how much of the file is allocated and zero past
 * `end` afterwards, or -1 if the tail could not be cleared (appends then go to a new
 * segment).
 */
async function clearTail(
  file: JournalFile,
  end: number,
  torn: number,
  size: number,
): Promise<number> {
  if (torn <= end) return size;
  try {
    if (torn >= size) {
      await file.truncate(end);
      return end;
    }
    await writeZeros(file, end, torn);
    await file.datasync();
    return size;
  } catch {
    return -1;
  }
}
