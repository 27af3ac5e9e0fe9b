/**
 * The master's parameters: how many processes serve the SMTP listeners.
 *
 * Postfix counterpart: master(8) and master.cf, where each service's `maxproc` column
 * says how many processes may serve it (default `default_process_limit`, 100). Postern
 * serves many sessions in each process, so its count is of worker processes, and
 * `maxproc` keeps its meaning of sessions per listener.
 *
 * @module
 */

import { defineParameters, type ValuesOf } from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';

/**
 * The master's parameters.
 *
 * @example
 * ```ts
 * MASTER_PARAMETERS.smtpdWorkerProcesses.defaultText; // '0'
 * ```
 */
export const MASTER_PARAMETERS = defineParameters({
  smtpdWorkerProcesses: param.integer({
    postfix: null,
    doc: "How many worker processes `postern serve` runs for its SMTP listeners (Postfix's smtpd processes under master(8)). 0: the one process serves SMTP (in its worker thread, `smtpdWorkerThreads`). N > 0: N worker processes accept the SMTP connections (the kernel spreads them) and run the SMTP server and Cleanup, handing each message to the main process, whose queue store makes it durable before the 250, so the commits of every worker share one group commit; the main process keeps the queue, delivery and the other listeners. A worker that dies is started again; mail it had not acknowledged is retried by its clients. Per-client limits (`smtpdClient*`) and `maxproc` then count per worker process. Not with `dkimSigning`, `dkimVerification` or a `contentFilter`. Needs a restart to change.",
    default: 0,
    min: 0,
  }),
  smtpdWorkerThreads: param.integer({
    postfix: null,
    doc: 'Whether `postern serve` runs its SMTP listeners in a worker thread of its one process (1, the default) or in the main thread (0). The thread runs the SMTP server and Cleanup, as a worker process would (`smtpdWorkerProcesses`), and hands each message to the main thread, whose queue store makes it durable before the 250; the main thread keeps the queue, delivery and the other listeners. So two cores share the work, at the memory cost of a second JavaScript heap. At most 1 (threads of one process cannot share a listening port). Set aside when `smtpdWorkerProcesses` is above 0 (the worker processes serve SMTP), and with `dkimSigning`, `dkimVerification` or a `contentFilter` (they re-read the message being written, which only the main thread can: SMTP stays there). A thread that dies is started again. Needs a restart to change.',
    default: 1,
    min: 0,
  }),
});

/**
 * The master's parameters, resolved.
 *
 * @example
 * ```ts
 * const workers: MasterParameters['smtpdWorkerProcesses'] = resolveParameters().smtpdWorkerProcesses;
 * ```
 */
export interface MasterParameters extends ValuesOf<typeof MASTER_PARAMETERS> {}
