/**
 * How a component declares its main.cf parameters: one typed table per component
 * (`defineParameters({ smtpdTimeout: param.time({...}), ... })`), each entry giving the
 * parameter's Postfix name, a one-line doc, its kind (which parses and checks a
 * config's value), its default — a constant, or computed from other parameters as
 * Postfix's `$name` expansions are (`myorigin = $myhostname`) — and any further check.
 * The value type of every parameter is inferred from its entry (`ValuesOf<typeof TABLE>`),
 * and so is what a config may give (`InputsOf<typeof TABLE>`); the Mta composes the
 * tables into one ParameterSet (parameter-set.ts), and the JSON Schema and the API docs
 * are generated from the same entries.
 *
 * Postfix counterpart: mail_params.h's VAR_/DEF_ pairs with each daemon's
 * `CONFIG_*_TABLE` (smtpd.c's `time_table`, `int_table`, ...), which name the parameters
 * a daemon reads, their defaults and their bounds.
 *
 * Does not: resolve anything (parameter-set.ts does); know any parameter (the
 * components' `*-parameters.ts` files declare them).
 *
 * @module
 */

/**
 * Carries, in the type only, what a config may give for a Parameter (never a property
 * at run time).
 *
 * @internal
 */
export declare const PARAMETER_INPUT: unique symbol;

/**
 * A JSON Schema fragment (draft 2020-12) that says what a config file may give.
 *
 * @example
 * ```ts
 * const boolean: JsonSchema = { enum: [true, false, 'yes', 'no'] };
 * ```
 */
export type JsonSchema = Readonly<Record<string, unknown>>;

/**
 * A default computed from other parameters once they are resolved, as Postfix expands
 * `$name` in main.cf (`myorigin = $myhostname`). Made by expand(), expandList(),
 * sameAs() or computed().
 *
 * @example
 * ```ts
 * const banner: ComputedDefault<string> = expand('$myhostname ESMTP $mailName');
 * ```
 */
export class ComputedDefault<V> {
  /** The parameters it reads: they are resolved first. */
  readonly uses: readonly string[];
  /** The default as the docs show it (`$myhostname ESMTP $mailName`). */
  readonly text: string;
  /** Computes the value from the resolved parameters. */
  readonly compute: (params: Readonly<Record<string, unknown>>) => V;
  /** Set by sameAs(): the value is the named parameter's own, of the same kind. */
  readonly copies: string | undefined;

  constructor(
    text: string,
    uses: readonly string[],
    compute: (params: Readonly<Record<string, unknown>>) => V,
    copies?: string,
  ) {
    this.text = text;
    this.uses = uses;
    this.compute = compute;
    this.copies = copies;
  }
}

/**
 * One declared parameter: what its value is (V), what a config may give for it (I), how
 * a given value is parsed, its default, and what the docs and the JSON Schema say.
 * Made by the `param.*` builders (parameter-kinds.ts).
 *
 * @example
 * ```ts
 * const timeout: Parameter<number, TimeInput> = param.time({
 *   postfix: 'smtpd_timeout',
 *   doc: 'How long the server waits for a command.',
 *   default: '300s',
 * });
 * ```
 */
export interface Parameter<V, I> {
  /** The kind's name (`string`, `time`, `integer`, `list`, `table`, ...). */
  readonly kind: string;
  /** Postfix's name (`smtpd_timeout`), or null for a parameter Postern adds. */
  readonly postfix: string | null;
  /** One line for the docs and the JSON Schema. */
  readonly doc: string;
  /** The default value (parsed), or how to compute it. */
  readonly default: V | ComputedDefault<V>;
  /** The default as the docs show it (`"300s"`, `$myhostname`, `none`). */
  readonly defaultText: string;
  /** A constant default as a config would write it (`"300s"`); undefined when computed or none. */
  readonly defaultGiven: unknown;
  /** What a config file may give, as JSON Schema. */
  readonly schema: JsonSchema;
  /** Turns a config's value into V; throws ConfigError naming `key`. */
  parse(value: unknown, key: string): V;
  /**
   * A further check once every parameter is resolved (`params`): a message naming `key`
   * and the fix, or undefined when the value is fine.
   */
  check?(value: V, params: Readonly<Record<string, unknown>>, key: string): string | undefined;
  /** @internal */
  readonly [PARAMETER_INPUT]?: I;
}

