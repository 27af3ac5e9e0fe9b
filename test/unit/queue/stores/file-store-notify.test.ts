/**
 * FileQueueStore's onAvailable listeners run after a commit has returned to its
 * caller: the receiver's 250 goes out before the queue manager's claim pass starts,
 * with the journal and with a file per message.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Logger } from '../../../../src/log.js';
import { FileQueueStore } from '../../../../src/queue/stores/file-store.js';
import { tempDir } from './journal/journal-harness.js';
import { commitMessage } from './store-conformance.js';

const open: FileQueueStore[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

describe('FileQueueStore onAvailable', () => {
  for (const journal of [true, false]) {
    it(`tells listeners after the committing caller has resumed (${journal ? 'journal' : 'file per message'})`, async () => {
      const directory = await tempDir('postern-notify-');
      dirs.push(directory);
      const store = new FileQueueStore({
        directory,
        logger: new Logger([]),
        ...(journal ? {} : { journal: false }),
      });
      await store.open();
      open.push(store);
      const order: string[] = [];
      const told = new Promise<void>((resolve) =>
        store.onAvailable(() => {
          order.push('listener');
          resolve();
        }),
      );
      const id = await commitMessage(store);
      order.push(`committed ${id}`);
      await told;
      expect(order).toEqual([`committed ${id}`, 'listener']);
    });
  }
});
