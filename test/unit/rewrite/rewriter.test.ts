import { describe, expect, it } from 'vitest';
import { TableError } from '../../../src/errors.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { FunctionTable, InlineTable } from '../../../src/tables/lookup-table.js';
import type { LookupTable } from '../../../src/tables/types.js';

const base = {
  myhostname: 'mx.example.com',
  mydestination: ['mx.example.com', 'example.com', 'localhost'],
};

function rewriter(extra: Record<string, unknown> = {}, transportMaps?: LookupTable): Rewriter {
  const params = resolveParameters({ ...base, ...extra });
  return new Rewriter(transportMaps ? { params, transportMaps } : { params });
}

describe('Rewriter.rewrite (trivial-rewrite, local context)', () => {
  const r = rewriter({ myorigin: 'example.com' });
  const cases: [string, string][] = [
    ['', ''],
    ['@', ''],
    ['user@Example.COM', 'user@example.com'],
    ['User@example.com.', 'User@example.com'],
    ['user', 'user@example.com'],
    ['user@', 'user@example.com'],
    ['@a.example,@b.example:user@c.example', 'user@c.example'],
    ['@a.example:user', 'user@example.com'],
    ['host.example!user', 'user@host.example'],
    ['a!b!user', 'b!user@a'],
    ['user%remote.example', 'user@remote.example'],
    ['user%a%b.example', 'user%a@b.example'],
    ['user%remote@local.example', 'user%remote@local.example'],
    ['john doe@Example.com', 'john doe@example.com'],
    ['a@b@Example.com', 'a@b@example.com'],
    ['jöran@BÜCHER.example', 'jöran@bücher.example'],
    ['user@[192.0.2.1]', 'user@[192.0.2.1]'],
    ['user@[IPv6:2001:DB8::1]', 'user@[ipv6:2001:db8::1]'],
  ];
  for (const [input, output] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(output)}`, () =>
      expect(r.rewrite(input)).toBe(output));
  }

  it('leaves unqualified addresses alone when appendAtMyorigin is off', () => {
    expect(rewriter({ appendAtMyorigin: false }).rewrite('user')).toBe('user');
  });

  it('appends $myhostname by default ($myorigin = $myhostname)', () => {
    expect(rewriter().rewrite('user')).toBe('user@mx.example.com');
  });
});

describe('Rewriter.isLocalDomain', () => {
  it('matches $mydestination case-insensitively, exact names only', () => {
    const r = rewriter();
    expect(r.isLocalDomain('example.com')).toBe(true);
    expect(r.isLocalDomain('EXAMPLE.com')).toBe(true);
    expect(r.isLocalDomain('example.com.')).toBe(true);
    expect(r.isLocalDomain('sub.example.com')).toBe(false);
    expect(r.isLocalDomain('example.org')).toBe(false);
  });

  it('uses the Postfix default list', () => {
    const r = new Rewriter({ params: resolveParameters({ myhostname: 'host.example.net' }) });
    expect(r.isLocalDomain('host.example.net')).toBe(true);
    expect(r.isLocalDomain('localhost.example.net')).toBe(true);
    expect(r.isLocalDomain('localhost')).toBe(true);
    expect(r.isLocalDomain('example.net')).toBe(false);
  });
});

describe('Rewriter.resolve', () => {
  it('local class: local_transport, nexthop $myhostname', async () => {
    expect(await rewriter().resolve('User@Example.COM')).toEqual({
      addressClass: 'local',
      transport: 'local',
      nexthop: 'mx.example.com',
      recipient: 'User@example.com',
      routed: false,
    });
  });

  it('local class with a nexthop in local_transport', async () => {
    const r = await rewriter({ localTransport: 'lmtp:unix:/run/lmtp' }).resolve('u@example.com');
    expect([r.transport, r.nexthop]).toEqual(['lmtp', 'unix:/run/lmtp']);
  });

  it('default class: default_transport, nexthop = recipient domain', async () => {
    expect(await rewriter().resolve('user@Remote.Example')).toEqual({
      addressClass: 'default',
      transport: 'smtp',
      nexthop: 'remote.example',
      recipient: 'user@remote.example',
      routed: false,
    });
  });

  it('default class with relayhost', async () => {
    const r = await rewriter({ relayhost: '[smarthost.example]:587' }).resolve(
      'user@remote.example',
    );
    expect([r.addressClass, r.transport, r.nexthop]).toEqual([
      'default',
      'smtp',
      '[smarthost.example]:587',
    ]);
  });

  it('an explicit nexthop in default_transport beats relayhost', async () => {
    const r = await rewriter({
      relayhost: '[smarthost]',
      defaultTransport: 'smtp:[other]',
    }).resolve('u@remote.example');
    expect([r.transport, r.nexthop]).toEqual(['smtp', '[other]']);
  });

  it('relay class for relay_domains and their subdomains', async () => {
    const r = rewriter({ relayDomains: ['relay.example'] });
    const a = await r.resolve('u@relay.example');
    expect([a.addressClass, a.transport, a.nexthop]).toEqual(['relay', 'relay', 'relay.example']);
    const b = await r.resolve('u@sub.relay.example');
    expect([b.addressClass, b.nexthop]).toEqual(['relay', 'sub.relay.example']);
    const c = await r.resolve('u@notrelay.example');
    expect(c.addressClass).toBe('default');
  });

  it('relay class uses relayhost too', async () => {
    const r = await rewriter({ relayDomains: ['relay.example'], relayhost: '[gw]' }).resolve(
      'u@relay.example',
    );
    expect([r.addressClass, r.nexthop]).toEqual(['relay', '[gw]']);
  });

  it('local wins over relay for a domain in both', async () => {
    const r = await rewriter({ relayDomains: ['example.com'] }).resolve('u@example.com');
    expect(r.addressClass).toBe('local');
  });

  it('resolves the null address as MAILER-DAEMON@$myhostname', async () => {
    const r = await rewriter().resolve('');
    expect(r).toMatchObject({ addressClass: 'local', recipient: 'MAILER-DAEMON@mx.example.com' });
  });

  it('qualifies a bare user with $myorigin and resolves it', async () => {
    const r = await rewriter().resolve('postmaster');
    expect(r).toMatchObject({ addressClass: 'local', recipient: 'postmaster@mx.example.com' });
  });

  it('uses $myhostname for an unqualified user when appendAtMyorigin is off', async () => {
    const r = await rewriter({ appendAtMyorigin: false, myorigin: 'example.org' }).resolve('user');
    expect(r).toMatchObject({ addressClass: 'local', recipient: 'user@mx.example.com' });
  });

  describe('the while-local loop and ROUTED', () => {
    it('percent hack through a local domain: user%remote@local → user@remote', async () => {
      expect(await rewriter().resolve('user%remote.example@example.com')).toEqual({
        addressClass: 'default',
        transport: 'smtp',
        nexthop: 'remote.example',
        recipient: 'user@remote.example',
        routed: false,
      });
    });

    it('user@remote@local → user@remote', async () => {
      const r = await rewriter().resolve('user@remote.example@example.com');
      expect(r).toMatchObject({
        addressClass: 'default',
        recipient: 'user@remote.example',
        routed: false,
      });
    });

    it('bang path through a local domain: remote!user@local → user@remote', async () => {
      const r = await rewriter().resolve('remote.example!user@example.com');
      expect(r).toMatchObject({ addressClass: 'default', recipient: 'user@remote.example' });
    });

    it('several local hops: user%remote%example.com@localhost', async () => {
      const r = await rewriter().resolve('user%remote.example%example.com@localhost');
      expect(r).toMatchObject({
        addressClass: 'default',
        recipient: 'user@remote.example',
        routed: false,
      });
    });

    it('a percent address for a remote domain stays routed', async () => {
      const r = await rewriter().resolve('user%other.example@remote.example');
      expect(r).toMatchObject({
        addressClass: 'default',
        recipient: 'user%other.example@remote.example',
        routed: true,
      });
    });

    it('user%remote@relay-domain is routed and stays in the relay class', async () => {
      const r = await rewriter({ relayDomains: ['relay.example'] }).resolve(
        'u%evil.example@relay.example',
      );
      expect(r).toMatchObject({ addressClass: 'relay', routed: true, nexthop: 'relay.example' });
    });

    it('a local part that rewriting cannot shorten ends the loop', async () => {
      const r = await rewriter().resolve('!user@example.com');
      expect(r).toMatchObject({
        addressClass: 'local',
        recipient: '!user@mx.example.com',
        routed: true,
      });
    });
  });

  describe('errors', () => {
    it('refuses a local part starting with "-" (allow_min_user = no)', async () => {
      const r = await rewriter().resolve('-oQ/tmp@example.com');
      expect(r.error).toEqual({
        code: 501,
        enhanced: '5.1.3',
        text: 'Bad recipient address syntax',
      });
    });

    it('refuses -user also for remote domains', async () => {
      expect((await rewriter().resolve('-user@remote.example')).error?.enhanced).toBe('5.1.3');
    });

    it('refuses a bare numeric domain (resolve_numeric_domain = no) and bad domains', async () => {
      expect((await rewriter().resolve('u@192.0.2.1')).error).toBeDefined();
      expect((await rewriter().resolve('u@bad..example')).error).toBeDefined();
      expect((await rewriter().resolve('u@-bad.example')).error).toBeDefined();
      expect((await rewriter().resolve('u@[192.0.2.1]')).error).toBeUndefined();
    });
  });

  describe('transport_maps', () => {
    const maps = new InlineTable({
      'special@remote.example': 'smtp:[special-mx]:2525',
      'remote.example': 'smtp:[remote-mx]',
      '.sub.example': 'relay:[sub-gw]',
      'gone.example': 'error:5.1.1 this domain is gone',
      'keep.example': ':[keep-hop]',
      'noop.example': ':',
      'direct.example': 'smtp',
      'bare-error.example': 'error',
      'example.com': 'lmtp:unix:/run/lmtp',
    });

    it('a user@domain entry wins over the domain entry', async () => {
      const r = await rewriter({}, maps).resolve('special@remote.example');
      expect([r.addressClass, r.transport, r.nexthop]).toEqual([
        'default',
        'smtp',
        '[special-mx]:2525',
      ]);
    });

    it('a domain entry overrides the class default', async () => {
      const r = await rewriter({ relayhost: '[gw]' }, maps).resolve('other@Remote.Example');
      expect([r.transport, r.nexthop]).toEqual(['smtp', '[remote-mx]']);
    });

    it('.domain matches subdomains only', async () => {
      const r = rewriter({}, maps);
      expect((await r.resolve('u@a.sub.example')).nexthop).toBe('[sub-gw]');
      expect((await r.resolve('u@sub.example')).nexthop).toBe('sub.example');
    });

    it('error:TEXT keeps the text as nexthop', async () => {
      const r = await rewriter({}, maps).resolve('u@gone.example');
      expect([r.transport, r.nexthop]).toEqual(['error', '5.1.1 this domain is gone']);
    });

    it(':nexthop keeps the class transport', async () => {
      const r = await rewriter({}, maps).resolve('u@keep.example');
      expect([r.transport, r.nexthop]).toEqual(['smtp', '[keep-hop]']);
    });

    it('":" changes nothing', async () => {
      const r = await rewriter({ relayhost: '[gw]' }, maps).resolve('u@noop.example');
      expect([r.transport, r.nexthop]).toEqual(['smtp', '[gw]']);
    });

    it('a transport alone resets the nexthop to the recipient domain, bypassing relayhost', async () => {
      const r = await rewriter({ relayhost: '[gw]' }, maps).resolve('u@direct.example');
      expect([r.transport, r.nexthop]).toEqual(['smtp', 'direct.example']);
    });

    it('error without text gets a generic reason', async () => {
      const r = await rewriter({}, maps).resolve('u@bare-error.example');
      expect([r.transport, r.nexthop]).toEqual(['error', 'Address is undeliverable']);
    });

    it('overrides the local class too (transport_maps beats mydestination)', async () => {
      const r = await rewriter({}, maps).resolve('u@example.com');
      expect([r.addressClass, r.transport, r.nexthop]).toEqual(['local', 'lmtp', 'unix:/run/lmtp']);
    });

    it('looks up user+ext@domain, then user@domain with recipientDelimiter', async () => {
      const asked: string[] = [];
      const t = new FunctionTable('function:t', (k) => {
        asked.push(k);
        return k === 'user@remote.example' ? 'smtp:[x]' : undefined;
      });
      const r = await rewriter({ recipientDelimiter: '+' }, t).resolve('user+tag@remote.example');
      expect(r.nexthop).toBe('[x]');
      expect(asked).toEqual(['user+tag@remote.example', 'user@remote.example']);
    });

    it('the null recipient is looked up as MAILER-DAEMON@$myhostname', async () => {
      const asked: string[] = [];
      const t = new FunctionTable('function:t', (k) => {
        asked.push(k);
        return undefined;
      });
      await rewriter({}, t).resolve('');
      expect(asked[0]).toBe('mailer-daemon@mx.example.com');
    });

    it('a table failure propagates as TableError retry', async () => {
      const t = new FunctionTable('function:down', () => {
        throw new Error('ECONNREFUSED');
      });
      let err: unknown;
      try {
        await rewriter({}, t).resolve('u@remote.example');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TableError);
      expect((err as TableError).kind).toBe('retry');
    });
  });
});

describe('Rewriter construction', () => {
  it('checks the class transports when it is built', () => {
    expect(() => rewriter({ defaultTransport: ':[gw]' })).toThrow(
      /defaultTransport: .*names no transport/,
    );
    expect(() => rewriter({ localTransport: 'local mailbox' })).toThrow(/localTransport: /);
  });
});
