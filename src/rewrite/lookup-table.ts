/**
 * Lookup tables built in: InlineTable (a fixed set of key/value pairs), FunctionTable
 * (an application callback), TableList (several tables searched in order), and
 * createTable(), which builds one from a config value.
 *
 * Postfix counterpart: dict_inline.c, dict_static.c, maps.c (maps_find: tables searched
 * in order, the first value wins, and a failing table stops the search), dict_open.c
 * (`type:name`).
 *
 * Does not: read files or databases (`hash:`, `texthash:`, `regexp:`, `pcre:`, `cidr:`
 * are later work), cache results, or apply search orders (search-order.ts does that).
 *
 * SECURITY: keys and values live in Maps, never in plain objects, so a key such as
 * `__proto__` is just a key. An empty value is a configuration error, never "not found".
 *
 * @module
 */

import { ConfigError, TableError } from '../errors.js';
import type { LookupTable, TableFlags } from './types.js';

const FIXED_FOLDED: TableFlags = Object.freeze({
  pattern: false,
  foldCase: true,
  substitution: false,
});
const NAME_MAX = 100;

function shorten(name: string): string {
  return name.length > NAME_MAX ? `${name.slice(0, NAME_MAX - 4)}...}` : name;
}

function fold(key: string, flags: TableFlags): string {
  return flags.foldCase ? key.toLowerCase() : key;
}

/**
 * A fixed set of pairs: Postfix's `inline:{ key=value, ... }`. Keys are case-folded
 * when the table is built and at every lookup.
 */
export class InlineTable implements LookupTable {
  readonly name: string;
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
 */
export class StaticTable implements LookupTable {
  readonly name: string;
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

/** The callback a FunctionTable wraps. `undefined` (or `null`) means not found. */
export type LookupFunction = (
  key: string,
) => Promise<string | undefined | null> | string | undefined | null;

/**
 * An application callback as a table (think of Postfix's SQL and socketmap tables).
 * By default it is a fixed-key, case-folding table: search orders call it once per
 * candidate key, lower-cased. Pass `{ pattern: true }` to get only the whole key.
 * Anything it throws that is not a TableError becomes a TableError of kind `retry`:
 * the mail defers instead of bouncing.
 */
export class FunctionTable implements LookupTable {
  readonly name: string;
  readonly flags: TableFlags;
  readonly #fn: LookupFunction;

  constructor(name: string, fn: LookupFunction, flags: Partial<TableFlags> = {}) {
    this.name = name;
    this.#fn = fn;
    this.flags = Object.freeze({ ...FIXED_FOLDED, ...flags });
  }

  async lookup(key: string): Promise<string | undefined> {
    let value: unknown;
    try {
      value = await this.#fn(fold(key, this.flags));
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

  async close(): Promise<void> {}
}

/**
 * Several tables searched in order (Postfix: `transport_maps = a, b`): the first value
 * wins, and a table that fails stops the search with its error, as maps.c does — a
 * later table must not answer for one that could not.
 */
export class TableList implements LookupTable {
  readonly name: string;
  readonly flags: TableFlags;
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

function isLookupTable(value: unknown): value is LookupTable {
  if (typeof value !== 'object' || value === null) return false;
  const t = value as Partial<LookupTable>;
  return (
    typeof t.lookup === 'function' && typeof t.name === 'string' && typeof t.flags === 'object'
  );
}

/**
 * Parses Postfix's inline syntax body: `key=value, key2 = value2, { key3 = a, b }`.
 * Braces group an entry that holds commas or spaces.
 */
function parseInlineBody(body: string, key: string, spec: string): Map<string, string> {
  const entries = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    const c = body[i];
    if (c === ' ' || c === '\t' || c === ',' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    let item: string;
    if (c === '{') {
      const end = body.indexOf('}', i + 1);
      if (end < 0) throw new ConfigError(`${key}: unbalanced "{" in ${spec}`, key);
      item = body.slice(i + 1, end);
      i = end + 1;
    } else {
      let j = i;
      while (j < body.length && !/[\s,]/.test(body[j]!)) j++;
      item = body.slice(i, j);
      i = j;
    }
    const eq = item.indexOf('=');
    if (eq < 0) {
      throw new ConfigError(`${key}: "${item.trim()}" in ${spec} has no "="; write key=value`, key);
    }
    entries.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim());
  }
  return entries;
}

/** Table types createTable() knows. */
export const SUPPORTED_TABLE_TYPES: readonly string[] = ['inline', 'static'];

/**
 * Builds a table from a config value for parameter `key`:
 * - an object of strings → InlineTable (`{ "example.com": "smtp:[mx.example.com]" }`);
 * - an array → TableList of its members, searched in order;
 * - a function → FunctionTable; a LookupTable → itself;
 * - `inline:{ k=v, ... }` and `static:text` strings.
 *
 * @throws ConfigError naming `key` for anything else (e.g. `hash:/etc/postfix/transport`,
 *   not supported yet), TableError `config` for an empty value.
 */
export function createTable(spec: unknown, key: string): LookupTable {
  if (isLookupTable(spec)) return spec;
  if (typeof spec === 'function') {
    return new FunctionTable(`function:${spec.name || key}`, spec as LookupFunction);
  }
  if (Array.isArray(spec)) {
    return new TableList(spec.map((s, i) => createTable(s, `${key}[${i}]`)));
  }
  if (typeof spec === 'string') {
    const text = spec.trim();
    const colon = text.indexOf(':');
    const type = colon < 0 ? '' : text.slice(0, colon);
    const name = colon < 0 ? '' : text.slice(colon + 1);
    if (type === 'inline') {
      if (!name.startsWith('{') || !name.endsWith('}')) {
        throw new ConfigError(`${key}: write inline tables as inline:{ key=value, ... }`, key);
      }
      return new InlineTable(parseInlineBody(name.slice(1, -1), key, text), text);
    }
    if (type === 'static') {
      const value = name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1).trim() : name;
      return new StaticTable(value);
    }
    const what =
      type === ''
        ? `"${text}" is not a type:name table`
        : `table type "${type}" is not supported yet`;
    throw new ConfigError(
      `${key}: ${what}; supported now: an object of key/value pairs (or "inline:{ key=value, ... }"), "static:text", a function, or an array of these`,
      key,
    );
  }
  if (typeof spec === 'object' && spec !== null) {
    return new InlineTable(spec as Record<string, string>);
  }
  throw new ConfigError(
    `${key}: expected a table (an object of key/value pairs, "inline:{...}", "static:text", a function, or an array of these), got ${spec === null ? 'null' : typeof spec}`,
    key,
  );
}
