/**
 * DNS-based restrictions: DNS blocklists (reject_rbl_client), the client's
 * forward-confirmed reverse name (reject_unknown_client_hostname), and whether a
 * sender or recipient domain exists (reject_unknown_sender_domain /
 * reject_unknown_recipient_domain) — all through the injected Resolver.
 *
 * Postfix counterpart: smtpd_check.c reject_rbl_addr(), reject_unknown_client(),
 * reject_unknown_address() / reject_unknown_mailhost(), and smtpd_peer.c's
 * forward-confirmation of the PTR name.
 *
 * Does not: cache (the Resolver may), RHSBL lookups, DNSWL.
 *
 * SECURITY: only numeric client addresses are turned into RBL query names; reply
 * texts from TXT records are made printable and bounded.
 *
 * STANDARDS: RFC 5782 (DNS blocklists: reversed IPv4 octets, IPv6 nibbles).
 *
 * @module
 */

import net from 'node:net';
import { isDnsNoData, isDnsNotFound } from '../resolver.js';
import type { Resolver } from '../types.js';

/** RFC 5782 query name for `address` under `domain`, or undefined for a non-IP. */
export function rblQueryName(address: string, domain: string): string | undefined {
  if (net.isIPv4(address)) return `${address.split('.').reverse().join('.')}.${domain}`;
  if (net.isIPv6(address)) {
    const nibbles = expandIPv6(address).replace(/:/g, '').split('').reverse().join('.');
    return `${nibbles}.${domain}`;
  }
  return undefined;
}

function expandIPv6(address: string): string {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0')).join(':');
}

/** One listing found in a DNS blocklist. */
export interface RblListing {
  readonly domain: string;
  readonly addresses: readonly string[];
  readonly reason?: string;
}

/**
 * Asks `domain` (optionally `domain=127.0.0.2` or `domain=127.0.0.[2..11]`-style
 * filters given as a plain address) whether `address` is listed. Undefined when not
 * listed or when the list cannot be asked (Postfix logs and goes on).
 */
export async function rblLookup(
  resolver: Resolver,
  address: string,
  spec: string,
): Promise<RblListing | undefined> {
  const eq = spec.indexOf('=');
  const domain = eq < 0 ? spec : spec.slice(0, eq);
  const filter = eq < 0 ? undefined : spec.slice(eq + 1);
  const name = rblQueryName(address, domain);
  if (name === undefined) return undefined;
  let addresses: string[];
  try {
    addresses = await resolver.resolve4(name);
  } catch {
    return undefined;
  }
  const hits = filter === undefined ? addresses : addresses.filter((a) => a === filter);
  if (hits.length === 0) return undefined;
  let reason: string | undefined;
  try {
    const txt = await resolver.resolveTxt(name);
    const first = txt[0];
    if (first) reason = first.join('');
  } catch {
    // TXT is optional.
  }
  return { domain, addresses: hits, ...(reason !== undefined ? { reason } : {}) };
}

/** `ok`: the name exists; `unknown`: it does not; `temp`: DNS could not say. */
export type DnsVerdict = 'ok' | 'unknown' | 'temp';

/** Whether a mail domain has an MX, A or AAAA record (Postfix reject_unknown_mailhost). */
export async function checkMailDomain(resolver: Resolver, domain: string): Promise<DnsVerdict> {
  if (domain.startsWith('[') && domain.endsWith(']')) return 'ok';
  let temp = false;
  for (const q of [
    () => resolver.resolveMx(domain),
    () => resolver.resolve4(domain),
    () => resolver.resolve6(domain),
  ]) {
    try {
      const r = await q();
      if (r.length > 0) return 'ok';
    } catch (err) {
      if (isDnsNotFound(err)) return 'unknown';
      if (!isDnsNoData(err)) temp = true;
    }
  }
  return temp ? 'temp' : 'unknown';
}

/**
 * The client's verified name: a PTR name whose A/AAAA records include the address.
 * `unknown` when there is none; `temp` when DNS failed.
 */
export async function verifiedClientName(
  resolver: Resolver,
  address: string,
): Promise<{ name: string } | 'unknown' | 'temp'> {
  let names: string[];
  try {
    names = await resolver.reverse(address);
  } catch (err) {
    return isDnsNotFound(err) || isDnsNoData(err) ? 'unknown' : 'temp';
  }
  let temp = false;
  for (const name of names.slice(0, 10)) {
    try {
      const addrs = net.isIPv6(address)
        ? await resolver.resolve6(name)
        : await resolver.resolve4(name);
      if (addrs.includes(address)) return { name: name.replace(/\.$/, '').toLowerCase() };
    } catch (err) {
      if (!isDnsNotFound(err) && !isDnsNoData(err)) temp = true;
    }
  }
  return temp ? 'temp' : 'unknown';
}
