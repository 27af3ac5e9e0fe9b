/**
 * CidrTable: Postfix `cidr:` tables — `network/prefix result` rules matched against a
 * client address, first match wins, with `!network` negation and `if network` …
 * `endif` blocks.
 *
 * Postfix counterpart: dict_cidr.c (cidr_table(5)).
 *
 * Does not: look up host names, substitute anything into results (cidr results are
 * fixed text, `$` included), or match keys that are not numeric addresses (they are
 * simply not found).
 *
 * SECURITY: the looked-up key is hostile (a client address, perhaps from XCLIENT or a
 * PROXY header): anything that is not a numeric IPv4/IPv6 address matches nothing.
 * A network with host bits set is a configuration error naming `file:line`.
 *
 * STANDARDS: RFC 4632 (CIDR); IPv6 networks may be written in brackets
 * (`[2001:db8::]/32`), as cidr_table(5) allows.
 *
 * @module
 */

import { ConfigError, TableError } from '../errors.js';
import { errorMessage } from '../util/error-message.js';
import { CidrList } from './cidr.js';
import {
  compileRules,
  evaluateRules,
  type ParsedLine,
  type RuleList,
  RuleSyntaxError,
  splitInlineRules,
} from './pattern-rules.js';
import { FileSource, type FileSourceOptions } from './table-source.js';
import type { LookupTable, TableFlags } from './types.js';

const FLAGS: TableFlags = Object.freeze({ pattern: true, foldCase: false, substitution: false });

function network(text: string): { negate: boolean; match: (key: string) => string[] | undefined } {
  const negate = text.startsWith('!');
  const entry = negate ? text.slice(1) : text;
  let list: CidrList;
  try {
    list = new CidrList([entry]);
  } catch (err) {
    if (err instanceof ConfigError) throw new RuleSyntaxError(err.message);
    throw err;
  }
  return { negate, match: (key) => (list.matches(key.trim()) ? [key] : undefined) };
}

/** Parses one logical line of a cidr table. */
export function parseCidrLine(text: string): ParsedLine {
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(text);
  const first = m?.[1] ?? '';
  const rest = (m?.[2] ?? '').trim();
  const word = first.toLowerCase();
  if (word === 'endif') {
    if (rest !== '') throw new RuleSyntaxError('text after "endif"');
    return { kind: 'endif' };
  }
  if (word === 'if') {
    if (rest === '' || /\s/.test(rest)) {
      throw new RuleSyntaxError('write "if NETWORK/PREFIX" with one network');
    }
    return { kind: 'if', ...network(rest) };
  }
  if (rest === '') throw new RuleSyntaxError('the rule has no result; write NETWORK/PREFIX result');
  return { kind: 'rule', ...network(first), result: [rest] };
}

/**
 * A cidr table from a file (reloaded when it changes) or inline rules `{{net result}, ...}`.
 *
 * @example
 * ```ts
 * const access = new CidrTable('{ {192.0.2.0/24 REJECT}, {0.0.0.0/0 OK} }');
 * await access.lookup('192.0.2.9'); // 'REJECT'
 * ```
 */
export class CidrTable implements LookupTable {
  readonly name: string;
  /** Pattern table, no substitution. */
  readonly flags: TableFlags = FLAGS;
  readonly #source: FileSource<RuleList> | undefined;
  readonly #rules: RuleList | undefined;

  /** @throws TableError `config` naming `file:line` for a bad network or missing result */
  constructor(name: string, options: FileSourceOptions = {}) {
    const trimmed = name.trim();
    if (trimmed.startsWith('{') && trimmed.endsWith('}')) {
      this.name = `cidr:${trimmed.length > 80 ? `${trimmed.slice(0, 76)}...}` : trimmed}`;
      let rules: string[];
      try {
        rules = splitInlineRules(trimmed.slice(1, -1));
      } catch (err) {
        throw new TableError('config', this.name, errorMessage(err));
      }
      this.#rules = compileRules({ rules }, this.name, this.name, parseCidrLine);
    } else {
      this.name = `cidr:${name}`;
      this.#source = new FileSource(
        name,
        this.name,
        (text) => compileRules({ text }, this.name, name, parseCidrLine),
        options,
      );
    }
  }

  async lookup(key: string): Promise<string | undefined> {
    return evaluateRules(this.#rules ?? (await this.#source!.get()), key);
  }

  /** Makes the next lookup check the file at once. */
  expire(): void {
    this.#source?.expire();
  }
}
