import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { receivedHeader, traceToken } from '../../../src/cleanup/received-header.js';

/** What a trace token must become: each character outside printable ASCII, and each of `();\`, a `?`. */
function expected(value: string, fallback: string): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    const bad = c < 0x21 || c > 0x7e || '();\\'.includes(ch);
    out += bad ? '?'.repeat(ch.length) : ch;
  }
  out = out.slice(0, 255);
  return out === '' ? fallback : out;
}

describe('traceToken', () => {
  it('keeps clean tokens as they are and makes every other character a ?', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })),
        (v) => {
          expect(traceToken(v, 'fb')).toBe(expected(v, 'fb'));
        },
      ),
      { numRuns: 2000 },
    );
    expect(traceToken('mx.example.com')).toBe('mx.example.com');
    expect(traceToken('a(b)c;d\\e f')).toBe('a?b?c?d?e?f');
    expect(traceToken('')).toBe('unknown');
    expect(traceToken('x'.repeat(300))).toBe('x'.repeat(255));
  });

  it('writes the network form for an SMTP client', () => {
    const h = receivedHeader({
      source: {
        component: 'smtpd',
        protocol: 'ESMTP',
        client: { address: '192.0.2.1', name: 'unknown' },
        helo: 'client (evil)',
      },
      myhostname: 'mx.example.com',
      mailName: 'Postern',
      queueId: 'Q1',
      time: Date.UTC(2026, 10, 29, 12, 0, 0),
      recipient: 'bob@example.com',
    });
    expect(h).toBe(
      'Received: from client??evil? (unknown [192.0.2.1])\r\n' +
        '\tby mx.example.com (Postern) with ESMTP id Q1\r\n' +
        '\tfor <bob@example.com>; Sun, 29 Nov 2026 12:00:00 +0000 (UTC)\r\n',
    );
  });
});
