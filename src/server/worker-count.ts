/**
 * How many smtpd worker processes a config asks for (`smtpdWorkerProcesses`), checked
 * against what workers cannot do yet: `postern serve` starts that many, `postern
 * check-config` reports the same problems before a start would.
 *
 * @module
 */

import { ConfigError } from '../errors.js';
import type { ResolvedMtaConfig } from '../mta/mta-config.js';

/** More workers than this is a typo rather than a plan. */
const MOST_WORKERS = 64;

/**
 * The number of smtpd worker processes; 0 means none (one process does everything).
 * Throws ConfigError for a count over 64, or for DKIM or a content filter with workers
 * (both re-read the message being written, which a worker's store cannot).
 *
 * @example
 * ```ts
 * smtpdWorkerCount(resolveMtaConfig({ smtpdWorkerProcesses: 2 })); // 2
 * ```
 */
export function smtpdWorkerCount(config: ResolvedMtaConfig): number {
  const count = config.params.smtpdWorkerProcesses;
  if (count === 0) return 0;
  if (count > MOST_WORKERS)
    throw new ConfigError(
      `smtpdWorkerProcesses ${count} is more than ${MOST_WORKERS}: give about one per CPU core`,
      'smtpdWorkerProcesses',
    );
  const rereads = (['dkimSigning', 'dkimVerification', 'contentFilter'] as const).filter(
    (k) => config[k] !== undefined,
  );
  if (rereads.length)
    throw new ConfigError(
      `${rereads.join(' and ')} cannot be used with smtpdWorkerProcesses ${count} yet: set smtpdWorkerProcesses to 0`,
      'smtpdWorkerProcesses',
    );
  return count;
}
