/**
 * Postfix's address search orders: which keys a table is asked for, in which order,
 * when an address is looked up in transport(5), access(5) or virtual(5)/canonical(5)
 * style tables.
 *
 * Postfix counterpart: mail_addr_find.c (virtual, canonical, relocated), transport.c
 * transport_lookup(), smtpd_check.c check_mail_access() / check_domain_access(),
 * split_addr.c (address extensions).
 *
 * Pattern tables (regexp-like, flags.pattern) are asked only for the whole address
 * (and transport(5)'s `*`): partial keys such as `domain` or `user@` would make their
 * patterns match things they were not written for (Postfix: DICT_FLAG_FIXED).
 *
 * Does not: fold case (each table folds its own keys, see TableFlags.foldCase), decide
 * whether a domain is local (the caller says so), or propagate unmatched extensions.
 * Keys use the internal (unquoted) address form.
 *
 * @module
 */

import { splitAddress } from '../address/address.js';
import { toAsciiDomain, toUnicodeDomain } from '../address/domain.js';
import type { Address } from '../types.js';
import { TableList } from './lookup-table.js';
import type { LookupTable } from './types.js';

/**
 * Which man page's search order to follow.
 *
 * @example
 * ```ts
 * await lookupAddress(table, 'user+ext@example.com', { style: 'access' satisfies SearchStyle });
 * ```
 */
export type SearchStyle = 'transport' | 'access' | 'virtual';

/**
 * How lookupAddress() builds its keys.
 *
 * @example
 * ```ts
 * const options: LookupAddressOptions = { style: 'virtual', recipientDelimiter: '+', localDomain: true };
 * ```
 */
export interface LookupAddressOptions {
  /**
   * transport(5): `user+ext@domain`, `user@domain`, `domain`, parent domains (as
   * `.parent` or `parent`), `*`.
   * access(5): `user+ext@domain`, `user@domain`, `domain`, parent domains, `user+ext@`,
   * `user@`; the null sender is `<>`.
   * virtual(5) (also canonical(5), relocated(5)): `user+ext@domain`, `user@domain`,
   * `user+ext` and `user` (local domains only), `@domain`.
   * @default 'virtual'
   */
  readonly style?: SearchStyle;
  /** Postfix `recipient_delimiter`: any one of these characters starts an extension. @default '' */
  readonly recipientDelimiter?: string;
  /** virtual style: the domain is `$myorigin`, `$mydestination`... (enables `user` keys). @default false */
  readonly localDomain?: boolean;
  /**
   * transport/access styles: whether `example.com` also matches `sub.example.com`
   * (Postfix `parent_domain_matches_subdomains`); when false, subdomains are looked
   * up as `.example.com`. @default false for transport, true for access (Postfix's
   * default list holds smtpd_access_maps but not transport_maps)
   */
  readonly parentDomains?: boolean;
}

/** One key of a search order. `full` keys go to every table, partial keys only to fixed ones. */
export interface SearchKey {
  readonly key: string;
  readonly full: boolean;
}

const NO_SPLIT = new Set(['postmaster', 'mailer-daemon', 'double-bounce']);

/**
 * Splits `user+ext` at the first delimiter character (split_addr.c). Not split:
 * postmaster, MAILER-DAEMON, double-bounce, and — when `-` is a delimiter — `owner-*`
 * and `*-request`, which are list conventions, not extensions. Nor a local part that
 * would leave an empty user.
 */
export function splitExtension(
  local: string,
  delimiter: string,
): { user: string; extension: string } | undefined {
  if (delimiter === '') return undefined;
  const lower = local.toLowerCase();
  if (NO_SPLIT.has(lower)) return undefined;
  if (delimiter.includes('-') && (lower.startsWith('owner-') || lower.endsWith('-request')))
    return undefined;
  let at = -1;
  for (let i = 0; i < local.length; i++) {
    if (delimiter.includes(local[i]!)) {
      at = i;
      break;
    }
  }
  if (at <= 0) return undefined;
  return { user: local.slice(0, at), extension: local.slice(at) };
}

