/**
 * SmtpdService: the SMTP listeners served somewhere other than the Mta's own process —
 * `postern serve`'s smtpd worker processes (server/smtpd-workers.ts). When an Mta is
 * given one, it starts it instead of binding its `smtpd` listeners itself, once the
 * queue store is open (the workers' messages are committed to it), asks it to reload
 * after its own reload, and closes it first when it stops, so in-flight SMTP
 * transactions commit before the store closes.
 *
 * Postfix counterpart: master(8)'s inet services run by child processes.
 *
 * @module
 */

import type { QueueStore } from '../queue/types.js';
import type { BoundListener } from '../service-network.js';

/**
 * SMTP listeners served elsewhere.
 *
 * @example
 * ```ts
 * const mta = new Mta(config, { smtpdService: new SmtpdWorkers({ count: 2, log, logLines }) });
 * ```
 */
export interface SmtpdService {
  /** Starts serving with `store` as the queue; resolves with the bound addresses. */
  start(store: QueueStore): Promise<readonly BoundListener[]>;
  /**
   * The Mta validated and applied a new config: have the listeners apply it too;
   * resolves with the bound addresses then.
   */
  reload(): Promise<readonly BoundListener[]>;
  /** Stops accepting and resolves once every session in flight has ended. */
  close(): Promise<void>;
  /** Optional: sessions open on listener `index` (for the metrics; may be a moment old). */
  sessionCount?(index: number): number;
}
