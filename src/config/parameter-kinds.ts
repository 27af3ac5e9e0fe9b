/**
 * The kinds of main.cf parameter (`param.string`, `param.time`, `param.integer`,
 * `param.boolean`, `param.list`, `param.oneOf`, `param.someOf`, `param.table`, and
 * `param.custom` for a component's own), each with its parser, its value and input
 * types, and its JSON Schema. A constant default is written as a config would give it
 * (`default: '300s'`) and parsed once, here, by the kind's own parser.
 *
 * Postfix counterpart: mail_conf_time.c, mail_conf_int.c, mail_conf_bool.c,
 * mail_conf_str.c (a typed table entry per parameter, with its bounds).
 *
 * @module
 */

import { parseTableSpec } from '../tables/create-table.js';
import type { TableSpec } from '../tables/types.js';
import { ComputedDefault, type JsonSchema, type Parameter } from './parameter-declaration.js';
import {
  parseBoolean,
  parseEnum,
  parseInteger,
  parseList,
  parseString,
  parseTime,
} from './values.js';

/**
 * A time as a config gives it: a number of seconds, or a number with Postfix's unit
 * (`"300s"`, `"5m"`, `"4h"`, `"5d"`, `"1w"`) or `ms`.
 *
 * @example
 * ```ts
 * const lifetime: TimeInput = '5d';
 * ```
 */
export type TimeInput = number | `${number}` | `${number}${'ms' | 's' | 'm' | 'h' | 'd' | 'w'}`;

/**
 * What every declaration says besides its kind and default.
 *
 * @example
 * ```ts
 * const common: ParameterOptions<string> = { postfix: 'relayhost', doc: 'The default nexthop.' };
 * ```
 */
export interface ParameterOptions<V> {
  /** Postfix's name (`smtpd_timeout`), or null for a parameter Postern adds. */
  readonly postfix: string | null;
  /** One line for the docs and the JSON Schema. */
  readonly doc: string;
  /**
   * A further check once every parameter is resolved: the problem (naming `key`, where
   * the value was given), or undefined.
   */
  readonly check?: (
    value: V,
    params: Readonly<Record<string, unknown>>,
    key: string,
  ) => string | undefined;
}

/** A declaration's default: a constant as a config gives it, or computed. */
type Default<G, V> = G | ComputedDefault<V>;

/** The docs' text for a constant default. */
function show(value: unknown): string {
  if (value === undefined) return 'none';
  if (Array.isArray(value)) return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
  return JSON.stringify(value);
}

/** Freezes a parsed constant: defaults are shared by every resolved config. */
function frozen<V>(value: V): V {
  return Array.isArray(value) ? (Object.freeze(value) as V) : value;
}

function declare<V, I>(
  kind: string,
  options: ParameterOptions<V>,
  schema: JsonSchema,
  parse: (value: unknown, key: string) => V,
  given: unknown,
): Parameter<V, I> {
  const isComputed = given instanceof ComputedDefault;
  return {
    kind,
    postfix: options.postfix,
    doc: options.doc,
    default: isComputed ? (given as ComputedDefault<V>) : frozen(parse(given, 'default')),
    defaultText: isComputed ? (given as ComputedDefault<V>).text : show(given),
    defaultGiven: isComputed ? undefined : given,
    schema,
    parse,
    ...(options.check ? { check: options.check } : {}),
  };
}

const LIST_SCHEMA: JsonSchema = {
  anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }],
};

/**
 * The parameter kinds.
 *
 * @example
 * ```ts
 * const limit = param.integer({ postfix: 'smtpd_recipient_limit', doc: 'Recipients per message.', default: 1000, min: 1 });
 * ```
 */
