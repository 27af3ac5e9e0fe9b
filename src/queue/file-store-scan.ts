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
 * SECURITY: a name that is not a queue ID is never indexed (it is logged and left).
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { ComponentLogger } from '../log.js';
import type { QueueId } from '../types.js';
import { eachLimited } from '../util/each-limited.js';
import { isQueueId } from './queue-id.js';
import type { QueueState } from './types.js';

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
  for (const state of ['incoming', 'hold', 'corrupt'] as const) {
    for (const queueId of await names(state)) out.push({ queueId, state, dueAt: 0 });
  }
  const deferred = await names('deferred');
  const due = new Map<QueueId, number>();
  await eachLimited(deferred, SCAN_CONCURRENCY, async (id) => {
    const st = await fs.stat(join(directory, 'deferred', id)).catch(() => undefined);
    if (st) due.set(id, Math.round(st.mtimeMs));
  });
  for (const queueId of deferred) {
    const dueAt = due.get(queueId);
    if (dueAt !== undefined) out.push({ queueId, state: 'deferred', dueAt });
  }
  return out;
}
