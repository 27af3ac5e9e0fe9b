/**
 * Table layer contracts: LookupTable (Postfix's dict layer), its flags, and the
 * TableSpec a config names a table with.
 *
 * Postfix counterpart: dict.h (dict_get → value, not found, or error), maps.c (lists
 * of tables searched in order).
 *
 * A lookup has three outcomes: a value; `undefined` (not found); or a thrown TableError
 * of kind `retry` (the mail defers) or `config` (an operator error, said clearly).
 * An empty value is a config error, never "found nothing".
 *
 * @module
 */

/**
 * Per-table behaviour flags (dict.h DICT_FLAG_*).
 *
 * @example
 * ```ts
 * const flags: TableFlags = { pattern: false, foldCase: true, substitution: false };
 * ```
 */
export interface TableFlags {
  /** Pattern table (regexp, cidr, function over the whole key): search orders use the full key only. */
  readonly pattern: boolean;
  /** Keys are case-folded before lookup. */
  readonly foldCase: boolean;
  /** `$1` substitution from the match is allowed in results (never for aliases). */
  readonly substitution: boolean;
}

/**
 * One map. Every table-driven feature takes one of these (or a list, as one table).
 *
 * @example
 * ```ts
 * const users: LookupTable = {
 *   name: 'app:users',
 *   flags: { pattern: false, foldCase: true, substitution: false },
 *   async lookup(key) {
 *     return key === 'alice@example.com' ? 'OK' : undefined;
 *   },
 * };
 * ```
 */
export interface LookupTable {
  /** `type:name` as in Postfix (`inline:{...}`, `texthash:/etc/postern/virtual`). */
  readonly name: string;
  /**
   * How search orders use the table (pattern or fixed keys, case folding, `$1` substitution).
   */
  readonly flags: TableFlags;
  /** The value for `key`, `undefined` if absent; throws TableError on failure. */
  lookup(key: string): Promise<string | undefined>;
  /** Releases files and connections. */
  close?(): Promise<void>;
}

/**
 * A table as a config gives it: an object of key/value pairs, a `type:name` string
 * (`texthash:/etc/postern/virtual`, `regexp:./header_checks`), a function (code
 * configs), a LookupTable, or an array of these searched in order. createTable()
 * builds a LookupTable from it.
 *
 * @example
 * ```ts
 * const specs: TableSpec[] = [
 *   { 'sales@example.com': 'amy@example.com' },
 *   'texthash:/etc/postern/virtual',
 *   (key: string) => (key.endsWith('@example.com') ? 'OK' : undefined),
 * ];
 * ```
 */
export type TableSpec =
  | string
  | Readonly<Record<string, string>>
  | ReadonlyMap<string, string>
  | LookupTable
  | ((key: string) => unknown)
  | readonly TableSpec[];
