/**
 * DomainList: a Postfix domain list parameter (`mydestination`, `relay_domains`,
 * `virtual_alias_domains`, `virtual_mailbox_domains`) — names, `.parent` patterns,
 * `!name` exclusions and lookup tables, matched first-match-wins.
 *
 * Postfix counterpart: match_list.c / match_ops.c match_hostname() and
 * domain_list.c; parent_domain_matches_subdomains decides whether `example.com` also
 * matches `sub.example.com`.
 *
 * Entries: `example.com`; `.example.com` (subdomains); `!example.com` (exclude, first
 * match wins); `type:name` (a table, looked up with the domain as key, then its parents
 * as `.parent` — and as `parent` in parent style); `$name` of a table parameter the
 * caller resolves (`$virtualAliasMaps`). All names are compared in A-label form.
 *
 * Does not: read `/file/name` entries (write `texthash:/file/name`), or match host
 * names against DNS.
 *
 * SECURITY: table lookups that fail throw TableError `retry`; a domain list never
 * guesses "not listed" for a table that could not answer.
 *
 * @module
 */

import { toAsciiDomain, toUnicodeDomain } from '../address/domain.js';
import { ConfigError } from '../errors.js';
import { type CreateTableOptions, createTable } from './create-table.js';
import type { LookupTable } from './types.js';

type Entry =
  | { readonly kind: 'name'; readonly name: string; readonly negate: boolean }
  | { readonly kind: 'parent'; readonly suffix: string; readonly negate: boolean }
  | { readonly kind: 'table'; readonly table: LookupTable; readonly negate: boolean };

/** Normalises a list entry's name (A-label, lower case); the entry as is if it is no valid name. */
function normalise(name: string): string {
  return toAsciiDomain(name) ?? name.toLowerCase();
}

const TRUE = Promise.resolve(true);
const FALSE = Promise.resolve(false);

/** Table keys for `domain`: itself, then `.parent` keys, and `parent` keys in parent style. */
export function domainTableKeys(domain: string, parentStyle: boolean): string[] {
  const keys = [domain];
  for (let i = domain.indexOf('.'); i >= 0; i = domain.indexOf('.', i + 1)) {
    keys.push(domain.slice(i));
    if (parentStyle && i + 1 < domain.length) keys.push(domain.slice(i + 1));
  }
  return keys;
}

/**
 * A domain list parameter (`mydestination`, `relayDomains`...): names, parent-domain
 * matching, `!` exclusions and `$table` references. Postfix counterpart: domain_list(3).
 *
 * @example
 * ```ts
 * const list = new DomainList(['example.com', '!old.example.com'], 'relayDomains', true);
 * await list.matches('mail.example.com'); // true (parent style)
 * await list.matches('old.example.com'); // false
 * ```
 */
export class DomainList {
  readonly #entries: readonly Entry[];
  readonly #parentStyle: boolean;
  readonly #hasTables: boolean;

  /**
   * @param entries the parameter's list
   * @param key the parameter name, for errors
   * @param parentStyle `parent_domain_matches_subdomains` lists this parameter
   * @param references tables that `$name` entries stand for (undefined = no table)
   * @throws ConfigError for an unknown `$name` or a table that cannot be built
   */
  constructor(
    entries: readonly string[],
    key: string,
    parentStyle: boolean,
    references: Readonly<Record<string, LookupTable | undefined>> = {},
    tableOptions: CreateTableOptions = {},
  ) {
    this.#parentStyle = parentStyle;
    const out: Entry[] = [];
    for (const raw of entries) {
      let e = raw.trim();
      const negate = e.startsWith('!');
      if (negate) e = e.slice(1).trim();
      if (e === '') continue;
      if (e.startsWith('$')) {
        const ref = e.slice(1).replace(/^\{(.*)\}$/, '$1');
        if (!Object.hasOwn(references, ref)) {
          throw new ConfigError(
            `${key}: "${e}" names no table here; use ${Object.keys(references)
              .map((r) => `$${r}`)
              .join(', ')} or a type:name table`,
            key,
          );
        }
        const table = references[ref];
        if (table) out.push({ kind: 'table', table, negate });
      } else if (/^[a-z0-9]+:/i.test(e) && !e.startsWith('[')) {
        out.push({ kind: 'table', table: createTable(e, key, tableOptions), negate });
      } else if (e.startsWith('.')) {
        out.push({ kind: 'parent', suffix: `.${normalise(e.slice(1))}`, negate });
      } else {
        out.push({ kind: 'name', name: normalise(e), negate });
      }
    }
    this.#entries = out;
    this.#hasTables = out.some((e) => e.kind === 'table');
  }

  /** Whether the list holds tables (then only `matches()` gives the full answer). */
  get hasTables(): boolean {
    return this.#hasTables;
  }

  /** Matches `domain` (any form) against the names and patterns, ignoring tables. */
  matchesStatic(domain: string): boolean {
    const d = normalise(domain);
    for (const e of this.#entries) {
      if (e.kind === 'table') continue;
      if (this.#hit(e, d)) return !e.negate;
    }
    return false;
  }

  /**
   * Matches `domain` against every entry in order, tables included.
   *
   * @throws TableError `retry` when a table cannot answer
   */
  matches(domain: string): Promise<boolean> {
    // Most lists are names only: answer without the cost of an async call per lookup.
    if (!this.#hasTables) return this.matchesStatic(domain) ? TRUE : FALSE;
    return this.#matchesWithTables(domain);
  }

  async #matchesWithTables(domain: string): Promise<boolean> {
    const d = normalise(domain);
    for (const e of this.#entries) {
      if (e.kind === 'table') {
        // A table may list an IDN in either form: A-labels first, then U-labels.
        const u = toUnicodeDomain(d);
        const forms = u !== undefined && u !== d ? [d, u] : [d];
        for (const form of forms) {
          for (const k of domainTableKeys(form, this.#parentStyle)) {
            if ((await e.table.lookup(k)) !== undefined) return !e.negate;
          }
        }
      } else if (this.#hit(e, d)) {
        return !e.negate;
      }
    }
    return false;
  }

  /** The plain names of the list (for overlap warnings). */
  names(): string[] {
    return this.#entries.flatMap((e) => (e.kind === 'name' && !e.negate ? [e.name] : []));
  }

  #hit(e: Exclude<Entry, { kind: 'table' }>, d: string): boolean {
    if (e.kind === 'parent') return d.endsWith(e.suffix);
    if (d === e.name) return true;
    return this.#parentStyle && d.endsWith(`.${e.name}`);
  }
}
