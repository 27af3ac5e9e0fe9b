/**
 * The queue journal's options, the record it reads back, and its counters: the types
 * Journal (journal.ts) takes and gives at its boundary.
 *
 * Postfix counterpart: none (see journal.ts).
 *
 * @module
 */

import type { Logger } from '../../../log.js';
import type { Clock } from '../../../types.js';
import type { MessageRecord } from '../../types.js';
import type { GroupCommitStats } from './group-commit.js';
import type { HandoffBudget } from './handoff-budget.js';
import type { JournalMessageState } from './journal-entry.js';
import type { JournalIo } from './journal-io.js';

/** Default segment size: 16 MiB (about 4,000 messages of 4 KB). */
export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;

/**
 * Options of Journal.
 *
 * @example
 * ```ts
 * const journal = await Journal.open({ directory: './var/queue/journal' } satisfies JournalOptions);
 * ```
 */
export interface JournalOptions {
  /** The journal directory (created mode 0700). One process owns it at a time. */
  readonly directory: string;
  /**
   * Start a new segment once the current one would grow past this many bytes.
   * @default 16 MiB
   */
  readonly segmentSize?: number;
  /**
   * Longest wait in ms for commits of open message writers before a batch starts
   * (0: start at once; batches then form from what arrives during the previous sync).
   * @default 0
   */
  readonly gatherMs?: number;
  /**
   * Bytes of just-committed messages kept in memory for the hand-off to delivery; a
   * budget object may be shared with other users.
   * @default 8 MiB
   */
  readonly handoffBudget?: HandoffBudget | number;
  /**
   * Zero-fill and sync the next segment in the background, so commits write into space
   * already allocated (their fdatasync then flushes data only). Costs one segment of
   * disk for the spare and the bytes of the fill.
   * @default true
   */
  readonly preallocate?: boolean;
  /** When a hand-off frame has been kept long enough (journal-handoff.ts). @default systemClock */
  readonly clock?: Clock;
  /** The file-system layer (tests inject one that counts, delays or fails calls). */
  readonly io?: JournalIo;
  /** @default silentLogger */
  readonly logger?: Logger;
}

/** A journalled message's current record, state and due time. */
export interface JournalRecord {
  readonly record: MessageRecord;
  readonly state: JournalMessageState;
  readonly dueAt: number;
  /** `record` is the very object the message was committed with (the hand-off kept it). */
  readonly asCommitted?: boolean;
}

/**
 * Counters, for benchmarks, metrics and tests.
 *
 * @example
 * ```ts
 * const s: JournalStats | undefined = store.journalStats();
 * if (s) console.log(`${s.frames / Math.max(1, s.syncs)} frames per fdatasync`);
 * ```
 */
export interface JournalStats extends GroupCommitStats {
  /** Live messages. */
  readonly messages: number;
  /** Bytes of live messages' frames. */
  readonly liveBytes: number;
  /** Segment files now. */
  readonly segments: number;
  /** Bytes of the segment files now. */
  readonly segmentBytes: number;
  /** Segments created since open. */
  readonly segmentsCreated: number;
  /** Segments deleted (every message in them finished) since open. */
  readonly segmentsReclaimed: number;
  /** Spare segments zero-filled in the background since open. */
  readonly segmentsPreallocated: number;
  /** Hand-off bytes held in memory now. */
  readonly handoffBytes: number;
  /** Commits whose content could not be kept in memory (the budget was spent). */
  readonly handoffRefused: number;
}
