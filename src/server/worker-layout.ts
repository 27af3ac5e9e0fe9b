/**
 * The smtpd workers a config asks for (`smtpdWorkerProcesses` or `smtpdWorkerThreads`),
 * checked against what workers cannot do yet: `postern serve` starts them, `postern
 * check-config` reports the same problems before a start would.
 *
 * @module
 */

import { ConfigError } from '../errors.js';
import type { ResolvedMtaConfig } from '../mta/mta-config.js';
import type { WorkerKind } from './worker-start.js';

/** More worker processes than this is a typo rather than a plan. */
export const MOST_PROCESSES = 64;

/**
 * Threads of one process cannot share a listening port (node:net has no SO_REUSEPORT
 * before Node.js 22.12), so one thread serves every SMTP listener.
 */
export const MOST_THREADS = 1;

/** The workers to run. */
export interface WorkerLayout {
  readonly kind: WorkerKind;
  readonly count: number;
}

/**
 * The smtpd workers to run, or undefined for none (one process does everything).
 * Throws ConfigError for both kinds at once, a count over the limit, or DKIM or a content
 * filter with workers (both re-read the message being written, which a worker's store
 * cannot).
 *
 * @example
 * ```ts
 * smtpdWorkerLayout(resolveMtaConfig({ smtpdWorkerProcesses: 2 })); // { kind: 'process', count: 2 }
 * ```
 */
export function smtpdWorkerLayout(config: ResolvedMtaConfig): WorkerLayout | undefined {
  const { smtpdWorkerProcesses: processes, smtpdWorkerThreads: threads } = config.params;
  if (processes === 0 && threads === 0) return undefined;
  if (processes > 0 && threads > 0)
    throw new ConfigError(
      `smtpdWorkerProcesses ${processes} and smtpdWorkerThreads ${threads} cannot both be used: set one of them to 0`,
      'smtpdWorkerThreads',
    );
  const key = threads > 0 ? 'smtpdWorkerThreads' : 'smtpdWorkerProcesses';
  const count = threads > 0 ? threads : processes;
  if (threads > MOST_THREADS)
    throw new ConfigError(
      `smtpdWorkerThreads ${threads} is more than ${MOST_THREADS}: threads of one process cannot share a listening port; for more workers use smtpdWorkerProcesses`,
      key,
    );
  if (processes > MOST_PROCESSES)
    throw new ConfigError(
      `smtpdWorkerProcesses ${processes} is more than ${MOST_PROCESSES}: give about one per CPU core`,
      key,
    );
  const rereads = (['dkimSigning', 'dkimVerification', 'contentFilter'] as const).filter(
    (k) => config[k] !== undefined,
  );
  if (rereads.length)
    throw new ConfigError(
      `${rereads.join(' and ')} cannot be used with ${key} ${count} yet: set ${key} to 0`,
      key,
    );
  return { kind: threads > 0 ? 'thread' : 'process', count };
}
