/**
 * The FileQueueStore's per-message working state (FileData) and the rules for when a
 * message needs one: only while something is happening to it — claimed, being
 * updated, moved or read by a queue operation, or just committed with its record kept
 * for the hand-off. An idle queued message has none: it is then in the queue journal
 * if the journal holds it, else in a file in the directory named by its state.
 *
 * Postfix counterpart: qmgr(8) keeps a QMGR_MESSAGE only for the active queue; the
 * other queues are files only. Postern's index keeps a small entry for every message
 * (so claims and views need no scan) and adds this only for the busy ones.
 *
 * @module
 */

import { QueueStoreError } from '../../errors.js';
import type { MessageRecord, QueueState, RecipientOutcome, ReleaseTarget } from '../types.js';
import type { IndexedMessage } from './message-index.js';

/** The location of a message that lives in the queue journal rather than a file. */
export const JOURNAL = 'journal';

/** Where a message's bytes are: a state directory (its own file), or the journal. */
export type Location = QueueState | typeof JOURNAL;

/** A caller waiting for its outcomes to be durable. */
export interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Per message, beyond the index, while the message is busy. */
export interface FileData {
  /** The directory its file is in now, or the journal (changes only inside `serial`). */
  location: Location;
  /** File operations on this message, one after the other. */
  chain: Promise<void>;
  /** The record with every outcome applied, kept while the message is active. */
  record: MessageRecord | undefined;
  /** Where the next update frame goes (valid while `record` is set). */
  appendOffset: number;
  /** `sent` outcomes not yet written. */
  lazy: readonly RecipientOutcome[];
  /** `bounced`/`deferred` outcomes waiting for the next synced append. */
  durable: readonly RecipientOutcome[];
  waiters: readonly Waiter[];
  flushQueued: boolean;
}

/** An index entry of the file store: no FileData while idle. */
export type FileEntry = IndexedMessage<FileData | undefined>;

/** Shared by every busy message with nothing pending. */
export const NONE: readonly never[] = Object.freeze([]);
const RESOLVED = Promise.resolve();

/** Working state for a message whose bytes are in `location`. */
export function newData(location: Location): FileData {
  return {
    location,
    chain: RESOLVED,
    record: undefined,
    appendOffset: 0,
    lazy: NONE,
    durable: NONE,
    waiters: NONE,
    flushQueued: false,
  };
}

/**
 * The entry's working state, made when it has none for a message in a file where its
 * state says (the store makes it first for a journalled one).
 */
export function dataOf(entry: FileEntry): FileData {
  let data = entry.data;
  if (!data) {
    data = newData(entry.state);
    entry.data = data;
  }
  return data;
}

/** The directory the entry's file is in (for a message known to have a file). */
export function locationOf(entry: FileEntry): QueueState {
  const location = entry.data?.location ?? entry.state;
  if (location === JOURNAL)
    throw new QueueStoreError(
      'the message is in the queue journal, not a file (a bug)',
      entry.queueId,
    );
  return location;
}

/** Drops the working state of a message that has become idle. */
export function dropIfIdle(entry: FileEntry, chain: Promise<void>): void {
  const d = entry.data;
  if (
    d !== undefined &&
    d.chain === chain &&
    entry.state !== 'active' &&
    (d.location === entry.state || d.location === JOURNAL) &&
    d.record === undefined &&
    d.lazy.length === 0 &&
    d.durable.length === 0 &&
    d.waiters.length === 0 &&
    !d.flushQueued
  ) {
    entry.data = undefined;
  }
}

/** Empties a message's waiters and returns them. */
export function takeWaiters(data: FileData): readonly Waiter[] {
  const waiters = data.waiters;
  data.waiters = NONE;
  return waiters;
}

/**
 * Where a message lives, as the store drives it: the per-message files (QueueFiles)
 * or the queue journal (JournalHome). Every method runs inside the store's
 * per-message chain, on an entry whose working state the store has made.
 */
export interface MessageHome {
  /** A claimed message's record (read, or kept from the hand-off); undefined if it is lost. */
  activate(entry: FileEntry): Promise<MessageRecord | undefined>;
  /** Writes the pending outcomes (durably if `sync` or any of them must be). */
  flush(entry: FileEntry, sync: boolean): Promise<void>;
  /** Moves the message to its next state. */
  release(entry: FileEntry, target: ReleaseTarget): Promise<void>;
  /** Deletes the message and forgets it (`durable`: a crash cannot bring it back). */
  remove(entry: FileEntry, durable: boolean): Promise<void>;
  /** postsuper -r: back to incoming. */
  requeue(entry: FileEntry): Promise<void>;
  /** postqueue -f / -i: a deferred message due `now`. */
  expedite(entry: FileEntry, now: number): Promise<void>;
  /** The current record (for listings); undefined if it cannot be read. */
  readRecord(entry: FileEntry): Promise<MessageRecord | undefined>;
}

/**
 * Adds outcomes to what the message has to write: `sent` marks lazily (with the next
 * write), the rest to be written and synced now. True when some must be synced.
 */
export function queueOutcomes(data: FileData, outcomes: readonly RecipientOutcome[]): boolean {
  if (outcomes.every(isSent)) {
    data.lazy = data.lazy.concat(outcomes);
    return false;
  }
  const lazy = outcomes.filter(isSent);
  if (lazy.length > 0) data.lazy = data.lazy.concat(lazy);
  data.durable = data.durable.concat(outcomes.filter((o) => !isSent(o)));
  return true;
}

function isSent(o: RecipientOutcome): boolean {
  return o.outcome.status === 'sent';
}
