/**
 * Rewriter: address rewriting to canonical form and resolution of a recipient to
 * (address class, transport, nexthop) — Postern's trivial-rewrite(8).
 *
 * Postfix counterpart: trivial-rewrite/rewrite.c (rewrite_tree in the `local`
 * context), resolve.c (resolve_addr: the while-local loop, address classes, relayhost,
 * sender-dependent maps, transport_maps, relocated_maps) and smtpd_check.c
 * check_rcpt_maps() for isListedRecipient().
 *
 * rewrite(): the canonical form (canonical-form.ts): source routes stripped, bang
 * paths and the `%` hack, `@$myorigin`, `.$mydomain`, domains lower-cased and
 * UTS #46-mapped (U-labels stay U-labels, the form an SMTPUTF8 envelope keeps).
 *
 * resolve(): the null address becomes `$emptyAddressRecipient@$myhostname`. While the
 * domain is local and the local part still holds `@`, `%` or `!`, the local domain is
 * stripped and the rest rewritten again (`user%remote@local` → `user@remote`). Classes,
 * first match (ADDRESS_CLASS_README): `local` ($mydestination, or an address literal
 * such as `[192.0.2.1]` of one of $inetInterfaces / $proxyInterfaces), `virtual-alias`
 * (virtualAliasDomains → `error:5.1.1 User unknown in virtual alias table`, which
 * transport_maps cannot override), `virtual-mailbox` (virtualMailboxDomains →
 * virtualTransport), `relay` (relayDomains → relayTransport), `default`
 * (senderDependentDefaultTransportMaps, else defaultTransport). Nexthop precedence:
 * recipient domain < relayhost < senderDependentRelayhostMaps < the class parameter's
 * `transport:nexthop` < transport_maps. Then relocated_maps (any class) →
 * `error:5.1.6 User has moved to NEWLOCATION`. Domains are compared and routed in
 * A-label form.
 *
 * Does not: address literals listed in mydestination (a literal is local when it is one
 * of this machine's interface addresses), tables in mydestination (isLocalDomain()
 * must answer synchronously), the `remote` rewrite
 * context (cleanup's remoteHeaderRewriteDomain), resolve_dequoted_address = no.
 *
 * SECURITY: the ROUTED flag marks sender-specified routing so relay control can treat
 * `user%remote@local`-style addresses as foreign; the while-local loop is bounded.
 * A table that cannot answer throws TableError `retry`: the caller defers, never
 * bounces. Every other failure of a hostile address is a ResolveResult.error (5.1.3),
 * never a throw: a domain that does not convert to an A-label, or is too long, bounces
 * instead of being routed somewhere else.
 *
 * STANDARDS: RFC 5321 section 3.6.1 (source routes), 4.1.3 (address literals);
 * RFC 1123 section 5.2.16 (the `%` hack); RFC 5890 (A-labels, U-labels).
 *
 * @module
 */

import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { splitAddress } from '../address/address.js';
import { toAsciiDomain } from '../address/domain.js';
import { ConfigError, TableError } from '../errors.js';
import type { Logger } from '../log.js';
import { type CreateTableOptions, createTable } from '../tables/create-table.js';
import { DomainList } from '../tables/domain-list.js';
import { lookupAddressIdn } from '../tables/search-order.js';
import type { LookupTable, TableSpec } from '../tables/types.js';
import type { Address } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import type { Mutable } from '../util/mutable.js';
import { canonicalDomain, lowerAscii, rewriteAddress } from './canonical-form.js';
import { type ListedRecipient, listedRecipient, listedRecipientNow } from './listed-recipient.js';
import { localRecipientTable } from './local-recipient-maps.js';
import type { RewriterParameters } from './rewrite-parameters.js';
import { parseTransportSpec, type TransportSpec } from './transport-spec.js';
import type { AddressClass, ResolveResult } from './types.js';

/** Each pass of the while-local loop shortens the address; this only guards against a bug. */
const MAX_LOCAL_LOOPS = 100;
/** `allow_min_user = no` and bad syntax: Postfix bounces with "bad address syntax". */
const BAD_SYNTAX = Object.freeze({
  code: 501,
  enhanced: '5.1.3',
  text: 'Bad recipient address syntax',
});

