/**
 * StatementBatcher (calls made together go out as one batch, each caller gets its own
 * result) and isConnectionError (which failures mean the database cannot be reached).
 *
 * @module
 */

import { describe, expect, it, vi } from 'vitest';
import {
  type BatcherOptions,
  StatementBatcher,
} from '../../../../src/queue/stores/postgres-store-batch.js';
import {
  isConnectionError,
  QueueUnavailableError,
} from '../../../../src/queue/stores/postgres-store-db.js';

/** A run function that records its batches and answers when told to. */
function recorder() {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  const run = (items: readonly number[]) => {
    batches.push([...items]);
    return new Promise<(number | Error)[]>((resolve) => {
      pending.push(() => resolve(items.map((i) => (i < 0 ? new Error(`bad ${i}`) : i * 10))));
    });
  };
  const answer = async () => {
    while (pending.length === 0) await new Promise((r) => setImmediate(r));
    pending.shift()!();
  };
  return { batches, run, answer };
}

/** A batcher that answers each item with itself, with `options`, and its batches. */
function echoing(options: Omit<BatcherOptions<number, number>, 'run'> = {}) {
  const batches: number[][] = [];
  const b = new StatementBatcher<number, number>({
    run: async (items) => {
      batches.push([...items]);
      return [...items];
    },
    ...options,
  });
  return { b, batches };
}

/** A batcher that gathers for 30 ms and answers each item with itself, and its batches. */
function gathering() {
  return echoing({ gatherMs: 30 });
}

