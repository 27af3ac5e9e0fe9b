/**
 * PostgresQueueStore's database connection: the pool every statement goes through,
 * the count of round trips, and the database's availability as this node sees it.
 *
 * Postfix counterpart: none; the nearest is a daemon noticing that the queue file
 * system has gone read-only (cleanup(8) answers `451 4.3.0` until it is back).
 *
 * - Round trips: every statement sent to the server counts one, on the pool and on
 *   the store's dedicated connections (notifications, destination slots), so a
 *   benchmark can report round trips per message (`PostgresQueueStore.roundTrips`).
 * - Availability: a statement that fails because the server cannot be reached
 *   (refused, reset, shutting down, starting up, a connect timeout) marks the
 *   database unavailable: statements fail at once without trying, and a probe
 *   (`SELECT 1`) runs at once and then every `PROBE_MS` until the server answers.
 *   An outage the first probe confirms is logged once, with the reason. The recovery is logged once more, with the
 *   length of the outage, and the `onRestored` listeners run (the store finishes the
 *   writes it had to put off and wakes its queue manager). Pool connections that die
 *   while idle count as the same outage, not as one warning each.
 *
 * Every statement is prepared (named) on first use per connection, so the server
 * parses and plans the claim and the group commit once rather than every time.
 *
 * Does not do: retry a statement (the caller decides: a commit becomes a 451, a
 * removal waits for the recovery), or time out a statement once sent.
 *
 * @module
 */

import type { Pool, QueryResult } from 'pg';
import { QueueStoreError } from '../../errors.js';
import type { ComponentLogger } from '../../log.js';
import { errorMessage } from '../../util/error-message.js';

/** Distinct statements prepared at most (the store has a few dozen). */
const MAX_PREPARED = 100;

/** How often an unavailable database is probed. */
const PROBE_MS = 500;

/** Node socket errors that mean the server could not be reached. */
const SOCKET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server going away or not yet there: class 08 (connection
 * exception), admin/crash shutdown, cannot connect now (starting up or shutting
 * down), too many connections.
 */
function isUnavailableState(code: string): boolean {
  return (
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    code === '53300'
  );
}

/** pg's own errors for a connection that broke or never came up. */
const CLIENT_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Connection refused|the database system is (starting up|shutting down|in recovery mode)/i;

/** Whether `err` says the database could not be reached (rather than refused a statement). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof QueueUnavailableError) return true;
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (SOCKET_CODES.has(code)) return true;
  if (/^[0-9A-Z]{5}$/.test(code)) return isUnavailableState(code);
  return typeof e.message === 'string' && CLIENT_MESSAGES.test(e.message);
}

/** A statement refused because the queue database cannot be reached now. */
export class QueueUnavailableError extends QueueStoreError {
  constructor(reason: string, options: { cause?: unknown } = {}) {
    super(`the queue database is unavailable (${reason})`, undefined, options);
  }
}

/** The store's pool, round-trip counter and availability; see the module header. */
export class QueueDb {
  readonly pool: Pool;
  readonly #unflushed: Pool;
  readonly #log: ComponentLogger;
  #roundTrips = 0;
  #down: { readonly since: number; readonly reason: string; logged: boolean } | undefined;
  #probe: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #restored = new Set<() => void>();
  readonly #names = new Map<string, string>();

  /**
   * @param pool connections whose COMMIT waits for the WAL flush (durable writes)
   * @param unflushed connections opened with `synchronous_commit=off`, for reads and
   *   writes a database crash may undo at the price of repeated work only
   */
  constructor(pool: Pool, unflushed: Pool, log: ComponentLogger) {
    this.pool = pool;
    this.#unflushed = unflushed;
    this.#log = log;
    pool.on('error', (err) => this.failed(err));
    unflushed.on('error', (err) => this.failed(err));
  }

  /** Statements sent to the server since the store opened. */
  get roundTrips(): number {
    return this.#roundTrips;
  }

