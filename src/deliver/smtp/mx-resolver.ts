/**
 * Destinations of the SMTP client: from a nexthop list to an ordered list of server
 * addresses, through the injected Resolver.
 *
 * Postfix counterpart: smtp_addr.c (smtp_domain_addr, smtp_host_addr, smtp_find_self,
 * smtp_truncate_self) and dns_lookup.c.
 *
 * - MX records sorted by preference, equal preferences shuffled
 *   (`smtp_randomize_addresses`); no MX (NODATA) → the domain's own A/AAAA records.
 * - Null MX (RFC 7505: one MX whose exchange is `.`) → bounce 5.1.10.
 * - An MX host that is this machine (`myhostname`, or a name in `ownNames`) truncates
 *   the list at its preference; if that leaves nothing, the mail loops: bounce 5.4.6.
 * - NXDOMAIN bounces (5.4.4, "Host or domain name not found", as Postfix); a temporary
 *   DNS failure defers (4.4.3); MX hosts without any address bounce unless
 *   `deferIfNoMxAddressFound`.
 * - Addresses: A and AAAA, ordered by `addressPreference`; at most `mxAddressLimit`.
 *
 * Does not: SRV look-ups, DNSSEC (a DANE-validating Resolver would decide that).
 *
 * STANDARDS: RFC 5321 section 5.1 (locating the target host), RFC 7505 (null MX).
 *
 * @module
 */

import { isIP } from 'node:net';
import { isDnsNoData, isDnsNotFound } from '../../resolver.js';
import { SmtpReply } from '../../smtp-reply.js';
import type { MxRecord, Resolver } from '../../types.js';
import type { Nexthop } from './nexthop.js';

/**
 * One server address to try.
 *
 * @example
 * ```ts
 * const endpoint: Endpoint = { host: 'mx1.example.com', address: '192.0.2.10', port: 25, nexthop: 'example.com', viaMx: true };
 * ```
 */
export interface Endpoint {
  /** The host name (MX exchange or nexthop host) — for `relay=`, TLS names and logs. */
  readonly host: string;
  /** Numeric address. */
  readonly address: string;
  /** The TCP port. */
  readonly port: number;
  /** The nexthop domain this came from (TLS policy, AUTH credentials, MTA-STS). */
  readonly nexthop: string;
  /** Reached through an MX look-up (the name to verify a certificate against differs). */
  readonly viaMx: boolean;
}

/** Postfix `smtp_address_preference`. */
export type AddressPreference = 'any' | 'ipv4' | 'ipv6';

export interface FindEndpointsOptions {
  readonly resolver: Resolver;
  /** This machine's names: `myhostname` and any other name an MX may use for us. */
  readonly ownNames: readonly string[];
  /** Postfix `smtp_mx_address_limit`; 0 = none. @default 5 */
  readonly mxAddressLimit?: number;
  /** Postfix `smtp_address_preference`. @default 'any' */
  readonly addressPreference?: AddressPreference;
  /** Postfix `smtp_defer_if_no_mx_address_found`. @default false */
  readonly deferIfNoMxAddressFound?: boolean;
  /** Postfix `smtp_randomize_addresses`. @default true */
  readonly randomize?: boolean;
  /** Random source for shuffling equal preferences (tests make it predictable). */
  readonly random?: () => number;
}

/** Endpoints in the order to try them, or why there are none. */
export type EndpointResult =
  | { readonly ok: true; readonly endpoints: readonly Endpoint[] }
  | { readonly ok: false; readonly reply: SmtpReply };

/** Resolves a nexthop list (tried in order) to endpoints. */
export async function findEndpoints(
  nexthops: readonly Nexthop[],
  options: FindEndpointsOptions,
): Promise<EndpointResult> {
  const endpoints: Endpoint[] = [];
  let failure: SmtpReply | undefined;
  for (const hop of nexthops) {
    if (hop.kind !== 'inet') continue;
    const r = await resolveOne(hop, options);
    if (r.ok) endpoints.push(...r.endpoints);
    // The first temporary failure wins over later permanent ones: when in doubt, defer.
    else if (!failure || (r.reply.transient && !failure.transient)) failure = r.reply;
  }
  const limit = options.mxAddressLimit ?? 5;
  if (endpoints.length > 0) {
    return { ok: true, endpoints: limit > 0 ? endpoints.slice(0, limit) : endpoints };
  }
  return { ok: false, reply: failure ?? new SmtpReply(554, '5.4.4', 'no destination found') };
}

