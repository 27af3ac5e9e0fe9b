/**
 * The options of FileQueueStore: its directory, clock and logger, and how it uses its
 * queue journal (which messages go there, segment size, hand-off budget, when a
 * message moves out to a file of its own).
 *
 * Postfix counterpart: `queue_directory`; the journal has none (Postfix writes a file
 * per message).
 *
 * @module
 */

import { QueueStoreError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Clock } from '../../types.js';
import { DEFAULT_HANDOFF_BYTES, HandoffBudget } from './journal/handoff-budget.js';
import { DEFAULT_SEGMENT_SIZE } from './journal/journal.js';
import type { JournalIo } from './journal/journal-io.js';
import { DEFAULT_INLINE_LIMIT } from './journal/journal-message-writer.js';

/**
 * How FileQueueStore uses its journal.
 *
 * @example
 * ```ts
 * const journal: FileQueueJournalOptions = { inlineLimit: 32 * 1024, handoffBytes: 4 << 20 };
 * const store = new FileQueueStore({ directory: './var/queue', journal });
 * ```
 */
export interface FileQueueJournalOptions {
  /** Messages with up to this many bytes of content are journalled. @default 65536 */
  readonly inlineLimit?: number;
  /** A journal segment file is closed and a new one started past this size. @default 16 MiB */
  readonly segmentSize?: number;
  /** Bytes of just-committed content kept in memory for delivery. @default 8 MiB */
  readonly handoffBytes?: number;
  /**
   * A message released to deferred with its next attempt further away than this (ms)
   * moves out to a file of its own; one due sooner stays in the journal. @default 10000
   */
  readonly moveOutAfterMs?: number;
  /**
   * Zero-fill and sync the next journal segment in the background, so a commit's
   * fdatasync flushes data only, not the file's growth. Costs a spare segment of disk
   * and writing each segment twice; on a file system that allocates on every write
   * anyway (btrfs, ZFS, tmpfs) it buys nothing and can be turned off. @default true
   */
  readonly preallocate?: boolean;
  /**
   * The file-system layer under the journal (tests count, delay or fail its calls).
   * @internal
   */
  readonly io?: JournalIo;
}

/**
 * Options of FileQueueStore.
 *
 * @example
 * ```ts
 * const store = new FileQueueStore({ directory: '/var/spool/postern' } satisfies FileQueueStoreOptions);
 * ```
 */
export interface FileQueueStoreOptions {
  /** The queue directory; created (mode 0711, state directories 0700) if missing. */
  readonly directory: string;
  /**
   * Judges lease expiry in `renew`, `recordOutcomes`, `release` and `remove`; pass the
   * QueueManager's clock.
   * @default systemClock
   */
  readonly clock?: Clock;
  /** @default silentLogger */
  readonly logger?: Logger;
  /**
   * Small messages go to the queue journal (group commit); `false` writes every new
   * message to a file of its own (what an earlier run left in the journal is still
   * read and delivered).
   * @default {}
   */
  readonly journal?: FileQueueJournalOptions | false;
}

/** The journal options checked, with their defaults. */
export interface JournalSettings {
  /** New messages go to the journal. */
  readonly enabled: boolean;
  readonly inlineLimit: number;
  readonly segmentSize: number;
  readonly handoffBudget: HandoffBudget;
  readonly moveOutAfterMs: number;
  readonly preallocate: boolean;
  readonly io: JournalIo | undefined;
}

/** Checks the journal options; throws QueueStoreError saying which value is wrong. */
export function journalSettings(
  options: FileQueueJournalOptions | false | undefined,
): JournalSettings {
  const j = options || {};
  const whole = (name: string, value: number | undefined, fallback: number, min = 0): number => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < min) {
      throw new QueueStoreError(
        `journal.${name} must be a whole number >= ${min}, not ${String(value)}`,
      );
    }
    return v;
  };
  const flag = (name: string, value: boolean | undefined, fallback: boolean): boolean => {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      throw new QueueStoreError(`journal.${name} must be true or false, not ${String(value)}`);
    }
    return value;
  };
  return {
    enabled: options !== false,
    inlineLimit: whole('inlineLimit', j.inlineLimit, DEFAULT_INLINE_LIMIT),
    segmentSize: whole('segmentSize', j.segmentSize, DEFAULT_SEGMENT_SIZE, 64 * 1024),
    handoffBudget: new HandoffBudget(whole('handoffBytes', j.handoffBytes, DEFAULT_HANDOFF_BYTES)),
    moveOutAfterMs: whole('moveOutAfterMs', j.moveOutAfterMs, 10_000),
    preallocate: flag('preallocate', j.preallocate, true),
    io: j.io,
  };
}