/**
 * The Rewriter's tables; each defaults to the one built from the parameter of the same name.
 *
 * @example
 * ```ts
 * const rewriter = new Rewriter({ params, transportMaps: new InlineTable({ 'example.net': 'relay:[10.0.0.5]' }) });
 * ```
 */
export interface RewriterTables {
  /** Postfix `transport_maps`. */
  readonly transportMaps?: LookupTable;
  /** Postfix `relocated_maps`. */
  readonly relocatedMaps?: LookupTable;
  /** Postfix `virtual_alias_maps`. */
  readonly virtualAliasMaps?: LookupTable;
  /** Postfix `virtual_mailbox_maps`. */
  readonly virtualMailboxMaps?: LookupTable;
  /** Postfix `local_recipient_maps`. */
  readonly localRecipientMaps?: LookupTable;
  /** Postfix `relay_recipient_maps`. */
  readonly relayRecipientMaps?: LookupTable;
  /** Postfix `sender_dependent_relayhost_maps`. */
  readonly senderDependentRelayhostMaps?: LookupTable;
  /** Postfix `sender_dependent_default_transport_maps`. */
  readonly senderDependentDefaultTransportMaps?: LookupTable;
}

export type { ListedRecipient } from './listed-recipient.js';

/**
 * Options for Rewriter: parameters plus ready tables.
 *
 * @example
 * ```ts
 * const rewriter = new Rewriter({ params: resolveParameters({ mydestination: ['example.com'] }) } satisfies RewriterOptions);
 * ```
 */
export interface RewriterOptions extends RewriterTables {
  /**
   * The parameters read (`myorigin`, `mydestination`, `relayhost`, the table parameters...).
   */
  readonly params: RewriterParameters;
  /** Where table reloads and configuration warnings are logged. */
  readonly logger?: Logger;
}

const TABLE_KEYS: readonly (keyof RewriterTables)[] = [
  'transportMaps',
  'relocatedMaps',
  'virtualAliasMaps',
  'virtualMailboxMaps',
  'localRecipientMaps',
  'relayRecipientMaps',
  'senderDependentRelayhostMaps',
  'senderDependentDefaultTransportMaps',
];

/** Whether `feature` is in parent_domain_matches_subdomains (camelCase or Postfix name). */
function parentStyle(p: RewriterParameters, feature: string): boolean {
  const snake = feature.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return p.parentDomainMatchesSubdomains.some((f) => f === feature || f === snake);
}

/**
 * trivial-rewrite: rewrite and resolve.
 *
 * @example
 * ```ts
 * const rewriter = new Rewriter({ params: resolveParameters({ myhostname: 'mx.example.com', mydestination: ['example.com'] }) });
 * rewriter.rewrite('alice'); // 'alice@mx.example.com' (myorigin appended)
 * const r = await rewriter.resolve('alice@example.com'); // { addressClass: 'local', transport: 'local', ... }
 * ```
 */
export class Rewriter {
  readonly #params: RewriterParameters;
  readonly #logger: Logger | undefined;
  readonly #tables: RewriterTables;
  readonly #mydestination: DomainList;
  /** $inet_interfaces and $proxy_interfaces: address literals that mean this machine. */
  readonly #interfaces: ReadonlySet<string>;
  readonly #relayDomains: DomainList;
  readonly #virtualAliasDomains: DomainList;
  readonly #virtualMailboxDomains: DomainList;
  /** The lists domainClass() asks after mydestination, in Postfix's order, with their class. */
  readonly #classLists: readonly (readonly [DomainList, AddressClass])[];
  readonly #localSpec: TransportSpec;
  readonly #relaySpec: TransportSpec;
  readonly #defaultSpec: TransportSpec;
  readonly #virtualSpec: TransportSpec;

