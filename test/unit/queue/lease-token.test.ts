import { describe, expect, it, vi } from 'vitest';

// Counts the draws from the system's CSPRNG behind the lease tokens.
const draws = vi.hoisted(() => ({ fill: 0, bytes: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    randomFillSync: ((buf: Buffer) => {
      draws.fill++;
      return real.randomFillSync(buf);
    }) as typeof real.randomFillSync,
    randomBytes: ((n: number) => {
      draws.bytes++;
      return real.randomBytes(n);
    }) as typeof real.randomBytes,
  };
});

const { newLeaseToken } = await import('../../../src/queue/lease.js');

describe('newLeaseToken', () => {
  it('gives distinct 128-bit hex tokens, drawing random bytes once per 256 of them', () => {
    draws.fill = 0;
    draws.bytes = 0;
    const tokens = Array.from({ length: 1000 }, () => newLeaseToken());
    for (const t of tokens) expect(t).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(tokens).size).toBe(1000);
    // 1000 tokens of 16 bytes from 4096-byte pools: 4 draws (5 if a pool was part used).
    expect(draws.bytes).toBe(0);
    expect(draws.fill).toBeGreaterThanOrEqual(3);
    expect(draws.fill).toBeLessThanOrEqual(5);
  });
});
