/**
 * AddressMapping: Cleanup's table-driven address rewriting — canonical_maps (with the
 * sender_ and recipient_ variants), masquerade_domains, virtual_alias_maps expansion
 * and the BCC maps.
 *
 * Postfix counterpart: cleanup_map11.c (canonical: one address in, one out, applied
 * until it stops changing), cleanup_masq.c (masquerading), cleanup_map1n.c (virtual
 * aliases: one address in, many out), cleanup_addr.c (which maps apply to which
 * address, and always_bcc / sender_bcc_maps / recipient_bcc_maps), mail_addr_map.c
 * (`@domain` results keep the user; unmatched extensions propagate).
 *
 * - canonical: the specific map (sender_/recipient_canonical_maps) first, then
 *   canonical_maps, each repeated while the result changes (at most 10 rounds, as
 *   cleanup_map11.c). A table result with several addresses uses the first (with a
 *   warning), as Postfix does.
 * - masquerade: `user@host.sub.example.com` → `user@example.com` for the first entry of
 *   `masqueradeDomains` that is a parent of the domain; `!domain` entries exclude;
 *   a domain equal to an entry is left alone; local parts in `masqueradeExceptions`
 *   are never masqueraded.
 * - virtual aliases, per cleanup_map1n.c: each address of the growing list is expanded
 *   in place (the first result replaces it, others join the end of the list) until it
 *   no longer changes; an address seen before stops (loops end there), an address may
 *   expand into itself once (`user@example.com → user@example.com, archive@...`);
 *   `virtualAliasRecursionLimit` bounds the rounds per address and
 *   `virtualAliasExpansionLimit` the list (either defers the message, "try again
 *   later", as Postfix); results longer than `virtualAliasAddressLengthLimit` are
 *   skipped with a warning. Duplicates are removed by the caller's duplicate filter.
 * Every lookup follows the virtual(5) search order (search-order.ts): `user+ext@domain`,
 * `user@domain`, `user+ext` and `user` for local domains, `@domain`. A result
 * `@otherdomain` keeps the user (and extension); an extension that the matching key
 * did not have is appended when `propagateUnmatchedExtensions` lists `canonical` or
 * `virtual`. Results are rewritten to canonical form (a bare `user` gets `@myorigin`).
 *
 * Does not: decide which classes apply (the transaction reads `canonicalClasses` and
 * `masqueradeClasses`), rewrite headers (header-rewriting.ts).
 *
 * SECURITY: expansion is bounded in rounds, size and address length; a table error
 * of kind `retry` propagates (the caller defers the message), never a partial list.
 *
 * @module
 */

import { splitAddress } from '../address/address.js';
import { PosternError, type PosternErrorOptions, TableError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import { lookupAddress, splitExtension } from '../tables/search-order.js';
import type { LookupTable } from '../tables/types.js';
import type { Address, QueueId } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import type { CleanupParameters } from './cleanup-parameters.js';

/** cleanup_map11.c MAX_RECURSION. */
const CANONICAL_ROUNDS = 10;

/**
 * The address tables of a Cleanup.
 *
 * @example
 * ```ts
 * const tables: AddressTables = {
 *   canonicalMaps: new InlineTable({ 'old@example.com': 'new@example.com' }),
 * };
 * ```
 */
export interface AddressTables {
  /** Postfix `canonical_maps`. */
  readonly canonicalMaps?: LookupTable;
  /** Postfix `sender_canonical_maps`. */
  readonly senderCanonicalMaps?: LookupTable;
  /** Postfix `recipient_canonical_maps`. */
  readonly recipientCanonicalMaps?: LookupTable;
  /** Postfix `virtual_alias_maps`. */
  readonly virtualAliasMaps?: LookupTable;
  /** Postfix `sender_bcc_maps`. */
  readonly senderBccMaps?: LookupTable;
  /** Postfix `recipient_bcc_maps`. */
  readonly recipientBccMaps?: LookupTable;
}

/** What AddressMapping needs besides its tables. */
export interface AddressMappingOptions {
  readonly params: CleanupParameters;
  readonly tables: AddressTables;
  /** Canonical form of a bare or odd address (trivial-rewrite). */
  readonly rewrite: (address: Address) => Address;
  /** Whether a domain is local (`$mydestination`): enables `user` lookup keys. */
  readonly isLocalDomain?: (domain: string) => boolean;
  readonly log: ComponentLogger;
}

/** Expansion failed in a way that must defer the message (limits, as Postfix). */
export class ExpansionLimitError extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_EXPANSION_LIMIT', message, options);
  }
}

