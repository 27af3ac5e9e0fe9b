/**
 * createTable(): builds a LookupTable from anything a config can hold — an object of
 * pairs, a `type:name` string, a function, a LookupTable, or an array of these — and
 * parseTableSpec(), the shape check resolveParameters() runs on table parameters.
 *
 * Postfix counterpart: dict_open.c (`type:name`), dict_inline.c (`inline:{...}`
 * parsing), maps.c (a list of tables).
 *
 * Does not: open Berkeley DB/LMDB/CDB files (`hash:/path` reads the text source
 * `/path`), or talk to SQL/LDAP/socketmap servers (give a function instead).
 *
 * @module
 */

import { ConfigError, TableError } from '../errors.js';
import { CidrTable } from './cidr-table.js';
import {
  FunctionTable,
  InlineTable,
  type LookupFunction,
  StaticTable,
  TableList,
} from './lookup-table.js';
import { RegexpTable } from './regexp-table.js';
import type { FileSourceOptions } from './table-source.js';
import { TEXT_TABLE_TYPES, TextTable } from './text-table.js';
import type { LookupTable, TableSpec } from './types.js';
import { PasswdTable } from './unix-table.js';

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

/**
 * Checks the shape of a table parameter without opening anything (resolveParameters
 * uses it; createTable() does the real work when the Mta starts). `''` and an empty
 * array mean "no table" (Postfix: an empty `transport_maps`).
 *
 * @throws ConfigError naming `key` for a value that cannot be a table
 *
 * @example
 * ```ts
 * parseTableSpec('texthash:/etc/postern/virtual', 'virtualAliasMaps'); // 'texthash:/etc/postern/virtual'
 * parseTableSpec('', 'transportMaps'); // undefined: no table
 * ```
 */
export function parseTableSpec(value: unknown, key: string): TableSpec | undefined {
  if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) {
    return undefined;
  }
  const ok = (v: unknown): boolean =>
    typeof v === 'string' ||
    typeof v === 'function' ||
    (Array.isArray(v) && v.every(ok)) ||
    (typeof v === 'object' && v !== null && !Array.isArray(v));
  if (!ok(value)) {
    throw new ConfigError(
      `${key}: expected a table (an object of key/value pairs, "type:name" such as "texthash:/etc/postern/virtual", a function, or an array of these), got ${JSON.stringify(value)}`,
      key,
    );
  }
  return value as TableSpec;
}

/**
 * Table types createTable() knows (besides objects, arrays and functions).
 *
 * @example
 * ```ts
 * SUPPORTED_TABLE_TYPES.includes('regexp'); // true
 * ```
 */
export const SUPPORTED_TABLE_TYPES: readonly string[] = [
  'inline',
  'static',
  'unix',
  'proxy',
  ...TEXT_TABLE_TYPES,
  'regexp',
  'pcre',
  'cidr',
];

/**
 * Options for createTable().
 *
 * @example
 * ```ts
 * const aliases = createTable('regexp:/etc/postern/virtual_regexp', 'virtualAliasMaps', { substitution: false } satisfies CreateTableOptions);
 * ```
 */
export interface CreateTableOptions extends FileSourceOptions {
  /**
   * Whether pattern tables may copy match groups into results (`$1`). Pass false for
   * tables whose results are addresses (virtual_alias_maps, canonical_maps, aliases):
   * a `$n` there is then a configuration error. @default true
   */
  readonly substitution?: boolean;
  /** Result cache TTL of function tables in ms (0 = off). @default 60000 */
  readonly cacheTtl?: number;
}

