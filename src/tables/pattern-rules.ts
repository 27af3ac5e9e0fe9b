/**
 * The rule machinery pattern tables share: an ordered list of `pattern result` rules
 * with `if pattern` … `endif` blocks, first match wins, and `$1`-style substitution of
 * match groups into results.
 *
 * Postfix counterpart: the rule lists and `if`/`endif` handling of dict_regexp.c,
 * dict_pcre.c and dict_cidr.c; mac_parse.c for `$n`, `${n}`, `$(n)` and `$$`.
 *
 * Does not: know what a pattern is (regexp-table.ts and cidr-table.ts give a matcher
 * for each rule), read files (table-source.ts).
 *
 * SECURITY: tables used for aliases or virtual domains can be built with substitution
 * refused: a result holding `$1` is then a configuration error, so a pattern can never
 * copy hostile parts of an address into a delivery target. Negated patterns have no
 * groups, so `$n` after `!/re/` is refused as Postfix refuses it.
 *
 * @module
 */

import { PosternError, type PosternErrorOptions, TableError } from '../errors.js';
import { logicalLines } from './table-source.js';

/** A result with `$n` references resolved at load time: text pieces and group numbers. */
export type ResultTemplate = readonly (string | number)[];

/** What a matcher returns: the match groups (index 0 = whole match), or undefined. */
export type MatchGroups = readonly (string | undefined)[];

/** One parsed logical line, before the if/endif structure is built. */
export type ParsedLine =
  | {
      readonly kind: 'rule';
      readonly match: (key: string) => MatchGroups | undefined;
      readonly negate: boolean;
      readonly result: ResultTemplate;
    }
  | {
      readonly kind: 'if';
      readonly match: (key: string) => MatchGroups | undefined;
      readonly negate: boolean;
    }
  | { readonly kind: 'endif' };

/** A parsed line as the matcher keeps it: an `if` knows where its `endif` ends. */
type Entry =
  | Exclude<ParsedLine, { kind: 'if' }>
  | (Extract<ParsedLine, { kind: 'if' }> & {
      /** Index just after the matching endif. */
      skip: number;
    });

/** A compiled rule list. */
export type RuleList = readonly Entry[];

/** Thrown by a line parser; turned into a TableError naming `where:line`. */
export class RuleSyntaxError extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_RULE_SYNTAX', message, options);
  }
}

/** Options for substitution in results. */
export interface TemplateOptions {
  /** Whether `$n` may appear (false for alias/virtual tables). */
  readonly substitution: boolean;
  /** How many groups the pattern has (`$n` beyond it is an error). */
  readonly groups: number;
  /** The pattern is negated: it has no groups to substitute. */
  readonly negate: boolean;
}

/**
 * Parses a result: `$1`..`$9` (any number up to the group count), `${n}`, `$(n)`,
 * and `$$` for a literal `$`.
 *
 * @throws RuleSyntaxError for `$` not followed by one of those, a group the pattern
 *   does not have, or any `$n` when substitution is refused or the pattern is negated
 */
export function parseTemplate(text: string, options: TemplateOptions): ResultTemplate {
  const parts: (string | number)[] = [];
  let lit = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '$') {
      lit += c;
      continue;
    }
    const rest = text.slice(i + 1);
    if (rest.startsWith('$')) {
      lit += '$';
      i++;
      continue;
    }
    const m = /^(?:(\d+)|\{(\d+)\}|\((\d+)\))/.exec(rest);
    if (!m) {
      throw new RuleSyntaxError(
        `"$" in the result must be followed by a group number ($1, \${1}) or another "$" (write $$ for a literal $)`,
      );
    }
    const n = Number(m[1] ?? m[2] ?? m[3]);
    if (!options.substitution) {
      throw new RuleSyntaxError(
        `$${n} substitution is not allowed in this table (it is used for addresses, where copying match text is unsafe)`,
      );
    }
    if (options.negate) {
      throw new RuleSyntaxError(`$${n} cannot be used with a negated pattern: it has no groups`);
    }
    if (n < 1 || n > options.groups) {
      throw new RuleSyntaxError(
        `$${n} refers to a group the pattern does not have (it has ${options.groups})`,
      );
    }
    if (lit !== '') parts.push(lit);
    lit = '';
    parts.push(n);
    i += m[0].length;
  }
  if (lit !== '') parts.push(lit);
  return parts;
}

