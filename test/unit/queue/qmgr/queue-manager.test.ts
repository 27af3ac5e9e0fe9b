import { describe, expect, it, vi } from 'vitest';
import type { DeliveryAgent, DeliveryRequest } from '../../../../src/deliver/types.js';
import { SmtpError } from '../../../../src/errors.js';
import { SmtpReply } from '../../../../src/smtp-reply.js';
import { ControlledAgent, MIN, setup, T0 } from './qmgr-harness.js';

/** An agent that answers per recipient from a script and records requests. */
class ScriptedAgent implements DeliveryAgent {
  readonly requests: DeliveryRequest[] = [];
  constructor(
    private readonly answer: (
      address: string,
      attempt: number,
    ) => 'sent' | 'deferred' | 'bounced' | 'silent',
  ) {}
  async deliver(request: DeliveryRequest, reporter: Parameters<DeliveryAgent['deliver']>[1]) {
    this.requests.push(request);
    for (const r of request.recipients) {
      const attempt = this.requests.filter((q) =>
        q.recipients.some((x) => x.address === r.address),
      ).length;
      const a = this.answer(r.address, attempt);
      if (a === 'sent')
        reporter.recipient(r.id, {
          status: 'sent',
          reply: new SmtpReply(250, '2.0.0', 'ok'),
          relay: 'test',
        });
      if (a === 'deferred')
        reporter.recipient(r.id, {
          status: 'deferred',
          reply: new SmtpReply(450, '4.2.0', 'try later'),
          relay: 'test',
        });
      if (a === 'bounced')
        reporter.recipient(r.id, {
          status: 'bounced',
          reply: new SmtpReply(550, '5.1.1', 'no such user'),
          relay: 'test',
        });
    }
  }
}

/** Holds each delivery until its signal aborts, as a real agent does when the manager stops. */
class HangingAgent implements DeliveryAgent {
  readonly requests: DeliveryRequest[] = [];
  readonly #started: (() => void)[] = [];

