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
 * the notification lock; new mail is announced to peers only when this node has not
 * claimed it itself within ANNOUNCE_MS. Local listeners are called at once by the
 * store itself.
 *
 * The listener runs on a dedicated connection (LISTEN needs a session; a pooled one
 * would lose it). When that connection fails, listeners are called every `pollMs`
 * while it reconnects with backoff (at once when the store sees the database answer
 * again), and once more when it is back (announcements made meanwhile were lost). The
 * loss and the recovery are logged once each, not once per attempt.
 *
 * Does not do: guarantee delivery of notifications (they are hints; the QueueManager's
 * periodic scan remains the safety net).
 *
 * @module
 */

import type { Client } from 'pg';
import type { ComponentLogger } from '../../log.js';
import type { QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { isConnectionError, type QueueDb } from './postgres-store-db.js';
import type { Pg } from './postgres-store-schema.js';

const MAX_BACKOFF_MS = 10_000;

export interface ListenerOptions {
  readonly pg: Pg;
  readonly url: string;
  readonly channel: string;
  readonly pollMs: number;
  /** Listen at all (false: poll only, e.g. behind a transaction-mode pooler). */
  readonly listen: boolean;
  readonly log: ComponentLogger;
  /** Counts the LISTEN statement as a round trip. */
  readonly count: () => void;
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
  /** The connection is down and that has been logged. */
  #lost = false;

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
    const client = new this.#o.pg.Client({
      connectionString: this.#o.url,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    });
    client.on('error', (err) => this.#down(err));
    client.on('end', () => this.#down(new Error('connection closed')));
    client.on('notification', () => this.#o.fire());
    await client.connect();
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#o.count();
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
    if (!this.#lost) {
      this.#lost = true;
      this.#o.log.warning(
        undefined,
        `queue notifications lost (${err.message}); polling every ${this.#o.pollMs} ms while reconnecting`,
      );
    }
    this.#startPolling();
    const wait = this.#backoff;
    this.#backoff = Math.min(MAX_BACKOFF_MS, this.#backoff * 2);
    this.#retry = setTimeout(() => this.#reconnect(), wait);
    this.#retry.unref();
  }

  #reconnect(): void {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#connect().then(
      () => {
        if (this.#closed) return;
        this.#lost = false;
        this.#o.log.info(undefined, 'queue notifications restored');
        this.#o.fire();
      },
      (e: unknown) => this.#down(e as Error),
    );
  }

  /** The database answers again: reconnect now rather than at the end of the backoff. */
  reconnectNow(): void {
    if (this.#closed || !this.#retry) return;
    this.#reconnect();
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

/** How long new mail may wait for this node's own claim before peers hear of it. */
export const ANNOUNCE_MS = 250;

/**
 * Sends NOTIFY on `channel`, at most one in flight (calls meanwhile are gathered into
 * one more). A queue operation announces at once. New mail is announced only if this
 * node does not claim it itself within ANNOUNCE_MS (its queue manager is busy, or it
 * has none): under load each node delivers what it accepts, and a NOTIFY that sends
 * every peer to claim nothing would cost a round trip per peer per commit.
 */
export class Announcer {
  readonly #db: QueueDb;
  readonly #channel: string;
  readonly #log: ComponentLogger;
  #inFlight = false;
  #again = false;
  /** Committed here and not yet claimed here. */
  #unclaimed = new Set<QueueId>();
  #timer: NodeJS.Timeout | undefined;

  constructor(db: QueueDb, channel: string, log: ComponentLogger) {
    this.#db = db;
    this.#channel = channel;
    this.#log = log;
  }

  /** Announces at once (a queue operation made mail due). */
  announce(): void {
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#inFlight = true;
    this.#db
      .unflushed('SELECT pg_notify($1, NULL)', [this.#channel])
      .catch((err: unknown) => {
        // An outage is logged once by the database connection, not here per message.
        if (!isConnectionError(err))
          this.#log.warning(undefined, `cannot announce new mail: ${errorMessage(err)}`);
      })
      .finally(() => {
        this.#inFlight = false;
        if (this.#again) {
          this.#again = false;
          this.announce();
        }
      });
  }

  /** New mail was committed here; `claimer`: this node has a queue manager listening. */
  committed(queueId: QueueId, claimer: boolean): void {
    if (!claimer) {
      this.announce();
      return;
    }
    this.#unclaimed.add(queueId);
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const left = this.#unclaimed.size;
      this.#unclaimed = new Set();
      if (left > 0) this.announce();
    }, ANNOUNCE_MS);
    this.#timer.unref();
  }

  /** This node claimed these messages: no peer needs to hear of them. */
  claimed(queueIds: Iterable<QueueId>): void {
    if (this.#unclaimed.size === 0) return;
    for (const id of queueIds) this.#unclaimed.delete(id);
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unclaimed.clear();
  }
}

/** What the heartbeat needs. */
export interface HeartbeatOptions {
  readonly db: QueueDb;
  readonly schema: string;
  readonly session: string;
  readonly node: string;
  readonly everyMs: number;
  readonly nodeTimeoutMs: number;
  /** The store's clock (lease expiry). */
  readonly now: () => number;
  readonly log: ComponentLogger;
  /** Some node's leases can be taken over now (expired, or their node died). */
  readonly orphans: () => void;
}

/**
 * This store's row in `nodes`, kept fresh by a heartbeat. The same statement looks
 * for mail that can be taken over — leases expired by the clock, or held by another
 * node whose heartbeat is older than `nodeTimeoutMs` — and says so (`orphans`), so
 * the queue manager claims it within one heartbeat without waiting for new mail or a
 * queue run.
 */
export class NodeHeartbeat {
  readonly #o: HeartbeatOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HeartbeatOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    await this.#beat();
    this.#timer = setInterval(() => {
      this.#beat().catch((err: unknown) => {
        if (!isConnectionError(err))
          this.#o.log.warning(undefined, `queue heartbeat failed: ${errorMessage(err)}`);
      });
    }, this.#o.everyMs);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    const s = this.#o.schema;
    const { rows } = await this.#o.db.unflushed(
      `WITH beat AS (
         INSERT INTO ${s}.nodes (session, node) VALUES ($1, $2)
         ON CONFLICT (session) DO UPDATE SET heartbeat_at = clock_timestamp()
         RETURNING session)
       SELECT (SELECT count(*) FROM beat) AS beat, EXISTS (
         SELECT 1 FROM ${s}.messages
         WHERE state = 'active' AND (lease_expires <= $3 OR lease_session IN (
           SELECT session FROM ${s}.nodes WHERE session <> $1
             AND heartbeat_at < clock_timestamp() - make_interval(secs => $4::double precision / 1000)))
       ) AS orphans`,
      [this.#o.session, this.#o.node, this.#o.now(), this.#o.nodeTimeoutMs],
    );
    if (rows[0]?.orphans === true) this.#o.orphans();
  }

  /** Stops beating (the row stays, and ages until peers take over what it held). */
  cancel(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops beating and deletes the row (after this store's leases are released). */
  async stop(): Promise<void> {
    this.cancel();
    await this.#o.db.query(`DELETE FROM ${this.#o.schema}.nodes WHERE session = $1`, [
      this.#o.session,
    ]);
  }
}
