/**
 * The FileQueueStore's per-message working state (FileData) and the rules for when a
 * message needs one: only while something is happening to it — claimed, being
 * updated, moved or read by a queue operation. An idle queued message has none, and
 * its file is then in the directory named by its state.
 *
 * Postfix counterpart: qmgr(8) keeps a QMGR_MESSAGE only for the active queue; the
 * other queues are files only. Postern's index keeps a small entry for every message
 * (so claims and views need no scan) and adds this only for the busy ones.
 *
 * @module
 */

import type { MessageRecord, QueueState, RecipientOutcome } from '../types.js';
import type { IndexedMessage } from './message-index.js';

/** A caller waiting for its outcomes to be durable. */
export interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Per message, beyond the index, while the message is busy. */
export interface FileData {
  /** The directory the file is in now (changes only inside `serial`). */
  location: QueueState;
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

/** Working state for a message whose file is in `location`. */
export function newData(location: QueueState): FileData {
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

/** The entry's working state, made when it has none (its file is where its state says). */
export function dataOf(entry: FileEntry): FileData {
  let data = entry.data;
  if (!data) {
    data = newData(entry.state);
    entry.data = data;
  }
  return data;
}

/** The directory the entry's file is in. */
export function locationOf(entry: FileEntry): QueueState {
  return entry.data?.location ?? entry.state;
}

/** Drops the working state of a message that has become idle. */
export function dropIfIdle(entry: FileEntry, chain: Promise<void>): void {
  const d = entry.data;
  if (
    d !== undefined &&
    d.chain === chain &&
    entry.state !== 'active' &&
    d.location === entry.state &&
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
