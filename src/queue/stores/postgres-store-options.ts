/**
 * The options of PostgresQueueStore: where the queue lives (URL, schema), the name of
 * this node, its connection pools, and the timings of notification polling, the
 * heartbeat and node takeover.
 *
 * Postfix counterpart: `queue_directory`, for a queue that several hosts share.
 *
 * Does not do: check the values (the store does at construction and open; the JSON
 * configuration is checked by postgres-store-config.ts).
 *
 * @module
 */

import type { Logger } from '../../log.js';
import type { Clock } from '../../types.js';

/**
 * Options of PostgresQueueStore.
 *
 * @example
 * ```ts
 * const store = new PostgresQueueStore({ url: 'postgres://postern@db.internal/mail', node: 'mx1' } satisfies PostgresQueueStoreOptions);
 * ```
 */
export interface PostgresQueueStoreOptions {
  /** `postgres://user:password@host:port/database` (libpq URL; `?sslmode=...` works). */
  readonly url: string;
  /** The schema holding the queue tables. @default "postern" */
  readonly schema?: string;
  /**
   * This node's lease owner name (the QueueManager's `owner`, Mta's `nodeId`). When
   * set, `open()` releases every lease it still holds from before a crash, so that
   * mail is claimable at once; it must then be unique to this node.
   */
  readonly node?: string;
  /** Create and migrate the schema at open. @default true */
  readonly migrate?: boolean;
  /**
   * Connections for claims, removals and reads; a third as many again (at least two)
   * serve the writes that wait for the WAL flush (commits, outcomes). @default 10
   */
  readonly poolSize?: number;
  /** Content chunk size in bytes. @default 262144 */
  readonly chunkSize?: number;
  /** Use LISTEN/NOTIFY (false: poll only). @default true */
  readonly listen?: boolean;
  /** Poll interval while notifications are unavailable. @default 1000 */
  readonly pollMs?: number;
  /**
   * Heartbeat interval of this store's `nodes` row; each beat also looks for mail to
   * take over. @default 5000
   */
  readonly heartbeatMs?: number;
  /** A node silent this long has died and its leases are taken over. @default 30000 */
  readonly nodeTimeoutMs?: number;
  /** Judges lease expiry on writes; pass the QueueManager's clock. @default systemClock */
  readonly clock?: Clock;
  /** @default silentLogger */
  readonly logger?: Logger;
}

/** The default of `nodeTimeoutMs`. */
export const DEFAULT_NODE_TIMEOUT_MS = 30_000;
