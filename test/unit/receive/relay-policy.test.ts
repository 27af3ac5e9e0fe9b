import { describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/config/parameters.js';
import { ConfigError } from '../../../src/errors.js';
import { isAuthorizedDestination, RelayPolicy } from '../../../src/receive/relay-policy.js';
import type { AddressClass, ResolveResult } from '../../../src/rewrite/types.js';

function resolved(addressClass: AddressClass, routed = false): ResolveResult {
  return {
    addressClass,
    transport: 'smtp',
    nexthop: 'example.com',
    recipient: 'u@example.com',
    routed,
  };
}

function policy(restrictions: string[], extra: Record<string, unknown> = {}): RelayPolicy {
  return new RelayPolicy(
    resolveParameters({
      mynetworks: ['192.0.2.0/24', '2001:db8::/32'],
      smtpdRelayRestrictions: restrictions,
      ...extra,
    }),
  );
}

const outside = { address: '198.51.100.7' };
const inside = { address: '192.0.2.9' };

function check(p: RelayPolicy, client: { address: string }, r: ResolveResult): string | undefined {
  return p
    .check({ client, saslAuthenticated: false, recipient: 'u@example.com', resolved: r })
    ?.toString();
}

describe('RelayPolicy', () => {
  it('authorised destinations: final and relay classes, never routed', () => {
    for (const c of ['local', 'virtual-alias', 'virtual-mailbox', 'relay'] as const) {
      expect(isAuthorizedDestination(resolved(c))).toBe(true);
      expect(isAuthorizedDestination(resolved(c, true))).toBe(false);
    }
    expect(isAuthorizedDestination(resolved('default'))).toBe(false);
  });

  it('default list: permit mynetworks, defer everyone else with 454', () => {
    const p = new RelayPolicy(resolveParameters({ mynetworks: ['192.0.2.0/24'] }));
    expect(check(p, inside, resolved('default'))).toBeUndefined();
    expect(check(p, outside, resolved('default'))).toBe(
      '454 4.7.1 <u@example.com>: Relay access denied',
    );
    expect(check(p, outside, resolved('local'))).toBeUndefined();
    expect(check(p, outside, resolved('local', true))).toBe(
      '454 4.7.1 <u@example.com>: Relay access denied',
    );
  });

  it('reject_unauth_destination uses relayDomainsRejectCode', () => {
    const p = policy(['permit_mynetworks', 'reject_unauth_destination']);
    expect(check(p, outside, resolved('default'))).toBe(
      '554 5.7.1 <u@example.com>: Relay access denied',
    );
    const q = policy(['reject_unauth_destination'], { relayDomainsRejectCode: 550 });
    expect(check(q, inside, resolved('default'))).toBe(
      '550 5.7.1 <u@example.com>: Relay access denied',
    );
  });

  it('matches IPv6 and IPv4-mapped clients against mynetworks', () => {
    const p = policy(['permit_mynetworks', 'reject']);
    expect(check(p, { address: '2001:db8::5' }, resolved('default'))).toBeUndefined();
    expect(check(p, { address: '::ffff:192.0.2.9' }, resolved('default'))).toBeUndefined();
    expect(check(p, { address: '' }, resolved('default'))).toMatch(/^554 5\.7\.1/);
  });

  it('permit, reject, defer and the first decision wins', () => {
    expect(check(policy(['permit', 'reject']), outside, resolved('default'))).toBeUndefined();
    expect(check(policy(['reject', 'permit']), inside, resolved('local'))).toBe(
      '554 5.7.1 <u@example.com>: Recipient address rejected: Access denied',
    );
    expect(check(policy(['defer']), inside, resolved('local'))).toBe(
      '450 4.7.1 <u@example.com>: Recipient address rejected: Access denied',
    );
    expect(
      check(policy(['permit_auth_destination', 'reject']), outside, resolved('relay')),
    ).toBeUndefined();
  });

  it('skips permit_sasl_authenticated without AUTH; end of list permits', () => {
    const p = policy(['permit_sasl_authenticated', 'reject_unauth_destination']);
    expect(check(p, inside, resolved('default'))).toMatch(/Relay access denied/);
    expect(check(p, outside, resolved('virtual-mailbox'))).toBeUndefined();
  });

  it('refuses a list that would make an open relay, or names it does not know', () => {
    expect(() => policy(['permit_mynetworks'])).toThrow(ConfigError);
    expect(() => policy([])).toThrow(/open relay/);
    expect(() => policy(['permit_mynetworks', 'check_client_access', 'reject'])).toThrow(
      /check_client_access/,
    );
  });
});
