/**
 * aliases(5): the Sendmail alias file format as a LookupTable, and the parser for
 * alias values (also used for :include: and .forward files).
 *
 * Postfix counterpart: postalias(1) reading the source file (the name is everything
 * before the first unquoted `:`, lower-cased; a line that starts with white space
 * continues the previous one; `#` lines and empty lines are ignored) and
 * local/token.c (a value is a comma-separated list of addresses, `/file/name`,
 * `|command`, `:include:/file`, each possibly quoted).
 *
 * A name given twice keeps its first value, with a warning (postalias "duplicate
 * entry"). The table re-reads its file when the file changes.
 *
 * Does not: compile `.db` files (the source text is read directly: `hash:/etc/aliases`
 * means the file `/etc/aliases`), expand `$1` (never, for aliases).
 *
 * SECURITY: no value is interpreted here; local(8)'s `allowMailToCommands` /
 * `allowMailToFiles` decide what may run. Keys live in a Map.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { TableError } from '../errors.js';
import { errorMessage } from '../util/error-message.js';
import { createTable } from './create-table.js';
import { TableList } from './lookup-table.js';
import type { LookupTable, TableFlags, TableSpec } from './types.js';

/**
 * One destination in an alias value, include file or .forward file.
 *
 * @example
 * ```ts
 * parseAliasTargets('bob, |/usr/bin/vacation, /var/mail/archive, :include:/etc/list');
 * // address, command, file and include targets
 * ```
 */
export type AliasTarget =
  | { readonly kind: 'address'; readonly address: string; readonly direct: boolean }
  | { readonly kind: 'command'; readonly command: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'include'; readonly path: string };

/**
 * The entries of an aliases(5) text and what was wrong with it.
 *
 * @example
 * ```ts
 * const parsed: ParsedAliases = parseAliases('root: alice\nbad line\n');
 * parsed.entries.get('root'); // 'alice'
 * ```
 */
export interface ParsedAliases {
  /** Each alias name (lowercased) and its value, continuation lines joined. */
  readonly entries: Map<string, string>;
  /** One line per entry that was skipped, naming the source and line. */
  readonly warnings: string[];
}

/**
 * Parses aliases(5) source text.
 *
 * @example
 * ```ts
 * const { entries, warnings } = parseAliases('postmaster: root\nroot: alice, bob\n');
 * entries.get('root'); // 'alice, bob'
 * ```
 */
export function parseAliases(text: string, source = 'aliases'): ParsedAliases {
  const entries = new Map<string, string>();
  const warnings: string[] = [];
  const logical: { text: string; line: number }[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    if (raw[0] === ' ' || raw[0] === '\t') {
      const last = logical[logical.length - 1];
      if (last) last.text += ` ${raw.trim()}`;
      else warnings.push(`${source}, line ${i + 1}: continuation line without an entry; ignored`);
      continue;
    }
    logical.push({ text: raw.trim(), line: i + 1 });
  }
  for (const { text: entry, line } of logical) {
    let name: string;
    let rest: string;
    if (entry.startsWith('"')) {
      const end = closingQuote(entry, 0);
      if (end < 0 || entry[end + 1] !== ':') {
        warnings.push(`${source}, line ${line}: bad quoted name; expected "name": value`);
        continue;
      }
      name = unquote(entry.slice(0, end + 1));
      rest = entry.slice(end + 2);
    } else {
      const colon = entry.indexOf(':');
      if (colon <= 0) {
        warnings.push(`${source}, line ${line}: no ":" after the name; expected name: value`);
        continue;
      }
      name = entry.slice(0, colon).trim();
      rest = entry.slice(colon + 1);
    }
    const value = rest.trim();
    const key = name.toLowerCase();
    if (key === '' || value === '') {
      warnings.push(`${source}, line ${line}: empty name or value; ignored`);
      continue;
    }
    if (entries.has(key)) {
      warnings.push(`${source}, line ${line}: duplicate entry "${key}"; the first one is used`);
      continue;
    }
    entries.set(key, value);
  }
  return { entries, warnings };
}

