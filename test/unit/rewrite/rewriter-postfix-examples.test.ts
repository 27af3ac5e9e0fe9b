/**
 * Table-driven cases from Postfix's documentation; each case names its source.
 */
import { describe, expect, it } from 'vitest';
import { TableError } from '../../../src/errors.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { FunctionTable } from '../../../src/tables/lookup-table.js';

function rewriter(extra: Record<string, unknown> = {}): Rewriter {
  return new Rewriter({
    params: resolveParameters({
      myhostname: 'host.my.domain',
      mydomain: 'my.domain',
      myorigin: 'my.domain',
      mydestination: ['host.my.domain', 'my.domain', 'localhost'],
      ...extra,
    }),
  });
}

describe('ADDRESS_REWRITING_README "Rewrite addresses to standard form"', () => {
  const cases: [string, string, Record<string, unknown>][] = [
    // "append_at_myorigin": user → user@$myorigin
    ['user', 'user@my.domain', {}],
    // "append_dot_mydomain": user@host → user@host.$mydomain (off by default since 3.0)
    ['user@host', 'user@host.my.domain', { appendDotMydomain: true }],
    ['user@host', 'user@host', {}],
    // "swap_bangpath": site!user → user@site
    ['site!user', 'user@site', {}],
    ['site!user', 'site!user@my.domain', { swapBangpath: false }],
    // "allow_percent_hack": user%domain → user@domain
    ['user%domain', 'user@domain', {}],
    ['user%domain', 'user%domain@my.domain', { allowPercentHack: false }],
    // "Strip source routing": @hosta,@hostb:user@site → user@site
    ['@hosta,@hostb:user@site', 'user@site', {}],
    // trivial-rewrite(8): a trailing dot is removed
    ['user@host.example.', 'user@host.example', {}],
  ];
  for (const [input, output, extra] of cases) {
    it(`${input} → ${output} ${JSON.stringify(extra)}`, () => {
      expect(rewriter(extra).rewrite(input)).toBe(output);
    });
  }
});

