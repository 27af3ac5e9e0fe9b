/**
 * Reading a journalled message's record back: the record JSON from its message frame,
 * then each outcome and state frame written for it since, applied in order. Used to
 * claim a message that is not in memory, to list it, and to move it out of the
 * journal into a per-message file.
 *
 * The rules are those of the queue file (file-store-format.ts): outcomes through
 * applyOutcomes (a final recipient stays final), a release to deferred may set a new
 * warning time, a release to hold sets or clears the hold reason.
 *
 * Postfix counterpart: qmgr_message.c reading a queue file's envelope records and the
 * recipients already marked done.
 *
 * SECURITY: the bytes passed their frame CRC when written and again at recovery, but
 * are parsed as untrusted anyway: a record that does not check out is a
 * CorruptMessageError, never a crash.
 *
 * @module
 */

import { crc32 } from 'node:zlib';
import { CorruptMessageError } from '../../../errors.js';
import { applyOutcomes } from '../../lease.js';
import type { MessageRecord } from '../../types.js';
import { decodeRecord } from '../file-store-format.js';
import type { JournalEntry } from './journal-entry.js';
import { type JournalStateChange, parseOutcomes, parseStateChange } from './journal-format.js';
import { readFully } from './journal-io.js';
import type { SegmentSet } from './segment-set.js';

/** Reads `length` bytes at `offset` of segment `sequence`, holding it open meanwhile. */
async function readAt(
  segments: SegmentSet,
  sequence: number,
  offset: number,
  length: number,
): Promise<Buffer> {
  const segment = segments.acquire(sequence);
  try {
    return await readFully(segment.file, offset, length);
  } finally {
    segments.release(segment);
  }
}

/** A record with a state change applied (what the queue file's release frames do). */
export function applyStateChange(record: MessageRecord, change: JournalStateChange): MessageRecord {
  if (change.state === 'deferred' && change.warnTime !== undefined)
    return { ...record, warnTime: change.warnTime };
  if (change.state === 'hold') {
    const { holdReason: _old, ...rest } = record;
    return change.reason === undefined ? rest : { ...rest, holdReason: change.reason };
  }
  return record;
}

/**
 * Parses a message frame's record; `bytes` is the record JSON (from memory or disk).
 */
export function parseRecord(entry: JournalEntry, bytes: Buffer): MessageRecord {
  if (bytes.length !== entry.recordLength)
    throw new CorruptMessageError(entry.queueId, 'journal record is truncated');
  return decodeRecord(entry.queueId, bytes, crc32(bytes));
}

/** The message's current record: its message frame with every later frame applied. */
export async function readJournalRecord(
  segments: SegmentSet,
  entry: JournalEntry,
  inMemory: Buffer | undefined,
): Promise<MessageRecord> {
  let record = parseRecord(
    entry,
    inMemory ?? (await readAt(segments, entry.segment, entry.recordOffset, entry.recordLength)),
  );
  const updates = entry.updates ?? [];
  for (let i = 0; i + 2 < updates.length; i += 3) {
    const json = await readAt(segments, updates[i]!, updates[i + 1]!, updates[i + 2]!);
    if (json[0] === 0x5b /* [ */) {
      const outcomes = parseOutcomes(json);
      if (!outcomes) throw new CorruptMessageError(entry.queueId, 'malformed journal outcomes');
      record = applyOutcomes(record, outcomes);
    } else {
      const change = parseStateChange(json);
      if (!change) throw new CorruptMessageError(entry.queueId, 'malformed journal state change');
      record = applyStateChange(record, change);
    }
  }
  return record;
}
