/**
 * Rewriter: address rewriting to canonical form and resolution of a recipient to
 * (address class, transport, nexthop) — Postern's trivial-rewrite(8).
 *
 * Postfix counterpart: trivial-rewrite/rewrite.c (rewrite_tree in the `local`
 * context) and resolve.c (resolve_addr: the while-local loop, address classes,
 * relayhost, transport_maps).
 *
 * rewrite(): `''` and a lone `@` stay `''`; a source route `@a,@b:user@d` is stripped;
 * `user@` loses its empty domain; an address without a domain becomes `user@site` for
 * `site!user` (swap_bangpath = yes), `user@dom` for `user%dom` (allow_percent_hack =
 * yes), otherwise gets `@$myorigin` (appendAtMyorigin); a single trailing dot of the
 * domain is dropped and the domain is lower-cased (ASCII only).
 *
 * resolve(): the null address becomes `MAILER-DAEMON@$myhostname`. While the domain is
 * local and the local part still holds `@`, `%` or `!`, the local domain is stripped and
 * the rest rewritten again (`user%remote@local` → `user@remote`). Then the class:
 * `local` ($mydestination), `relay` ($relayDomains, subdomains included as Postfix's
 * parent_domain_matches_subdomains says), else `default`; then transport_maps.
 *
 * Does not (yet): virtual alias / virtual mailbox classes, relocated_maps,
 * sender-dependent relayhost or transport maps, inet_interfaces address literals as
 * local, append_dot_mydomain (off since Postfix 3.0), the `remote` rewrite context,
 * A-label/U-label conversion.
 *
 * SECURITY: the ROUTED flag marks sender-specified routing so relay control can treat
 * `user%remote@local`-style addresses as foreign; the while-local loop is bounded.
 * A table that cannot answer throws TableError `retry`: the caller defers, never
 * bounces.
 *
 * STANDARDS: RFC 5321 section 3.6.1 (source routes), 4.1.3 (address literals);
 * RFC 1123 section 5.2.16 (the `%` hack).
 *
 * @module
 */

import { isIP } from 'node:net';
import type { Parameters } from '../config/parameters.js';
import { ConfigError } from '../errors.js';
import type { Address } from '../types.js';
import { isAddressLiteral, splitAddress } from './address.js';
import { lookupAddress } from './search-order.js';
import { parseTransportSpec, type TransportSpec } from './transport-spec.js';
import type { AddressClass, LookupTable, ResolveResult } from './types.js';

/** Postfix `empty_address_recipient`. */
const EMPTY_ADDRESS_RECIPIENT = 'MAILER-DAEMON';
/** Each pass of the while-local loop shortens the address; this only guards against a bug. */
const MAX_LOCAL_LOOPS = 100;
/** `allow_min_user = no` and bad syntax: Postfix bounces with "bad address syntax". */
const BAD_SYNTAX = Object.freeze({
  code: 501,
  enhanced: '5.1.3',
  text: 'Bad recipient address syntax',
});

export interface RewriterOptions {
  readonly params: Parameters;
  /** Postfix `transport_maps`, looked up with the transport(5) search order. */
  readonly transportMaps?: LookupTable;
}

