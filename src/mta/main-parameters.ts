/**
 * Postern's main.cf: the parameter tables of every component composed into one
 * ParameterSet, MAIN_PARAMETERS. `resolveParameters()` turns a config's parameters (JSON
 * data or an object) into a frozen, fully defaulted MainParameters object, computing
 * defaults that refer to other parameters (`myorigin = $myhostname`) whichever
 * component declares them, and reporting every problem at once, each naming its key.
 * Each component reads its own view of the result (SmtpdParameters, CleanupParameters,
 * ...), declared beside its table.
 *
 * Postfix counterpart: mail_params.h with main.cf, as every daemon reads it. Times are
 * milliseconds here; a config gives them in Postfix's units (`"300s"`, `"5d"`) or as a
 * number of seconds.
 *
 * @module
 */

import { CLEANUP_PARAMETERS } from '../cleanup/cleanup-parameters.js';
import { CORE_PARAMETERS } from '../config/core-parameters.js';
import type { InputsOf, ParameterTable } from '../config/parameter-declaration.js';
import { ParameterSet, type ValuesOfGroups } from '../config/parameter-set.js';
import { LOCAL_PARAMETERS } from '../deliver/local-parameters.js';
import { SMTP_PARAMETERS } from '../deliver/smtp/smtp-parameters.js';
import { VIRTUAL_PARAMETERS } from '../deliver/virtual-parameters.js';
import { BOUNCE_PARAMETERS } from '../queue/bounce/bounce-parameters.js';
import { QMGR_PARAMETERS } from '../queue/qmgr/qmgr-parameters.js';
import { QUEUE_PARAMETERS } from '../queue/queue-parameters.js';
import { QMQPD_PARAMETERS } from '../receive/qmqpd-parameters.js';
import { SMTPD_ACCESS_PARAMETERS } from '../receive/smtpd-access-parameters.js';
import { SMTPD_PARAMETERS } from '../receive/smtpd-parameters.js';
import { REWRITE_PARAMETERS } from '../rewrite/rewrite-parameters.js';
import { MASTER_PARAMETERS } from '../server/master-parameters.js';

/** The components' tables, lowest layer first (the order of the docs and the schema). */
const COMPONENTS = {
  core: CORE_PARAMETERS,
  rewrite: REWRITE_PARAMETERS,
  local: LOCAL_PARAMETERS,
  virtual: VIRTUAL_PARAMETERS,
  smtp: SMTP_PARAMETERS,
  queue: QUEUE_PARAMETERS,
  qmgr: QMGR_PARAMETERS,
  bounce: BOUNCE_PARAMETERS,
  cleanup: CLEANUP_PARAMETERS,
  smtpd: SMTPD_PARAMETERS,
  smtpdAccess: SMTPD_ACCESS_PARAMETERS,
  qmqpd: QMQPD_PARAMETERS,
  master: MASTER_PARAMETERS,
} as const satisfies Readonly<Record<string, ParameterTable>>;

/** What a config may give for every table of `G`, as one object type. */
type InputsOfGroups<G extends Readonly<Record<string, ParameterTable>>> = Intersection<
  { [K in keyof G]: InputsOf<G[K]> }[keyof G]
>;

/** `A | B` → `A & B`. */
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void
  ? I
  : never;

/**
 * Every main parameter, resolved: each has its value or Postfix's default.
 *
 * @example
 * ```ts
 * const params: MainParameters = resolveParameters({ myhostname: 'mx.example.com' });
 * params.messageSizeLimit; // 10240000, Postfix's default
 * ```
 */
export interface MainParameters extends ValuesOfGroups<typeof COMPONENTS> {}

/**
 * What a config may give for the main parameters: every one optional, each in the
 * forms its kind takes (a time as `"300s"` or seconds, a list as an array or
 * `"a, b"`, `true` or `"yes"`, ...).
 *
 * @example
 * ```ts
 * const given: MainParameterInput = { myhostname: 'mx.example.com', maximalQueueLifetime: '2d' };
 * ```
 */
export interface MainParameterInput extends InputsOfGroups<typeof COMPONENTS> {}

/**
 * The main parameters of every component, as one main.cf.
 *
 * @example
 * ```ts
 * MAIN_PARAMETERS.componentOf('smtpdTimeout'); // 'smtpd'
 * ```
 */
export const MAIN_PARAMETERS: ParameterSet<MainParameters> = new ParameterSet<MainParameters>(
  COMPONENTS,
);

/**
 * Names of every main parameter.
 *
 * @example
 * ```ts
 * PARAMETER_NAMES.includes('relayhost'); // true
 * ```
 */
export const PARAMETER_NAMES: readonly (keyof MainParameters)[] = MAIN_PARAMETERS.names;

/**
 * Whether `key` is a main parameter.
 *
 * @example
 * ```ts
 * isParameterName('myhostname'); // true
 * ```
 */
export function isParameterName(key: string): key is keyof MainParameters {
  return MAIN_PARAMETERS.has(key);
}

/**
 * Resolves main parameters from `input` (keys that are not main parameters are
 * ignored here; the Mta config refuses those). Throws one ConfigError naming every
 * problem (its `problems` list them, each with its key).
 *
 * @example
 * ```ts
 * const params = resolveParameters({ myhostname: 'mx.example.com', mynetworks: ['10.0.0.0/8'] });
 * params.mydestination; // ['mx.example.com', 'localhost.example.com', 'localhost']
 * ```
 */
export function resolveParameters(input: MainParameterInput = {}): MainParameters {
  return MAIN_PARAMETERS.resolve(input as Readonly<Record<string, unknown>>);
}
