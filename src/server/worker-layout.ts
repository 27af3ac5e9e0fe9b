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
 * The smtpd workers to run, or undefined for none (the main thread serves SMTP). Worker
 * processes, when asked for, take the place of the thread; the thread gives way to DKIM
 * and a content filter, which re-read the message being written (only the main thread's
 * store can), while worker processes with them are refused: they were asked for by name.
 * Throws ConfigError for a count over the limit, or DKIM or a content filter with worker
 * processes.
 *
 * @example
 * ```ts
 * smtpdWorkerLayout(resolveMtaConfig({})); // { kind: 'thread', count: 1 }
 * smtpdWorkerLayout(resolveMtaConfig({ smtpdWorkerProcesses: 2 })); // { kind: 'process', count: 2 }
 * ```
 */
export function smtpdWorkerLayout(config: ResolvedMtaConfig): WorkerLayout | undefined {
  const { smtpdWorkerProcesses: processes, smtpdWorkerThreads: threads } = config.params;
  if (threads > MOST_THREADS)
    throw new ConfigError(
      `smtpdWorkerThreads ${threads} is more than ${MOST_THREADS}: threads of one process cannot share a listening port; for more workers use smtpdWorkerProcesses`,
      'smtpdWorkerThreads',
    );
  if (processes > MOST_PROCESSES)
    throw new ConfigError(
      `smtpdWorkerProcesses ${processes} is more than ${MOST_PROCESSES}: give about one per CPU core`,
      'smtpdWorkerProcesses',
    );
  const rereads = (['dkimSigning', 'dkimVerification', 'contentFilter'] as const).filter(
    (k) => config[k] !== undefined,
  );
  if (processes > 0) {
    if (rereads.length)
      throw new ConfigError(
        `${rereads.join(' and ')} cannot be used with smtpdWorkerProcesses ${processes} yet: set smtpdWorkerProcesses to 0`,
        'smtpdWorkerProcesses',
      );
    return { kind: 'process', count: processes };
  }
  if (threads === 0 || rereads.length) return undefined;
  return { kind: 'thread', count: threads };
}
