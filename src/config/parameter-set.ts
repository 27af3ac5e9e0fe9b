/**
 * ParameterSet: the components' parameter tables composed into one main.cf. It resolves
 * a config against all of them — every given value parsed by its kind, every default
 * filled in, computed defaults after the parameters they read, whichever component
 * declares those (`smtpHeloName = $myhostname`), then every check — and reports every
 * problem at once. It also applies master.cf-style overrides to resolved parameters and
 * describes each parameter for the docs and the JSON Schema.
 *
 * Postfix counterpart: mail_conf.c and mail_params.c (main.cf read once, `$name`
 * expanded on use), with master.cf's `-o name=value` applied by override().
 *
 * Does not: know which keys beside parameters a config may hold (the Mta's config
 * does); read files or open tables.
 *
 * @module
 */

import { ConfigError } from '../errors.js';
import {
  ComputedDefault,
  type JsonSchema,
  type Parameter,
  type ParameterTable,
  type ValuesOf,
} from './parameter-declaration.js';

/**
 * One parameter as the docs and the JSON Schema describe it.
 *
 * @example
 * ```ts
 * for (const p of MAIN_PARAMETERS.describe()) console.log(p.name, p.postfix, p.defaultText);
 * ```
 */
export interface ParameterDescription {
  /** Postern's name (`smtpdTimeout`). */
  readonly name: string;
  /** The component whose table declares it (`smtpd`, `cleanup`, `core`, ...). */
  readonly component: string;
  /** Postfix's name, or null for a parameter Postern adds. */
  readonly postfix: string | null;
  /** The one-line doc. */
  readonly doc: string;
  /** The kind (`time`, `list`, ...). */
  readonly kind: string;
  /** The default as the docs show it. */
  readonly defaultText: string;
  /** What a config file may give, with a description and any constant default. */
  readonly schema: JsonSchema;
}

/**
 * How resolve() and override() report problems.
 *
 * @example
 * ```ts
 * const problems: ConfigError[] = [];
 * MAIN_PARAMETERS.resolve(input, { problems, keyOf: (n) => `smtpd[0].${n}` });
 * ```
 */
export interface ResolveOptions {
  /** Collects every problem here instead of throwing them as one ConfigError. */
  readonly problems?: ConfigError[];
  /** The key a problem with `name` is reported under (a listener's `smtpd[1].smtpdTimeout`). */
  readonly keyOf?: (name: string) => string;
}

/** The values of every table of `G`, as one object type. */
export type ValuesOfGroups<G extends Readonly<Record<string, ParameterTable>>> = Intersection<
  { [K in keyof G]: ValuesOf<G[K]> }[keyof G]
>;

/** `A | B` → `A & B`. */
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void
  ? I
  : never;

type AnyParameter = Parameter<unknown, unknown>;

/**
 * The components' parameter tables as one main.cf.
 *
 * @example
 * ```ts
 * const set = new ParameterSet<{ qmqpdTimeout: number }>({ qmqpd: QMQPD_PARAMETERS });
 * set.resolve({ qmqpdTimeout: '5m' }).qmqpdTimeout; // 300000
 * ```
 */
export class ParameterSet<V extends object> {
  /** Every parameter's name, component by component, in declaration order. */
  readonly names: readonly (keyof V & string)[];
  readonly #declarations = new Map<string, AnyParameter>();
  readonly #components = new Map<string, string>();
  /** The order defaults are filled in: each after every parameter its default reads. */
  readonly #order: readonly string[];