async function resolveOne(
  hop: Extract<Nexthop, { kind: 'inet' }>,
  options: FindEndpointsOptions,
): Promise<EndpointResult> {
  const { resolver } = options;
  const name = hop.host;
  const literal = isIP(name);
  if (literal !== 0) {
    return {
      ok: true,
      endpoints: [{ host: name, address: name, port: hop.port, nexthop: name, viaMx: false }],
    };
  }
  if (!hop.mx) return hostEndpoints(name, name, hop.port, false, options);

  let records: MxRecord[];
  try {
    records = await resolver.resolveMx(name);
  } catch (err) {
    if (isDnsNoData(err)) return hostEndpoints(name, name, hop.port, false, options);
    return { ok: false, reply: dnsReply(name, 'MX', err) };
  }
  if (records.length === 0) return hostEndpoints(name, name, hop.port, false, options);
  // RFC 7505 section 3: a single MX with an empty exchange ("." on the wire).
  if (records.some((r) => r.exchange === '' || r.exchange === '.')) {
    return {
      ok: false,
      reply: new SmtpReply(556, '5.1.10', `Domain ${name} does not accept mail (nullMX)`),
    };
  }
  const sorted = sortMx(records, options);
  const own = new Set(options.ownNames.map((n) => n.toLowerCase().replace(/\.$/, '')));
  const selfIndex = sorted.findIndex((r) => own.has(r.exchange.toLowerCase().replace(/\.$/, '')));
  let usable = sorted;
  if (selfIndex >= 0) {
    // smtp_truncate_self: only MX hosts strictly better than ourselves.
    const selfPref = sorted[selfIndex]!.priority;
    usable = sorted.filter((r) => r.priority < selfPref);
    if (usable.length === 0) {
      return {
        ok: false,
        reply: new SmtpReply(554, '5.4.6', `mail for ${name} loops back to myself`),
      };
    }
  }
  const endpoints: Endpoint[] = [];
  let transient: SmtpReply | undefined;
  for (const mx of usable) {
    const host = mx.exchange.replace(/\.$/, '');
    const r = await hostEndpoints(host, name, hop.port, true, options);
    if (r.ok) endpoints.push(...r.endpoints);
    else if (r.reply.transient) transient ??= r.reply;
    const limit = options.mxAddressLimit ?? 5;
    if (limit > 0 && endpoints.length >= limit) break;
  }
  if (endpoints.length > 0) return { ok: true, endpoints };
  if (transient) return { ok: false, reply: transient };
  const reply = new SmtpReply(
    options.deferIfNoMxAddressFound ? 451 : 554,
    '5.4.4',
    `Host or domain name not found. Name service error for name=${name} type=MX: no address found for any MX host`,
  );
  return { ok: false, reply };
}

/** MX records by preference, equal preferences in random order. */
export function sortMx(records: readonly MxRecord[], options: FindEndpointsOptions): MxRecord[] {
  const random = options.random ?? Math.random;
  const keyed = records.map((r) => ({
    r,
    k: options.randomize === false ? 0 : random(),
  }));
  keyed.sort((a, b) => a.r.priority - b.r.priority || a.k - b.k);
  return keyed.map((x) => x.r);
}

async function hostEndpoints(
  host: string,
  nexthop: string,
  port: number,
  viaMx: boolean,
  options: FindEndpointsOptions,
): Promise<EndpointResult> {
  const { resolver } = options;
  const pref = options.addressPreference ?? 'any';
  if (host.toLowerCase() === 'localhost') {
    // RFC 6761 section 6.3: localhost is the loopback, whatever DNS says.
    const loop = pref === 'ipv6' ? ['::1', '127.0.0.1'] : ['127.0.0.1', '::1'];
    return {
      ok: true,
      endpoints: loop.map((address) => ({ host, address, port, nexthop, viaMx })),
    };
  }
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const list = (r: PromiseSettledResult<string[]>): string[] =>
    r.status === 'fulfilled' ? r.value : [];
  const a = list(v4);
  const aaaa = list(v6);
  if (a.length + aaaa.length === 0) {
    const errs = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const temp = errs.find((e) => !isDnsNotFound(e) && !isDnsNoData(e));
    if (temp !== undefined) return { ok: false, reply: dnsReply(host, 'A', temp) };
    const notFound = errs.some((e) => isDnsNotFound(e));
    return {
      ok: false,
      reply: new SmtpReply(
        554,
        '5.4.4',
        notFound
          ? `Host or domain name not found. Name service error for name=${host} type=A: Host not found`
          : `Host or domain name not found. Name service error for name=${host} type=AAAA: Host found but no data record of requested type`,
      ),
    };
  }
  const addresses =
    pref === 'ipv6' ? [...aaaa, ...a] : pref === 'ipv4' ? [...a, ...aaaa] : interleave(a, aaaa);
  return {
    ok: true,
    endpoints: addresses.map((address) => ({ host, address, port, nexthop, viaMx })),
  };
}

/** Postfix `any`: both families, alternating, so one dead family costs one try. */
function interleave(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i]!);
    if (i < b.length) out.push(b[i]!);
  }
  return out;
}

function dnsReply(name: string, type: string, err: unknown): SmtpReply {
  if (isDnsNotFound(err)) {
    return new SmtpReply(
      554,
      '5.4.4',
      `Host or domain name not found. Name service error for name=${name} type=${type}: Host not found`,
    );
  }
  return new SmtpReply(
    451,
    '4.4.3',
    `Host or domain name not found. Name service error for name=${name} type=${type}: Host not found, try again`,
  );
}
