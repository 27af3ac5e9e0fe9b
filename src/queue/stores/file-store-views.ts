/**
 * FileQueueStore's listings and queue operations over many messages: the rows of
 * `list()` read in bounded batches until the limit is met, the summaries of messages
 * an earlier run left (read once), and a queue operation applied to a selection.
 *
 * Postfix counterpart: showq(8) reading the queue files for mailq, and postsuper(1)
 * walking the queues for -h, -H, -d and -r.
 *
 * Every read runs at most SCAN_CONCURRENCY at a time, so a listing of a large queue
 * never opens thousands of files at once; a message that cannot be read is skipped.
 *
 * @module
 */

import type { ComponentLogger } from '../../log.js';
import type { QueueId } from '../../types.js';
import { eachLimited } from '../../util/each-limited.js';
import { errorMessage } from '../../util/error-message.js';
import { isSummarized, summarizeInto } from '../summary.js';
import type { MessageRecord, QueueEntry, QueueSelection, QueueState } from '../types.js';
import type { FileData, FileEntry } from './file-store-entry.js';
import type { MessageIndex } from './message-index.js';

/** Files read at once during open(), list() and queue operations. */
export const SCAN_CONCURRENCY = 32;

/**
 * The rows of `entries` (in order) up to `limit`, read in batches until enough were
 * found; entries whose row is undefined (unreadable) are skipped.
 */
export async function listRows(
  entries: readonly FileEntry[],
  limit: number | undefined,
  row: (entry: FileEntry) => Promise<QueueEntry | undefined>,
): Promise<QueueEntry[]> {
  const most = Math.max(0, limit ?? Number.POSITIVE_INFINITY);
  const rows: QueueEntry[] = [];
  let next = 0;
  while (rows.length < most && next < entries.length) {
    const batch = entries.slice(
      next,
      next + Math.min(SCAN_CONCURRENCY * 4, most === Number.POSITIVE_INFINITY ? 1024 : most),
    );
    next += batch.length;
    for (const r of await Promise.all(batch.map(row))) if (r) rows.push(r);
  }
  return rows.slice(0, most);
}

/** Reads once the records of the messages in `states` not summarised since open. */
export async function summarizeMissing(
  index: MessageIndex<FileData | undefined>,
  states: readonly QueueState[] | undefined,
  read: (entry: FileEntry) => Promise<MessageRecord | undefined>,
): Promise<void> {
  const missing: FileEntry[] = [];
  index.each(states, (e) => {
    if (!isSummarized(e)) missing.push(e);
  });
  await eachLimited(missing, SCAN_CONCURRENCY, async (entry) => {
    const record = await read(entry);
    if (record && !isSummarized(entry)) summarizeInto(entry, record);
  });
}

/** How a queue operation acts on one message. */
export interface Operation {
  /** Runs `fn` after every earlier operation on the message (the store's chain). */
  serial<R>(entry: FileEntry, fn: () => Promise<R>): Promise<R>;
  /** The operation itself. */
  act(entry: FileEntry): Promise<void>;
}

/**
 * Applies `op` to each selected message that is in one of `states` when its turn
 * comes, and resolves with the IDs it acted on, sorted. An active message's lease is
 * revoked first, so its holder loses every later write. A failure on one message is
 * logged and skips it.
 */
export async function operateOn(
  index: MessageIndex<FileData | undefined>,
  selection: QueueSelection,
  states: readonly QueueState[],
  log: ComponentLogger,
  op: Operation,
): Promise<QueueId[]> {
  const done: QueueId[] = [];
  await eachLimited(index.select(selection), SCAN_CONCURRENCY, async (entry) => {
    if (!states.includes(entry.state)) return;
    if (entry.state === 'active') entry.lease = undefined;
    try {
      const acted = await op.serial(entry, async () => {
        if (!states.includes(entry.state) || index.get(entry.queueId) !== entry) return false;
        await op.act(entry);
        return true;
      });
      if (acted) done.push(entry.queueId);
    } catch (err) {
      log.warning(entry.queueId, `queue operation failed: ${errorMessage(err)}`);
    }
  });
  return done.sort();
}
