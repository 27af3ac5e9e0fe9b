import { describe, expect, it } from 'vitest';
import { DELAY_BUCKETS, DelayHistogram } from '../../../src/metrics/delay-histogram.js';

describe('DelayHistogram', () => {
  it('counts cumulatively per upper bound, with +Inf last', () => {
    const h = new DelayHistogram();
    for (const s of [0.004, 0.01, 0.3, 7, 100_000, 10_000_000]) h.observe(s);
    const c = h.cumulative();
    expect(c).toHaveLength(DELAY_BUCKETS.length + 1);
    const at = (bound: number) => c[DELAY_BUCKETS.indexOf(bound)];
    expect(at(0.01)).toBe(2); // le is inclusive
    expect(at(0.5)).toBe(3);
    expect(at(10)).toBe(4);
    expect(at(86_400)).toBe(4);
    expect(at(432_000)).toBe(5);
    expect(c.at(-1)).toBe(6);
    expect(h.count).toBe(6);
    expect(h.sum).toBeCloseTo(0.004 + 0.01 + 0.3 + 7 + 100_000 + 10_000_000);
  });

  it('takes negative and non-numbers as zero', () => {
    const h = new DelayHistogram();
    h.observe(-3);
    h.observe(Number.NaN);
    expect(h.cumulative()[0]).toBe(2);
    expect(h.sum).toBe(0);
  });
});
