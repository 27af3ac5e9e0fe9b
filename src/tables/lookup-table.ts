/**
 * Lookup tables built in: InlineTable (a fixed set of key/value pairs), StaticTable
 * (one value for every key), FunctionTable (an application callback, cached) and
 * TableList (several tables searched in order). File and pattern tables have files of
 * their own (TextTable, RegexpTable, CidrTable, ...); createTable() (create-table.ts)
 * builds whichever a config names.
 *
 * Postfix counterpart: dict_inline.c, dict_static.c, maps.c (maps_find: tables searched
 * in order, the first value wins, and a failing table stops the search), dict_open.c
 * (`type:name`).
 *
 * Does not: open Berkeley DB/LMDB/CDB files (`hash:/path` reads the text source `/path`),
 * talk to SQL/LDAP/socketmap servers (give a function instead), or apply search orders
 * (search-order.ts does that).
 *
 * SECURITY: keys and values live in Maps, never in plain objects, so a key such as
 * `__proto__` is just a key. An empty value is a configuration error, never "not found".
 *
 * @module
 */

import { LRUCache } from 'lru-cache';
import { TableError } from '../errors.js';
import type { LookupTable, TableFlags } from './types.js';

const FIXED_FOLDED: TableFlags = Object.freeze({
  pattern: false,
  foldCase: true,
  substitution: false,
});
const NAME_MAX = 100;
const DEFAULT_CACHE_TTL = 60_000;
const DEFAULT_CACHE_MAX = 10_000;

function shorten(name: string): string {
  return name.length > NAME_MAX ? `${name.slice(0, NAME_MAX - 4)}...}` : name;
}

function fold(key: string, flags: TableFlags): string {
  return flags.foldCase ? key.toLowerCase() : key;
}

/**
 * A fixed set of pairs: Postfix's `inline:{ key=value, ... }`. Keys are case-folded
 * when the table is built and at every lookup.
 *
 * @example
 * ```ts
 * const table = new InlineTable({ 'Sales@Example.com': 'amy@example.com' });
 * await table.lookup('sales@example.com'); // 'amy@example.com'
 * ```
 */
export class InlineTable implements LookupTable {
  readonly name: string;
  /** Fixed keys, case-folded. */
  readonly flags: TableFlags = FIXED_FOLDED;
  readonly #entries: ReadonlyMap<string, string>;

  /** @throws TableError of kind `config` for an empty or non-string value or a key given twice. */
  constructor(
    entries: Readonly<Record<string, string>> | ReadonlyMap<string, string>,
    name?: string,
  ) {
    const pairs: [string, unknown][] =
      entries instanceof Map
        ? [...entries.entries()]
        : Object.entries(entries as Record<string, unknown>);
    const label =
      name ?? shorten(`inline:{ ${pairs.map(([k, v]) => `${k}=${String(v)}`).join(', ')} }`);
    this.name = label;
    const map = new Map<string, string>();
    for (const [key, value] of pairs) {
      if (typeof value !== 'string') {
        throw new TableError(
          'config',
          label,
          `the value for "${key}" is not a string; give text such as "smtp:[relay.example.com]"`,
        );
      }
      if (value === '') {
        throw new TableError(
          'config',
          label,
          `the value for "${key}" is empty; remove the key or give it a value`,
        );
      }
      const k = key.toLowerCase();
      if (map.has(k)) {
        throw new TableError(
          'config',
          label,
          `the key "${key}" is given twice (keys are case-insensitive); keep one`,
        );
      }
      map.set(k, value);
    }
    this.#entries = map;
  }

  async lookup(key: string): Promise<string | undefined> {
    return this.#entries.get(key.toLowerCase());
  }
}

/**
 * Postfix's `static:text`: every lookup finds `text`. A pattern table, so search orders
 * ask it once, with the whole key.
 *
 * @example
 * ```ts
 * await new StaticTable('relay:[mail.example.com]').lookup('anything'); // 'relay:[mail.example.com]'
 * ```
 */
export class StaticTable implements LookupTable {
  readonly name: string;
  /** Pattern table: asked once, with the whole key. */
  readonly flags: TableFlags = Object.freeze({
    pattern: true,
    foldCase: false,
    substitution: false,
  });
  readonly #value: string;

  constructor(value: string) {
    this.name = shorten(`static:${value}`);
    if (value === '')
      throw new TableError('config', this.name, 'the value is empty; write static:TEXT');
    this.#value = value;
  }

  async lookup(_key: string): Promise<string | undefined> {
    return this.#value;
  }
}

/**
 * The callback a FunctionTable wraps. `undefined` (or `null`) means not found.
 *
 * @example
 * ```ts
 * const fn: LookupFunction = async (key) => (await db.hasUser(key) ? 'OK' : undefined);
 * const table = new FunctionTable('app:users', fn);
 * ```
 */
export type LookupFunction = (
  key: string,
) => Promise<string | undefined | null> | string | undefined | null;

/**
 * Result caching of a FunctionTable.
 *
 * @example
 * ```ts
 * const cache: FunctionCacheOptions = { ttl: 5_000, max: 1_000 };
 * const table = new FunctionTable('app:users', lookupUser, {}, cache);
 * ```
 */