/** Splits a table result into addresses: `a@x, b@y`, `<a@x> b@y`, quoted local parts kept. */
export function splitAddressList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      cur += c;
      if (c === '\\' && i + 1 < value.length) cur += value[++i];
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') {
      quoted = true;
      cur += c;
    } else if (c === ',' || c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (cur !== '') out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur !== '') out.push(cur);
  return out.map(toInternal).filter((a) => a !== '');
}

/** `<"john doe"@x>` → `john doe@x` (Postfix's internal form). */
export function toInternal(external: string): Address {
  let a = external.trim();
  if (a.startsWith('<') && a.endsWith('>')) a = a.slice(1, -1).trim();
  // Only a quoted local part changes: anything else is its own internal form.
  if (a.charCodeAt(0) !== 0x22) return a;
  const at = a.lastIndexOf('@');
  const local = at < 0 ? a : a.slice(0, at);
  const rest = at < 0 ? '' : a.slice(at);
  if (local.length >= 2 && local.endsWith('"')) {
    return `${local.slice(1, -1).replace(/\\(.)/g, '$1')}${rest}`;
  }
  return a;
}

export class AddressMapping {
  readonly #o: AddressMappingOptions;
  readonly #propagateCanonical: boolean;
  readonly #propagateVirtual: boolean;
  readonly #masq: readonly string[];
  readonly #masqExceptions: ReadonlySet<string>;

