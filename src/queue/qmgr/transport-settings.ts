/**
 * Per-transport scheduling settings: a transport's own limits from the `transports`
 * option (Postfix's `<transport>_destination_*` parameters in master.cf terms), else
 * the `default*` parameters (`local*` for the local transport).
 *
 * Postfix counterpart: the per-transport lookups of qmgr(8)'s qmgr_transport.c
 * (`get_mail_conf_int2(name, _DEST_CON_LIMIT, ...)` and friends).
 *
 * Values are checked when the settings are first asked for, so a bad value is an
 * error at start-up, naming the key.
 *
 * @module
 */

import { parseInteger, parseTime } from '../../config/values.js';
import type { QmgrParameters } from './qmgr-parameters.js';
import type { DestinationSettings } from './scheduler.js';

/**
 * Per-transport overrides (the `transports` map: Postfix's
 * `<transport>_destination_*`). Times take Postfix units (`"1s"`) or milliseconds.
 *
 * @example
 * ```ts
 * const manager = new QueueManager({ ...options, transports: { smtp: { destinationConcurrencyLimit: 10, destinationRateDelay: '1s' } } });
 * ```
 */
export interface TransportLimits {
  /**
   * Postfix `<transport>_destination_concurrency_limit`: most parallel deliveries per destination.
   */
  readonly destinationConcurrencyLimit?: number;
  /** Postfix `<transport>_destination_recipient_limit`: most recipients per delivery. */
  readonly destinationRecipientLimit?: number;
  /** Postfix `<transport>_initial_destination_concurrency`. */
  readonly initialDestinationConcurrency?: number;
  /** Postfix `<transport>_destination_concurrency_positive_feedback`. */
  readonly destinationConcurrencyPositiveFeedback?: number;
  /** Postfix `<transport>_destination_concurrency_negative_feedback`. */
  readonly destinationConcurrencyNegativeFeedback?: number;
  /** Postfix `<transport>_destination_concurrency_failed_cohort_limit`. */
  readonly destinationConcurrencyFailedCohortLimit?: number;
  /**
   * Postfix `<transport>_destination_rate_delay`: pause between deliveries to one destination.
   */
  readonly destinationRateDelay?: number | string;
}

/** What the scheduler and the grouping of recipients use for one transport. */
export type TransportSettings = DestinationSettings & { readonly recipientLimit: number };

/** The scheduling settings of `transport`: its `transports` entry, else the defaults. */
export function transportSettings(
  params: QmgrParameters,
  transports: Readonly<Record<string, TransportLimits>>,
  transport: string,
): TransportSettings {
  const p = params;
  const t = transports[transport] ?? {};
  const key = `transports.${transport}`;
  const int = (v: number | undefined, name: string, fallback: number, min = 1): number =>
    v === undefined ? fallback : parseInteger(v, `${key}.${name}`, min);
  const local = transport === 'local';
  const settings: TransportSettings = {
    concurrencyLimit: int(
      t.destinationConcurrencyLimit,
      'destinationConcurrencyLimit',
      local ? p.localDestinationConcurrencyLimit : p.defaultDestinationConcurrencyLimit,
    ),
    recipientLimit: int(
      t.destinationRecipientLimit,
      'destinationRecipientLimit',
      local ? p.localDestinationRecipientLimit : p.defaultDestinationRecipientLimit,
    ),
    initialConcurrency: int(
      t.initialDestinationConcurrency,
      'initialDestinationConcurrency',
      p.initialDestinationConcurrency,
    ),
    positiveFeedback: int(
      t.destinationConcurrencyPositiveFeedback,
      'destinationConcurrencyPositiveFeedback',
      p.defaultDestinationConcurrencyPositiveFeedback,
      0,
    ),
    negativeFeedback: int(
      t.destinationConcurrencyNegativeFeedback,
      'destinationConcurrencyNegativeFeedback',
      p.defaultDestinationConcurrencyNegativeFeedback,
      0,
    ),
    failedCohortLimit: int(
      t.destinationConcurrencyFailedCohortLimit,
      'destinationConcurrencyFailedCohortLimit',
      p.defaultDestinationConcurrencyFailedCohortLimit,
    ),
    rateDelay:
      t.destinationRateDelay === undefined
        ? p.defaultDestinationRateDelay
        : typeof t.destinationRateDelay === 'number'
          ? parseInteger(t.destinationRateDelay, `${key}.destinationRateDelay`, 0)
          : parseTime(t.destinationRateDelay, `${key}.destinationRateDelay`),
    deadMs: p.minimalBackoffTime,
  };
  return settings;
}