/** Domain keys: `a.b.c`, then `.b.c`, `.c` (or `b.c`, `c` in parent style). */
function domainKeys(domain: string, parentStyle: boolean): string[] {
  const keys: string[] = [];
  let name = domain;
  while (name !== '') {
    keys.push(name);
    const dot = name.indexOf('.', 1);
    if (dot < 0) break;
    name = parentStyle ? name.slice(dot + 1) : name.slice(dot);
  }
  return keys;
}

/** The keys `lookupAddress` would try for `address`, in order. */
export function searchKeys(address: Address, options: LookupAddressOptions = {}): SearchKey[] {
  const style = options.style ?? 'virtual';
  const delimiter = options.recipientDelimiter ?? '';
  const keys: SearchKey[] = [];
  const add = (key: string, full: boolean): void => {
    if (!keys.some((k) => k.key === key)) keys.push({ key, full });
  };

  if (address === '') {
    // smtpd_null_access_lookup_key: the null sender is looked up as `<>`.
    if (style === 'access') add('<>', true);
    return keys;
  }
  const hasDomain = address.includes('@');
  const { local, domain } = splitAddress(address);
  const split = splitExtension(local, delimiter);

  add(address, true);
  if (split && hasDomain) add(`${split.user}@${domain}`, false);

  switch (style) {
    case 'transport':
      if (domain !== '')
        for (const d of domainKeys(domain, options.parentDomains ?? false)) add(d, false);
      // transport.c looks `*` up like a full key.
      add('*', true);
      break;
    case 'access':
      if (domain !== '')
        for (const d of domainKeys(domain, options.parentDomains ?? true)) add(d, false);
      add(`${local}@`, false);
      if (split) add(`${split.user}@`, false);
      break;
    case 'virtual':
      if (options.localDomain || !hasDomain) {
        add(local, false);
        if (split) add(split.user, false);
      }
      if (domain !== '') add(`@${domain}`, false);
      break;
  }
  return keys;
}

/**
 * Looks `address` up in `table` following a Postfix search order; returns the first
 * key that matched and its value, or undefined.
 *
 * @throws TableError as the table throws it: a `retry` stops the search (a later key
 *   must not answer for a table that could not), exactly as maps.c does.
 *
 * @example
 * ```ts
 * const table = new InlineTable({ '@example.com': 'catchall@example.org' });
 * await lookupAddress(table, 'anyone@example.com'); // { key: '@example.com', value: 'catchall@example.org' }
 * ```
 */
export async function lookupAddress(
  table: LookupTable,
  address: Address,
  options: LookupAddressOptions = {},
): Promise<{ key: string; value: string } | undefined> {
  for (const { key, full } of searchKeys(address, options)) {
    let value: string | undefined;
    if (full) {
      value = await table.lookup(key);
    } else if (table instanceof TableList) {
      value = await table.lookupFixed(key);
    } else if (table.flags.pattern) {
      continue;
    } else {
      value = await table.lookup(key);
    }
    if (value !== undefined) return { key, value };
  }
  return undefined;
}

/**
 * lookupAddress() for an address whose domain may be an IDN: the search runs with the
 * A-label form first, then — only if nothing matched and the forms differ — with the
 * U-label form, so a table may be written either way (`xn--bcher-kva.example` or
 * `bücher.example`). A domain that is not a valid name is looked up as it is.
 *
 * @throws TableError as lookupAddress does
 */
export async function lookupAddressIdn(
  table: LookupTable,
  address: Address,
  options: LookupAddressOptions = {},
): Promise<{ key: string; value: string } | undefined> {
  if (!address.includes('@')) return lookupAddress(table, address, options);
  const { local, domain } = splitAddress(address);
  const ascii = toAsciiDomain(domain) ?? domain;
  const found = await lookupAddress(table, `${local}@${ascii}`, options);
  if (found) return found;
  const unicode = toUnicodeDomain(ascii);
  if (unicode === undefined || unicode === ascii) return undefined;
  return lookupAddress(table, `${local}@${unicode}`, options);
}
