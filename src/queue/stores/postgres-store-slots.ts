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
 * A slot given back stays locked for this node for `LINGER_MS`, and the next delivery
 * to the same destination takes it without a round trip; under steady load a node
 * reuses its slots and the lock statements stop. Slots left idle are unlocked together
 * in one statement, and a slot is unlocked rather than kept once this node has held it
 * for `TENURE_MS`, so a node that keeps busy cannot keep the others out for long.
 *
 * When every slot is taken and this node has deliveries to the destination under way,
 * a delivery asking for one waits (up to `HANDOVER_MS`) for the next of them to end and
 * takes its slot over, rather than answering "none" at once: the caller would otherwise
 * ask the database again and again while the slot it needs is about to be given back
 * on this very node. A slot past its tenure is unlocked all the same, and the waiter
 * then asks the database once, with every other node.
 *
 * A destination the database finds full is taken as full for `FULL_MS` by this node's
 * other deliveries there, which then wait without asking, so that a full destination
 * costs one statement per few milliseconds rather than one per waiting delivery per
 * retry; a slot this node frees ends that at once.
 *
 * While the database cannot be reached, no node can count slots: a delivery then goes
 * ahead under this node's own limits (logged once) rather than hold the mail back.
 *
 * Does not do: the window feedback of the Scheduler (each node keeps its own window;
 * this only caps the sum), or queueing of waiters.
 *
 * @module
 */

import type { Client } from 'pg';
import { QueueStoreError } from '../../errors.js';
import type { ComponentLogger } from '../../log.js';
import { errorMessage } from '../../util/error-message.js';
import type { DestinationSlot } from '../types.js';
import { lockKey, type Pg } from './postgres-store-schema.js';

export type { DestinationSlot } from '../types.js';

/** How long a slot given back stays this node's for the next delivery there. */
export const LINGER_MS = 200;
/** How long a node may keep a slot by reusing it before it is unlocked for others. */
export const TENURE_MS = 2000;
/** How long a delivery waits for this node's next slot of a full destination. */
export const HANDOVER_MS = 250;
/**
 * How long a destination the database found full stays full for this node's other
 * deliveries without asking again (unless this node frees one of its slots).
 */
export const FULL_MS = 25;

/**
 * The optional capability a QueueStore shared by several nodes offers the
 * QueueManager: take a cluster-wide slot for a destination (e.g. `smtp:example.com`)
 * whose concurrency limit is `limit`, or learn that all are taken (undefined).
 */
export interface DestinationSlots {
  acquireDestinationSlot(destination: string, limit: number): Promise<DestinationSlot | undefined>;
}

/** What the slots need from the store. */
export interface SlotOptions {
  readonly pg: Pg;
  readonly url: string;
  readonly schema: string;
  readonly log?: ComponentLogger;
  /** Counts a statement sent (round trips). */
  readonly count?: () => void;
}

/** A slot this node has locked. */
interface Lock {
  readonly destination: string;
  readonly key: string;
  /** Its number among the destination's slots (a lower limit retires the higher ones). */
  readonly index: number;
  readonly generation: number;
  /** When this node locked it. */
  readonly since: number;
  /** When it was last given back (while it lingers). */
  idleAt: number;
}

/** A delivery waiting for one of this node's slots of a full destination. */
interface Waiter {
  readonly limit: number;
  /** Called with a slot handed over, or undefined: ask the database (once) instead. */
  readonly wake: (lock: Lock | undefined) => void;
}

/** Slots on advisory locks; see the module header. */
export class AdvisorySlots implements DestinationSlots {
  readonly #o: SlotOptions;
  #client: Promise<Client> | undefined;
  /** Bumped when the connection is lost: slots of an older generation are gone. */
  #generation = 0;
  #closed = false;
  /** Slot keys this store holds now, in use or lingering. */
  readonly #held = new Set<string>();
  /** Slots given back and still locked, by destination. */
  readonly #lingering = new Map<string, Lock[]>();
  /** Slots in use by deliveries now, by destination. */
  readonly #inUse = new Map<string, number>();
  /** Destinations found full, until when this node takes that answer for granted. */
  readonly #fullUntil = new Map<string, number>();
  /** Deliveries waiting for a slot this node will give back, by destination, oldest first. */
  readonly #waiters = new Map<string, Waiter[]>();
  #sweep: NodeJS.Timeout | undefined;
  /** One statement at a time on the connection, in order. */
  #chain: Promise<unknown> = Promise.resolve();
  /** The slot connection is down and that has been logged. */
  #unavailable = false;