  async deliver(request: DeliveryRequest): Promise<void> {
    this.requests.push(request);
    for (const w of this.#started.splice(0)) w();
    const { signal } = request;
    if (!signal.aborted)
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  }

  /** Resolves once a delivery has started. */
  started(): Promise<void> {
    if (this.requests.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.#started.push(resolve));
  }
}

describe('QueueManager', () => {
  it('delivers every recipient and removes the message', async () => {
    const agent = new ScriptedAgent(() => 'sent');
    const { qmgr, store, enqueue } = await setup({ smtp: agent });
    await enqueue(['a@x.test', 'b@x.test', 'c@y.test']);
    qmgr.start();
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(2); // grouped by nexthop
    expect((await store.counts()).incoming + (await store.counts()).deferred).toBe(0);
    await qmgr.stop();
  });

  it('groups recipients per request up to the recipient limit', async () => {
    const agent = new ScriptedAgent(() => 'sent');
    const { qmgr, enqueue } = await setup({ smtp: agent }, { defaultDestinationRecipientLimit: 2 });
    await enqueue(['a@x.test', 'b@x.test', 'c@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    expect(agent.requests.map((r) => r.recipients.length)).toEqual([2, 1]);
    await qmgr.stop();
  });

  it('defers with age-based backoff and retries after the deferred queue is scanned', async () => {
    const agent = new ScriptedAgent((_a, attempt) => (attempt < 3 ? 'deferred' : 'sent'));
    const { qmgr, store, clock, enqueue } = await setup({ smtp: agent });
    await enqueue(['a@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    // First failure at age 0: next attempt after minimalBackoffTime (300 s).
    expect(await store.nextDueTime()).toBe(T0 + 5 * MIN);
    expect((await store.counts()).deferred).toBe(1);
    await clock.advance(5 * MIN);
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(2);
    // Second failure at age 300 s: delay = age = 300 s (clamped to [300 s, 4000 s]).
    expect(await store.nextDueTime()).toBe(T0 + 10 * MIN);
    await clock.advance(5 * MIN);
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(3);
    expect((await store.counts()).deferred).toBe(0);
    await qmgr.stop();
  });

  it('clamps the backoff at maximalBackoffTime for old mail', async () => {
    const agent = new ScriptedAgent(() => 'deferred');
    const { qmgr, store, clock, enqueue } = await setup({ smtp: agent });
    await enqueue(['a@x.test'], { arrivalTime: T0 - 3 * 3600_000 });
    qmgr.start();
    await qmgr.whenIdle();
    expect(await store.nextDueTime()).toBe(clock.now() + 4000_000);
    await qmgr.stop();
  });

  it('returns expired mail to the sender once past maximalQueueLifetime', async () => {
    const agent = new ScriptedAgent(() => 'deferred');
    const { qmgr, store, notifier, enqueue, clock } = await setup(
      { smtp: agent },
      { maximalQueueLifetime: '1h' },
    );
    await enqueue(['a@x.test'], { arrivalTime: T0 - 2 * 3600_000 });
    qmgr.start();
    await qmgr.whenIdle();
    expect(notifier.calls).toEqual([
      { queueId: expect.any(String), kind: 'failure', recipients: ['a@x.test'] },
    ]);
    const c = await store.counts();
    expect(c.incoming + c.deferred + c.active).toBe(0);
    expect(clock.now()).toBe(T0);
    await qmgr.stop();
  });

  it('sends one failure notice for bounced recipients and keeps retrying the deferred ones', async () => {
    const agent = new ScriptedAgent((a) =>
      a.startsWith('bad') ? 'bounced' : a.startsWith('slow') ? 'deferred' : 'sent',
    );
    const { qmgr, store, notifier, enqueue, clock } = await setup({ smtp: agent });
    await enqueue(['bad@x.test', 'slow@x.test', 'good@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    expect(notifier.calls).toHaveLength(1);
    expect(notifier.calls[0]!.recipients).toEqual(['bad@x.test']);
    expect((await store.counts()).deferred).toBe(1);
    await clock.advance(5 * MIN);
    await qmgr.whenIdle();
    // The bounce was not sent twice, and only the deferred recipient was retried.
    expect(notifier.calls).toHaveLength(1);
    expect(agent.requests.at(-1)!.recipients.map((r) => r.address)).toEqual(['slow@x.test']);
    await qmgr.stop();
  });

  it('defers with 4.3.5 when no agent serves the transport', async () => {
    const { qmgr, store, enqueue } = await setup({});
    await enqueue(['a@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    const [entry] = await store.list({ states: ['deferred'] });
    expect(entry?.recipients[0]?.reason).toMatch(/mail transport unavailable/);
    await qmgr.stop();
  });

  it('defers recipients an agent did not report, or when it throws', async () => {
    const silent = new ScriptedAgent(() => 'silent');
    const thrower: DeliveryAgent = {
      async deliver() {
        throw new SmtpError(new SmtpReply(554, '5.3.0', 'agent exploded'));
      },
    };
    const { qmgr, store, enqueue, notifier } = await setup({ smtp: silent, local: thrower });
    await enqueue(['a@x.test', 'b@local.test']);
    qmgr.start();
    await qmgr.whenIdle();
    const [entry] = await store.list({ states: ['deferred'] });
    const reasons = entry!.recipients.map((r) => r.reason);
    expect(reasons.some((r) => /no outcome reported/.test(r ?? ''))).toBe(true);
    expect(reasons.some((r) => /agent exploded/.test(r ?? ''))).toBe(true);
    expect(notifier.calls).toHaveLength(0);
    await qmgr.stop();
  });

  it('keeps per-destination concurrency within the limit', async () => {
    const agent = new ControlledAgent(() => 'sent');
    const { qmgr, enqueue } = await setup(
      { smtp: agent },
      { defaultDestinationConcurrencyLimit: 3 },
    );
    for (let i = 0; i < 12; i++) await enqueue([`u${i}@x.test`]);
    qmgr.start();
    // Each delivery is let go only once the window is full again, so the limit is tested
    // every time: a fourth delivery would start before the release.
    for (let left = 12; left > 0; left--) {
      await vi.waitFor(() => expect(agent.held.length).toBeGreaterThanOrEqual(Math.min(3, left)));
      await agent.releaseOne();
    }
    await qmgr.whenIdle();
    expect(agent.requests).toHaveLength(12);
    expect(agent.maxInFlight.get('x.test')).toBe(3);
    await qmgr.stop();
  });

  it('turns bounces into deferrals with softBounce', async () => {
    const agent = new ScriptedAgent(() => 'bounced');
    const { qmgr, store, enqueue, notifier } = await setup({ smtp: agent }, { softBounce: true });
    await enqueue(['a@x.test']);
    qmgr.start();
    await qmgr.whenIdle();
    const [entry] = await store.list({ states: ['deferred'] });
    expect(entry?.recipients[0]?.reason).toMatch(/no such user/);
    expect(notifier.calls).toHaveLength(0);
    await qmgr.stop();
  });

  it('releases unfinished mail on stop: the waiting and the aborted message are both due at once', async () => {
    const agent = new HangingAgent();
    const { qmgr, store, clock, enqueue } = await setup(
      { smtp: agent },
      {},
      { smtp: { destinationConcurrencyLimit: 1, initialDestinationConcurrency: 1 } },
    );
    const first = await enqueue(['a@x.test']);
    const second = await enqueue(['b@x.test']);
    qmgr.start();
    await agent.started();
    // Both are claimed; the second waits behind the first for the destination.
    expect((await store.counts()).active).toBe(2);
    // The grace period runs on the manager's clock: once it is over, the delivery is aborted.
    const stopping = qmgr.stop(60_000);
    await clock.advance(60_000);
    await stopping;
    expect(agent.requests.map((r) => r.queueId)).toEqual([first]);
    expect(agent.requests[0]!.signal.aborted).toBe(true);
    expect((await store.counts()).active).toBe(0);
    // Whoever claims next (a restart) retries both at once, as qmgr retries what it
    // finds in active/: the aborted attempt keeps its recipient pending with the reason,
    // and is not held back by the minimal backoff.
    const now = clock.now();
    const claimed = await store.claim({ owner: 'restart', limit: 10, now, leaseMs: MIN });
    expect(claimed.map((c) => c.record.queueId).sort()).toEqual([first, second].sort());
    const aborted = claimed.find((c) => c.record.queueId === first)!;
    expect(aborted.record.recipients.map((r) => [r.state, r.last?.text])).toEqual([
      ['pending', 'no outcome reported; will retry'],
    ]);
    const waiting = claimed.find((c) => c.record.queueId === second)!;
    expect(waiting.record.recipients.map((r) => r.state)).toEqual(['pending']);
  });
  it('a delivery reading its signal only after the stop aborted it, through a spread copy, finds it aborted', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    let go!: () => void;
    const gate = new Promise<void>((resolve) => {
      go = resolve;
    });
    const seen: boolean[] = [];
    const agent: DeliveryAgent = {
      async deliver(request) {
        started();
        await gate;
        // A wrapping agent hands on a copy; the signal is read from it only now.
        const copy: DeliveryRequest = { ...request, recipients: request.recipients };
        seen.push(copy.signal.aborted, request.signal.aborted);
      },
    };
    const { qmgr, clock, enqueue } = await setup({ smtp: agent });
    await enqueue(['a@x.test']);
    qmgr.start();
    await running;
    const stopping = qmgr.stop(60_000);
    await clock.advance(60_000);
    go();
    await stopping;
    expect(seen).toEqual([true, true]);
  });
});
