import { describe, expect, it } from 'vitest';
import { isQueueId, QueueIdGenerator } from '../../src/queue-id.js';

describe('QueueIdGenerator', () => {
  it('makes IDs of 9 time digits and the node tag, strictly increasing, dated by the clock', () => {
    const ids = new QueueIdGenerator('Tag01');
    const before = Date.now();
    const made: string[] = [];
    for (let i = 0; i < 20_000; i++) made.push(ids.next());
    const after = Date.now();
    for (const id of made) {
      expect(id).toMatch(/^[0-9A-Za-z]{9}Tag01$/);
      expect(isQueueId(id)).toBe(true);
    }
    for (let i = 1; i < made.length; i++) expect(made[i]! > made[i - 1]!).toBe(true);
    expect(QueueIdGenerator.timeOf(made[0]!)).toBeGreaterThanOrEqual(before);
    // Strictly increasing microseconds may run ahead of the clock by one per ID.
    expect(QueueIdGenerator.timeOf(made.at(-1)!)).toBeLessThanOrEqual(after + 20);
  });

  it('writes a given clock the same way, in base 62 with ASCII-ordered digits', () => {
    const t = 1_796_626_927_289_123n;
    const ids = new QueueIdGenerator('ABCDE', () => t);
    const first = ids.next();
    expect(first.slice(9)).toBe('ABCDE');
    expect(QueueIdGenerator.timeOf(first)).toBe(Number(t / 1000n));
    // The same microsecond again: one more.
    const second = ids.next();
    expect(second > first).toBe(true);
    let v = 0n;
    for (const ch of second.slice(0, 9)) {
      v =
        v * 62n +
        BigInt('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'.indexOf(ch));
    }
    expect(v).toBe(t + 1n);
  });

  it('refuses a node tag that is not 5 characters of [0-9A-Za-z]', () => {
    expect(() => new QueueIdGenerator('abc')).toThrow(/exactly 5 characters/);
    expect(() => new QueueIdGenerator('ab-de')).toThrow(RangeError);
  });
});
