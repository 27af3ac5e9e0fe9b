import { createRequire } from 'node:module';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { newLeaseToken } from '../../../src/queue/lease.js';

// Counts the draws from the system's CSPRNG behind the lease tokens. The store loads
// node:crypto when it first needs it (src/builtin.ts), as this module object.
const crypto = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
const fill = vi.spyOn(crypto, 'randomFillSync');
const bytes = vi.spyOn(crypto, 'randomBytes');
const draws = {
  get fill() {
    return fill.mock.calls.length;
  },
  get bytes() {
    return bytes.mock.calls.length;
  },
};
afterAll(() => vi.restoreAllMocks());

describe('newLeaseToken', () => {
  it('gives distinct 128-bit hex tokens, drawing random bytes once per 256 of them', () => {
    vi.clearAllMocks();
    const tokens = Array.from({ length: 1000 }, () => newLeaseToken());
    for (const t of tokens) expect(t).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(tokens).size).toBe(1000);
    // 1000 tokens of 16 bytes from 4096-byte pools: 4 draws (5 if a pool was part used).
    expect(draws.bytes).toBe(0);
    expect(draws.fill).toBeGreaterThanOrEqual(3);
    expect(draws.fill).toBeLessThanOrEqual(5);
  });
});
