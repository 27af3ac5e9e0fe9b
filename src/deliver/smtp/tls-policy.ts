/**
 * TLS policy of the SMTP/LMTP client: which security level applies to a destination,
 * what the server certificate must match, and the check itself.
 *
 * Postfix counterpart: smtp_tls_policy.c (smtp_tls_policy_maps, per-destination
 * `level match=...` entries), tls_client.c (tls_check_hostname).
 *
 * Levels (TLS_README): `none` plaintext; `may` TLS when offered, plaintext on failure;
 * `encrypt` TLS required, certificate not checked; `verify` TLS required, certificate
 * chain trusted and naming the server host (`match=` default: the MX host name);
 * `secure` the same, the name matched being the nexthop domain (`nexthop:dot-nexthop`),
 * never the MX name from insecure DNS; `dane`/`dane-only` hand the certificate to a
 * DaneVerifier (a host application with a DNSSEC-validating resolver); `dane` without
 * one falls back to `may`, `dane-only` without one defers.
 *
 * Policy table keys, first match wins: the nexthop as written (`[mx.example.com]:587`),
 * the bare domain, then each parent as `.parent` (Postfix's `.domain` form).
 *
 * STANDARDS: RFC 3207 (STARTTLS), RFC 6125 (name matching), RFC 7672 (DANE for SMTP).
 *
 * @module
 */

import type { PeerCertificate } from 'node:tls';
import { builtin } from '../../builtin.js';
import { TableError } from '../../errors.js';
import type { LookupTable } from '../../tables/types.js';
import type { Endpoint } from './mx-resolver.js';
import { SMTP_TLS_LEVELS, type SmtpTlsLevel } from './smtp-parameters.js';

/**
 * The policy for one destination.
 *
 * @example
 * ```ts
 * // smtpTlsPolicyMaps: { 'example.com': 'secure match=.example.com' }
 * const policy: TlsPolicy = { level: 'secure', match: ['.example.com'] };
 * ```
 */
export interface TlsPolicy {
  /** The TLS security level for the destination. */
  readonly level: SmtpTlsLevel;
  /** Names the certificate must match (`.example.com` matches subdomains). */
  readonly match?: readonly string[];
}

/**
 * DANE TLSA check, supplied by an application whose Resolver validates DNSSEC.
 *
 * @example
 * ```ts
 * const dane: DaneVerifier = {
 *   async verify(endpoint, chain) {
 *     return (await myTlsaCheck(endpoint.host, endpoint.port, chain)) ? 'verified' : 'failed';
 *   },
 * };
 * const smtp = new SmtpDeliveryAgent({ params, dane });
 * ```
 */
export interface DaneVerifier {
  /**
   * Checks the server's certificate chain against the TLSA records of
   * `_port._tcp.host`: `verified`, `unusable` (no usable TLSA records: fall back to the
   * `may` behaviour), or `failed` (records exist and nothing matched: defer).
   */
  verify(
    endpoint: Endpoint,
    chain: readonly PeerCertificate[],
  ): Promise<'verified' | 'unusable' | 'failed'>;
}

/** Whether a level insists on TLS. */
export function tlsRequired(level: SmtpTlsLevel): boolean {
  return level !== 'none' && level !== 'may';
}

/** Whether a level checks the certificate chain and name. */
export function tlsVerifies(level: SmtpTlsLevel): boolean {
  return level === 'verify' || level === 'secure';
}

/** Parses a policy table value: `secure match=.example.com:example.com`. */
export function parsePolicy(value: string, table: string): TlsPolicy {
  const words = value.trim().split(/\s+/);
  const level = words[0] as SmtpTlsLevel;
  if (!SMTP_TLS_LEVELS.includes(level)) {
    throw new TableError(
      'config',
      table,
      `"${value}" does not start with a TLS level (${SMTP_TLS_LEVELS.join(', ')})`,
    );
  }
  let match: string[] | undefined;
  for (const w of words.slice(1)) {
    if (w.startsWith('match='))
      match = w
        .slice(6)
        .split(':')
        .filter((n) => n !== '');
  }
  return match ? { level, match } : { level };
}

/** The table's entry for a nexthop, or `undefined` when it has none. */
export async function findPolicyEntry(
  table: LookupTable | undefined,
  nexthopText: string,
  domain: string,
): Promise<TlsPolicy | undefined> {
  if (!table) return undefined;
  const keys = [nexthopText, domain];
  const labels = domain.split('.');
  for (let i = 1; i < labels.length; i++) keys.push(`.${labels.slice(i).join('.')}`);
  for (const key of [...new Set(keys)]) {
    const v = await table.lookup(key);
    if (v !== undefined) return parsePolicy(v, table.name);
  }
  return undefined;
}

/** The policy for a nexthop: the table's entry, else the default level. */
export async function findPolicy(
  table: LookupTable | undefined,
  nexthopText: string,
  domain: string,
  defaultLevel: SmtpTlsLevel,
): Promise<TlsPolicy> {
  return (await findPolicyEntry(table, nexthopText, domain)) ?? { level: defaultLevel };
}

/** The names a certificate must match at `verify` or `secure` for this endpoint. */
export function namesToMatch(policy: TlsPolicy, endpoint: Endpoint): string[] {
  const given = policy.match;
  const defaults = policy.level === 'secure' ? ['nexthop', 'dot-nexthop'] : ['hostname'];
  const out: string[] = [];
  for (const n of given && given.length > 0 ? given : defaults) {
    if (n === 'hostname') out.push(endpoint.host);
    else if (n === 'nexthop') out.push(endpoint.nexthop);
    else if (n === 'dot-nexthop') out.push(`.${endpoint.nexthop}`);
    else out.push(n);
  }
  return out.map((n) => n.toLowerCase());
}

/**
 * Whether `cert` names one of `names`. A plain name is checked as TLS clients do
 * (RFC 6125, wildcards in the left-most label); `.example.com` accepts any DNS name
 * under example.com in the certificate.
 */
export function certificateMatches(cert: PeerCertificate, names: readonly string[]): boolean {
  const dnsNames = (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  for (const name of names) {
    if (name.startsWith('.')) {
      if (dnsNames.some((d) => d.endsWith(name) && d.length > name.length)) return true;
    } else if (builtin('tls').checkServerIdentity(name, cert) === undefined) {
      return true;
    }
  }
  return false;
}