export interface FunctionCacheOptions {
  /** How long a result (found or not found) is kept, in ms; 0 turns caching off. @default 60000 */
  readonly ttl?: number;
  /** Most keys kept. @default 10000 */
  readonly max?: number;
}

/**
 * An application callback as a table (think of Postfix's SQL and socketmap tables).
 * By default it is a fixed-key, case-folding table: search orders call it once per
 * candidate key, lower-cased. Pass `{ pattern: true }` to get only the whole key.
 * Anything it throws that is not a TableError becomes a TableError of kind `retry`:
 * the mail defers instead of bouncing.
 *
 * Results — values and "not found" — are cached with a TTL (lru-cache; 60 s by
 * default) and concurrent lookups of one key share one call. Errors are never cached.
 *
 * @example
 * ```ts
 * const mailboxes = new FunctionTable('app:mailboxes', async (key) => db.mailboxOf(key));
 * const mta = new Mta({ virtualMailboxDomains: ['example.com'], virtualMailboxMaps: mailboxes });
 * ```
 */
export class FunctionTable implements LookupTable {
  readonly name: string;
  /** Fixed keys, case-folded by default; a pattern table with `{ pattern: true }`. */
  readonly flags: TableFlags;
  readonly #fn: LookupFunction;
  readonly #cache: LRUCache<string, { value: string | undefined }> | undefined;
  readonly #pending = new Map<string, Promise<string | undefined>>();

  constructor(
    name: string,
    fn: LookupFunction,
    flags: Partial<TableFlags> = {},
    cache: FunctionCacheOptions = {},
  ) {
    this.name = name;
    this.#fn = fn;
    this.flags = Object.freeze({ ...FIXED_FOLDED, ...flags });
    const ttl = cache.ttl ?? DEFAULT_CACHE_TTL;
    this.#cache = ttl > 0 ? new LRUCache({ max: cache.max ?? DEFAULT_CACHE_MAX, ttl }) : undefined;
  }

  async lookup(key: string): Promise<string | undefined> {
    const k = fold(key, this.flags);
    const cached = this.#cache?.get(k);
    if (cached) return cached.value;
    const running = this.#pending.get(k);
    if (running) return running;
    const p = this.#call(k).finally(() => this.#pending.delete(k));
    this.#pending.set(k, p);
    const value = await p;
    this.#cache?.set(k, { value });
    return value;
  }

  /** Forgets every cached result (the data behind the function changed). */
  invalidate(): void {
    this.#cache?.clear();
  }

  async #call(k: string): Promise<string | undefined> {
    let value: unknown;
    try {
      value = await this.#fn(k);
    } catch (err) {
      if (err instanceof TableError) throw err;
      throw new TableError(
        'retry',
        this.name,
        `lookup failed: ${(err as Error)?.message ?? String(err)}`,
        {
          cause: err,
        },
      );
    }
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') {
      throw new TableError(
        'config',
        this.name,
        `the lookup function returned ${typeof value}; return a string or undefined`,
      );
    }
    if (value === '') {
      throw new TableError(
        'config',
        this.name,
        'the lookup function returned an empty string; return undefined for "not found"',
      );
    }
    return value;
  }

  async close(): Promise<void> {
    this.#cache?.clear();
  }
}

/**
 * Several tables searched in order (Postfix: `transport_maps = a, b`): the first value
 * wins, and a table that fails stops the search with its error, as maps.c does — a
 * later table must not answer for one that could not.
 *
 * @example
 * ```ts
 * const aliases = new TableList([new InlineTable({ postmaster: 'root' }), createTable('texthash:/etc/aliases', 'aliasMaps')]);
 * ```
 */
export class TableList implements LookupTable {
  readonly name: string;
  /** A pattern list only when every member is one; substitution when any member allows it. */
  readonly flags: TableFlags;
  /** The member tables, searched in order. */
  readonly tables: readonly LookupTable[];

  constructor(tables: readonly LookupTable[]) {
    this.tables = [...tables];
    this.name = tables.map((t) => t.name).join(', ');
    // A list is a pattern list only when every member is; folding is each member's own.
    this.flags = Object.freeze({
      pattern: tables.length > 0 && tables.every((t) => t.flags.pattern),
      foldCase: false,
      substitution: tables.some((t) => t.flags.substitution),
    });
  }

  async lookup(key: string): Promise<string | undefined> {
    return this.#search(key, false);
  }

  /**
   * Looks up a partial key (`domain`, `user@`, `.domain`): only tables that are not
   * pattern tables take part (Postfix: DICT_FLAG_FIXED in mail_addr_find.c).
   */
  async lookupFixed(key: string): Promise<string | undefined> {
    return this.#search(key, true);
  }

  async #search(key: string, fixedOnly: boolean): Promise<string | undefined> {
    for (const table of this.tables) {
      let value: string | undefined;
      if (table instanceof TableList) {
        value = fixedOnly ? await table.lookupFixed(key) : await table.lookup(key);
      } else {
        if (fixedOnly && table.flags.pattern) continue;
        value = await table.lookup(key);
      }
      if (value !== undefined) return value;
    }
    return undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.tables.map((t) => t.close?.()));
  }
}