export const param = {
  /** Text, taken as given. */
  string(
    o: ParameterOptions<string> & { readonly default: Default<string, string> },
  ): Parameter<string, string> {
    return declare<string, string>('string', o, { type: 'string' }, parseString, o.default);
  },

  /** A duration in milliseconds, given in Postfix's units or as seconds. */
  time(
    o: ParameterOptions<number> & { readonly default: Default<TimeInput, number> },
  ): Parameter<number, TimeInput> {
    return declare<number, TimeInput>(
      'time',
      o,
      {
        anyOf: [
          { type: 'number', minimum: 0 },
          { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|[smhdw])?\\s*$' },
        ],
      },
      parseTime,
      o.default,
    );
  },

  /** A whole number no smaller than `min` (0 unless given). */
  integer(
    o: ParameterOptions<number> & {
      readonly default: Default<number, number>;
      readonly min?: number;
    },
  ): Parameter<number, number | `${number}`> {
    const min = o.min ?? 0;
    return declare<number, number | `${number}`>(
      'integer',
      o,
      {
        anyOf: [
          { type: 'integer', minimum: min },
          { type: 'string', pattern: '^\\s*\\d+\\s*$' },
        ],
      },
      (value, key) => parseInteger(value, key, min),
      o.default,
    );
  },

  /** `true`/`false`, or Postfix's `yes`/`no`. */
  boolean(
    o: ParameterOptions<boolean> & { readonly default: boolean },
  ): Parameter<boolean, boolean | 'yes' | 'no'> {
    return declare<boolean, boolean | 'yes' | 'no'>(
      'boolean',
      o,
      { enum: [true, false, 'yes', 'no'] },
      parseBoolean,
      o.default,
    );
  },

  /** A list of words: an array, or one string split at commas and blanks. */
  list(
    o: ParameterOptions<readonly string[]> & {
      readonly default: Default<readonly string[], readonly string[]>;
    },
  ): Parameter<readonly string[], readonly string[] | string> {
    return declare<readonly string[], readonly string[] | string>(
      'list',
      o,
      LIST_SCHEMA,
      parseList,
      o.default,
    );
  },

  /** One word of `choices`. */
  oneOf<const C extends readonly string[]>(
    choices: C,
    o: ParameterOptions<C[number]> & { readonly default: C[number] },
  ): Parameter<C[number], C[number]> {
    return declare<C[number], C[number]>(
      'oneOf',
      o,
      { enum: [...choices] },
      (value, key) => parseEnum(value, key, choices),
      o.default,
    );
  },

  /** A list of words of `choices`, in any case (kept upper-cased). */
  someOf<const C extends readonly string[]>(
    choices: C,
    o: ParameterOptions<readonly C[number][]> & { readonly default: readonly C[number][] },
  ): Parameter<readonly C[number][], readonly (C[number] | Lowercase<C[number]>)[] | string> {
    const words = [...choices, ...choices.map((c) => c.toLowerCase())];
    return declare<readonly C[number][], readonly (C[number] | Lowercase<C[number]>)[] | string>(
      'someOf',
      o,
      { anyOf: [{ type: 'array', items: { enum: words } }, { type: 'string' }] },
      (value, key) => parseList(value, key).map((v) => parseEnum(v.toUpperCase(), key, choices)),
      o.default,
    );
  },

  /**
   * A lookup table spec, kept as given (its consumer opens it with createTable());
   * `''` or `[]` means none.
   */
  table(
    o: ParameterOptions<TableSpec | undefined> & {
      readonly default: Default<TableSpec | undefined, TableSpec | undefined>;
    },
  ): Parameter<TableSpec | undefined, TableSpec> {
    return declare<TableSpec | undefined, TableSpec>(
      'table',
      o,
      {
        anyOf: [
          { type: 'string' },
          { type: 'object', additionalProperties: { type: 'string' } },
          {
            type: 'array',
            items: {
              anyOf: [
                { type: 'string' },
                { type: 'object', additionalProperties: { type: 'string' } },
              ],
            },
          },
        ],
      },
      parseTableSpec,
      o.default,
    );
  },

  /** A kind of a component's own: its parser, its JSON Schema and its name. */
  custom<V, I>(
    o: ParameterOptions<V> & {
      readonly kind: string;
      readonly schema: JsonSchema;
      readonly parse: (value: unknown, key: string) => V;
      readonly default: Default<I, V>;
    },
  ): Parameter<V, I> {
    return declare<V, I>(o.kind, o, o.schema, o.parse, o.default);
  },
};
