/**
 * FileQueueStore with its journal: what a queued message costs in memory. A message
 * waiting in the journal is an index entry and a slot of the journal's table; the hand-off
 * keeps at most its byte budget of frames and no record object besides, so heap use
 * per queued message stays small however many messages the budget holds.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileQueueStore } from '../../../../src/queue/stores/file-store.js';
import { liveHeap } from '../../../helpers/live-heap.js';
import { tempDir } from './journal/journal-harness.js';
import { commitMessage } from './store-conformance.js';

describe('FileQueueStore journal memory', () => {
  let directory: string;
  let store: FileQueueStore | undefined;

  beforeEach(async () => {
    directory = await tempDir('postern-journal-memory-');
  });
  afterEach(async () => {
    await store?.close().catch(() => undefined);
    await fs.rm(directory, { recursive: true, force: true });
  });

  it('a queued message costs under 1 KB of heap, its hand-off no record object', async () => {
    // 64 MiB of budget: every frame below is kept for the hand-off.
    const budget = 64 * 1024 * 1024;
    store = new FileQueueStore({ directory, journal: { handoffBytes: budget } });
    await store.open();
    // Frames are kept only while a queue manager listens.
    store.onAvailable(() => undefined);
    const body = Buffer.from('Subject: memory\r\n\r\nsmall\r\n');
    await commitMessage(store, body); // warm up what is made once
    const n = 4000;
    const before = liveHeap();
    for (let i = 0; i < n; i += 200)
      await Promise.all(Array.from({ length: 200 }, () => commitMessage(store!, body)));
    const perMessage = (liveHeap() - before) / n;
    const stats = store.journalStats()!;
    expect(stats.messages).toBe(n + 1);
    // The budget was not the limit: every frame is held.
    expect(stats.handoffRefused).toBe(0);
    expect(stats.handoffBytes).toBeLessThanOrEqual(budget);
    // The index entry with its summary, the journal's side entry for the held frame
    // and the frame's Buffer object: about 680 bytes here. A record object and working
    // state kept per held frame besides came to about 1,800.
    expect(perMessage).toBeLessThan(1000);
  });
});