  constructor(options: SlotOptions) {
    this.#o = options;
  }

  #connection(): Promise<Client> {
    if (this.#closed) return Promise.reject(new QueueStoreError('the queue store is closed'));
    if (!this.#client) {
      const client = new this.#o.pg.Client({
        connectionString: this.#o.url,
        connectionTimeoutMillis: 10_000,
        keepAlive: true,
      });
      const lost = () => {
        if (this.#client === connecting) {
          this.#client = undefined;
          this.#generation++;
          this.#held.clear();
          this.#lingering.clear();
          this.#fullUntil.clear();
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
    const reused = this.#reuse(destination, limit);
    if (reused) return this.#handle(destination, reused);
    let lock: Lock | undefined;
    try {
      lock = await this.#take(destination, limit);
    } catch (err) {
      if (this.#closed) throw err;
      if (!this.#unavailable) {
        this.#unavailable = true;
        this.#o.log?.warning(
          undefined,
          `cluster-wide destination concurrency unavailable (${errorMessage(err)}); each node applies its own limits until the database answers`,
        );
      }
      return { release: async () => undefined };
    }
    if (this.#unavailable) {
      this.#unavailable = false;
      this.#o.log?.info(undefined, 'cluster-wide destination concurrency restored');
    }
    if (lock) return this.#handle(destination, lock);
    // Full. One of this node's own may have been given back meanwhile, or soon will be.
    const lingering = this.#reuse(destination, limit);
    if (lingering) return this.#handle(destination, lingering);
    if ((this.#inUse.get(destination) ?? 0) === 0) return undefined;
    const handed = await this.#await(destination, limit);
    if (handed) return this.#handle(destination, handed);
    if (handed === null) return undefined;
    const retried = await this.#take(destination, limit).catch(() => undefined);
    return retried ? this.#handle(destination, retried) : undefined;
  }

  /**
   * Waits for a delivery of this node to `destination` to end: resolves with its slot,
   * with undefined when that slot was unlocked instead or the slots are closing (ask the
   * database, once), or with null after HANDOVER_MS.
   */
  #await(destination: string, limit: number): Promise<Lock | undefined | null> {
    return new Promise((resolve) => {
      const list = this.#waiters.get(destination) ?? [];
      this.#waiters.set(destination, list);
      const waiter: Waiter = {
        limit,
        wake: (lock) => {
          clearTimeout(timer);
          resolve(lock);
        },
      };
      const timer = setTimeout(() => {
        const at = list.indexOf(waiter);
        if (at >= 0) list.splice(at, 1);
        if (list.length === 0 && this.#waiters.get(destination) === list)
          this.#waiters.delete(destination);
        resolve(null);
      }, HANDOVER_MS);
      timer.unref();
      list.push(waiter);
    });
  }

  /** The oldest waiter for `destination`, taken off the list. */
  #nextWaiter(destination: string): Waiter | undefined {
    const list = this.#waiters.get(destination);
    const waiter = list?.shift();
    if (list && list.length === 0) this.#waiters.delete(destination);
    return waiter;
  }

  /** A lingering slot of `destination` still valid under `limit`, taken out of the list. */
  #reuse(destination: string, limit: number): Lock | undefined {
    const list = this.#lingering.get(destination);
    if (!list) return undefined;
    while (list.length > 0) {
      const lock = list.pop()!;
      if (lock.generation === this.#generation && lock.index < limit) {
        if (list.length === 0) this.#lingering.delete(destination);
        return lock;
      }
      // Of a lost connection (already gone) or beyond a lowered limit: let it go.
      if (lock.generation === this.#generation) this.#unlock([lock]);
    }
    this.#lingering.delete(destination);
    return undefined;
  }

  #handle(destination: string, lock: Lock): DestinationSlot {
    let released = false;
    this.#inUse.set(destination, (this.#inUse.get(destination) ?? 0) + 1);
    return {
      release: async () => {
        if (released) return;
        released = true;
        const left = (this.#inUse.get(destination) ?? 1) - 1;
        if (left > 0) this.#inUse.set(destination, left);
        else this.#inUse.delete(destination);
        const waiter = this.#nextWaiter(destination);
        // A slot taken on a connection since lost was given back with that session.
        if (lock.generation !== this.#generation || this.#closed) {
          waiter?.wake(undefined);
          return;
        }
        const now = Date.now();
        if (now - lock.since >= TENURE_MS || (waiter && lock.index >= waiter.limit)) {
          await this.#unlock([lock]);
          waiter?.wake(undefined);
          return;
        }
        if (waiter) {
          waiter.wake(lock);
          return;
        }
        lock.idleAt = now;
        const list = this.#lingering.get(destination);
        if (list) list.push(lock);
        else this.#lingering.set(destination, [lock]);
        this.#startSweep();
      },
    };
  }

  /** Takes a free one of the destination's slots on the slot connection. */
  #take(destination: string, limit: number): Promise<Lock | undefined> {
    const all = Array.from({ length: limit }, (_, i) =>
      lockKey(this.#o.schema, 'slot', destination, String(i)),
    );
    return this.#serial(async (client) => {
      // Advisory locks are re-entrant within a session: skip the slots this node holds.
      // Chosen and marked inside the serialized step, so two acquisitions on this node
      // can never both take the same slot.
      const keys = all.filter((k) => !this.#held.has(k));
      if (keys.length === 0) return undefined;
      // Found full a moment ago (perhaps by the acquisition queued just before this one).
      const full = this.#fullUntil.get(destination);
      if (full !== undefined) {
        if (full > Date.now()) return undefined;
        this.#fullUntil.delete(destination);
      }
      this.#o.count?.();
      const { rows } = await client.query({
        name: 'postern_slot_take',
        text: 'SELECT k FROM unnest($1::bigint[]) AS t(k) WHERE pg_try_advisory_lock(k) LIMIT 1',
        values: [keys],
      });
      const key = rows[0]?.k as string | undefined;
      if (key === undefined) {
        this.#fullUntil.set(destination, Date.now() + FULL_MS);
        return undefined;
      }
      this.#held.add(key);
      return {
        destination,
        key,
        index: all.indexOf(key),
        generation: this.#generation,
        since: Date.now(),
        idleAt: 0,
      };
    });
  }

  /** Unlocks `locks` in one statement (best effort: a lost connection unlocked them). */
  async #unlock(locks: readonly Lock[]): Promise<void> {
    const current = locks.filter((l) => l.generation === this.#generation);
    const keys = current.map((l) => l.key);
    for (const k of keys) this.#held.delete(k);
    // A slot this node frees is one the next delivery there may take: ask again.
    for (const l of current) this.#fullUntil.delete(l.destination);
    if (keys.length === 0 || this.#closed) return;
    await this.#serial((client) => {
      this.#o.count?.();
      return client.query({
        name: 'postern_slot_unlock',
        text: 'SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS t(k)',
        values: [keys],
      });
    }).catch(() => undefined);
  }

  #startSweep(): void {
    if (this.#sweep || this.#closed) return;
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      const due = Date.now() - LINGER_MS;
      const idle: Lock[] = [];
      for (const [destination, list] of this.#lingering) {
        const keep = list.filter((l) => l.idleAt > due);
        idle.push(...list.filter((l) => l.idleAt <= due));
        if (keep.length > 0) this.#lingering.set(destination, keep);
        else this.#lingering.delete(destination);
      }
      void this.#unlock(idle);
      if (this.#lingering.size > 0) this.#startSweep();
    }, LINGER_MS);
    this.#sweep.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweep) clearTimeout(this.#sweep);
    this.#sweep = undefined;
    this.#lingering.clear();
    for (const list of this.#waiters.values()) for (const w of list) w.wake(undefined);
    this.#waiters.clear();
    const client = this.#client;
    this.#client = undefined;
    if (client) await (await client.catch(() => undefined))?.end().catch(() => undefined);
  }
}
