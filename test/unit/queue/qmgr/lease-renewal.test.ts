import { describe, expect, it } from 'vitest';
import { ControlledAgent, MIN, settle, setup } from './qmgr-harness.js';

describe('QueueManager lease renewal', () => {
  it('keeps the leases of a long delivery and of messages waiting behind it alive', async () => {
    // One delivery at a time to x.test: the second message waits in the destination queue.
    const agent = new ControlledAgent(() => 'sent');
    const { qmgr, store, clock, enqueue } = await setup(
      { smtp: agent },
      {},
      { smtp: { destinationConcurrencyLimit: 1, initialDestinationConcurrency: 1 } },
    );
    await enqueue(['a@x.test']);
    await enqueue(['b@x.test']);
    qmgr.start();
    await settle();
    expect(agent.held).toHaveLength(1);
    // Three lease times (300 s each) pass while the first delivery hangs.
    for (let i = 0; i < 30; i++) {
      await clock.advance(0.5 * MIN);
      await settle();
    }
    expect((await store.counts()).active).toBe(2);
    expect(await agent.releaseOne()).toBe(true);
    await settle();
    expect(await agent.releaseOne()).toBe(true);
    await qmgr.whenIdle();
    // Both outcomes were recorded under live leases: nothing is left to retry.
    expect(await store.counts()).toEqual({
      incoming: 0,
      active: 0,
      deferred: 0,
      hold: 0,
      corrupt: 0,
    });
    expect(agent.requests.map((r) => r.recipients[0]!.address)).toEqual(['a@x.test', 'b@x.test']);
    await qmgr.stop();
  });

  it('another owner cannot claim a message whose delivery outlasts the lease time', async () => {
    const agent = new ControlledAgent(() => 'sent');
    const { qmgr, store, clock, enqueue } = await setup({ smtp: agent });
    await enqueue(['a@x.test']);
    qmgr.start();
    await settle();
    const [lease] = (await store.list({ states: ['active'] })).map((e) => e.queueId);
    expect(lease).toBeDefined();
    // A claim by another owner after the lease time would take it over; renewal prevents it.
    await clock.advance(6 * MIN);
    await settle();
    const stolen = await store.claim({ owner: 'other', limit: 1, now: clock.now(), leaseMs: MIN });
    expect(stolen).toHaveLength(0);
    await agent.releaseOne();
    await qmgr.whenIdle();
    await qmgr.stop();
  });
});
