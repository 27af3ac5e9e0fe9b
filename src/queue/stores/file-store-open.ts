/**
 * Opening a FileQueueStore's queue directory: the directories checked (or made), the
 * lock taken, the per-message files scanned, the queue journal recovered, and the
 * two put together into one list of messages for the index.
 *
 * Postfix counterpart: `postfix check` and qmgr(8)'s start-up scan (qmgr_scan.c),
 * which takes whatever cleanup(8) and an earlier qmgr left in the queue directories.
 *
 * After a crash the disk is the only truth: a message is in the journal, or in a file,
 * or both — when the move of a journalled message to a file of its own was cut short
 * after the file became durable but before the journal recorded the move. Then the
 * file wins (it was written from the journal's copy with every outcome since) and the
 * journal is told now. Messages left `active` go back to `incoming` either way (the
 * directory is owned by this process, so no one else holds their leases).
 *
 * Does not do: build the index (the store does, from the list), or read any message's
 * record.
 *
 * @module
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ComponentLogger, Logger } from '../../log.js';
import type { Clock, QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import type { QueueState } from '../types.js';
import { STATES, TMP } from './file-store-files.js';
import { lockQueueDirectory, type QueueDirectoryLock } from './file-store-lock.js';
import { prepareQueueDirectories, scanQueueDirectory } from './file-store-scan.js';
import type { HandoffBudget } from './journal/handoff-budget.js';
import { Journal } from './journal/journal.js';
import type { JournalIo } from './journal/journal-io.js';

/** The journal's subdirectory of the queue directory. */
export const JOURNAL_DIRECTORY = 'journal';

/** How the journal is opened, when it is. */
export interface JournalOpening {
  /** New messages go to the journal; false: only what an earlier run left there is read. */
  readonly enabled: boolean;
  readonly segmentSize?: number;
  readonly preallocate?: boolean;
  readonly handoffBudget: HandoffBudget;
  readonly io?: JournalIo;
  readonly logger: Logger;
  /** The store's clock (how long a hand-off frame is kept). */
  readonly clock?: Clock;
}

/** One message found at open. */
export interface FoundMessage {
  readonly queueId: QueueId;
  readonly state: Exclude<QueueState, 'active'>;
  /** For `deferred`: its next attempt time; 0 otherwise. */
  readonly dueAt: number;
}

/** What opening found. */
export interface OpenedQueue {
  readonly lock: QueueDirectoryLock;
  /** The journal, when enabled or when an earlier run left one. */
  readonly journal: Journal | undefined;
  /** Every message, in queue ID (arrival) order. */
  readonly messages: FoundMessage[];
}

/** Opens the queue in `directory`; see the module header. */
export async function openQueueDirectory(
  directory: string,
  log: ComponentLogger,
  journal: JournalOpening,
): Promise<OpenedQueue> {
  const journalDirectory = join(directory, JOURNAL_DIRECTORY);
  const withJournal = journal.enabled || existsSync(journalDirectory);
  await prepareQueueDirectories(
    directory,
    [TMP, ...STATES, ...(withJournal ? [JOURNAL_DIRECTORY] : [])],
    log,
  );
  const lock = await lockQueueDirectory(directory);
  let opened: Journal | undefined;
  try {
    // A file the scan moved to corrupt/ is listed again there: the first sighting counts.
    const inFiles = new Set<QueueId>();
    const messages: FoundMessage[] = [];
    for (const m of await scanQueueDirectory(directory, log)) {
      if (inFiles.has(m.queueId)) continue;
      inFiles.add(m.queueId);
      messages.push(m);
    }
    if (withJournal) {
      opened = await Journal.open({
        directory: journalDirectory,
        handoffBudget: journal.handoffBudget,
        logger: journal.logger,
        ...(journal.segmentSize === undefined ? {} : { segmentSize: journal.segmentSize }),
        ...(journal.preallocate === undefined ? {} : { preallocate: journal.preallocate }),
        ...(journal.io === undefined ? {} : { io: journal.io }),
        ...(journal.clock === undefined ? {} : { clock: journal.clock }),
      });
      const both: QueueId[] = [];
      for (const e of opened.entries()) {
        if (inFiles.has(e.queueId)) both.push(e.queueId);
        else messages.push({ queueId: e.queueId, state: e.state, dueAt: e.dueAt });
      }
      if (both.length > 0) {
        log.info(
          undefined,
          `${both.length} message(s) found both in the queue journal and in a file of their own: the files win`,
        );
        await Promise.all(both.map((id) => opened!.markMoved(id)));
      }
    }
    messages.sort((a, b) => (a.queueId < b.queueId ? -1 : a.queueId > b.queueId ? 1 : 0));
    return { lock, journal: opened, messages };
  } catch (err) {
    await opened?.close().catch((e: unknown) => {
      log.warning(undefined, `closing the queue journal: ${errorMessage(e)}`);
    });
    await lock.release().catch(() => undefined);
    throw err;
  }
}
