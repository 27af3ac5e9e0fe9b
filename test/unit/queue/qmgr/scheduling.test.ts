import { describe, expect, it } from 'vitest';
import { ControlledAgent, MIN, settle, setup, T0 } from './qmgr-harness.js';

describe('QueueManager scheduling', () => {
  it('never runs more than the concurrency window per destination, growing it on success', async () => {
    const agent = new ControlledAgent(() => 'sent');
    const { qmgr, enqueue } = await setup(
      { smtp: agent },
      {},
      { smtp: { destinationConcurrencyLimit: 8 } },
    );
    for (let i = 0; i < 40; i++) await enqueue([`u${i}@slow.test`]);
    qmgr.start();
    await settle(20);
    // Starts at initialDestinationConcurrency (5).
    expect(agent.held).toHaveLength(5);
    let peak = 0;
    for (let i = 0; i < 200 && (await agent.releaseOne()); i++) {
      peak = Math.max(peak, agent.inFlight.get('slow.test') ?? 0);
      await settle(3);
    }
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(40);
    expect(agent.maxInFlight.get('slow.test')).toBe(8);
    expect(peak).toBeLessThanOrEqual(8);
    await qmgr.stop();
  });

  it('a dead destination is deferred without attempts and does not delay a healthy one', async () => {
    const agent = new ControlledAgent((a) => (a.endsWith('@dead.test') ? 'refused' : 'sent'), true);
    const { qmgr, store, enqueue } = await setup({ smtp: agent });
    for (let i = 0; i < 30; i++) {
      await enqueue([`u${i}@dead.test`]);
      await enqueue([`u${i}@healthy.test`]);
    }
    qmgr.start();
    await qmgr.whenIdle();
    const toHealthy = agent.requests.filter((r) => r.nexthop === 'healthy.test');
    const toDead = agent.requests.filter((r) => r.nexthop === 'dead.test');
    expect(toHealthy).toHaveLength(30);
    // Failed cohort limit 1 from a window of 5: a handful of attempts, then none.
    expect(toDead.length).toBeLessThanOrEqual(6);
    const deferred = await store.list({ states: ['deferred'] });
    expect(deferred).toHaveLength(30);
    const suspended = deferred.filter((e) =>
      e.recipients[0]!.reason!.startsWith('delivery temporarily suspended'),
    );
    expect(suspended.length).toBeGreaterThanOrEqual(30 - toDead.length);
    expect(qmgr.destinations()).toEqual([]);
    await qmgr.stop();
  });

  it('a dead destination is tried again after its dead time, and a flush forgets it', async () => {
    let up = false;
    const agent = new ControlledAgent(
      (a) => (a.endsWith('@dead.test') && !up ? 'refused' : 'sent'),
      true,
    );
    const { qmgr, store, enqueue, clock } = await setup({ smtp: agent });
    for (let i = 0; i < 10; i++) await enqueue([`u${i}@dead.test`]);
    qmgr.start();
    await qmgr.whenIdle();
    const attempts = agent.requests.length;
    up = true;
    await enqueue(['late@dead.test']);
    await qmgr.whenIdle();
    expect(agent.requests.length).toBe(attempts); // still dead: no attempt
    await qmgr.flush({ domain: 'dead.test' });
    await qmgr.whenIdle();
    expect((await store.counts()).deferred).toBe(0);
    expect(clock.now()).toBe(T0);
    await qmgr.stop();
  });

  it('a large message does not starve a small one to the same destination', async () => {
    const agent = new ControlledAgent(() => 'sent');
    const { qmgr, enqueue } = await setup(
      { smtp: agent },
      {},
      { smtp: { destinationConcurrencyLimit: 1, destinationRecipientLimit: 2 } },
    );
    const big = await enqueue(Array.from({ length: 100 }, (_, i) => `r${i}@busy.test`));
    qmgr.start();
    await settle(20);
    const small = await enqueue(['one@busy.test']);
    await settle(20);
    for (let i = 0; i < 200 && (await agent.releaseOne()); i++) await settle(3);
    await qmgr.whenIdle();
    // 50 jobs of the big message; the small one starts within two turns of arriving.
    expect(agent.started.filter((id) => id === big)).toHaveLength(50);
    expect(agent.started.indexOf(small)).toBeLessThanOrEqual(3);
    expect(agent.maxInFlight.get('busy.test')).toBe(1);
    await qmgr.stop();
  });

  it('spaces deliveries to one destination by destinationRateDelay', async () => {
    const agent = new ControlledAgent(() => 'sent', true);
    const { qmgr, enqueue, clock } = await setup(
      { smtp: agent },
      {},
      { smtp: { destinationRateDelay: '10s' } },
    );
    for (let i = 0; i < 3; i++) await enqueue([`u${i}@paced.test`]);
    qmgr.start();
    await settle(20);
    expect(agent.requests).toHaveLength(1);
    await clock.advance(10_000);
    await settle(20);
    expect(agent.requests).toHaveLength(2);
    await clock.advance(10_000);
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(3);
    await qmgr.stop();
  });

  it('keeps defer_transports mail queued until a flush', async () => {
    const agent = new ControlledAgent(() => 'sent', true);
    const { qmgr, store, enqueue } = await setup({ smtp: agent }, { deferTransports: ['smtp'] });
    await enqueue(['a@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(0);
    expect((await store.list())[0]!.recipients[0]!.reason).toBe('deferred transport');
    await qmgr.flush();
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(1);
    expect((await store.counts()).deferred).toBe(0);
    await qmgr.stop();
  });

  it('holds at most qmgrMessageRecipientLimit recipients in the active window', async () => {
    const agent = new ControlledAgent(() => 'sent');
    const { qmgr, enqueue } = await setup({ smtp: agent }, { qmgrMessageRecipientLimit: 10 });
    for (let i = 0; i < 30; i++) await enqueue([`a${i}@x${i}.test`]);
    qmgr.start();
    await settle(20);
    expect(qmgr.activeRecipientCount).toBeLessThanOrEqual(10);
    let peak = 0;
    for (let i = 0; i < 100 && (await agent.releaseOne()); i++) {
      peak = Math.max(peak, qmgr.activeRecipientCount);
      await settle(3);
    }
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(30);
    expect(peak).toBeLessThanOrEqual(10);
    await qmgr.stop();
  });
});

describe('QueueManager retries, notices and operations (fake clock)', () => {
  it('retries on the age-based schedule: 5, 10, 20, 40 minutes, then every maximalBackoffTime', async () => {
    const agent = new ControlledAgent(() => 'deferred', true);
    const { qmgr, store, enqueue, clock } = await setup({ smtp: agent });
    await enqueue(['a@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    const attempts: number[] = [];
    for (let i = 0; i < 7; i++) {
      const due = (await store.nextDueTime())!;
      attempts.push((due - T0) / MIN);
      await clock.advance(due - clock.now());
      await qmgr.whenIdle();
    }
    // age doubles until the 4000 s cap (66.67 min) takes over
    expect(attempts.slice(0, 5)).toEqual([5, 10, 20, 40, 80]);
    expect(attempts[5]! - attempts[4]!).toBeCloseTo(4000 / 60);
    expect(attempts[6]! - attempts[5]!).toBeCloseTo(4000 / 60);
    expect(agent.requests).toHaveLength(8);
    await qmgr.stop();
  });

  it('sends one delay warning after delayWarningTime, then a failure notice at expiry', async () => {
    const agent = new ControlledAgent(() => 'deferred', true);
    const { qmgr, store, notifier, enqueue, clock } = await setup(
      { smtp: agent },
      { delayWarningTime: '30m', maximalQueueLifetime: '3h' },
    );
    await enqueue(['a@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    expect(notifier.calls).toEqual([]);
    for (let i = 0; i < 40 && (await store.nextDueTime()) !== undefined; i++) {
      await clock.advance((await store.nextDueTime())! - clock.now());
      await qmgr.whenIdle();
    }
    expect(notifier.calls.map((c) => c.kind)).toEqual(['delay', 'failure']);
    expect((await store.counts()).deferred).toBe(0);
    expect(clock.now() - T0).toBeGreaterThanOrEqual(3 * 60 * MIN);
    await qmgr.stop();
  });

  it('sends a success notice only for NOTIFY=SUCCESS recipients', async () => {
    const agent = new ControlledAgent(() => 'sent', true);
    const { qmgr, notifier, enqueue } = await setup({ smtp: agent });
    await enqueue(['a@x.test'], { notify: ['SUCCESS', 'FAILURE'] });
    await enqueue(['b@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    expect(notifier.calls).toEqual([
      { queueId: expect.any(String), kind: 'success', recipients: ['a@x.test'] },
    ]);
    await qmgr.stop();
  });

  it('hold keeps mail from delivery past its due time; release delivers it at once', async () => {
    let ok = false;
    const agent = new ControlledAgent(() => (ok ? 'sent' : 'deferred'), true);
    const { qmgr, store, enqueue, clock } = await setup({ smtp: agent });
    const id = await enqueue(['a@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    ok = true;
    expect(await qmgr.hold([id], 'investigating')).toEqual([id]);
    await clock.advance(60 * MIN);
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(1);
    expect((await store.counts()).hold).toBe(1);
    expect(await qmgr.release('ALL')).toEqual([id]);
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(2);
    expect((await store.counts()).hold).toBe(0);
    await qmgr.stop();
  });

  it('flush delivers deferred mail now: one destination, then all', async () => {
    let ok = false;
    const agent = new ControlledAgent(() => (ok ? 'sent' : 'deferred'), true);
    const { qmgr, store, enqueue, clock } = await setup({ smtp: agent });
    await enqueue(['a@one.test']);
    await enqueue(['b@two.test']);
    qmgr.start();
    await qmgr.whenIdle();
    ok = true;
    expect(await qmgr.flush({ domain: 'ONE.test' })).toHaveLength(1);
    await qmgr.whenIdle();
    expect((await store.list()).map((e) => e.recipients[0]!.address)).toEqual(['b@two.test']);
    await qmgr.flush();
    await qmgr.whenIdle();
    expect(await store.counts()).toMatchObject({ deferred: 0, incoming: 0, active: 0 });
    expect(clock.now()).toBe(T0);
    await qmgr.stop();
  });

  it('delete and requeue act on queued and active mail', async () => {
    const agent = new ControlledAgent(() => 'sent');
    const { qmgr, store, enqueue } = await setup({ smtp: agent });
    const a = await enqueue(['a@x.test']);
    const b = await enqueue(['b@y.test']);
    qmgr.start();
    await settle(20);
    expect(agent.held).toHaveLength(2);
    expect(await qmgr.delete([a])).toEqual([a]);
    expect(await qmgr.requeue([b])).toEqual([b]);
    while (await agent.releaseOne()) await settle(3);
    await qmgr.whenIdle();
    // b was delivered again after the requeue; a is gone.
    expect(agent.requests.filter((r) => r.queueId === b).length).toBeGreaterThanOrEqual(1);
    expect(await store.counts()).toMatchObject({ incoming: 0, active: 0, deferred: 0 });
    await qmgr.stop();
  });
});
