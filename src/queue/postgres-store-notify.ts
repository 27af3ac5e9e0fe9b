/**
 * PostgresQueueStore notifications and liveness: announcing claimable mail to every
 * node with LISTEN/NOTIFY (polling while the listening connection is down), and the
 * `nodes` heartbeat by which peers know that a node has died.
 *
 * Postfix counterpart: the qmgr(8) trigger (a byte on the `public/qmgr` FIFO that
 * cleanup(8) and postqueue(1) send) and qmgr's periodic queue scan as the fallback.
 *
 * Announcements are coalesced: whatever the rate of commits, at most one NOTIFY is in
 * flight per store, sent outside the committing transaction so commits never queue on
 * the notification lock. Local listeners are called at once by the store itself.
 *
 * The listener runs on a dedicated connection (LISTEN needs a session; a pooled one
 * would lose it). When that connection fails, listeners are called every `pollMs`
 * while it reconnects with backoff, and once more when it is back (announcements made
 * meanwhile were lost).
 *
 * Does not do: guarantee delivery of notifications (they are hints; the QueueManager's
 * periodic scan remains the safety net).
 *
 * @module
 */

import type { Client, Pool } from 'pg';
import type { ComponentLogger } from '../log.js';
import type { Pg } from './postgres-store-schema.js';

const MAX_BACKOFF_MS = 30_000;

export interface ListenerOptions {
  readonly pg: Pg;
  readonly url: string;
  readonly channel: string;
  readonly pollMs: number;
  /** Listen at all (false: poll only, e.g. behind a transaction-mode pooler). */
  readonly listen: boolean;
  readonly log: ComponentLogger;
  readonly fire: () => void;
}

/** Receives the announcements of every node; see the module header. */
export class AvailabilityListener {
  readonly #o: ListenerOptions;
  #client: Client | undefined;
  #poll: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #backoff = 500;
  #closed = false;

  constructor(options: ListenerOptions) {
    this.#o = options;
  }

  /** Connects and listens; falls back to polling if that fails now. */
  async start(): Promise<void> {
    if (!this.#o.listen) {
      this.#startPolling();
      return;
    }
    try {
      await this.#connect();
    } catch (err) {
      this.#down(err as Error);
    }
  }

  async #connect(): Promise<void> {
    const client = new this.#o.pg.Client({ connectionString: this.#o.url });
    client.on('error', (err) => this.#down(err));
    client.on('end', () => this.#down(new Error('connection closed')));
    client.on('notification', () => this.#o.fire());
    await client.connect();
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    await client.query(`LISTEN ${this.#o.pg.escapeIdentifier(this.#o.channel)}`);
    this.#client = client;
    this.#backoff = 500;
    this.#stopPolling();
  }

  #down(err: Error): void {
    if (this.#closed || this.#retry) return;
    const client = this.#client;
    this.#client = undefined;
    client?.removeAllListeners('end');
    void client?.end().catch(() => undefined);
    this.#o.log.warning(
      undefined,
      `queue notifications lost (${err.message}); polling every ${this.#o.pollMs} ms while reconnecting`,
    );
    this.#startPolling();
    const wait = this.#backoff;
    this.#backoff = Math.min(MAX_BACKOFF_MS, this.#backoff * 2);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect().then(
        () => {
          this.#o.log.info(undefined, 'queue notifications restored');
          this.#o.fire();
        },
        (e: unknown) => this.#down(e as Error),
      );
    }, wait);
    this.#retry.unref();
  }

  #startPolling(): void {
    if (this.#poll || this.#closed) return;
    this.#poll = setInterval(() => this.#o.fire(), this.#o.pollMs);
    this.#poll.unref();
  }

  #stopPolling(): void {
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stopPolling();
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}

/** Sends NOTIFY on `channel`, at most one at a time, coalescing the rest. */
export class Announcer {
  readonly #pool: Pool;
  readonly #channel: string;
  readonly #log: ComponentLogger;
  #inFlight = false;
  #again = false;

  constructor(pool: Pool, channel: string, log: ComponentLogger) {
    this.#pool = pool;
    this.#channel = channel;
    this.#log = log;
  }

  announce(): void {
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#inFlight = true;
    this.#pool
      .query('SELECT pg_notify($1, NULL)', [this.#channel])
      .catch((err: unknown) => {
        this.#log.warning(undefined, `cannot announce new mail: ${(err as Error).message}`);
      })
      .finally(() => {
        this.#inFlight = false;
        if (this.#again) {
          this.#again = false;
          this.announce();
        }
      });
  }
}

/** This store's row in `nodes`, kept fresh by a heartbeat. */
export class NodeHeartbeat {
  readonly #pool: Pool;
  readonly #s: string;
  readonly #session: string;
  readonly #node: string;
  readonly #everyMs: number;
  readonly #log: ComponentLogger;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    pool: Pool,
    schema: string,
    session: string,
    node: string,
    everyMs: number,
    log: ComponentLogger,
  ) {
    this.#pool = pool;
    this.#s = schema;
    this.#session = session;
    this.#node = node;
    this.#everyMs = everyMs;
    this.#log = log;
  }

  async start(): Promise<void> {
    await this.#beat();
    this.#timer = setInterval(() => {
      this.#beat().catch((err: unknown) => {
        this.#log.warning(undefined, `queue heartbeat failed: ${(err as Error).message}`);
      });
    }, this.#everyMs);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    await this.#pool.query(
      `INSERT INTO ${this.#s}.nodes (session, node) VALUES ($1, $2)
       ON CONFLICT (session) DO UPDATE SET heartbeat_at = clock_timestamp()`,
      [this.#session, this.#node],
    );
  }

  /** Stops beating and deletes the row (after this store's leases are released). */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#pool.query(`DELETE FROM ${this.#s}.nodes WHERE session = $1`, [this.#session]);
  }
}
