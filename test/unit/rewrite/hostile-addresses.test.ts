/**
 * Issue 5 acceptance 2: a hostile-address corpus never routes mail to a domain other
 * than the one the address means, and never throws an unclassified error. Every input
 * goes the way mail goes: parseMailArgument (smtpd) → Rewriter.rewrite (cleanup) →
 * Rewriter.resolve (qmgr); it either resolves to exactly the expected A-label domain or
 * fails with an SmtpError / ResolveResult.error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMailArgument, splitAddress } from '../../../src/address/address.js';
import { toAsciiDomain } from '../../../src/address/domain.js';
import { SmtpError } from '../../../src/errors.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';

const r = new Rewriter({
  params: resolveParameters({
    myhostname: 'mx.protected.example',
    mydestination: ['mx.protected.example', 'protected.example'],
    relayDomains: ['paypal.com'],
  }),
});

type Outcome = { domain: string; routed: boolean } | 'rejected';

async function route(argument: string): Promise<Outcome> {
  let address: string;
  try {
    address = parseMailArgument(argument, 'recipient').address;
  } catch (err) {
    if (err instanceof SmtpError) return 'rejected';
    throw err;
  }
  const rewritten = r.rewrite(address);
  const res = await r.resolve(rewritten);
  if (res.error) return 'rejected';
  // The recipient the agent gets must name the domain the route was chosen for.
  const routeDomain = toAsciiDomain(splitAddress(res.recipient).domain);
  if (res.addressClass === 'default') expect(res.nexthop).toBe(routeDomain);
  expect(res.recipient).toBe(r.rewrite(res.recipient));
  return { domain: routeDomain ?? '?', routed: res.routed };
}

const long = (n: number, c = 'a'): string => c.repeat(n);
const label63 = long(63);

// [RCPT TO argument, the A-label domain it means (or 'rejected'), routed flag]
const CORPUS: [string, string, boolean?][] = [
  ['<user@example.com>', 'example.com'],
  ['<user@EXAMPLE.com.>', 'example.com'],
  // IDN: every spelling of one name routes to one A-label.
  ['<user@bücher.example>', 'xn--bcher-kva.example'],
  ['<user@BÜCHER.example>', 'xn--bcher-kva.example'],
  ['<user@xn--bcher-kva.example>', 'xn--bcher-kva.example'],
  ['<user@XN--BCHER-KVA.example>', 'xn--bcher-kva.example'],
  ['<user@ｅｘａｍｐｌｅ.com>', 'example.com'],
  ['<user@example。com>', 'example.com'],
  ['<user@مثال.إختبار>', 'xn--mgbh0fb.xn--kgbechtv'],
  // Homographs are other domains and go there, never to the look-alike (relayed paypal.com).
  ['<user@раypal.com>', 'xn--ypal-43d9g.com'],
  ['<user@аррӏе.com>', 'xn--80ak6aa92e.com'],
  ['<user@pаypal.com>', 'xn--pypal-4ve.com'],
  // Bad A-labels and reserved hyphens.
  ['<user@xn--a.com>', 'rejected'],
  ['<user@ab--cd.com>', 'rejected'],
  ['<user@-example.com>', 'rejected'],
  ['<user@example-.com>', 'rejected'],
  // Quoted `@`: the domain is what follows the last, unquoted `@`.
  ['<"user@evil.example"@example.com>', 'example.com', true],
  // Through a local domain the rest is an address again (resolve.c while-local loop):
  // plain user@evil.example, which relay control judges by that domain.
  ['<"user@evil.example"@protected.example>', 'evil.example', false],
  ['<"a\\"b@evil.example"@example.com>', 'example.com', true],
  ['<user%evil.example@example.com>', 'example.com', true],
  ['<evil.example!user@example.com>', 'example.com', true],
  ['<@evil.example:user@example.com>', 'example.com'],
  ['<@evil.example,@evil2.example:user@example.com>', 'example.com'],
  // RFC 5322 comments are not RFC 5321 syntax.
  ['<user(comment)@example.com>', 'rejected'],
  ['<user@example.com(evil.example)>', 'rejected'],
  ['<user@(evil.example)example.com>', 'rejected'],
  // Encoded words are plain atext in a local part and invalid in a domain.
  ['<=?utf-8?q?user?=@example.com>', 'example.com'],
  ['<user@=?utf-8?b?ZXZpbC5leGFtcGxl?=>', 'rejected'],
  ['<=?utf-8?q?evil=40evil.example?=@example.com>', 'example.com'],
  // 64/255 edges (RFC 5321 section 4.5.3.1).
  [`<${long(64)}@example.com>`, 'example.com'],
  [`<${long(65)}@example.com>`, 'rejected'],
  [`<u@${label63}.com>`, `${label63}.com`],
  [`<u@${long(64)}.com>`, 'rejected'],
  [
    `<u@${[label63, label63, label63, long(59)].join('.')}>`,
    [label63, label63, label63, long(59)].join('.'),
  ],
  // Past the RFC 5321 path limit (256 octets with the brackets).
  [`<u@${[label63, label63, label63, long(62)].join('.')}>`, 'rejected'],
  [`<u@${[label63, label63, label63, label63].join('.')}>`, 'rejected'],
  [`<u@${long(60, 'ü')}.com>`, 'rejected'],
  // Control characters anywhere.
  ['<user@exa\r\nmple.com>', 'rejected'],
  ['<us\0er@example.com>', 'rejected'],
  ['<user@example.com\0.evil>', 'rejected'],
  ['<"us\rer"@example.com>', 'rejected'],
  ['<user@example.com>\r\nRCPT TO:<x@evil.example>', 'rejected'],
  // Literals and numbers.
  ['<user@[192.0.2.1]>', '[192.0.2.1]'],
  ['<user@[IPv6:2001:db8::1]>', '[ipv6:2001:db8::1]'],
  ['<user@192.0.2.1>', 'rejected'],
  ['<user@[300.0.2.1]>', 'rejected'],
  ['<user@example..com>', 'rejected'],
  ['<user@.example.com>', 'rejected'],
  ['<user@example.com..>', 'rejected'],
  ['<user@>', 'rejected'],
  ['<@>', 'rejected'],
  ['<>', 'rejected'],
  ['<-user@example.com>', 'rejected'],
  ['<user@exa_mple.com>', 'exa_mple.com'],
  ['<user@exam\u200bple.com>', 'example.com'],
];

describe('hostile-address corpus', () => {
  for (const [argument, expected, routed] of CORPUS) {
    it(`${JSON.stringify(argument).slice(0, 90)} → ${expected.slice(0, 40)}`, async () => {
      const out = await route(argument);
      if (expected === 'rejected') {
        expect(out).toBe('rejected');
      } else {
        expect(out).not.toBe('rejected');
        const o = out as { domain: string; routed: boolean };
        expect(o.domain).toBe(expected);
        expect(o.routed).toBe(routed ?? false);
      }
    });
  }

  it('random arguments never throw anything but SmtpError, and route where they say', async () => {
    const chars = fc.constantFrom(
      ...'aZ09.-_@"\\%!:,[]()<>=?ü。ｅа\u200b\r\n\0 '.split(''),
      'xn--',
      'example.com',
      'protected.example',
      '[192.0.2.1]',
      'IPv6:',
    );
    await fc.assert(
      fc.asyncProperty(fc.array(chars, { maxLength: 40 }), async (parts) => {
        const arg = `<${parts.join('')}>`;
        await route(arg);
      }),
      { numRuns: 2000 },
    );
  });

  it('rewrite and resolve of unparsed hostile strings never throw', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300, unit: 'binary' }), async (s) => {
        const res = await r.resolve(r.rewrite(s));
        if (!res.error) {
          const d = splitAddress(res.recipient).domain;
          expect(toAsciiDomain(d)).toBeDefined();
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('domain length past DNS limits (internal addresses, no path limit)', () => {
  it('a 254-octet domain is a 5.1.3 error, 253 resolves', async () => {
    const l = 'a'.repeat(63);
    const ok = `${l}.${l}.${l}.${'b'.repeat(61)}`;
    expect(ok.length).toBe(253);
    expect((await r.resolve(`u@${ok}`)).error).toBeUndefined();
    expect((await r.resolve(`u@${ok}c`)).error?.enhanced).toBe('5.1.3');
  });
});
