import { describe, expect, it } from 'vitest';
import { isAuthorizedDestination } from '../../../src/receive/smtpd-authorized-destination.js';
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

// smtpd_check.c permit_auth_destination: final classes and relay_domains, never routed.
describe('isAuthorizedDestination', () => {
  it.each(['local', 'virtual-alias', 'virtual-mailbox', 'relay'] as const)(
    'accepts the %s class unless routed',
    (c) => {
      expect(isAuthorizedDestination(resolved(c))).toBe(true);
      expect(isAuthorizedDestination(resolved(c, true))).toBe(false);
    },
  );

  it('refuses the default class', () => {
    expect(isAuthorizedDestination(resolved('default'))).toBe(false);
  });
});
