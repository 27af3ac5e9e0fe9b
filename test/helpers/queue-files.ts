/** Lists what a FileQueueStore directory holds, for tests that check nothing was queued. */

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

const STATES = ['incoming', 'active', 'deferred', 'hold', 'corrupt', 'maildrop'];

/** Files in the queue's message directories (and the maildrop), as `state/name`. */
export async function queuedFiles(queueDirectory: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, label: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${label}/${e.name}`);
      else out.push(`${label}/${e.name}`);
    }
  };
  for (const state of STATES) await walk(join(queueDirectory, state), state);
  return out.sort();
}