  constructor(components: Readonly<Record<string, ParameterTable>>) {
    for (const [component, table] of Object.entries(components)) {
      for (const [name, declaration] of Object.entries(table)) {
        const owner = this.#components.get(name);
        if (owner !== undefined)
          throw new TypeError(`parameter ${name} is declared by both ${owner} and ${component}`);
        this.#declarations.set(name, declaration);
        this.#components.set(name, component);
      }
    }
    this.names = [...this.#declarations.keys()] as (keyof V & string)[];
    this.#order = this.#defaultOrder();
  }

  /** Whether `name` is one of the parameters. */
  has(name: string): name is keyof V & string {
    return this.#declarations.has(name);
  }

  /** The component that declares `name`, if any. */
  componentOf(name: string): string | undefined {
    return this.#components.get(name);
  }

  /**
   * Resolves a config's parameters (other keys are ignored): given values parsed,
   * defaults filled in, checks run. Throws one ConfigError naming every problem, unless
   * `options.problems` collects them (the result then holds what did resolve).
   */
  resolve(input: Readonly<Record<string, unknown>> = {}, options: ResolveOptions = {}): V {
    const keyOf = options.keyOf ?? ((name: string) => name);
    const problems: ConfigError[] = [];
    const failed = new Set<string>();
    const out: Record<string, unknown> = {};
    this.#parseGiven(input, out, { keyOf, problems, failed });
    for (const name of this.#order) {
      if (name in out || failed.has(name)) continue;
      const d = this.#declarations.get(name)?.default;
      if (!(d instanceof ComputedDefault)) out[name] = d;
      else if (d.uses.some((u) => failed.has(u))) failed.add(name);
      else out[name] = d.compute(out);
    }
    this.#check(out, failed, keyOf, problems);
    return this.#finish(out, problems, options);
  }

  /**
   * `params` with `overrides` (master.cf `-o`, a transport's settings) parsed and put in
   * their place. Defaults computed from an overridden parameter keep their resolved
   * value. Names that are not parameters are the caller's to refuse.
   */
  override(
    params: V,
    overrides: Readonly<Record<string, unknown>>,
    options: ResolveOptions = {},
  ): V {
    const keyOf = options.keyOf ?? ((name: string) => name);
    const problems: ConfigError[] = [];
    const failed = new Set<string>();
    const out: Record<string, unknown> = { ...(params as Record<string, unknown>) };
    this.#parseGiven(overrides, out, { keyOf, problems, failed });
    this.#check(out, failed, keyOf, problems);
    return this.#finish(out, problems, options);
  }

  /**
   * Every parameter as the docs and the JSON Schema describe it.
   *
   * @example
   * ```ts
   * MAIN_PARAMETERS.describe().find((p) => p.name === 'smtpdTimeout')?.defaultText; // '"300s"'
   * ```
   */
  describe(): ParameterDescription[] {
    return [...this.#declarations].map(([name, d]) => {
      const postfix = d.postfix === null ? "Postern's own" : `Postfix: ${d.postfix}`;
      return {
        name,
        component: this.#components.get(name) as string,
        postfix: d.postfix,
        doc: d.doc,
        kind: d.kind,
        defaultText: d.defaultText,
        schema: {
          description: `${d.doc} ${postfix}. Default: ${d.defaultText}.`,
          ...(d.defaultGiven === undefined ? {} : { default: d.defaultGiven }),
          ...d.schema,
        },
      };
    });
  }

  /** Parses every parameter `given` holds into `out`; a failure is noted in `into`. */
  #parseGiven(
    given: Readonly<Record<string, unknown>>,
    out: Record<string, unknown>,
    into: {
      readonly keyOf: (name: string) => string;
      readonly problems: ConfigError[];
      readonly failed: Set<string>;
    },
  ): void {
    for (const [name, declaration] of this.#declarations) {
      const value = given[name];
      if (value === undefined) continue;
      try {
        out[name] = declaration.parse(value, into.keyOf(name));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        into.problems.push(err);
        into.failed.add(name);
      }
    }
  }

  #check(
    out: Record<string, unknown>,
    failed: ReadonlySet<string>,
    keyOf: (name: string) => string,
    problems: ConfigError[],
  ): void {
    for (const [name, declaration] of this.#declarations) {
      if (failed.has(name) || declaration.check === undefined) continue;
      const problem = declaration.check(out[name], out, keyOf(name));
      if (problem !== undefined) problems.push(new ConfigError(problem, keyOf(name)));
    }
  }

  #finish(out: Record<string, unknown>, problems: ConfigError[], options: ResolveOptions): V {
    if (problems.length > 0) {
      if (options.problems === undefined) throw ConfigError.of(problems);
      options.problems.push(...problems);
    }
    const ordered: Record<string, unknown> = {};
    for (const name of this.names) if (name in out) ordered[name] = out[name];
    return Object.freeze(ordered) as V;
  }

  /**
   * Declaration order, except that a computed default comes after what it reads. Refuses
   * a default that reads an unknown parameter, copies one of another kind, or a cycle.
   */
  #defaultOrder(): string[] {
    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (name: string, path: readonly string[]): void => {
      if (state.get(name) === 'done') return;
      if (state.get(name) === 'visiting')
        throw new TypeError(
          `parameter defaults refer to each other: ${[...path, name].join(' → ')}`,
        );
      state.set(name, 'visiting');
      const d = this.#declarations.get(name)?.default;
      if (d instanceof ComputedDefault) {
        for (const used of d.uses) {
          if (!this.#declarations.has(used))
            throw new TypeError(`the default of ${name} refers to an unknown parameter, ${used}`);
          visit(used, [...path, name]);
        }
        const copied = d.copies === undefined ? undefined : this.#declarations.get(d.copies);
        if (copied && copied.kind !== this.#declarations.get(name)?.kind)
          throw new TypeError(
            `the default of ${name} copies ${d.copies}, a parameter of another kind`,
          );
      }
      state.set(name, 'done');
      order.push(name);
    };
    for (const name of this.#declarations.keys()) visit(name, []);
    return order;
  }
}