/** Fills a template from the match groups (an unmatched group is empty). */
export function expandTemplate(template: ResultTemplate, groups: MatchGroups): string {
  let out = '';
  for (const p of template) out += typeof p === 'number' ? (groups[p] ?? '') : p;
  return out;
}

/** Source lines: a file's text, or the rules of an inline `{ {rule}, {rule} }` body. */
export type RuleSource = { readonly text: string } | { readonly rules: readonly string[] };

/**
 * Compiles rules from `source`, building the if/endif structure.
 *
 * @param where names the source in errors (a path, or `regexp:{...}`)
 * @throws TableError `config` naming `where:line` (or `rule N` for inline rules)
 */
export function compileRules(
  source: RuleSource,
  tableName: string,
  where: string,
  parseLine: (text: string) => ParsedLine,
): RuleList {
  const lines =
    'text' in source
      ? logicalLines(source.text).map((l) => ({ text: l.text, label: `${where}:${l.line}` }))
      : source.rules.map((r, i) => ({ text: r.trim(), label: `${where}: rule ${i + 1}` }));
  const entries: Entry[] = [];
  const open: { index: number; label: string }[] = [];
  for (const { text, label } of lines) {
    let parsed: ParsedLine;
    try {
      parsed = parseLine(text);
    } catch (err) {
      if (err instanceof RuleSyntaxError) {
        throw new TableError('config', tableName, `${label}: ${err.message}`);
      }
      throw err;
    }
    if (parsed.kind === 'if') {
      open.push({ index: entries.length, label });
      entries.push({ ...parsed, skip: -1 });
    } else if (parsed.kind === 'endif') {
      const start = open.pop();
      if (!start) {
        throw new TableError('config', tableName, `${label}: "endif" without a matching "if"`);
      }
      entries.push(parsed);
      const e = entries[start.index];
      if (e?.kind === 'if') e.skip = entries.length;
    } else {
      entries.push(parsed);
    }
  }
  const unclosed = open.pop();
  if (unclosed) {
    throw new TableError('config', tableName, `${unclosed.label}: "if" without a matching "endif"`);
  }
  return entries;
}

/** Evaluates a rule list: the first rule that matches gives the (expanded) result. */
export function evaluateRules(rules: RuleList, key: string): string | undefined {
  let i = 0;
  while (i < rules.length) {
    const e = rules[i]!;
    if (e.kind === 'endif') {
      i++;
      continue;
    }
    const groups = e.match(key);
    const hit = e.negate ? groups === undefined : groups !== undefined;
    if (e.kind === 'if') {
      i = hit ? i + 1 : e.skip;
      continue;
    }
    if (hit) {
      // `$1` of an empty group can expand to nothing: that is no value, not an empty one.
      const value = expandTemplate(e.result, groups ?? []);
      if (value.trim() !== '') return value;
      return undefined;
    }
    i++;
  }
  return undefined;
}

/**
 * Splits an inline body `{rule}, {rule}` (braces required around each rule, nested
 * braces balanced) into rule texts.
 *
 * @throws RuleSyntaxError for text outside braces or unbalanced braces
 */
export function splitInlineRules(body: string): string[] {
  const rules: string[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (/[\s,]/.test(c)) {
      i++;
      continue;
    }
    if (c !== '{') {
      throw new RuleSyntaxError(
        `expected "{" at "${body.slice(i, i + 20)}"; write each rule in braces: {{/pattern/ result}, {...}}`,
      );
    }
    let depth = 0;
    let j = i;
    for (; j < body.length; j++) {
      if (body[j] === '{') depth++;
      else if (body[j] === '}') {
        depth--;
        if (depth === 0) break;
      }
    }
    if (depth !== 0) throw new RuleSyntaxError('unbalanced "{" in the inline rules');
    rules.push(body.slice(i + 1, j));
    i = j + 1;
  }
  return rules;
}
