/**
 * The FileQueueStore's start-up scan: what is in each queue directory, so the index
 * can be built without reading any message file.
 *
 * Postfix counterpart: qmgr(8) at start-up (qmgr_scan.c) and postsuper(1)'s repair of
 * `active/`: files left in `active/` by a process that died go back to `incoming/`
 * (the directory is owned by one process, so no one else holds their leases); leftover
 * `tmp/` files of writers that never committed are removed; a deferred file's mtime is
 * its next attempt time.
 *
 * Each file is lstat'ed, as `postfix check` walks the queue: anything that is not a
 * regular file (a FIFO, a device, a symbolic link, a directory), and any file owned by
 * another uid, is moved to `corrupt/` with a warning, never opened; a queue file that
 * others may read or write is made 0600 with a warning.
 *
 * SECURITY: a name that is not a queue ID is never indexed (it is logged and left).
 * Nothing here opens a file, so nothing can block on a FIFO or follow a link.
 *
 * @module
 */

import { promises as fs, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { ComponentLogger } from '../../log.js';
import { isQueueId } from '../../queue-id.js';
import type { QueueId } from '../../types.js';
import { eachLimited } from '../../util/each-limited.js';
import { errorMessage } from '../../util/error-message.js';
import { notRegularKind } from '../../util/safe-open.js';
import { octal, securePath } from '../../util/secure-path.js';
import { QUEUE_DIRECTORY_SPEC, QUEUE_FILE_MODE, STATE_DIRECTORY_SPEC } from '../queue-modes.js';
import type { QueueState } from '../types.js';

/** Files stat'ed or renamed at once. */
const SCAN_CONCURRENCY = 32;

/** One message found by the scan. */
export interface ScannedMessage {
  readonly queueId: QueueId;
  readonly state: Exclude<QueueState, 'active'>;
  /** For `deferred`: the file's mtime, its next attempt time; 0 otherwise. */
  readonly dueAt: number;
}

/**
 * Makes the queue directory and its `subdirectories` where missing, and checks and
 * fixes the owner and mode of each (queue-modes.ts), as `postfix check` does.
 *
 * @throws ConfigError when one of them belongs to another user or is not a directory
 */
export async function prepareQueueDirectories(
  directory: string,
  subdirectories: readonly string[],
  log: ComponentLogger,
): Promise<void> {
  await securePath(directory, QUEUE_DIRECTORY_SPEC, log, { create: true });
  for (const dir of subdirectories)
    await securePath(join(directory, dir), STATE_DIRECTORY_SPEC, log, { create: true });
}

/**
 * Scans `directory`: clears `tmp/`, moves `active/` back to `incoming/`, and lists
 * incoming, hold, corrupt and deferred messages, each queue in queue ID order (which
 * is arrival order).
 */
export async function scanQueueDirectory(
  directory: string,
  log: ComponentLogger,
): Promise<ScannedMessage[]> {
  const names = async (dir: string): Promise<string[]> => {
    const good: string[] = [];
    for (const name of await fs.readdir(join(directory, dir))) {
      if (isQueueId(name)) good.push(name);
      else log.warning(undefined, `ignoring ${dir}/${name.slice(0, 60)}: not a queue file name`);
    }
    return good.sort();
  };
  for (const name of await fs.readdir(join(directory, 'tmp'))) {
    await fs.rm(join(directory, 'tmp', name), { force: true, recursive: true });
  }
  const active = await names('active');
  await eachLimited(active, SCAN_CONCURRENCY, async (id) => {
    await fs.rename(join(directory, 'active', id), join(directory, 'incoming', id));
  });
  if (active.length > 0) log.info(undefined, `released ${active.length} message(s) left active`);

  const out: ScannedMessage[] = [];
  for (const state of ['incoming', 'hold', 'corrupt', 'deferred'] as const) {
    const ids = await names(state);
    const stats = new Map<QueueId, Stats>();
    await eachLimited(ids, SCAN_CONCURRENCY, async (id) => {
      const st = await fs.lstat(join(directory, state, id)).catch(() => undefined);
      if (st) stats.set(id, st);
    });
    for (const queueId of ids) {
      const st = stats.get(queueId);
      if (!st) continue; // gone meanwhile
      const trouble = await checkQueueFile(directory, state, queueId, st, log);
      if (trouble === 'corrupt') out.push({ queueId, state: 'corrupt', dueAt: 0 });
      else out.push({ queueId, state, dueAt: state === 'deferred' ? Math.round(st.mtimeMs) : 0 });
    }
  }
  return out;
}

/**
 * Checks one queue file's type, owner and mode; moves it to `corrupt/` when it cannot
 * be a queue file of ours, fixes a loose mode. Resolves with 'corrupt' when it was (or
 * is) in corrupt/.
 */
async function checkQueueFile(
  directory: string,
  state: Exclude<QueueState, 'active'>,
  queueId: QueueId,
  st: Stats,
  log: ComponentLogger,
): Promise<'ok' | 'corrupt'> {
  const path = join(directory, state, queueId);
  const kind = notRegularKind(st);
  const euid = process.geteuid?.();
  const foreign = euid !== undefined && st.uid !== euid;
  if (kind || foreign) {
    const what = kind
      ? `a ${kind}, not a queue file`
      : `owned by uid ${st.uid}, not by uid ${euid} that owns the queue`;
    if (state === 'corrupt') {
      log.warning(queueId, `corrupt/${queueId} is ${what}; left in corrupt/`);
      return 'corrupt';
    }
    try {
      await fs.rename(path, join(directory, 'corrupt', queueId));
      log.warning(queueId, `${state}/${queueId} is ${what}; moved to corrupt/`);
    } catch (err) {
      log.error(queueId, `${state}/${queueId} is ${what}; cannot move it: ${errorMessage(err)}`);
    }
    return 'corrupt';
  }
  const mode = st.mode & 0o7777;
  if ((mode & ~QUEUE_FILE_MODE) !== 0) {
    try {
      await fs.chmod(path, QUEUE_FILE_MODE);
      log.warning(
        queueId,
        `${state}/${queueId} had mode ${octal(mode)}, looser than ${octal(QUEUE_FILE_MODE)}: changed`,
      );
    } catch (err) {
      log.error(queueId, `${state}/${queueId} has mode ${octal(mode)}: ${errorMessage(err)}`);
    }
  }
  return state === 'corrupt' ? 'corrupt' : 'ok';
}
