import { describe, expect, it } from 'vitest';
import { findEndpoints } from '../../../../src/deliver/smtp/mx-resolver.js';
import { parseNexthop, parseNexthopList } from '../../../../src/deliver/smtp/nexthop.js';
import type { MxRecord, Resolver } from '../../../../src/types.js';

function dnsError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/** A fake DNS: name → records; a string value is an error code. */
function fakeDns(zone: {
  mx?: Record<string, MxRecord[] | string>;
  a?: Record<string, string[] | string>;
  aaaa?: Record<string, string[] | string>;
}): Resolver {
  const get = <T>(table: Record<string, T | string> | undefined, name: string): Promise<T> => {
    const v = table?.[name];
    if (v === undefined) return Promise.reject(dnsError('ENOTFOUND'));
    if (typeof v === 'string') return Promise.reject(dnsError(v));
    return Promise.resolve(v);
  };
  return {
    resolveMx: (n) => get(zone.mx, n),
    resolve4: (n) => get(zone.a, n),
    resolve6: (n) =>
      zone.aaaa?.[n] === undefined && zone.a?.[n] !== undefined
        ? Promise.reject(dnsError('ENODATA'))
        : get(zone.aaaa, n),
    reverse: () => Promise.resolve([]),
    resolveTxt: () => Promise.resolve([]),
  };
}

const hop = (t: string) => parseNexthopList(t, 25, true);

describe('nexthop syntax', () => {
  it.each([
    ['example.com', { kind: 'inet', host: 'example.com', port: 25, mx: true }],
    ['example.com:2525', { kind: 'inet', host: 'example.com', port: 2525, mx: true }],
    ['[mx.example.com]', { kind: 'inet', host: 'mx.example.com', port: 25, mx: false }],
    ['[mx.example.com]:submission', { kind: 'inet', host: 'mx.example.com', port: 587, mx: false }],
    ['[ipv6:2001:db8::1]:26', { kind: 'inet', host: '2001:db8::1', port: 26, mx: false }],
    ['192.0.2.1', { kind: 'inet', host: '192.0.2.1', port: 25, mx: false }],
    ['inet:[127.0.0.1]:24', { kind: 'inet', host: '127.0.0.1', port: 24, mx: false }],
    ['unix:/run/dovecot/lmtp', { kind: 'unix', path: '/run/dovecot/lmtp' }],
  ])('%s', (text, want) => {
    expect(parseNexthop(text, 25, true)).toEqual(want);
  });

  it('refuses nonsense with a clear message', () => {
    expect(() => parseNexthop('[mx.example.com', 25, true)).toThrow(/missing "\]"/);
    expect(() => parseNexthop('example.com:99999', 25, true)).toThrow(/bad port/);
    expect(() => parseNexthop('a b@c', 25, true)).toThrow();
  });
});

