/**
 * RegexpTable: Postfix `regexp:` and `pcre:` tables — ordered `/pattern/flags result`
 * rules, `!/pattern/ result`, `if /pattern/` … `endif`, `$1`-style substitution — run
 * on JavaScript's RegExp engine. Header and body checks, access policies and pattern
 * transport maps are built on it.
 *
 * Postfix counterpart: dict_regexp.c (regexp_table(5)) and dict_pcre.c (pcre_table(5)).
 *
 * Flags, after the closing delimiter (each toggles a default):
 * - `i`: case-insensitive matching is ON by default; `i` turns it off.
 * - `m`: multi-line mode (`^`/`$` at line breaks), off by default.
 * - `x`: regexp tables: extended syntax, on by default and always so here (JavaScript
 *   has no POSIX basic syntax); pcre tables: PCRE_EXTENDED — white space and `#`
 *   comments in the pattern are ignored.
 * - pcre only: `s` (`.` matches newline), `A` (anchored at the start), `E` and `X`
 *   (accepted: JavaScript's `$` is already end-only and unknown escapes are errors).
 *   `U` (ungreedy) has no JavaScript equivalent and is refused.
 * POSIX bracket classes (`[[:alpha:]]`, `[[:space:]]`...) are translated.
 *
 * Does not: emulate POSIX leftmost-longest matching (JavaScript, like PCRE, takes the
 * leftmost-first alternative, which only matters for which text `$n` captures), or
 * support POSIX basic syntax, backreference-free guarantees or `\<`/`\>`.
 *
 * SECURITY: a pattern that does not compile is a configuration error naming
 * `file:line`. JavaScript has no match limit: a pattern with nested quantifiers can
 * backtrack for a long time on hostile text, as with PCRE without limits — keep
 * patterns anchored and simple. Substitution can be refused for address tables.
 *
 * @module
 */

import { TableError } from '../errors.js';
import { errorMessage } from '../util/error-message.js';
import {
  compileRules,
  evaluateRules,
  type ParsedLine,
  parseTemplate,
  type RuleList,
  RuleSyntaxError,
  splitInlineRules,
} from './pattern-rules.js';
import { FileSource, type FileSourceOptions } from './table-source.js';
import type { LookupTable, TableFlags } from './types.js';

/**
 * `regexp` (POSIX-style flags) or `pcre` (PCRE flags).
 *
 * @example
 * ```ts
 * const table = new RegexpTable('pcre' satisfies RegexpDialect, '/etc/postern/header_checks');
 * ```
 */
export type RegexpDialect = 'regexp' | 'pcre';

/**
 * Options for a RegexpTable.
 *
 * @example
 * ```ts
 * const table = new RegexpTable('regexp', '/etc/postern/virtual_regexp', { substitution: false } satisfies RegexpTableOptions);
 * ```
 */
export interface RegexpTableOptions extends FileSourceOptions {
  /** Allow `$n` in results. @default true */
  readonly substitution?: boolean;
}

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alpha: 'A-Za-z',
  digit: '0-9',
  alnum: 'A-Za-z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  print: ' -~',
  graph: '!-~',
  cntrl: '\\x00-\\x1f\\x7f',
  xdigit: '0-9A-Fa-f',
  word: 'A-Za-z0-9_',
};

/** Characters that mean something in a JavaScript pattern: `\x` stays escaped. */
const JS_SYNTAX = new Set('^$\\.*+?()[]{}|/-');

/** Drops white space and `#` comments outside classes (PCRE_EXTENDED). */
function stripExtended(src: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      out += c + (src[i + 1] ?? '');
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
    } else if (c === '#') {
      break;
    } else if (!/\s/.test(c)) {
      out += c;
    }
  }
  return out;
}

interface Pattern {
  readonly negate: boolean;
  readonly regex: RegExp;
  readonly groups: number;
  /** Text after the pattern and its flags. */
  readonly rest: string;
}