function lowerAscii(text: string): string {
  return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

function normaliseDomain(domain: string): string {
  const d = domain.endsWith('.') && domain.length > 1 ? domain.slice(0, -1) : domain;
  return lowerAscii(d);
}

/** A domain list as Postfix matches it: exact, plus subdomains for `.domain` entries or in parent style. */
class DomainList {
  readonly #exact: Set<string>;
  readonly #parents: readonly string[];

  constructor(entries: readonly string[], parentStyle: boolean) {
    this.#exact = new Set();
    const parents: string[] = [];
    for (const raw of entries) {
      const e = normaliseDomain(raw.trim());
      if (e === '') continue;
      if (e.startsWith('.')) {
        parents.push(e);
      } else {
        this.#exact.add(e);
        if (parentStyle) parents.push(`.${e}`);
      }
    }
    this.#parents = parents;
  }

  matches(domain: string): boolean {
    const d = normaliseDomain(domain);
    if (this.#exact.has(d)) return true;
    return this.#parents.some((p) => d.endsWith(p));
  }
}

/** trivial-rewrite: rewrite and resolve. */
export class Rewriter {
  readonly #params: Parameters;
  readonly #transportMaps: LookupTable | undefined;
  readonly #mydestination: DomainList;
  readonly #relayDomains: DomainList;
  readonly #localSpec: TransportSpec;
  readonly #relaySpec: TransportSpec;
  readonly #defaultSpec: TransportSpec;

  constructor(options: RewriterOptions) {
    this.#params = options.params;
    this.#transportMaps = options.transportMaps;
    // mydestination: exact names only; relay_domains is in Postfix's default
    // parent_domain_matches_subdomains, so `example.com` covers `sub.example.com`.
    this.#mydestination = new DomainList(options.params.mydestination, false);
    this.#relayDomains = new DomainList(options.params.relayDomains, true);
    // Checked now, so a bad class parameter fails at start-up, not on the first mail.
    this.#localSpec = classSpec(options.params.localTransport, 'localTransport');
    this.#relaySpec = classSpec(options.params.relayTransport, 'relayTransport');
    this.#defaultSpec = classSpec(options.params.defaultTransport, 'defaultTransport');
  }

  /** Rewrites an internal address to canonical form (trivial-rewrite, `local` context). */
  rewrite(address: Address): Address {
    let addr = address;
    if (addr === '' || addr === '@') return '';
    // RFC 5321 section 3.6.1: a source route is ignored (`@a,@b:user@d`).
    if (addr.startsWith('@')) {
      const colon = addr.indexOf(':');
      if (colon > 0) addr = addr.slice(colon + 1);
      if (addr === '' || addr === '@') return '';
    }
    let { local, domain } = splitAddress(addr);
    const hasAt = addr.includes('@');
    if (!hasAt || domain === '') {
      // `user@`: Postfix drops the empty domain and treats the address as unqualified.
      const r = this.#qualify(local);
      local = r.local;
      domain = r.domain;
      if (domain === '') return local;
    }
    return `${local}@${normaliseDomain(domain)}`;
  }

  /** An unqualified local part: bang path, percent hack, or `@$myorigin`. */
  #qualify(local: string): { local: string; domain: string } {
    // swap_bangpath = yes: `site!user` → `user@site`.
    const bang = local.indexOf('!');
    if (bang > 0 && bang < local.length - 1) {
      return { local: local.slice(bang + 1), domain: local.slice(0, bang) };
    }
    // allow_percent_hack = yes: `user%domain` → `user@domain` (the last `%`).
    const pct = local.lastIndexOf('%');
    if (pct > 0 && pct < local.length - 1) {
      return { local: local.slice(0, pct), domain: local.slice(pct + 1) };
    }
    if (this.#params.appendAtMyorigin) return { local, domain: this.#params.myorigin };
    return { local, domain: '' };
  }

  /** Whether mail for `domain` is delivered here ($mydestination, case-insensitive). */
  isLocalDomain(domain: string): boolean {
    return this.#mydestination.matches(domain);
  }

  /** Whether `domain` is in $relayDomains (subdomains included, as Postfix's default). */
  isRelayDomain(domain: string): boolean {
    return this.#relayDomains.matches(domain);
  }

  /**
   * Resolves a recipient to its address class, transport and nexthop.
   *
   * @throws TableError `retry` when transport_maps cannot answer (defer the mail)
   */
  async resolve(address: Address): Promise<ResolveResult> {
    const p = this.#params;
    let addr = this.rewrite(address);
    if (addr === '') addr = `${EMPTY_ADDRESS_RECIPIENT}@${p.myhostname}`;

    let { local, domain } = splitAddress(addr);
    if (!addr.includes('@')) domain = p.myhostname; // appendAtMyorigin = false: resolve.c uses $myhostname
    // The while-local loop (resolve.c): strip a local domain while the local part still routes.
    for (let n = 0; n < MAX_LOCAL_LOOPS && /[@%!]/.test(local) && this.isLocalDomain(domain); n++) {
      const next = this.rewrite(local);
      if (next === `${local}@${domain}`) break; // `!user`: rewriting makes no progress
      const s = splitAddress(next);
      local = s.local;
      domain = next.includes('@') ? s.domain : p.myhostname;
    }
    domain = normaliseDomain(domain);
    const recipient = `${local}@${domain}`;
    const routed = /[@%!]/.test(local);

    let addressClass: AddressClass;
    let transport: string;
    let nexthop: string;
    if (this.isLocalDomain(domain)) {
      addressClass = 'local';
      const spec = this.#localSpec;
      transport = spec.transport;
      nexthop = spec.nexthop ?? p.myhostname;
    } else {
      const relay = this.isRelayDomain(domain);
      addressClass = relay ? 'relay' : 'default';
      const spec = relay ? this.#relaySpec : this.#defaultSpec;
      transport = spec.transport;
      // Nexthop precedence: recipient domain < relayhost < nexthop in the class parameter.
      nexthop = spec.nexthop ?? (p.relayhost !== '' ? p.relayhost : domain);
    }

    const result = (error?: ResolveResult['error']): ResolveResult => ({
      addressClass,
      transport,
      nexthop,
      recipient,
      routed,
      ...(error ? { error } : {}),
    });

    // allow_min_user = no: `-user` could be taken for a command-line option downstream.
    if (local.startsWith('-')) return result(BAD_SYNTAX);
    if (!validDomain(domain)) return result(BAD_SYNTAX);

    if (this.#transportMaps) {
      const found = await lookupAddress(this.#transportMaps, recipient, {
        style: 'transport',
        recipientDelimiter: p.recipientDelimiter,
      });
      if (found) {
        const spec = parseTransportSpec(found.value);
        // transport(5): `:nexthop` keeps the transport; `transport` alone resets the
        // nexthop to the recipient domain (error: gets a generic text); `:` changes nothing.
        if (spec.transport === '') {
          if (spec.nexthop !== undefined) nexthop = spec.nexthop;
        } else {
          transport = spec.transport;
          nexthop = spec.nexthop ?? (transport === 'error' ? 'Address is undeliverable' : domain);
        }
      }
    }
    return result();
  }
}

/** A class parameter's `transport[:nexthop]`; the transport name is required there. */
function classSpec(value: string, key: string): TransportSpec {
  let spec: TransportSpec;
  try {
    spec = parseTransportSpec(value);
  } catch (err) {
    throw new ConfigError(`${key}: ${(err as Error).message}`, key);
  }
  if (spec.transport === '') {
    throw new ConfigError(
      `${key}: "${value}" names no transport; write e.g. "smtp" or "smtp:[relay.example.com]"`,
      key,
    );
  }
  return spec;
}

/**
 * A domain trivial-rewrite accepts: a host name (letters, digits, `-`, `_`, U-labels) or
 * an address literal. A bare IP address is refused (resolve_numeric_domain = no).
 */
function validDomain(domain: string): boolean {
  if (domain === '' || domain.length > 255) return false;
  if (domain.startsWith('[')) return isAddressLiteral(domain);
  if (isIP(domain) !== 0) return false;
  for (const label of domain.split('.')) {
    if (label === '' || label.length > 63 || label.startsWith('-') || label.endsWith('-'))
      return false;
    if (!/^(?:[A-Za-z0-9_-]|[^\x00-\x7f])+$/.test(label)) return false;
  }
  return true;
}