/**
 * A component's table of parameters: name (Postfix's, in camelCase) → declaration.
 *
 * @example
 * ```ts
 * const table: ParameterTable = QMQPD_PARAMETERS;
 * ```
 */
export type ParameterTable = Readonly<Record<string, Parameter<unknown, unknown>>>;

/**
 * The resolved values of a table's parameters.
 *
 * @example
 * ```ts
 * type Qmqpd = ValuesOf<typeof QMQPD_PARAMETERS>; // { readonly qmqpdTimeout: number; ... }
 * ```
 */
export type ValuesOf<T extends ParameterTable> = {
  readonly [K in keyof T]: T[K] extends Parameter<infer V, unknown> ? V : never;
};

/**
 * What a config may give for a table's parameters (every one optional).
 *
 * @example
 * ```ts
 * const given: InputsOf<typeof QMQPD_PARAMETERS> = { qmqpdTimeout: '5m' };
 * ```
 */
export type InputsOf<T extends ParameterTable> = {
  readonly [K in keyof T]?: T[K] extends Parameter<unknown, infer I> ? I : never;
};

/**
 * Declares a component's parameters; the table is returned as given, with its types.
 *
 * @example
 * ```ts
 * export const QMQPD_PARAMETERS = defineParameters({
 *   qmqpdTimeout: param.time({ postfix: 'qmqpd_timeout', doc: 'Session time limit.', default: '300s' }),
 * });
 * ```
 */
export function defineParameters<T extends ParameterTable>(table: T): T {
  for (const name of Object.keys(table)) {
    if (!/^[0-9a-z][A-Za-z0-9]*$/.test(name))
      throw new TypeError(`defineParameters(): "${name}" is not a camelCase parameter name`);
  }
  return table;
}

const REFERENCE = /\$([A-Za-z0-9]+)/g;

/** The names a `$name` template reads. */
function references(template: string): string[] {
  return [...template.matchAll(REFERENCE)].map((m) => m[1] as string);
}

/** `template` with every `$name` replaced by that parameter's value. */
function substitute(template: string, params: Readonly<Record<string, unknown>>): string {
  return template.replace(REFERENCE, (_, name: string) => String(params[name]));
}

/**
 * A string default that expands `$name` references (`$myhostname ESMTP $mailName`).
 *
 * @example
 * ```ts
 * param.string({ postfix: 'smtpd_banner', doc: 'The greeting.', default: expand('$myhostname ESMTP $mailName') });
 * ```
 */
export function expand(template: string): ComputedDefault<string> {
  return new ComputedDefault(template, references(template), (p) => substitute(template, p));
}

/**
 * A list default whose items expand `$name` references
 * (`['$myhostname', 'localhost.$mydomain', 'localhost']`).
 *
 * @example
 * ```ts
 * param.list({ postfix: 'mydestination', doc: 'Local domains.', default: expandList(['$myhostname', 'localhost']) });
 * ```
 */
export function expandList(templates: readonly string[]): ComputedDefault<readonly string[]> {
  return new ComputedDefault(JSON.stringify(templates), templates.flatMap(references), (p) =>
    templates.map((t) => substitute(t, p)),
  );
}

/**
 * A default that is another parameter's value (`mime_header_checks = $header_checks`).
 * The ParameterSet checks that both are of the same kind.
 *
 * @example
 * ```ts
 * param.table({ postfix: 'mime_header_checks', doc: 'MIME header checks.', default: sameAs('headerChecks') });
 * ```
 */
export function sameAs(name: string): ComputedDefault<never> {
  return new ComputedDefault(`$${name}`, [name], (p) => p[name] as never, name);
}

/**
 * A default computed by code from the parameters it `uses`, with the text the docs show.
 *
 * @example
 * ```ts
 * computed('$myhostname less its first label', ['myhostname'], (p) => String(p.myhostname).replace(/^[^.]*\./, ''));
 * ```
 */
export function computed<V>(
  text: string,
  uses: readonly string[],
  compute: (params: Readonly<Record<string, unknown>>) => V,
): ComputedDefault<V> {
  return new ComputedDefault(text, uses, compute);
}