describe('ADDRESS_CLASS_README address classes', () => {
  const r = rewriter({
    virtualAliasDomains: ['virtual-alias.example'],
    virtualMailboxDomains: ['virtual-mailbox.example'],
    relayDomains: ['relay.example'],
    virtualMailboxMaps: { 'u@virtual-mailbox.example': 'virtual-mailbox.example/u/' },
    relayhost: '[smarthost.example]',
  });
  const cases: [string, string, string, string][] = [
    // "The local domain class": local_transport, nexthop $myhostname
    ['user@my.domain', 'local', 'local', 'host.my.domain'],
    // "The virtual alias domain class": every address must be aliased; else bounce
    [
      'user@virtual-alias.example',
      'virtual-alias',
      'error',
      '5.1.1 User unknown in virtual alias table',
    ],
    // "The virtual mailbox domain class": virtual_transport, nexthop = domain
    ['u@virtual-mailbox.example', 'virtual-mailbox', 'virtual', 'virtual-mailbox.example'],
    // "The relay domain class": relay_transport; relayhost applies
    ['user@relay.example', 'relay', 'relay', '[smarthost.example]'],
    ['user@sub.relay.example', 'relay', 'relay', '[smarthost.example]'],
    // "The default domain class": default_transport
    ['user@elsewhere.example', 'default', 'smtp', '[smarthost.example]'],
  ];
  for (const [address, cls, transport, nexthop] of cases) {
    it(`${address}: ${cls} → ${transport}:${nexthop}`, async () => {
      const res = await r.resolve(address);
      expect([res.addressClass, res.transport, res.nexthop]).toEqual([cls, transport, nexthop]);
      expect(res.error).toBeUndefined();
    });
  }

  it('virtual_alias_domains defaults to $virtual_alias_maps: the domain is a key (virtual(5))', async () => {
    // virtual(5) "VIRTUAL ALIAS DOMAINS" example table.
    const v = rewriter({
      virtualAliasMaps: {
        'virtual-alias.domain': 'anything',
        'postmaster@virtual-alias.domain': 'postmaster',
        'user1@virtual-alias.domain': 'address1',
        'user2@virtual-alias.domain': 'address2, address3',
      },
    });
    expect((await v.resolve('nobody@virtual-alias.domain')).addressClass).toBe('virtual-alias');
    expect((await v.resolve('user@sub.virtual-alias.domain')).addressClass).toBe('default');
    expect(await v.isListedRecipient('user1@virtual-alias.domain')).toMatchObject({
      listed: true,
    });
    expect(await v.isListedRecipient('unknown-user@virtual-alias.domain')).toEqual({
      listed: false,
      table: 'virtual alias table',
      text: 'User unknown in virtual alias table',
      addressClass: 'virtual-alias',
    });
  });

  it('virtual_mailbox_domains defaults to $virtual_mailbox_maps; table entries in domain lists', async () => {
    const v = rewriter({
      virtualMailboxMaps: { 'vm.example': 'x', 'a@vm.example': 'vm.example/a/' },
      relayDomains: ['inline:{ relayed.example=ok }'],
    });
    expect((await v.resolve('a@vm.example')).addressClass).toBe('virtual-mailbox');
    expect((await v.resolve('a@relayed.example')).addressClass).toBe('relay');
    expect((await v.resolve('a@sub.relayed.example')).addressClass).toBe('relay');
    expect(await v.isListedRecipient('a@vm.example')).toMatchObject({ listed: true });
    expect(await v.isListedRecipient('b@vm.example')).toMatchObject({
      listed: false,
      text: 'User unknown in virtual mailbox table',
    });
  });

  it('local_recipient_maps: empty accepts every local part; the default is the accounts and aliases; a table decides otherwise', async () => {
    expect(
      await rewriter({ localRecipientMaps: '' }).isListedRecipient('anyone@my.domain'),
    ).toMatchObject({ listed: true, addressClass: 'local' });
    const byDefault = rewriter({ aliasMaps: { 'help-desk': 'root' } });
    expect(await byDefault.isListedRecipient('root@my.domain')).toMatchObject({ listed: true });
    expect(await byDefault.isListedRecipient('help-desk@my.domain')).toMatchObject({
      listed: true,
    });
    expect(await byDefault.isListedRecipient('anyone@my.domain')).toMatchObject({
      listed: false,
      text: 'User unknown in local recipient table',
    });
    const v = rewriter({ localRecipientMaps: { alice: 'x', 'bob@my.domain': 'x' } });
    expect(await v.isListedRecipient('alice@host.my.domain')).toMatchObject({ listed: true });
    expect(await v.isListedRecipient('bob@my.domain')).toMatchObject({ listed: true });
    expect(await v.isListedRecipient('carol@my.domain')).toEqual({
      listed: false,
      table: 'local recipient table',
      text: 'User unknown in local recipient table',
      addressClass: 'local',
    });
  });

  it('relay_recipient_maps: set → only listed relay recipients', async () => {
    const v = rewriter({
      relayDomains: ['relay.example'],
      relayRecipientMaps: { 'a@relay.example': 'x', '@open.relay.example': 'x' },
    });
    expect(await v.isListedRecipient('a@relay.example')).toMatchObject({ listed: true });
    expect(await v.isListedRecipient('b@relay.example')).toMatchObject({
      listed: false,
      text: 'User unknown in relay recipient table',
    });
    expect(await v.isListedRecipient('z@open.relay.example')).toMatchObject({ listed: true });
    expect(await v.isListedRecipient('z@default.example')).toMatchObject({
      listed: true,
      table: '',
    });
  });

  it('a table failure in isListedRecipient is TableError retry', async () => {
    const v = new Rewriter({
      params: resolveParameters({ myhostname: 'h.example', mydestination: ['h.example'] }),
      localRecipientMaps: new FunctionTable('function:users', () => {
        throw new Error('db down');
      }),
    });
    await expect(v.isListedRecipient('a@h.example')).rejects.toBeInstanceOf(TableError);
  });
});

