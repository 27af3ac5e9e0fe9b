/**
 * What a reload (SIGHUP, `mta.reload(config)`) may change in a running Mta, and what
 * needs a restart.
 *
 * Postfix counterpart: `postfix reload`, after which new smtpd processes read main.cf
 * and master.cf again. Postern runs in one process whose queue manager, delivery
 * agents, Cleanup and address rewriting hold their parameters (and open state:
 * leases, connection caches) for the life of the process, so a reload applies what
 * only the receivers use:
 *
 * - the SMTP and QMQP listeners: added, removed, or rebuilt with their overrides;
 * - every `smtpd*` and `qmqpd*` parameter and the reject codes of the restrictions
 *   (`rejectCode`, `relayDomainsRejectCode`, ...);
 * - what the receivers read from files: TLS certificates and keys, SASL tables —
 *   read again even when no parameter changed (a renewed certificate);
 *
 * New connections get the new receivers; open sessions finish under the old ones.
 * Any other change (`myhostname`, `mydestination`, `relayhost`, tables named by
 * other parameters, `transports`, `queueStore`, `metrics`...) is reported by name and
 * keeps its running value until `postern serve` restarts: half-applying it would let
 * smtpd accept mail for a domain the queue manager still routes elsewhere. (Lookup
 * tables that are files already reload when the file changes.)
 *
 * Does not: compare code exactly — functions of an `.mjs` config are compared by their
 * source text, objects by their fields, a few levels deep.
 *
 * @module
 */

import { MAIN_PARAMETERS, type MainParameters, PARAMETER_NAMES } from './main-parameters.js';
import { MTA_CONFIG_KEYS, type ResolvedListener, type ResolvedMtaConfig } from './mta-config.js';

/** The components whose parameters a reload applies: the receivers'. */
const RELOADABLE_COMPONENTS: ReadonlySet<string> = new Set(['smtpd', 'smtpdAccess', 'qmqpd']);

/**
 * The parameters a reload applies: those the receivers' tables declare (a parameter that
 * Cleanup or the queue also reads, such as `messageSizeLimit`, is declared below them and
 * needs a restart).
 *
 * @example
 * ```ts
 * RELOADABLE_PARAMETERS.has('smtpdRecipientRestrictions'); // true
 * RELOADABLE_PARAMETERS.has('relayhost'); // false
 * ```
 */
export const RELOADABLE_PARAMETERS: ReadonlySet<keyof MainParameters> = new Set(
  PARAMETER_NAMES.filter((n) => RELOADABLE_COMPONENTS.has(MAIN_PARAMETERS.componentOf(n) ?? '')),
);

/** The config keys of the Mta besides parameters and listeners. */
const OTHER_KEYS = MTA_CONFIG_KEYS.filter(
  (k): k is Exclude<(typeof MTA_CONFIG_KEYS)[number], 'smtpd' | 'qmqpd'> =>
    k !== 'smtpd' && k !== 'qmqpd',
);

/**
 * What a reload does.
 *
 * @example
 * ```ts
 * const plan = planReload(mta.config, resolveMtaConfig(next));
 * if (plan.restart.length) console.warn(`restart to apply ${plan.restart.join(', ')}`);
 * ```
 */
export interface ReloadPlan {
  /** The SMTP listeners to run: reloadable values from the new config, the others as running. */
  readonly smtpd: readonly ResolvedListener[];
  /** The QMQP listeners to run, likewise. */
  readonly qmqpd: readonly ResolvedListener[];
  /** The config after the reload (what `mta.config` then says). */
  readonly config: ResolvedMtaConfig;
  /** Names of what changed but needs a restart (`relayhost`, `smtpd[1].myhostname`, `transports`). */
  readonly restart: readonly string[];
  /** Names of the reloadable parameters that changed (for the log). */
  readonly changed: readonly string[];
}

/**
 * Compares the running config with `next` and decides what runs after the reload.
 *
 * @example
 * ```ts
 * const { smtpd, restart } = planReload(running, resolveMtaConfig({ ...config, smtpdBanner: 'hi' }));
 * ```
 */
export function planReload(running: ResolvedMtaConfig, next: ResolvedMtaConfig): ReloadPlan {
  const restart = new Set<string>();
  const changed = new Set<string>();
  const main: Record<string, unknown> = { ...running.params };
  for (const name of PARAMETER_NAMES) {
    if (sameValue(running.params[name], next.params[name])) continue;
    if (RELOADABLE_PARAMETERS.has(name)) {
      main[name] = next.params[name];
      changed.add(name);
    } else restart.add(name);
  }
  for (const key of OTHER_KEYS) if (!sameValue(running[key], next[key])) restart.add(key);
  const listeners = (service: 'smtpd' | 'qmqpd'): ResolvedListener[] => {
    const unmatched = [...running[service]];
    return next[service].map((l, i) => {
      const at = unmatched.findIndex((r) => r.host === l.host && r.port === l.port);
      const before = at >= 0 ? unmatched.splice(at, 1)[0]!.params : running.params;
      const merged: Record<string, unknown> = { ...before };
      for (const name of PARAMETER_NAMES) {
        const value = l.params[name];
        if (sameValue(before[name], value)) continue;
        if (RELOADABLE_PARAMETERS.has(name)) {
          merged[name] = value;
          changed.add(name);
        } else if (!restart.has(name)) restart.add(`${service}[${i}].${name}`);
      }
      return { ...l, params: Object.freeze(merged) as unknown as MainParameters };
    });
  };
  const smtpd = listeners('smtpd');
  const qmqpd = listeners('qmqpd');
  return {
    smtpd,
    qmqpd,
    config: { ...running, params: Object.freeze(main) as unknown as MainParameters, smtpd, qmqpd },
    restart: [...restart],
    changed: [...changed],
  };
}

/** Equality of config values: data deeply, functions by source, a few levels deep. */
function sameValue(a: unknown, b: unknown, depth = 0): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== typeof b || a === null || b === null) return false;
  if (typeof a === 'function') return String(a) === String(b);
  if (typeof a !== 'object' || depth > 6) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) {
    const ca = (a as object).constructor?.name;
    if (ca === undefined || ca !== (b as object).constructor?.name) return false;
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1),
  );
}