  /** Whether the database answers, as far as this node knows. */
  get available(): boolean {
    return this.#down === undefined;
  }

  /** Counts statements sent on a connection of the store's own (not the pool). */
  count(n = 1): void {
    this.#roundTrips += n;
  }

  /** Runs one statement on a pooled connection (one round trip); durable once it resolves. */
  query(text: string, values?: unknown[]): Promise<QueryResult> {
    return this.#run(this.pool, text, values);
  }

  /**
   * Runs a read, or a write whose COMMIT need not wait for the WAL flush: a claim, a
   * removal, a heartbeat. A database crash may undo it, which only repeats work (a
   * message claimed or delivered again; at-least-once). The next flushed COMMIT on the
   * server, any node's, makes it durable too.
   */
  unflushed(text: string, values?: unknown[]): Promise<QueryResult> {
    return this.#run(this.#unflushed, text, values);
  }

  async #run(pool: Pool, text: string, values?: unknown[]): Promise<QueryResult> {
    this.#refuseWhileDown();
    this.#roundTrips++;
    try {
      return await pool.query({ name: this.#nameOf(text), text, values: values ?? [] });
    } catch (err) {
      this.failed(err);
      throw err;
    }
  }

  /**
   * The prepared-statement name of `text`: the store's statements are a small fixed
   * set, so each is parsed and planned once per connection rather than per use.
   */
  #nameOf(text: string): string | undefined {
    let name = this.#names.get(text);
    if (name === undefined && this.#names.size < MAX_PREPARED) {
      name = `postern_${this.#names.size}`;
      this.#names.set(text, name);
    }
    return name;
  }

  /** Calls `listener` each time the database answers again after an outage. */
  onRestored(listener: () => void): () => void {
    this.#restored.add(listener);
    return () => this.#restored.delete(listener);
  }

  /**
   * Notes a failed statement or connection: when it means the server cannot be
   * reached, statements are refused until a probe gets an answer. The first probe
   * runs at once, so one connection lost while the server is fine costs
   * milliseconds and no warning; the outage is logged when that probe fails too.
   */
  failed(err: unknown): void {
    if (this.#closed || this.#down || !isConnectionError(err)) return;
    this.#down = {
      since: Date.now(),
      reason: (err as Error)?.message || String(err),
      logged: false,
    };
    this.#scheduleProbe(0);
  }

  #refuseWhileDown(): void {
    if (this.#closed) throw new QueueStoreError('the queue store is closed; open a new one');
    if (this.#down) throw new QueueUnavailableError(this.#down.reason);
  }

  #scheduleProbe(delay: number): void {
    if (this.#probe || this.#closed) return;
    this.#probe = setTimeout(() => {
      this.#probe = undefined;
      this.#roundTrips++;
      this.pool.query('SELECT 1').then(
        () => this.#up(),
        (err: unknown) => {
          const down = this.#down;
          if (down && !down.logged) {
            down.logged = true;
            this.#log.warning(
              undefined,
              `queue database unavailable (${(err as Error)?.message || down.reason}); new mail is refused with 451 4.3.0 and queue writes wait until it answers again`,
            );
          }
          this.#scheduleProbe(PROBE_MS);
        },
      );
    }, delay);
    this.#probe.unref();
  }

  #up(): void {
    const down = this.#down;
    if (!down || this.#closed) return;
    this.#down = undefined;
    if (down.logged) {
      const seconds = ((Date.now() - down.since) / 1000).toFixed(1);
      this.#log.info(undefined, `queue database available again after ${seconds} s`);
    }
    for (const listener of [...this.#restored]) {
      try {
        listener();
      } catch (err) {
        this.#log.warning(undefined, `after the queue database came back: ${errorMessage(err)}`);
      }
    }
  }

  /** Stops probing; the caller ends the pool. */
  close(): void {
    this.#closed = true;
    if (this.#probe) clearTimeout(this.#probe);
    this.#probe = undefined;
  }
}