  constructor(options: AddressMappingOptions) {
    this.#o = options;
    const prop = options.params.propagateUnmatchedExtensions.map((s) => s.toLowerCase());
    this.#propagateCanonical = prop.includes('canonical');
    this.#propagateVirtual = prop.includes('virtual');
    this.#masq = options.params.masqueradeDomains.map((d) => d.trim().toLowerCase());
    this.#masqExceptions = new Set(
      options.params.masqueradeExceptions.map((u) => u.trim().toLowerCase()),
    );
  }

  /** Whether any virtual alias table is configured. */
  get hasVirtual(): boolean {
    return this.#o.tables.virtualAliasMaps !== undefined;
  }

  /** Whether canonical(5) has a table for addresses of `kind` (else it changes nothing). */
  hasCanonical(kind: 'sender' | 'recipient'): boolean {
    const t = this.#o.tables;
    const specific = kind === 'sender' ? t.senderCanonicalMaps : t.recipientCanonicalMaps;
    return specific !== undefined || t.canonicalMaps !== undefined;
  }

  /**
   * canonical(5) for an envelope or header address of `kind`.
   * @throws TableError as a table throws it
   */
  async canonical(
    address: Address,
    kind: 'sender' | 'recipient',
    queueId?: QueueId,
  ): Promise<Address> {
    if (address === '') return address;
    const t = this.#o.tables;
    let addr = address;
    const specific = kind === 'sender' ? t.senderCanonicalMaps : t.recipientCanonicalMaps;
    if (specific) addr = await this.#map11(specific, addr, queueId);
    if (t.canonicalMaps) addr = await this.#map11(t.canonicalMaps, addr, queueId);
    return addr;
  }

  /** masquerade_domains applied to one address. */
  masquerade(address: Address): Address {
    if (this.#masq.length === 0 || address === '') return address;
    const { local, domain } = splitAddress(address);
    if (domain === '' || this.#masqExceptions.has(local.toLowerCase())) return address;
    const d = domain.toLowerCase();
    for (const entry of this.#masq) {
      const excluded = entry.startsWith('!');
      const masq = excluded ? entry.slice(1) : entry;
      if (masq === '') continue;
      if (masq.length === d.length) {
        if (masq === d) return address;
      } else if (masq.length < d.length && d.endsWith(`.${masq}`)) {
        return excluded ? address : `${local}@${masq}`;
      }
    }
    return address;
  }

  /**
   * virtual(5) expansion of one recipient.
   * @throws TableError `retry` when a table cannot answer; ExpansionLimitError when a
   *   limit is hit (both defer the message)
   */
  async expandVirtual(address: Address, queueId?: QueueId): Promise<Address[]> {
    const table = this.#o.tables.virtualAliasMaps;
    if (!table || address === '') return [address];
    const p = this.#o.params;
    const list: Address[] = [address];
    const beenHere = new Set<string>();
    for (let i = 0; i < list.length; i++) {
      if (list.length > p.virtualAliasExpansionLimit) {
        throw new ExpansionLimitError(
          `unreasonable virtual_alias_maps map expansion size for ${address} -- message not accepted, try again later`,
        );
      }
      for (let count = 0; ; count++) {
        const current = list[i]!;
        const key = current.toLowerCase();
        if (beenHere.has(key)) break;
        beenHere.add(key);
        if (count >= p.virtualAliasRecursionLimit) {
          throw new ExpansionLimitError(
            `unreasonable virtual_alias_maps map nesting for ${address} -- message not accepted, try again later`,
          );
        }
        const results = await this.#lookup(table, current, this.#propagateVirtual);
        if (results === undefined) break;
        let first = true;
        for (const r of results) {
          if (r.length > p.virtualAliasAddressLengthLimit) {
            this.#o.log.warning(
              queueId,
              `unreasonable virtual_alias_maps result length for ${current}: ${r.length} characters (virtualAliasAddressLengthLimit ${p.virtualAliasAddressLengthLimit}) -- skipped`,
            );
            continue;
          }
          // The first result takes the address's place; an address that expands into
          // itself stops at the next round (it is in beenHere already).
          if (first) list[i] = r;
          else list.push(r);
          first = false;
        }
        if (first) break;
      }
    }
    return list;
  }

  /** The BCC address for `address` from a bcc map, if any. */
  async bccFor(table: LookupTable | undefined, address: Address): Promise<Address[]> {
    if (!table || address === '') return [];
    return (await this.#lookup(table, address, false)) ?? [];
  }

  /** One canonical(5) mapping, repeated while it changes. */
  async #map11(table: LookupTable, address: Address, queueId?: QueueId): Promise<Address> {
    let addr = address;
    for (let round = 0; round < CANONICAL_ROUNDS; round++) {
      const results = await this.#lookup(table, addr, this.#propagateCanonical);
      if (results === undefined || results.length === 0) return addr;
      if (results.length > 1) {
        this.#o.log.warning(
          queueId,
          `${table.name}: multi-valued canonical result for ${addr}: using the first address`,
        );
      }
      const next = results[0]!;
      if (next === addr) return addr;
      addr = next;
    }
    return addr;
  }

  /** One lookup in the virtual(5) order; results in internal, canonical form. */
  async #lookup(
    table: LookupTable,
    address: Address,
    propagate: boolean,
  ): Promise<Address[] | undefined> {
    const p = this.#o.params;
    const { local, domain } = splitAddress(address);
    const localDomain =
      domain === '' ||
      domain.toLowerCase() === p.myorigin.toLowerCase() ||
      (this.#o.isLocalDomain?.(domain) ?? false);
    const found = await lookupAddress(table, address, {
      style: 'virtual',
      recipientDelimiter: p.recipientDelimiter,
      localDomain,
    });
    if (!found) return undefined;
    const split = splitExtension(local, p.recipientDelimiter);
    // The extension was not part of the key that matched: it may be carried over.
    const unmatched =
      split !== undefined && !found.key.toLowerCase().includes(split.extension.toLowerCase())
        ? split.extension
        : undefined;
    const out: Address[] = [];
    for (const item of splitAddressList(found.value)) {
      let r = item;
      if (r.startsWith('@')) {
        r = `${local}${r}`;
      } else if (propagate && unmatched !== undefined) {
        const parts = splitAddress(r);
        if (splitExtension(parts.local, p.recipientDelimiter) === undefined) {
          r = r.includes('@')
            ? `${parts.local}${unmatched}@${parts.domain}`
            : `${parts.local}${unmatched}`;
        }
      }
      try {
        out.push(this.#o.rewrite(r));
      } catch (err) {
        throw new TableError(
          'retry',
          table.name,
          `cannot rewrite the result "${r}": ${errorMessage(err)}`,
          { cause: err },
        );
      }
    }
    return out;
  }
}
