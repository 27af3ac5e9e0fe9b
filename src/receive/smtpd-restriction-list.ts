/**
 * The parameter kind of smtpd's restriction lists (`smtpdClientRestrictions`, ...): a
 * string is split at commas and blanks outside `{...}` (so that `check_client_access
 * inline:{ 192.0.2.1=REJECT, 192.0.2.2=OK }` stays one argument), an array's string
 * members are split the same way and flattened, and a code config's functions and
 * LookupTable objects are kept as they are.
 *
 * Postfix counterpart: smtpd_check.c's restriction list parsing (mystrtok over
 * `CHARS_COMMA_SP`, with `{...}` grouping from Postfix 3.0).
 *
 * Does not: check restriction names or their arguments; smtpd-restrictions.ts compiles
 * the list when the SMTP server is built.
 *
 * @module
 */

import type { Parameter } from '../config/parameter-declaration.js';
import type { ParameterOptions } from '../config/parameter-kinds.js';
import { param } from '../config/parameter-kinds.js';
import { ConfigError } from '../errors.js';

/**
 * One token of an smtpd restriction list: a restriction name, an argument (a table such
 * as `inline:{ spam.example=REJECT }`, an RBL domain), or, in a code config, an async
 * function (smtpd-restriction-types.ts) or a LookupTable object as a table argument.
 *
 * @example
 * ```ts
 * const list: RestrictionEntry[] = ['permit_mynetworks', 'reject_unauth_destination'];
 * ```
 */
export type RestrictionEntry =
  | string
  | ((...args: never[]) => unknown)
  | {
      /** Looks up a key, as a LookupTable does: the value, or undefined when not found. */
      readonly lookup: (key: string) => Promise<string | undefined>;
    };

/**
 * A restriction-list parameter.
 *
 * @example
 * ```ts
 * const helo = restrictionList({ postfix: 'smtpd_helo_restrictions', doc: 'Checked at HELO.', default: [] });
 * ```
 */
export function restrictionList(
  o: ParameterOptions<readonly RestrictionEntry[]> & {
    readonly default: readonly RestrictionEntry[];
  },
): Parameter<readonly RestrictionEntry[], RestrictionEntry | readonly RestrictionEntry[]> {
  return param.custom<readonly RestrictionEntry[], RestrictionEntry | readonly RestrictionEntry[]>({
    ...o,
    kind: 'restrictions',
    schema: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    parse: parseRestrictionList,
  });
}

/** Splits restriction-list text at commas and blanks outside braces. */
function splitRestrictionText(text: string, key: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const c of text) {
    if (c === '{') depth++;
    else if (c === '}') depth--;
    if (depth < 0) throw new ConfigError(`${key}: unbalanced "}" in "${text}"`, key);
    if (depth === 0 && (c === ',' || c === ' ' || c === '\t' || c === '\n' || c === '\r')) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (depth !== 0) throw new ConfigError(`${key}: unbalanced "{" in "${text}"`, key);
  if (cur !== '') out.push(cur);
  return out;
}

function parseRestrictionList(value: unknown, key: string): RestrictionEntry[] {
  const items = Array.isArray(value) ? value : [value];
  const out: RestrictionEntry[] = [];
  for (const item of items) {
    if (
      typeof item === 'function' ||
      (typeof item === 'object' &&
        item !== null &&
        typeof (item as { lookup?: unknown }).lookup === 'function')
    )
      out.push(item as RestrictionEntry);
    else if (typeof item === 'string') out.push(...splitRestrictionText(item, key));
    else
      throw new ConfigError(
        `${key}: expected restriction names (a string or an array of strings and functions), got ${JSON.stringify(item)}`,
        key,
      );
  }
  return out;
}