describe('transport(5) EXAMPLES', () => {
  it('"deliver internal mail directly, while using a mail relay for all other mail"', async () => {
    const r = rewriter({
      transportMaps: { 'my.domain': ':', '.my.domain': ':', '*': 'smtp:outbound-relay.my.domain' },
      mydestination: ['localhost'],
    });
    expect(await r.resolve('u@my.domain')).toMatchObject({
      transport: 'smtp',
      nexthop: 'my.domain',
    });
    expect(await r.resolve('u@sub.my.domain')).toMatchObject({
      transport: 'smtp',
      nexthop: 'sub.my.domain',
    });
    expect(await r.resolve('u@example.org')).toMatchObject({
      transport: 'smtp',
      nexthop: 'outbound-relay.my.domain',
    });
  });

  const cases: [string, Record<string, string>, string, string, string][] = [
    // "send mail for example.com and its subdomains via the uucp transport"
    [
      'u@example.com',
      { 'example.com': 'uucp:example', '.example.com': 'uucp:example' },
      'uucp',
      'example',
      '',
    ],
    [
      'u@a.example.com',
      { 'example.com': 'uucp:example', '.example.com': 'uucp:example' },
      'uucp',
      'example',
      '',
    ],
    // "When no nexthop host name is specified, the destination domain name is used"
    ['u@example.com', { 'example.com': 'slow:' }, 'slow', 'example.com', ''],
    // "When no transport is specified, Postfix uses the transport that matches the address domain class"
    [
      'u@example.com',
      { 'example.com': ':[gateway.example.com]' },
      'smtp',
      '[gateway.example.com]',
      '',
    ],
    // "one may specify host:service instead of just a host"
    ['u@example.com', { 'example.com': 'smtp:bar.example:2025' }, 'smtp', 'bar.example:2025', ''],
    // "Deliveries via SMTP or LMTP support multiple destinations (Postfix >= 3.5)"
    [
      'u@example.com',
      { 'example.com': 'smtp:bar.example, foo.example' },
      'smtp',
      'bar.example, foo.example',
      '',
    ],
    // "The error mailer can be used to bounce mail"
    [
      'u@any.example.com',
      { '.example.com': 'error:mail for *.example.com is not deliverable' },
      'error',
      'mail for *.example.com is not deliverable',
      '',
    ],
    // TABLE SEARCH ORDER: user+extension@domain, user@domain, domain
    [
      'u+x@example.com',
      { 'u+x@example.com': 'a:', 'u@example.com': 'b:' },
      'a',
      'example.com',
      '+',
    ],
    [
      'u+y@example.com',
      { 'u+x@example.com': 'a:', 'u@example.com': 'b:' },
      'b',
      'example.com',
      '+',
    ],
    // ".domain ... applies only when transport_maps is not listed in parent_domain_matches_subdomains"
    ['u@sub.example.com', { 'example.com': 'a:' }, 'smtp', 'sub.example.com', ''],
  ];
  for (const [address, table, transport, nexthop, delimiter] of cases) {
    it(`${address} with ${JSON.stringify(table)} → ${transport}:${nexthop}`, async () => {
      const r = rewriter({ transportMaps: table, recipientDelimiter: delimiter });
      expect(await r.resolve(address)).toMatchObject({ transport, nexthop });
    });
  }

  it('parent_domain_matches_subdomains = transport_maps: example.com matches subdomains', async () => {
    const r = rewriter({
      transportMaps: { 'example.com': 'a:' },
      parentDomainMatchesSubdomains: ['transport_maps'],
    });
    expect(await r.resolve('u@sub.example.com')).toMatchObject({ transport: 'a' });
  });

  it('transport_maps cannot override the virtual alias class (resolve.c)', async () => {
    const r = rewriter({ virtualAliasDomains: ['va.example'], transportMaps: { '*': 'smtp:x' } });
    expect(await r.resolve('u@va.example')).toMatchObject({
      transport: 'error',
      nexthop: '5.1.1 User unknown in virtual alias table',
    });
  });

  it('"transport_maps = hash:/etc/postfix/transport": a regexp transport table gets the whole address', async () => {
    const r = rewriter({ transportMaps: 'regexp:{ {/^(.+)@(.+)\\.test$/ smtp:[$2.mx]} }' });
    expect(await r.resolve('u@site.test')).toMatchObject({
      transport: 'smtp',
      nexthop: '[site.mx]',
    });
  });
});

describe('relocated(5)', () => {
  const r = rewriter({
    relocatedMaps: {
      'john@my.domain': 'john@new.example',
      mary: 'mary@elsewhere.example',
      '@old.example': 'new.example',
    },
  });
  const cases: [string, string | undefined][] = [
    // "user@domain: matches user@domain. This form has precedence over all other forms."
    ['john@my.domain', '5.1.6 User has moved to john@new.example'],
    // "user: matches user@site when site is $myorigin, ... listed in $mydestination"
    ['mary@host.my.domain', '5.1.6 User has moved to mary@elsewhere.example'],
    ['mary@other.example', undefined],
    // "@domain: matches every address in domain"
    ['anyone@old.example', '5.1.6 User has moved to new.example'],
    // "Table lookups are case insensitive."
    ['JOHN@MY.DOMAIN', '5.1.6 User has moved to john@new.example'],
  ];
  for (const [address, text] of cases) {
    it(`${address} → ${text ?? 'not relocated'}`, async () => {
      const res = await r.resolve(address);
      if (text === undefined) expect(res.transport).not.toBe('error');
      else expect(res).toMatchObject({ transport: 'error', nexthop: text });
    });
  }

  it('ADDRESS EXTENSION: user+foo@domain falls back to user@domain', async () => {
    const x = rewriter({
      recipientDelimiter: '+',
      relocatedMaps: { 'john@my.domain': 'john@new.example' },
    });
    expect(await x.resolve('john+foo@my.domain')).toMatchObject({
      transport: 'error',
      nexthop: '5.1.6 User has moved to john@new.example',
    });
  });
});