/**
 * Builds a table from a config value for parameter `key`:
 * - an object of strings → InlineTable (`{ "example.com": "smtp:[mx.example.com]" }`);
 * - an array → TableList of its members, searched in order;
 * - a function → FunctionTable (results cached, `cacheTtl`); a LookupTable → itself;
 * - a `type:name` string: `inline:{ k=v, { k = v w } }`, `static:text`,
 *   `texthash:/path`, `hash:/path` (also `btree:`, `lmdb:`, `cdb:`, `dbm:`, `sdbm:`:
 *   the postmap *source* file `/path` is read as text, no `.db` file is needed),
 *   `regexp:/path`, `pcre:/path`, `cidr:/path`, and inline pattern tables
 *   `regexp:{ {/re/ result}, {/re2/ result} }` (also `pcre:{...}`, `cidr:{...}`),
 *   `unix:passwd.byname` (the host's accounts); `proxy:type:name` is `type:name`.
 * Relative paths resolve against the working directory; files reload when they change.
 *
 * @throws ConfigError naming `key` for a value that is not a table, an unknown type, an
 *   empty value, or a file that is missing or wrong (the message names `file:line`)
 *
 * @example
 * ```ts
 * const table = createTable({ 'sales@example.com': 'amy@example.com' }, 'virtualAliasMaps');
 * await table.lookup('sales@example.com'); // 'amy@example.com'
 * ```
 */
export function createTable(
  spec: unknown,
  key: string,
  options: CreateTableOptions = {},
): LookupTable {
  try {
    return buildTable(spec, key, options);
  } catch (err) {
    // A table that cannot be built is an operator error at start-up: name the key.
    if (err instanceof TableError && err.kind === 'config') {
      throw new ConfigError(`${key}: ${err.message}`, key, { cause: err });
    }
    throw err;
  }
}

function buildTable(spec: unknown, key: string, options: CreateTableOptions): LookupTable {
  if (isLookupTable(spec)) return spec;
  if (typeof spec === 'function') {
    return new FunctionTable(
      `function:${spec.name || key}`,
      spec as LookupFunction,
      {},
      options.cacheTtl === undefined ? {} : { ttl: options.cacheTtl },
    );
  }
  if (Array.isArray(spec)) {
    return new TableList(spec.map((s, i) => createTable(s, `${key}[${i}]`, options)));
  }
  if (typeof spec === 'string') return tableFromString(spec, key, options);
  if (spec instanceof Map) return new InlineTable(spec as Map<string, string>);
  if (typeof spec === 'object' && spec !== null) {
    return new InlineTable(spec as Record<string, string>);
  }
  throw new ConfigError(
    `${key}: expected a table (an object of key/value pairs, "type:name" such as "texthash:/etc/postern/virtual", a function, or an array of these), got ${spec === null ? 'null' : typeof spec}`,
    key,
  );
}

function tableFromString(spec: string, key: string, options: CreateTableOptions): LookupTable {
  const text = spec.trim();
  const colon = text.indexOf(':');
  const type = colon < 0 ? '' : text.slice(0, colon).toLowerCase();
  const name = colon < 0 ? '' : text.slice(colon + 1).trim();
  if (type === 'inline') {
    if (!name.startsWith('{') || !name.endsWith('}')) {
      throw new ConfigError(`${key}: write inline tables as inline:{ key=value, ... }`, key);
    }
    return new InlineTable(parseInlineBody(name.slice(1, -1), key, text), text);
  }
  if (type === 'proxy') {
    // Postfix's proxymap only shares one open table among processes; it is the table.
    return tableFromString(name, key, options);
  }
  if (type === 'unix') {
    if (name !== 'passwd.byname') {
      throw new ConfigError(
        `${key}: "${text}": the unix table Postern has is unix:passwd.byname (the user accounts)`,
        key,
      );
    }
    return new PasswdTable(options.cacheTtl === undefined ? {} : { refreshMs: options.cacheTtl });
  }
  if (type === 'static') {
    const value = name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1).trim() : name;
    return new StaticTable(value);
  }
  if (SUPPORTED_TABLE_TYPES.includes(type) && name === '') {
    throw new ConfigError(`${key}: "${text}" names no file; write ${type}:/path/to/file`, key);
  }
  if (TEXT_TABLE_TYPES.includes(type)) return new TextTable(type, name, options);
  if (type === 'regexp' || type === 'pcre') return new RegexpTable(type, name, options);
  if (type === 'cidr') return new CidrTable(name, options);
  const what =
    type === '' ? `"${text}" is not a type:name table` : `table type "${type}" is not supported`;
  throw new ConfigError(
    `${key}: ${what}; use an object of key/value pairs, ${SUPPORTED_TABLE_TYPES.map((t) => `"${t}:..."`).join(', ')}, a function, or an array of these`,
    key,
  );
}
