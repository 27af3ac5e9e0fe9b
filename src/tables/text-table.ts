/**
 * TextTable: a Postfix `key value` text file as an indexed table — `texthash:/path`,
 * and `hash:`, `btree:`, `lmdb:`, `cdb:`, `dbm:` whose *source* file `/path` (the file
 * postmap(1) would compile into `/path.db`) is read directly: no postmap step, no
 * database file.
 *
 * Postfix counterpart: dict_thash.c (texthash) and postmap(1)'s input format.
 *
 * Format: one `key value` per logical line (key, white space, value); `#` comments and
 * blank lines ignored; a line starting with white space continues the previous one.
 * Keys are case-folded (postmap without -f); values keep their case. A key given twice
 * keeps its first value and logs a warning, as postmap does.
 *
 * Does not: read Berkeley DB, LMDB or CDB binary files (a `hash:` table is its text
 * source, so `/etc/postfix/transport`, not `/etc/postfix/transport.db`), or quote keys.
 *
 * SECURITY: entries live in a Map, so `__proto__` is just a key. A key without a value
 * is a configuration error naming `file:line`, never an empty "found" value.
 *
 * @module
 */

import { TableError } from '../errors.js';
import type { Logger } from '../log.js';
import { FileSource, type FileSourceOptions, logicalLines } from './table-source.js';
import type { LookupTable, TableFlags } from './types.js';

const FLAGS: TableFlags = Object.freeze({ pattern: false, foldCase: true, substitution: false });

/** Table types whose text source TextTable reads. */
export const TEXT_TABLE_TYPES: readonly string[] = [
  'texthash',
  'hash',
  'btree',
  'lmdb',
  'cdb',
  'dbm',
  'sdbm',
];

/**
 * Parses `key value` text into a Map (keys lower-cased).
 *
 * @param where names the source in errors (`/etc/postern/virtual`)
 * @throws TableError `config` naming `where:line` for a key without a value
 */
export function parseTextTable(
  text: string,
  tableName: string,
  where: string,
  logger?: Logger,
): Map<string, string> {
  const map = new Map<string, string>();
  for (const { text: line, line: n } of logicalLines(text)) {
    const m = /^(\S+)\s+(\S[\s\S]*)$/.exec(line);
    if (!m) {
      throw new TableError(
        'config',
        tableName,
        `${where}:${n}: "${line.slice(0, 60)}" has no value; write "key value" (key, white space, value)`,
      );
    }
    const key = m[1]!.toLowerCase();
    if (map.has(key)) {
      logger?.log(
        'warning',
        'dict',
        undefined,
        `${where}:${n}: duplicate entry "${key}", keeping the first`,
      );
      continue;
    }
    map.set(key, m[2]!.trim());
  }
  return map;
}

/**
 * A `key value` file, reloaded when it changes.
 *
 * @example
 * ```ts
 * const virtual = new TextTable('texthash', '/etc/postern/virtual');
 * await virtual.lookup('sales@example.com');
 * ```
 */
export class TextTable implements LookupTable {
  readonly name: string;
  /** Fixed keys, case-folded. */
  readonly flags: TableFlags = FLAGS;
  readonly #source: FileSource<Map<string, string>>;

  /**
   * @param type `texthash`, `hash`, ... (only used in the name)
   * @throws TableError `config` when the file cannot be read or has a line without a value
   */
  constructor(type: string, path: string, options: FileSourceOptions = {}) {
    this.name = `${type}:${path}`;
    this.#source = new FileSource(
      path,
      this.name,
      (text) => parseTextTable(text, this.name, path, options.logger),
      options,
    );
  }

  async lookup(key: string): Promise<string | undefined> {
    return (await this.#source.get()).get(key.toLowerCase());
  }

  /** Makes the next lookup check the file at once. */
  expire(): void {
    this.#source.expire();
  }
}