  /**
   * Builds the tables named by the parameters (`transportMaps`, `relocatedMaps`,
   * `virtualAliasMaps`, ...) unless given as options, and checks the class transports.
   *
   * @throws ConfigError naming the parameter for a bad table, list entry or transport
   */
  constructor(options: RewriterOptions) {
    const p = options.params;
    this.#params = p;
    this.#logger = options.logger;
    const tableOptions: CreateTableOptions = {
      cacheTtl: p.lookupTableCacheTtl,
      ...(options.logger ? { logger: options.logger } : {}),
    };
    const tables: Record<string, LookupTable | undefined> = {};
    for (const key of TABLE_KEYS) {
      const spec = options[key] ?? (p[key] as TableSpec | undefined);
      if (spec === undefined) tables[key] = undefined;
      else if (key === 'localRecipientMaps')
        tables[key] = localRecipientTable(spec, p, { ...tableOptions, logger: options.logger });
      else tables[key] = createTable(spec, key, tableOptions);
    }
    this.#tables = tables as RewriterTables;

    for (const d of p.mydestination) {
      if (/^[a-z0-9]+:/i.test(d.trim()) || d.trim().startsWith('$')) {
        throw new ConfigError(
          `mydestination: "${d}" is a table; list the local domains by name (tables belong in virtualMailboxDomains or relayDomains)`,
          'mydestination',
        );
      }
    }
    const refs = {
      virtualAliasMaps: this.#tables.virtualAliasMaps,
      virtualMailboxMaps: this.#tables.virtualMailboxMaps,
      virtual_alias_maps: this.#tables.virtualAliasMaps,
      virtual_mailbox_maps: this.#tables.virtualMailboxMaps,
      relayRecipientMaps: this.#tables.relayRecipientMaps,
      relay_recipient_maps: this.#tables.relayRecipientMaps,
    };
    this.#mydestination = new DomainList(p.mydestination, 'mydestination', false);
    this.#interfaces = interfaceAddresses(p.inetInterfaces, p.proxyInterfaces);
    this.#relayDomains = new DomainList(
      p.relayDomains,
      'relayDomains',
      parentStyle(p, 'relayDomains'),
      refs,
      tableOptions,
    );
    this.#virtualAliasDomains = new DomainList(
      p.virtualAliasDomains,
      'virtualAliasDomains',
      parentStyle(p, 'virtualAliasDomains'),
      refs,
      tableOptions,
    );
    this.#virtualMailboxDomains = new DomainList(
      p.virtualMailboxDomains,
      'virtualMailboxDomains',
      parentStyle(p, 'virtualMailboxDomains'),
      refs,
      tableOptions,
    );
    this.#classLists = [
      [this.#virtualAliasDomains, 'virtual-alias'],
      [this.#virtualMailboxDomains, 'virtual-mailbox'],
      [this.#relayDomains, 'relay'],
    ];
    // Checked now, so a bad class parameter fails at start-up, not on the first mail.
    this.#localSpec = classSpec(p.localTransport, 'localTransport');
    this.#relaySpec = classSpec(p.relayTransport, 'relayTransport');
    this.#defaultSpec = classSpec(p.defaultTransport, 'defaultTransport');
    this.#virtualSpec = classSpec(p.virtualTransport, 'virtualTransport');
    this.#warnOverlaps();
  }

  /** The tables in use (built from the parameters or given), for components that share them. */
  get tables(): RewriterTables {
    return this.#tables;
  }

  /** Postfix: "do not list domain X in BOTH mydestination and virtual_..._domains". */
  #warnOverlaps(): void {
    const local = new Set(this.#mydestination.names());
    const lists: [string, DomainList][] = [
      ['virtualAliasDomains', this.#virtualAliasDomains],
      ['virtualMailboxDomains', this.#virtualMailboxDomains],
      ['relayDomains', this.#relayDomains],
    ];
    for (const [key, list] of lists) {
      for (const name of list.names()) {
        if (local.has(name)) {
          this.#logger?.log(
            'warning',
            'trivial-rewrite',
            undefined,
            `do not list domain ${name} in BOTH mydestination and ${key}`,
          );
        }
      }
    }
  }

  /** Rewrites an internal address to canonical form (trivial-rewrite, `local` context). */
  rewrite(address: Address): Address {
    return rewriteAddress(address, this.#params);
  }

  /**
   * Whether mail for `domain` (any IDN form) is delivered here: $mydestination, or an
   * address literal of $inetInterfaces / $proxyInterfaces.
   */
  isLocalDomain(domain: string): boolean {
    if (domain.startsWith('[')) return this.#interfaces.has(literalAddress(domain));
    return this.#mydestination.matchesStatic(domain);
  }

  /**
   * Whether `domain` is in $relayDomains (subdomains included, as Postfix's default).
   * Table entries of relayDomains are not consulted here: resolve() does that.
   */
  isRelayDomain(domain: string): boolean {
    return this.#relayDomains.matchesStatic(domain);
  }

  /**
   * The address class of a domain (A-label or U-label form).
   *
   * @throws TableError `retry` when a domain table cannot answer
   */
  async domainClass(domain: string): Promise<AddressClass> {
    return this.#domainClass(domain);
  }

  /** domainClass(), without a promise unless a list has a table to ask. */
  #domainClass(domain: string): AddressClass | Promise<AddressClass> {
    const d = toAsciiDomain(domain) ?? lowerAscii(domain);
    if (this.isLocalDomain(d)) return 'local';
    const lists = this.#classLists;
    for (let i = 0; i < lists.length; i++) {
      const entry = lists[i]!;
      // A list of names only is answered without waiting: most are, and this runs per recipient.
      if (entry[0].hasTables) return this.#domainClassFrom(d, i);
      if (entry[0].matchesStatic(d)) return entry[1];
    }
    return 'default';
  }

  async #domainClassFrom(d: string, from: number): Promise<AddressClass> {
    const lists = this.#classLists;
    for (let i = from; i < lists.length; i++) {
      const [list, cls] = lists[i]!;
      if (list.hasTables ? await list.matches(d) : list.matchesStatic(d)) return cls;
    }
    return 'default';
  }

  /**
   * Resolves a recipient to its address class, transport and nexthop. `sender` feeds
   * the sender-dependent maps (Postfix resolve_clnt's sender argument).
   *
   * @throws TableError `retry` when a table cannot answer (defer the mail)
   */
  async resolve(address: Address, sender?: Address): Promise<ResolveResult> {
    return this.#resolveNow(address, sender);
  }

  /**
   * resolve(), without a promise when no table is to be asked (no transport, relocated
   * or sender-dependent maps, and domain lists of names only): smtpd resolves every RCPT.
   * A subclass that overrides resolve() is asked through it.
   *
   * @throws TableError `retry` (or a rejected promise) when a table cannot answer
   */
  resolveNow(address: Address, sender?: Address): ResolveResult | Promise<ResolveResult> {
    if (this.resolve !== Rewriter.prototype.resolve) return this.resolve(address, sender);
    return this.#resolveNow(address, sender);
  }

  #resolveNow(address: Address, sender?: Address): ResolveResult | Promise<ResolveResult> {
    const p = this.#params;
    let addr = this.rewrite(address);
    if (addr === '') addr = `${p.emptyAddressRecipient}@${p.myhostname}`;

    let { local, domain } = splitAddress(addr);
    // Whether `addr` still reads `${local}@${domain}` (then it is the recipient as it is).
    let whole = addr.includes('@');
    if (!whole) domain = p.myhostname; // appendAtMyorigin = false: resolve.c uses $myhostname
    // The while-local loop (resolve.c): strip a local domain while the local part still
    // routes. ROUTED then says whether the *final* local part still routes, as in Postfix;
    // `user%remote@local` becomes plain `user@remote`, which relay control judges by its domain.
    for (let n = 0; n < MAX_LOCAL_LOOPS && /[@%!]/.test(local) && this.isLocalDomain(domain); n++) {
      const next = this.rewrite(local);
      if (next === `${local}@${domain}`) break; // `!user`: rewriting makes no progress
      const s = splitAddress(next);
      local = s.local;
      domain = next.includes('@') ? s.domain : p.myhostname;
      whole = false;
    }
    const canonical = canonicalDomain(domain);
    if (canonical !== domain) {
      domain = canonical;
      whole = false;
    }
    const routed = /[@%!]/.test(local);

    // The routing form: A-labels; a numeric domain becomes an address literal when allowed.
    let ascii = toAsciiDomain(domain);
    let syntaxError = false;
    if (domain === '' && p.resolveNullDomain) {
      domain = p.myhostname;
      ascii = p.myhostname;
      whole = false;
    } else if (mayBeIp(domain) && isIP(domain) !== 0) {
      if (p.resolveNumericDomain) ascii = isIP(domain) === 4 ? `[${domain}]` : `[ipv6:${domain}]`;
      else syntaxError = true;
    } else if (ascii === undefined) {
      syntaxError = true;
    }
    if (!p.allowMinUser && local.startsWith('-')) syntaxError = true;
    const recipient = whole ? addr : `${local}@${domain}`;
    const routeDomain = ascii ?? lowerAscii(domain);

    const known = syntaxError ? 'default' : this.#domainClass(routeDomain);
    const t = this.#tables;
    if (
      typeof known !== 'string' ||
      t.transportMaps ||
      t.relocatedMaps ||
      ((t.senderDependentDefaultTransportMaps || t.senderDependentRelayhostMaps) &&
        sender !== undefined &&
        !syntaxError)
    ) {
      return this.#resolveTables(known, local, routeDomain, recipient, routed, syntaxError, sender);
    }
    const res = this.#classResult(
      known,
      routeDomain,
      recipient,
      routed,
      known === 'relay' ? this.#relaySpec : this.#defaultSpec,
      p.relayhost,
    );
    if (syntaxError) res.error = BAD_SYNTAX;
    return res;
  }

  /** The result as the address class routes it, before transport(5) and relocated(5). */
  #classResult(
    addressClass: AddressClass,
    routeDomain: string,
    recipient: Address,
    routed: boolean,
    spec: TransportSpec,
    relayhost: string,
  ): Mutable<ResolveResult> {
    let transport: string;
    let nexthop: string;
    switch (addressClass) {
      case 'local':
        transport = this.#localSpec.transport;
        nexthop = this.#localSpec.nexthop ?? this.#params.myhostname;
        break;
      case 'virtual-alias':
        // Every address must have been aliased away in cleanup; what is left is unknown.
        transport = 'error';
        nexthop = '5.1.1 User unknown in virtual alias table';
        break;
      case 'virtual-mailbox':
        transport = this.#virtualSpec.transport;
        nexthop = this.#virtualSpec.nexthop ?? routeDomain;
        break;
      default:
        transport = spec.transport;
        nexthop = spec.nexthop ?? (relayhost !== '' ? relayhost : routeDomain);
    }
    return { addressClass, transport, nexthop, recipient, routed };
  }

  /** The rest of resolveNow() when a table is to be asked. */
  async #resolveTables(
    known: AddressClass | Promise<AddressClass>,
    local: string,
    routeDomain: string,
    recipient: Address,
    routed: boolean,
    syntaxError: boolean,
    sender: Address | undefined,
  ): Promise<ResolveResult> {
    const p = this.#params;
    const addressClass = typeof known === 'string' ? known : await known;
    let spec = addressClass === 'relay' ? this.#relaySpec : this.#defaultSpec;
    let relayhost = p.relayhost;
    if (
      (addressClass === 'default' || addressClass === 'relay') &&
      sender !== undefined &&
      !syntaxError
    ) {
      if (addressClass === 'default' && this.#tables.senderDependentDefaultTransportMaps) {
        const found = await this.#senderLookup(
          this.#tables.senderDependentDefaultTransportMaps,
          sender,
        );
        if (found) spec = tableSpec(found, this.#tables.senderDependentDefaultTransportMaps);
      }
      if (this.#tables.senderDependentRelayhostMaps) {
        const found = await this.#senderLookup(this.#tables.senderDependentRelayhostMaps, sender);
        if (found) relayhost = found;
      }
    }
    const res = this.#classResult(addressClass, routeDomain, recipient, routed, spec, relayhost);
    if (syntaxError) {
      res.error = BAD_SYNTAX;
      return res;
    }

    // transport(5) overrides every class but virtual alias (resolve.c).
    const key =
      this.#tables.transportMaps || this.#tables.relocatedMaps ? `${local}@${routeDomain}` : '';
    if (this.#tables.transportMaps && addressClass !== 'virtual-alias') {
      const found = await lookupAddressIdn(this.#tables.transportMaps, key, {
        style: 'transport',
        recipientDelimiter: p.recipientDelimiter,
        parentDomains: parentStyle(p, 'transportMaps'),
      });
      if (found) {
        const spec = parseTransportSpec(found.value);
        // transport(5): `:nexthop` keeps the transport; `transport` alone resets the
        // nexthop to the recipient domain (error: gets a generic text); `:` changes nothing.
        if (spec.transport === '') {
          if (spec.nexthop !== undefined) res.nexthop = spec.nexthop;
        } else {
          res.transport = spec.transport;
          res.nexthop =
            spec.nexthop ?? (spec.transport === 'error' ? 'Address is undeliverable' : routeDomain);
        }
      }
    }

    // relocated(5), any class: the user has moved.
    if (this.#tables.relocatedMaps) {
      const found = await lookupAddressIdn(this.#tables.relocatedMaps, key, {
        style: 'virtual',
        recipientDelimiter: p.recipientDelimiter,
        localDomain: addressClass === 'local' || routeDomain === toAsciiDomain(p.myorigin),
      });
      if (found) {
        res.transport = 'error';
        res.nexthop = `5.1.6 User has moved to ${found.value.replace(/[\r\n]+/g, ' ')}`;
      }
    }
    return res;
  }

  /** Sender-dependent lookup: `user@domain`, `@domain`, and `<>` for the null sender. */
  async #senderLookup(table: LookupTable, sender: Address): Promise<string | undefined> {
    if (sender === '') {
      // Postfix: the null sender is looked up as `<>` (sender_dependent_*_lookup keys).
      return table.lookup('<>');
    }
    const found = await lookupAddressIdn(table, sender, {
      style: 'virtual',
      recipientDelimiter: this.#params.recipientDelimiter,
    });
    return found?.value;
  }

  /**
   * Whether a recipient exists, for smtpd's reject_unlisted_recipient: the class's
   * valid-recipient table is asked (see listed-recipient.ts).
   *
   * @throws TableError `retry` when a table cannot answer (reply 4xx)
   */
  async isListedRecipient(address: Address): Promise<ListedRecipient> {
    return this.listedRecipient(await this.resolve(address));
  }

  /**
   * isListedRecipient() for a recipient already resolved (smtpd resolves each RCPT once).
   *
   * @throws TableError `retry` when a table cannot answer (reply 4xx)
   */
  listedRecipient(resolved: ResolveResult): Promise<ListedRecipient> {
    return listedRecipient(resolved, this.#tables, this.#params);
  }

  /**
   * listedRecipient(), without a promise when no table can tell. A subclass that
   * overrides listedRecipient() is asked through it.
   */
  listedRecipientNow(resolved: ResolveResult): ListedRecipient | Promise<ListedRecipient> {
    if (this.listedRecipient !== Rewriter.prototype.listedRecipient)
      return this.listedRecipient(resolved);
    return listedRecipientNow(resolved, this.#tables, this.#params);
  }
}

/**
 * False when `domain` cannot be an IP address: an IPv6 address has a colon and an IPv4 one
 * ends in a digit. It spares node's isIP(), whose IPv6 pattern is costly, on every domain name.
 */
function mayBeIp(domain: string): boolean {
  const last = domain.charCodeAt(domain.length - 1);
  return (last >= 0x30 && last <= 0x39) || domain.includes(':');
}

/** A `transport[:nexthop]` table value that must name a transport; a bad one is the table's config error. */
function tableSpec(value: string, table: LookupTable): TransportSpec {
  try {
    return classSpec(value, table.name);
  } catch (err) {
    throw new TableError('config', table.name, errorMessage(err));
  }
}

/** A class parameter's `transport[:nexthop]`; the transport name is required there. */
function classSpec(value: string, key: string): TransportSpec {
  let spec: TransportSpec;
  try {
    spec = parseTransportSpec(value);
  } catch (err) {
    throw new ConfigError(`${key}: ${errorMessage(err)}`, key);
  }
  if (spec.transport === '') {
    throw new ConfigError(
      `${key}: "${value}" names no transport; write e.g. "smtp" or "smtp:[relay.example.com]"`,
      key,
    );
  }
  return spec;
}

/** `[192.0.2.1]` → `192.0.2.1`, `[IPv6:2001:db8::1]` → `2001:db8::1` (lower case). */
function literalAddress(domain: string): string {
  return domain
    .slice(1, domain.endsWith(']') ? -1 : undefined)
    .replace(/^ipv6:/i, '')
    .toLowerCase();
}

/**
 * The addresses of $inet_interfaces and $proxy_interfaces: `all` is every address of
 * the host's interfaces, `loopback-only` 127.0.0.1 and ::1, anything else an address.
 */
function interfaceAddresses(
  inet: readonly string[],
  proxy: readonly string[],
): ReadonlySet<string> {
  const out = new Set<string>();
  for (const item of [...inet, ...proxy]) {
    const v = item.toLowerCase();
    if (v === 'all') {
      for (const list of Object.values(networkInterfaces())) {
        for (const a of list ?? []) out.add(a.address.toLowerCase());
      }
    } else if (v === 'loopback-only') {
      out.add('127.0.0.1');
      out.add('::1');
    } else {
      out.add(v.replace(/^\[|\]$/g, '').replace(/^ipv6:/, ''));
    }
  }
  return out;
}