/** Reads `[!]<d>pattern<d>flags` at the start of `text`. */
function parsePattern(text: string, dialect: RegexpDialect): Pattern {
  let i = 0;
  let negate = false;
  if (text[i] === '!') {
    negate = true;
    i++;
  }
  const delim = text[i];
  if (delim === undefined || /[\sA-Za-z0-9\\]/.test(delim)) {
    throw new RuleSyntaxError(
      `expected a pattern such as /^Subject: .*offer/ at "${text.slice(0, 40)}"`,
    );
  }
  let j = i + 1;
  while (j < text.length && !(text[j] === delim && text[j - 1] !== '\\')) j++;
  if (j >= text.length) {
    throw new RuleSyntaxError(`the pattern has no closing "${delim}"`);
  }
  let src = text.slice(i + 1, j);
  // `\<delim>` only quoted the delimiter for the table syntax.
  if (!JS_SYNTAX.has(delim)) src = src.split(`\\${delim}`).join(delim);
  let k = j + 1;
  let caseless = true;
  let multiline = false;
  let dotall = false;
  let anchored = false;
  let extended = false;
  while (k < text.length && !/\s/.test(text[k]!)) {
    const f = text[k]!;
    if (f === 'i') caseless = !caseless;
    else if (f === 'm') multiline = !multiline;
    else if (f === 'x') extended = !extended;
    else if (dialect === 'pcre' && f === 's') dotall = !dotall;
    else if (dialect === 'pcre' && f === 'A') anchored = !anchored;
    else if (dialect === 'pcre' && (f === 'E' || f === 'X')) {
      // Accepted: JavaScript already behaves so.
    } else if (dialect === 'pcre' && f === 'U') {
      throw new RuleSyntaxError(
        'flag "U" (ungreedy) is not supported by the JavaScript engine; write lazy quantifiers (*?, +?) instead',
      );
    } else {
      throw new RuleSyntaxError(
        `unknown flag "${f}" (${dialect} tables take ${dialect === 'pcre' ? 'i, m, s, x, A, E, X' : 'i, m, x'})`,
      );
    }
    k++;
  }
  if (dialect === 'pcre' && extended) src = stripExtended(src);
  src = src.replace(/\[:([a-z]+):\]/g, (whole, name: string) => POSIX_CLASSES[name] ?? whole);
  const jsFlags = `${caseless ? 'i' : ''}${multiline ? 'm' : ''}${dotall ? 's' : ''}${anchored ? 'y' : ''}`;
  let regex: RegExp;
  try {
    regex = new RegExp(src, `${jsFlags}u`);
  } catch {
    // Patterns written for POSIX/PCRE often escape characters needlessly (`\-`, `\ `),
    // which Unicode mode refuses; the legacy mode takes them as the literal character.
    try {
      regex = new RegExp(src, jsFlags);
    } catch (err) {
      throw new RuleSyntaxError(`the pattern /${src}/ does not compile: ${errorMessage(err)}`);
    }
  }
  const groups =
    (new RegExp(`${regex.source}|`, regex.flags.replace('y', '')).exec('') ?? ['']).length - 1;
  return { negate, regex, groups, rest: text.slice(k).trim() };
}

function matcher(regex: RegExp): (key: string) => readonly (string | undefined)[] | undefined {
  return (key) => {
    regex.lastIndex = 0;
    return regex.exec(key) ?? undefined;
  };
}

/** Parses one logical line of a regexp/pcre table. */
export function parseRegexpLine(
  text: string,
  dialect: RegexpDialect,
  substitution: boolean,
): ParsedLine {
  const word = /^(\S+)/.exec(text)?.[1]?.toLowerCase();
  if (word === 'endif') {
    if (text.trim().length !== 5) throw new RuleSyntaxError('text after "endif"');
    return { kind: 'endif' };
  }
  if (word === 'if' || /^if[!/]/i.test(text)) {
    const p = parsePattern(text.slice(2).trimStart(), dialect);
    if (p.rest !== '') {
      throw new RuleSyntaxError(`text after the "if" pattern: "${p.rest.slice(0, 40)}"`);
    }
    return { kind: 'if', match: matcher(p.regex), negate: p.negate };
  }
  const p = parsePattern(text, dialect);
  if (p.rest === '') {
    throw new RuleSyntaxError('the rule has no result; write /pattern/ result');
  }
  const result = parseTemplate(p.rest, { substitution, groups: p.groups, negate: p.negate });
  return { kind: 'rule', match: matcher(p.regex), negate: p.negate, result };
}

function compile(
  dialect: RegexpDialect,
  text: string | readonly string[],
  name: string,
  where: string,
  substitution: boolean,
): RuleList {
  const source = typeof text === 'string' ? { text } : { rules: text };
  return compileRules(source, name, where, (line) => parseRegexpLine(line, dialect, substitution));
}

/**
 * A regexp or pcre table from a file (reloaded when it changes) or inline rules.
 *
 * @example
 * ```ts
 * const checks = new RegexpTable('regexp', '{ {/^Subject:.*viagra/ REJECT spam} }');
 * await checks.lookup('Subject: cheap viagra'); // 'REJECT spam'
 * ```
 */
export class RegexpTable implements LookupTable {
  readonly name: string;
  /** Pattern table; substitution as the options say. */
  readonly flags: TableFlags;
  readonly #source: FileSource<RuleList> | undefined;
  readonly #rules: RuleList | undefined;

  /**
   * @param name for a file, its path; for inline rules, the `{...}` body
   * @throws TableError `config` naming `file:line` for a pattern that does not compile,
   *   a missing result, unbalanced if/endif, or a refused `$n`
   */
  constructor(dialect: RegexpDialect, name: string, options: RegexpTableOptions = {}) {
    const substitution = options.substitution ?? true;
    this.flags = Object.freeze({ pattern: true, foldCase: false, substitution });
    const trimmed = name.trim();
    if (trimmed.startsWith('{') && trimmed.endsWith('}')) {
      this.name = `${dialect}:${trimmed.length > 80 ? `${trimmed.slice(0, 76)}...}` : trimmed}`;
      let rules: string[];
      try {
        rules = splitInlineRules(trimmed.slice(1, -1));
      } catch (err) {
        throw new TableError('config', this.name, errorMessage(err));
      }
      this.#rules = compile(dialect, rules, this.name, this.name, substitution);
    } else {
      this.name = `${dialect}:${name}`;
      this.#source = new FileSource(
        name,
        this.name,
        (text) => compile(dialect, text, this.name, name, substitution),
        options,
      );
    }
  }

  async lookup(key: string): Promise<string | undefined> {
    const rules = this.#rules ?? (await this.#source!.get());
    return evaluateRules(rules, key);
  }

  /** Makes the next lookup check the file at once. */
  expire(): void {
    this.#source?.expire();
  }
}