describe('StatementBatcher', () => {
  it('sends calls made in one turn as one batch and settles each with its own result', async () => {
    const r = recorder();
    const b = new StatementBatcher<number, number>({ run: r.run });
    const results = Promise.allSettled([1, 2, -3, 4].map((i) => b.submit(i)));
    await r.answer();
    const settled = await results;
    expect(r.batches).toEqual([[1, 2, -3, 4]]);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : 'rejected'))).toEqual([
      10,
      20,
      'rejected',
      40,
    ]);
  });

  it('gathers calls made while a batch is in flight into the next one', async () => {
    const r = recorder();
    const b = new StatementBatcher<number, number>({ run: r.run, maxInFlight: 1 });
    const first = b.submit(1);
    await new Promise((res) => setImmediate(res));
    expect(r.batches).toEqual([[1]]);
    const later = [2, 3, 4].map((i) => b.submit(i));
    await new Promise((res) => setImmediate(res));
    // Still one in flight: the others wait for it.
    expect(r.batches).toEqual([[1]]);
    await r.answer();
    await first;
    await r.answer();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
    expect(r.batches).toEqual([[1], [2, 3, 4]]);
    expect(b.batches).toBe(2);
  });

  it('caps a batch by items and by weight, one item always fitting', async () => {
    const r = recorder();
    const b = new StatementBatcher<number, number>({
      run: r.run,
      maxInFlight: 5,
      maxItems: 3,
      weight: (i) => i,
      maxWeight: 10,
    });
    const all = Promise.all([1, 2, 3, 4, 20, 5].map((i) => b.submit(i)));
    for (let i = 0; i < 4; i++) await r.answer();
    await all;
    expect(r.batches).toEqual([[1, 2, 3], [4], [20], [5]]);
  });

  it('with gatherMs, waits for calls made shortly after the first before sending', async () => {
    const { b, batches } = gathering();
    const first = b.submit(1);
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([]);
    const second = b.submit(2);
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(batches).toEqual([[1, 2]]);
  });

  it('hands the items waiting for a batch to another statement, which settles each', async () => {
    const { b, batches } = gathering();
    expect(b.takeWaiting(10)).toBeUndefined();
    const calls = [1, 2, 3].map((i) => b.submit(i));
    const taken = b.takeWaiting(2);
    expect(taken?.items).toEqual([1, 2]);
    taken!.settle([10, new Error('lost')]);
    const settled = await Promise.allSettled(calls);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : 'rejected'))).toEqual([
      10,
      'rejected',
      3,
    ]);
    // Only the one left went out in a batch of its own.
    expect(batches).toEqual([[3]]);
    const more = [4, 5].map((i) => b.submit(i));
    b.takeWaiting(5)!.settle(new Error('unreachable'));
    expect((await Promise.allSettled(more)).map((s) => s.status)).toEqual(['rejected', 'rejected']);
  });

  it('an item after another statement took the waiting ones gathers for its own full wait', async () => {
    vi.useFakeTimers();
    try {
      const { b, batches } = gathering();
      const first = b.submit(1);
      b.takeWaiting(5)!.settle([1]);
      expect(await first).toBe(1);
      await vi.advanceTimersByTimeAsync(20);
      const second = b.submit(2);
      // 35 ms after the first item: its wait would have sent the second one already.
      await vi.advanceTimersByTimeAsync(15);
      expect(batches).toEqual([]);
      await vi.advanceTimersByTimeAsync(20);
      expect(batches).toEqual([[2]]);
      expect(await second).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('with expected, a batch waits for the items on their way and goes once they have joined', async () => {
    // Two more writes are on their way; each stops being expected as it is submitted.
    let onTheirWay = 2;
    const { b, batches } = echoing({
      expected: () => onTheirWay,
      // Long: the batch must go because they joined, not because the wait ran out.
      expectedMs: 60_000,
    });
    const submit = (i: number) => {
      const p = b.submit(i);
      if (i > 1) onTheirWay--;
      return p;
    };
    const first = submit(1);
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([]);
    const second = submit(2);
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([]);
    const third = submit(3);
    expect(await Promise.all([first, second, third])).toEqual([1, 2, 3]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('with expected, waits no longer than expectedMs for items that never come', async () => {
    const { b, batches } = echoing({ expected: () => 1, expectedMs: 5 });
    const first = b.submit(1);
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([]);
    expect(await first).toBe(1);
    expect(batches).toEqual([[1]]);
  });

  it('with expected, a full batch goes at once', async () => {
    const { b, batches } = echoing({ maxItems: 2, expected: () => 5, expectedMs: 60_000 });
    expect(await Promise.all([b.submit(1), b.submit(2)])).toEqual([1, 2]);
    expect(batches).toEqual([[1, 2]]);
  });

  /** A batcher with company waits (long: only an item joining may end them) and its batches. */
  function company(windowMs = 60_000) {
    let onTheirWay = 0;
    const { b, batches } = echoing({
      expected: () => onTheirWay,
      expectedMs: 60_000,
      companyMs: 60_000,
      companyWindowMs: windowMs,
    });
    const setOnTheirWay = (n: number) => {
      onTheirWay = n;
    };
    return { b, batches, setOnTheirWay };
  }

  it('with companyMs, a lone item waits for company when it had some of late, then for what is on its way', async () => {
    const { b, batches, setOnTheirWay } = company();
    // Two writers commit together: company.
    expect(await Promise.all([b.submit(1), b.submit(2)])).toEqual([1, 2]);
    // Then one commits alone, nothing on its way: it waits.
    const third = b.submit(3);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[1, 2]]);
    // The first to join has another writer behind it: the batch waits for that one too.
    setOnTheirWay(1);
    const fourth = b.submit(4);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[1, 2]]);
    setOnTheirWay(0);
    const fifth = b.submit(5);
    expect(await Promise.all([third, fourth, fifth])).toEqual([3, 4, 5]);
    expect(batches).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
  });

  it('with companyMs, a lone writer never waits: its next item cannot come before this one is done', async () => {
    const { b, batches } = company();
    for (const i of [1, 2, 3]) expect(await b.submit(i)).toBe(i);
    expect(batches).toEqual([[1], [2], [3]]);
  });

  it('with companyMs, company older than companyWindowMs no longer makes a lone item wait', async () => {
    const { b, batches } = company(1);
    expect(await Promise.all([b.submit(1), b.submit(2)])).toEqual([1, 2]);
    const since = performance.now();
    while (performance.now() - since <= 2) await new Promise((r) => setImmediate(r));
    expect(await b.submit(3)).toBe(3);
    expect(batches).toEqual([[1, 2], [3]]);
  });

  it('fails every item of a batch whose run throws, and goes on with the next', async () => {
    let calls = 0;
    const b = new StatementBatcher<number, number>({
      run: async (items) => {
        calls++;
        if (calls === 1) throw new Error('connection lost');
        return items.map((i) => i);
      },
    });
    const failed = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(failed.map((f) => f.status)).toEqual(['rejected', 'rejected']);
    expect(await b.submit(3)).toBe(3);
  });
});

describe('isConnectionError', () => {
  it.each([
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5432' }, true],
    [{ code: 'ECONNRESET', message: 'read ECONNRESET' }, true],
    [{ code: '57P01', message: 'terminating connection due to administrator command' }, true],
    [{ code: '57P03', message: 'the database system is starting up' }, true],
    [{ code: '08006', message: 'connection failure' }, true],
    [{ message: 'Connection terminated unexpectedly' }, true],
    [{ message: 'timeout exceeded when trying to connect' }, true],
    [new QueueUnavailableError('connect ECONNREFUSED'), true],
    [{ code: '23505', message: 'duplicate key value violates unique constraint' }, false],
    [{ code: '42P01', message: 'relation "x" does not exist' }, false],
    [{ code: '22021', message: 'invalid byte sequence for encoding "UTF8": 0x00' }, false],
    [new Error('an outcome names a recipient the message does not have'), false],
    [undefined, false],
  ])('%o → %s', (err, expected) => {
    expect(isConnectionError(err)).toBe(expected);
  });
});