describe('findEndpoints with a fake DNS', () => {
  it('orders MX hosts by preference and shuffles equal ones', async () => {
    const zone = {
      mx: {
        'example.com': [
          { exchange: 'mx30.example.com', priority: 30 },
          { exchange: 'mx10a.example.com', priority: 10 },
          { exchange: 'mx10b.example.com', priority: 10 },
        ],
      },
      a: {
        'mx30.example.com': ['192.0.2.30'],
        'mx10a.example.com': ['192.0.2.11'],
        'mx10b.example.com': ['192.0.2.12'],
      },
    };
    const seen = new Set<string>();
    for (const seed of [0.1, 0.9]) {
      let flip = seed;
      const r = await findEndpoints(hop('example.com'), {
        resolver: fakeDns(zone),
        ownNames: ['me.example.org'],
        random: () => {
          flip = 1 - flip;
          return flip;
        },
      });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.endpoints.map((e) => e.host).at(-1)).toBe('mx30.example.com');
      seen.add(r.endpoints[0]!.host);
      expect(r.endpoints[0]!.viaMx).toBe(true);
      expect(r.endpoints[0]!.nexthop).toBe('example.com');
    }
    expect(seen).toEqual(new Set(['mx10a.example.com', 'mx10b.example.com']));
  });

  it('falls back to A/AAAA when there is no MX (NODATA)', async () => {
    const r = await findEndpoints(hop('example.com'), {
      resolver: fakeDns({
        mx: { 'example.com': 'ENODATA' },
        a: { 'example.com': ['192.0.2.1'] },
        aaaa: { 'example.com': ['2001:db8::1'] },
      }),
      ownNames: [],
      addressPreference: 'ipv6',
    });
    expect(r.ok && r.endpoints.map((e) => e.address)).toEqual(['2001:db8::1', '192.0.2.1']);
  });

  it('bounces a null MX with 5.1.10 (RFC 7505)', async () => {
    const r = await findEndpoints(hop('example.com'), {
      resolver: fakeDns({ mx: { 'example.com': [{ exchange: '', priority: 0 }] } }),
      ownNames: [],
    });
    expect(!r.ok && r.reply.toString()).toMatch(/^556 5\.1\.10 .*nullMX/);
  });

  it('bounces with 5.4.6 when the best MX is ourselves', async () => {
    const r = await findEndpoints(hop('example.com'), {
      resolver: fakeDns({
        mx: {
          'example.com': [
            { exchange: 'me.example.org.', priority: 10 },
            { exchange: 'backup.example.com', priority: 20 },
          ],
        },
        a: { 'backup.example.com': ['192.0.2.2'] },
      }),
      ownNames: ['me.example.org'],
    });
    expect(!r.ok && r.reply.toString()).toMatch(
      /^554 5\.4\.6 mail for example\.com loops back to myself/,
    );
  });

  it('keeps only MX hosts better than ourselves', async () => {
    const r = await findEndpoints(hop('example.com'), {
      resolver: fakeDns({
        mx: {
          'example.com': [
            { exchange: 'primary.example.com', priority: 5 },
            { exchange: 'me.example.org', priority: 10 },
            { exchange: 'other.example.com', priority: 20 },
          ],
        },
        a: { 'primary.example.com': ['192.0.2.5'], 'other.example.com': ['192.0.2.20'] },
      }),
      ownNames: ['me.example.org'],
    });
    expect(r.ok && r.endpoints.map((e) => e.host)).toEqual(['primary.example.com']);
  });

  it('defers on a temporary DNS error (4.4.3) and bounces NXDOMAIN', async () => {
    const t = await findEndpoints(hop('example.com'), {
      resolver: fakeDns({ mx: { 'example.com': 'ESERVFAIL' } }),
      ownNames: [],
    });
    expect(!t.ok && t.reply.toString()).toMatch(/^451 4\.4\.3 /);
    const n = await findEndpoints(hop('nosuch.example'), { resolver: fakeDns({}), ownNames: [] });
    expect(!n.ok && n.reply.permanent).toBe(true);
    expect(!n.ok && n.reply.text).toMatch(/Host or domain name not found/);
  });

  it('skips the MX look-up for [host] and caps addresses at smtpMxAddressLimit', async () => {
    const resolver = fakeDns({
      a: { 'relay.example.com': ['192.0.2.1', '192.0.2.2', '192.0.2.3'] },
    });
    const r = await findEndpoints(hop('[relay.example.com]:587'), {
      resolver,
      ownNames: [],
      mxAddressLimit: 2,
    });
    expect(r.ok && r.endpoints.map((e) => `${e.address}:${e.port}`)).toEqual([
      '192.0.2.1:587',
      '192.0.2.2:587',
    ]);
  });

  it('tries a nexthop list in order and defers when in doubt', async () => {
    const resolver = fakeDns({
      a: { 'b.example.com': ['192.0.2.2'] },
      mx: { 'a.example.com': 'ETIMEOUT' },
    });
    const r = await findEndpoints(hop('a.example.com, [b.example.com]'), {
      resolver,
      ownNames: [],
    });
    expect(r.ok && r.endpoints.map((e) => e.host)).toEqual(['b.example.com']);
  });
});
