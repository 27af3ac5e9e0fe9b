/**
 * Cluster-wide per-destination concurrency for PostgresQueueStore: a destination with
 * a limit of N has N slots, each a PostgreSQL session advisory lock; a node takes a
 * free slot before it opens a delivery to that destination and gives it back after.
 * Three nodes with a limit of 20 then make at most 20 connections to one site, not 60.
 *
 * Postfix counterpart: qmgr(8)'s per-destination concurrency (one qmgr per host, so
 * Postfix needs nothing across hosts).
 *
 * The locks live on one dedicated connection per store, so a node that dies (or loses
 * its connection) gives back every slot it held the moment PostgreSQL notices, with no
 * table to clean up. `pg_try_advisory_lock` never waits: a full destination answers at
 * once and the caller tries later.
 *
 * Does not do: the window feedback of the Scheduler (each node keeps its own window;
 * this only caps the sum), queueing of waiters, or fairness between nodes.
 *
 * @module
 */

import type { Client } from 'pg';
import { QueueStoreError } from '../errors.js';
import { lockKey, type Pg } from './postgres-store-schema.js';
import type { DestinationSlot } from './types.js';

export type { DestinationSlot } from './types.js';

/**
 * The optional capability a QueueStore shared by several nodes offers the
 * QueueManager: take a cluster-wide slot for a destination (e.g. `smtp:example.com`)
 * whose concurrency limit is `limit`, or learn that all are taken (undefined).
 */
export interface DestinationSlots {
  acquireDestinationSlot(destination: string, limit: number): Promise<DestinationSlot | undefined>;
}

/** Whether `store` offers cluster-wide destination slots. */
export function hasDestinationSlots(store: object): store is DestinationSlots {
  return typeof (store as Partial<DestinationSlots>).acquireDestinationSlot === 'function';
}

/** Slots on advisory locks; see the module header. */
export class AdvisorySlots implements DestinationSlots {
  readonly #pg: Pg;
  readonly #url: string;
  readonly #schema: string;
  #client: Promise<Client> | undefined;
  /** Bumped when the connection is lost: slots of an older generation are gone. */
  #generation = 0;
  #closed = false;
  /** Slot keys this store holds now. */
  readonly #held = new Set<string>();
  /** One statement at a time on the connection, in order. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(pg: Pg, url: string, schema: string) {
    this.#pg = pg;
    this.#url = url;
    this.#schema = schema;
  }

  #connection(): Promise<Client> {
    if (this.#closed) return Promise.reject(new QueueStoreError('the queue store is closed'));
    if (!this.#client) {
      const client = new this.#pg.Client({ connectionString: this.#url });
      const lost = () => {
        if (this.#client === connecting) {
          this.#client = undefined;
          this.#generation++;
          this.#held.clear();
        }
      };
      client.on('error', lost);
      client.on('end', lost);
      const connecting: Promise<Client> = client.connect().then(
        () => client,
        (err: unknown) => {
          lost();
          throw err;
        },
      );
      this.#client = connecting;
    }
    return this.#client;
  }

  #serial<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const run = this.#chain.then(
      () => this.#connection().then(fn),
      () => this.#connection().then(fn),
    );
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async acquireDestinationSlot(
    destination: string,
    limit: number,
  ): Promise<DestinationSlot | undefined> {
    if (!(limit >= 1)) return undefined;
    const all = Array.from({ length: limit }, (_, i) =>
      lockKey(this.#schema, 'slot', destination, String(i)),
    );
    const { key, generation } = await this.#serial(async (client) => {
      // Advisory locks are re-entrant within a session: skip the slots this node holds.
      // Chosen and marked inside the serialized step, so two acquisitions on this node
      // can never both take the same slot.
      const keys = all.filter((k) => !this.#held.has(k));
      if (keys.length === 0) return { key: undefined, generation: this.#generation };
      const { rows } = await client.query(
        `SELECT k FROM unnest($1::bigint[]) AS t(k) WHERE pg_try_advisory_lock(k) LIMIT 1`,
        [keys],
      );
      const taken = rows[0]?.k as string | undefined;
      if (taken !== undefined) this.#held.add(taken);
      return { key: taken, generation: this.#generation };
    });
    if (key === undefined) return undefined;
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        this.#held.delete(key);
        // A slot taken on a connection since lost was given back with that session.
        if (generation !== this.#generation || this.#closed) return;
        await this.#serial((client) =>
          client.query('SELECT pg_advisory_unlock($1::bigint)', [key]),
        ).catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    if (client) await (await client.catch(() => undefined))?.end().catch(() => undefined);
  }
}