/** Index of the `"` closing the quoted string that starts at `start`, or -1. */
function closingQuote(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** Splits at commas (and, for files, newlines) outside quotes and angle brackets. */
function splitList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"') {
      const end = closingQuote(value, i);
      const stop = end < 0 ? value.length - 1 : end;
      cur += value.slice(i, stop + 1);
      i = stop;
    } else if (c === '\\' && i + 1 < value.length) {
      cur += value.slice(i, i + 2);
      i++;
    } else if (c === '<') {
      depth++;
      cur += c;
    } else if (c === '>') {
      depth = Math.max(0, depth - 1);
      cur += c;
    } else if ((c === ',' || c === '\n') && depth === 0) {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

/** One token → target (local/token.c deliver_token). */
function classify(token: string): AliasTarget | undefined {
  let text = token;
  const angle = /^<(.*)>$/.exec(text);
  if (angle) text = angle[1]!.trim();
  if (text === '') return undefined;
  if (text.startsWith('"')) {
    const end = closingQuote(text, 0);
    if (end === text.length - 1) text = unquote(text);
    else if (end > 0 && text[end + 1] === '@') {
      // "local part"@domain: Postfix's internal form keeps the local part unquoted.
      return {
        kind: 'address',
        address: `${unquote(text.slice(0, end + 1))}${text.slice(end + 1)}`,
        direct: false,
      };
    }
  }
  if (text.startsWith('|')) return { kind: 'command', command: text.slice(1).trim() };
  if (text.toLowerCase().startsWith(':include:'))
    return { kind: 'include', path: text.slice(9).trim() };
  if (text.startsWith('/')) return { kind: 'file', path: text };
  if (text.startsWith('\\')) return { kind: 'address', address: text.slice(1), direct: true };
  return { kind: 'address', address: text, direct: false };
}

/**
 * Parses an alias value (or one line of an include/.forward file) into targets.
 *
 * @example
 * ```ts
 * parseAliasTargets('\\alice, "|/usr/bin/procmail"');
 * // [{ kind: 'address', address: 'alice', direct: true }, { kind: 'command', command: '/usr/bin/procmail' }]
 * ```
 */
export function parseAliasTargets(value: string): AliasTarget[] {
  const out: AliasTarget[] = [];
  for (const token of splitList(value)) {
    const t = classify(token);
    if (t) out.push(t);
  }
  return out;
}

/** Parses an :include: or .forward file: like a value, one or more per line, `#` comments. */
export function parseTargetFile(text: string): AliasTarget[] {
  const lines = text
    .split(/\r?\n/)
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n');
  return parseAliasTargets(lines);
}

const FLAGS: TableFlags = Object.freeze({ pattern: false, foldCase: true, substitution: false });

/**
 * An aliases(5) source file as a table (`aliases:/etc/aliases`, `hash:/etc/aliases`).
 *
 * @example
 * ```ts
 * const aliases = await AliasTable.open('/etc/aliases');
 * await aliases.lookup('postmaster'); // 'root'
 * const agent = new LocalDeliveryAgent({ params, aliases });
 * ```
 */
export class AliasTable implements LookupTable {
  readonly name: string;
  /** Fixed keys, case-folded, no substitution. */
  readonly flags: TableFlags = FLAGS;
  /** The aliases file the table reads, if any (undefined for inline text). */
  readonly file: string | undefined;
  #entries: Map<string, string>;
  #stamp: string | undefined;
  /** Problems found in the text the last time it was read. */
  warnings: string[];

  private constructor(name: string, parsed: ParsedAliases, file?: string, stamp?: string) {
    this.name = name;
    this.#entries = parsed.entries;
    this.warnings = parsed.warnings;
    this.file = file;
    this.#stamp = stamp;
  }

  /** A table from aliases(5) text. */
  static fromText(text: string, name = 'aliases:inline'): AliasTable {
    return new AliasTable(name, parseAliases(text, name));
  }

  /** A table that reads `file` now and again whenever it changes. */
  static async open(file: string, name = `aliases:${file}`): Promise<AliasTable> {
    const { text, stamp } = await readStamped(file, name);
    return new AliasTable(name, parseAliases(text, file), file, stamp);
  }

  /** Like `open`, but reading lazily on the first lookup (for synchronous construction). */
  static lazy(file: string, name = `aliases:${file}`): AliasTable {
    return new AliasTable(name, { entries: new Map(), warnings: [] }, file, undefined);
  }

  async lookup(key: string): Promise<string | undefined> {
    if (this.file !== undefined) {
      const st = await fs.stat(this.file).catch((err: NodeJS.ErrnoException) => {
        throw new TableError('retry', this.name, `cannot read ${this.file}: ${err.message}`);
      });
      const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (stamp !== this.#stamp) {
        const { text } = await readStamped(this.file, this.name);
        const parsed = parseAliases(text, this.file);
        this.#entries = parsed.entries;
        this.warnings = parsed.warnings;
        this.#stamp = stamp;
      }
    }
    return this.#entries.get(key.toLowerCase());
  }
}

async function readStamped(file: string, name: string): Promise<{ text: string; stamp: string }> {
  try {
    const st = await fs.stat(file);
    return { text: await fs.readFile(file, 'utf8'), stamp: `${st.mtimeMs}:${st.size}:${st.ino}` };
  } catch (err) {
    throw new TableError('retry', name, `cannot read ${file}: ${errorMessage(err)}`);
  }
}

/** Table types whose `type:path` names an aliases(5) source file. */
export const ALIAS_FILE_TYPES: readonly string[] = [
  'aliases',
  'hash',
  'btree',
  'lmdb',
  'cdb',
  'dbm',
];

/**
 * Builds the alias table for `aliasMaps`: aliases(5) files for `hash:`/`aliases:` paths.
 *
 * @example
 * ```ts
 * const aliases = aliasTableFrom('hash:/etc/aliases'); // an AliasTable over the source file
 * ```
 */
export function aliasTableFrom(
  spec: TableSpec | undefined,
  key = 'aliasMaps',
): LookupTable | undefined {
  if (spec === undefined) return undefined;
  if (Array.isArray(spec)) {
    const tables = (spec as readonly TableSpec[]).map((s, i) => aliasTableFrom(s, `${key}[${i}]`)!);
    return new TableList(tables);
  }
  if (typeof spec === 'string') {
    const colon = spec.indexOf(':');
    if (colon > 0 && ALIAS_FILE_TYPES.includes(spec.slice(0, colon))) {
      return AliasTable.lazy(spec.slice(colon + 1).trim(), spec);
    }
  }
  return createTable(spec, key, { substitution: false });
}