describe('sender-dependent maps (postconf(5))', () => {
  const r = rewriter({
    senderDependentRelayhostMaps: { '@customer.example': '[relay.customer.example]:587' },
    senderDependentDefaultTransportMaps: { 'bulk@my.domain': 'bulk:', '<>': 'bounces:' },
    relayhost: '[default-relay.example]',
  });
  it('sender_dependent_relayhost_maps overrides relayhost', async () => {
    expect(await r.resolve('u@far.example', 'a@customer.example')).toMatchObject({
      transport: 'smtp',
      nexthop: '[relay.customer.example]:587',
    });
    expect(await r.resolve('u@far.example', 'a@other.example')).toMatchObject({
      nexthop: '[default-relay.example]',
    });
    expect(await r.resolve('u@far.example')).toMatchObject({ nexthop: '[default-relay.example]' });
  });
  it('sender_dependent_default_transport_maps replaces default_transport; <> is the null sender', async () => {
    expect(await r.resolve('u@far.example', 'bulk@my.domain')).toMatchObject({
      transport: 'bulk',
      nexthop: '[default-relay.example]',
    });
    expect(await r.resolve('u@far.example', '')).toMatchObject({ transport: 'bounces' });
    expect(await r.resolve('u@my.domain', 'bulk@my.domain')).toMatchObject({ transport: 'local' });
  });
});

describe('resolve_numeric_domain, resolve_null_domain, allow_min_user, empty_address_recipient', () => {
  it('numeric domains become address literals only when allowed', async () => {
    expect((await rewriter().resolve('u@192.0.2.1')).error?.enhanced).toBe('5.1.3');
    const res = await rewriter({ resolveNumericDomain: true }).resolve('u@192.0.2.1');
    expect(res.nexthop).toBe('[192.0.2.1]');
    expect(res.error).toBeUndefined();
    const v6 = await rewriter({ resolveNumericDomain: true }).resolve('u@2001:db8::1');
    expect(v6.nexthop).toBe('[ipv6:2001:db8::1]');
    expect((await rewriter().resolve('u@2001:db8::1')).error?.enhanced).toBe('5.1.3');
    // A host name that ends in a digit is a name, not a number.
    expect((await rewriter().resolve('u@mx1.example.org')).error).toBeUndefined();
    expect((await rewriter().resolve('u@host-42')).error).toBeUndefined();
  });
  it('allowMinUser lets -user through', async () => {
    expect((await rewriter().resolve('-u@example.org')).error).toBeDefined();
    expect(
      (await rewriter({ allowMinUser: true }).resolve('-u@example.org')).error,
    ).toBeUndefined();
  });
  it('emptyAddressRecipient names the null recipient', async () => {
    const r = rewriter({ emptyAddressRecipient: 'bounces' });
    expect((await r.resolve('')).recipient).toBe('bounces@host.my.domain');
  });
});

describe('IDN: tables and domain lists in either form (SMTPUTF8_README)', () => {
  it('transport_maps written with U-labels or A-labels match every spelling', async () => {
    for (const key of ['bücher.example', 'xn--bcher-kva.example']) {
      const r = rewriter({ transportMaps: { [key]: 'smtp:[books-gw.example]' } });
      for (const address of ['u@BÜCHER.example', 'u@xn--bcher-kva.example', 'u@bücher.example']) {
        expect(await r.resolve(address)).toMatchObject({
          transport: 'smtp',
          nexthop: '[books-gw.example]',
        });
      }
    }
  });

  it('routes by the A-label and keeps the U-label recipient for the SMTPUTF8 envelope', async () => {
    const res = await rewriter().resolve('jöran@BÜCHER.example');
    expect(res).toMatchObject({
      addressClass: 'default',
      nexthop: 'xn--bcher-kva.example',
      recipient: 'jöran@bücher.example',
    });
    const ascii = await rewriter().resolve('joran@xn--bcher-kva.example');
    expect(ascii.recipient).toBe('joran@xn--bcher-kva.example');
  });

  it('virtual alias domains from a table keyed by U-label', async () => {
    const r = rewriter({
      virtualAliasMaps: { 'bücher.example': 'x', 'a@bücher.example': 'b@x.example' },
    });
    expect((await r.resolve('z@xn--bcher-kva.example')).addressClass).toBe('virtual-alias');
    expect(await r.isListedRecipient('a@xn--bcher-kva.example')).toMatchObject({ listed: true });
    expect(await r.isListedRecipient('z@bücher.example')).toMatchObject({ listed: false });
  });

  it('mydestination and relayDomains in U-label form match A-label addresses', async () => {
    const r = rewriter({ mydestination: ['bücher.example'], relayDomains: ['ü.example'] });
    expect((await r.resolve('u@xn--bcher-kva.example')).addressClass).toBe('local');
    expect(r.isLocalDomain('XN--BCHER-KVA.example')).toBe(true);
    expect((await r.resolve('u@sub.xn--tda.example')).addressClass).toBe('relay');
  });
});
