/**
 * The access(5) table checks of the smtpd access policy — check_client_access,
 * check_helo_access, check_sender_access, check_recipient_access — as a map from name
 * to lookup; the list of names the restriction lists accept is the map's keys.
 *
 * Postfix counterpart: smtpd_check.c check_client_access() (check_namadr_access: the
 * name and its parent domains, then the address and its prefixes),
 * check_domain_access() for the HELO name, and check_mail_access() for addresses
 * (the full address, the domain and its parents, `user@`, per access(5)).
 *
 * Each check returns the first value found and the reply context it is read in, or
 * undefined when no key matched; the evaluator interprets the value
 * (smtpd-access-result.ts).
 *
 * Does not: interpret results, build tables (the evaluator compiles them once).
 *
 * SECURITY: keys are built from client-supplied strings; pattern tables get the one
 * full key, never a list of fragments, and the `what` of a reply is made printable.
 *
 * @module
 */

import { printable } from '../smtp-reply.js';
import { lookupAddress } from '../tables/search-order.js';
import type { LookupTable } from '../tables/types.js';
import type { AccessReplyContext } from './smtpd-access-result.js';
import type { RestrictionEnvironment } from './smtpd-restriction-builtins.js';
import { clientKeys, domainKeys, requestNamaddr } from './smtpd-restriction-request.js';
import type { RestrictionRequest } from './smtpd-restriction-types.js';

/** A value found in an access table, with the context its reply is built in. */
export interface AccessHit {
  readonly value: string;
  readonly ctx: AccessReplyContext;
}

/** One access table check. */
export type AccessCheck = (
  table: LookupTable,
  req: RestrictionRequest,
  env: RestrictionEnvironment,
) => Promise<AccessHit | undefined>;

function codesOf(env: RestrictionEnvironment): { rejectCode: number; deferCode: number } {
  const p = env.params;
  return { rejectCode: p.accessMapRejectCode, deferCode: p.accessMapDeferCode };
}

async function firstHit(
  table: LookupTable,
  keys: readonly string[],
  ctx: AccessReplyContext,
): Promise<AccessHit | undefined> {
  for (const key of keys) {
    const value = await table.lookup(key);
    if (value !== undefined) return { value, ctx };
  }
  return undefined;
}

function addressCheck(sender: boolean): AccessCheck {
  return async (table, req, env) => {
    const address = sender ? req.sender : req.recipient;
    if (address === undefined) return undefined;
    const hit = await lookupAddress(table, address, {
      style: 'access',
      recipientDelimiter: env.params.recipientDelimiter,
    });
    if (!hit) return undefined;
    const ctx = {
      what: `<${printable(address)}>`,
      className: sender ? 'Sender address' : 'Recipient address',
      ...codesOf(env),
    };
    return { value: hit.value, ctx };
  };
}

/** The access table checks by name. */
export const ACCESS_CHECKS: Readonly<Record<string, AccessCheck>> = {
  check_client_access: (table, req, env) => {
    const ctx = { what: `<${requestNamaddr(req)}>`, className: 'Client host', ...codesOf(env) };
    const name = req.client.name ?? 'unknown';
    return firstHit(table, clientKeys(name, req.client.address, table.flags.pattern), ctx);
  },
  check_helo_access: async (table, req, env) => {
    if (req.helo === undefined) return undefined;
    const ctx = { what: `<${printable(req.helo)}>`, className: 'Helo command', ...codesOf(env) };
    return firstHit(table, domainKeys(req.helo.toLowerCase(), table.flags.pattern), ctx);
  },
  check_sender_access: addressCheck(true),
  check_recipient_access: addressCheck(false),
};
