import { describe, expect, it } from 'vitest';
import { mailDate } from '../../../src/util/mail-date.js';

describe('mailDate (RFC 5322 date-time, UTC)', () => {
  it('dates each moment by its own second, in any order of asking', () => {
    const t = Date.UTC(2026, 10, 29, 12, 0, 0);
    expect(mailDate(t)).toBe('Sun, 29 Nov 2026 12:00:00 +0000 (UTC)');
    expect(mailDate(t + 999)).toBe('Sun, 29 Nov 2026 12:00:00 +0000 (UTC)');
    expect(mailDate(t + 1000)).toBe('Sun, 29 Nov 2026 12:00:01 +0000 (UTC)');
    expect(mailDate(t - 1)).toBe('Sun, 29 Nov 2026 11:59:59 +0000 (UTC)');
    expect(mailDate(t + 86_400_000 * 3)).toBe('Wed, 2 Dec 2026 12:00:00 +0000 (UTC)');
    expect(mailDate(t)).toBe('Sun, 29 Nov 2026 12:00:00 +0000 (UTC)');
  });
});
