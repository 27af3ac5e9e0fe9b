/**
 * MemoryQueueStore: the conformance suite (a crash is `crash()`), plus what only the
 * memory store promises: a crash loses lazy `sent` marks and leases, and a crashed
 * instance refuses further use.
 *
 * @module
 */

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.js';
import { LeaseLostError, QueueStoreError } from '../../../../src/errors.js';
import { MemoryQueueStore } from '../../../../src/queue/stores/memory-store.js';
import { commitMessage, outcome, recipients, runStoreConformance } from './store-conformance.js';

runStoreConformance('MemoryQueueStore', async () => {
  let current = new MemoryQueueStore();
  await current.open();
  return {
    store: current,
    reopen: async () => {
      current = current.crash();
      await current.open();
      return current;
    },
    cleanup: async () => {
      await current.close();
    },
  };
});

describe('MemoryQueueStore', () => {
  it('a crash loses sent marks not yet flushed, so the recipient is tried again', async () => {
    const store = new MemoryQueueStore();
    await store.open();
    await commitMessage(store, 'x', { recipients: recipients(2) });
    const [m] = await store.claim({ owner: 'a', limit: 1, now: Date.now(), leaseMs: 60_000 });
    await store.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('sent') }]);
    const listed = await store.list();
    expect(listed[0]?.recipients[0]?.state).toBe('sent');
    const next = store.crash();
    await next.open();
    const [again] = await next.claim({ owner: 'a', limit: 1, now: Date.now(), leaseMs: 60_000 });
    expect(again?.record.recipients.map((r) => r.state)).toEqual(['pending', 'pending']);
    await next.close();
  });

  it('a durable outcome carries the sent marks made before it', async () => {
    const store = new MemoryQueueStore();
    await store.open();
    await commitMessage(store, 'x', { recipients: recipients(2) });
    const [m] = await store.claim({ owner: 'a', limit: 1, now: Date.now(), leaseMs: 60_000 });
    await store.recordOutcomes(m!.lease, [{ recipientId: 1, outcome: outcome('sent') }]);
    await store.recordOutcomes(m!.lease, [{ recipientId: 2, outcome: outcome('bounced') }]);
    const next = store.crash();
    await next.open();
    const [again] = await next.claim({ owner: 'a', limit: 1, now: Date.now(), leaseMs: 60_000 });
    expect(again?.record.recipients.map((r) => r.state)).toEqual(['sent', 'bounced']);
  });

  it('a crashed instance refuses every call', async () => {
    const store = new MemoryQueueStore();
    await store.open();
    await commitMessage(store);
    const [m] = await store.claim({ owner: 'a', limit: 1, now: Date.now(), leaseMs: 60_000 });
    store.crash();
    await expect(store.counts()).rejects.toBeInstanceOf(QueueStoreError);
    await expect(store.release(m!.lease, { state: 'deferred', dueAt: 0 })).rejects.toBeInstanceOf(
      QueueStoreError,
    );
    await expect(store.create('0000000000abcde')).rejects.toBeInstanceOf(QueueStoreError);
  });

  it('a store crashed twice keeps the same durable state', async () => {
    const first = new MemoryQueueStore();
    await first.open();
    const id = await commitMessage(first);
    const second = first.crash();
    await second.open();
    const third = second.crash();
    await third.open();
    expect((await third.list()).map((r) => r.queueId)).toEqual([id]);
  });

  it('must be opened before use', async () => {
    const store = new MemoryQueueStore();
    await expect(store.counts()).rejects.toThrow(/open\(\)/);
  });

  it('judges lease expiry by the clock it is given', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new MemoryQueueStore({ clock });
    await store.open();
    await commitMessage(store);
    const [m] = await store.claim({ owner: 'a', limit: 1, now: clock.now(), leaseMs: 60_000 });
    await store.renew(m!.lease, clock.now() + 60_000);
    await clock.advance(60_000);
    await expect(store.renew(m!.lease, clock.now() + 60_000)).rejects.toBeInstanceOf(
      LeaseLostError,
    );
  });
});
