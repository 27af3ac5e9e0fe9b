/**
 * PostgresQueueStore: a QueueStore in PostgreSQL, shared by several Postern nodes.
 *
 * Postfix counterpart: the queue directories and qmgr(8), for a cluster rather than
 * one host: envelope and per-recipient state in tables, content in bytea chunks
 * (postgres-store-schema.ts has the layout).
 *
 * - Durability: a transaction COMMIT is the durability point. `commit()` resolves
 *   after the COMMIT of the statement that makes the message visible, which it shares
 *   with the other messages committing at the same moment (group commit,
 *   postgres-store-commit.ts); `bounced` and `deferred` outcomes and queue operations
 *   are committed before their call resolves; `sent` marks are lazy, and releases and
 *   removals are gathered into batches (postgres-store-writes.ts).
 * - Round trips: on the path of a small message, one share of a group commit (which
 *   hands new mail straight to this node's queue manager when it listens,
 *   postgres-store-handoff.ts; otherwise one share of a claim, which brings the
 *   recipients and the content along), and its removal after delivery rides along
 *   with the next group commit (or, when no mail comes in, goes in a batched removal
 *   of its own); `roundTrips` counts every statement sent. A group commit waits up to 2 ms for
 *   the other messages being written on this node, so that a few sessions finishing
 *   together share one COMMIT.
 * - Work sharing: nodes claim with `FOR UPDATE SKIP LOCKED` under a lease (owner,
 *   token, expiry, holder session); every write under a lease is fenced by the token
 *   in its WHERE clause and fails with LeaseLostError once the lease is gone. A node's
 *   leases are taken over when they expire or when its heartbeat in `nodes` stops
 *   for `nodeTimeoutMs`: every heartbeat also looks for such mail (and for due mail
 *   nobody claims) and wakes this node's queue manager, so a dead node's mail moves
 *   within one heartbeat of its timeout. A node restarted under the same `node` name
 *   releases its old leases at open (postgres-store-open.ts).
 * - Database outages: refused, reset or restarting servers are noticed and logged
 *   once (postgres-store-db.ts); commits fail (the client gets 451 4.3.0), releases
 *   and removals wait, and when the database answers again the store finishes them,
 *   hands back leases whose claim answer was lost, reconnects its LISTEN connection
 *   and wakes the queue manager. Nothing needs a restart.
 * - Notifications: LISTEN/NOTIFY with polling as the fallback.
 * - Cluster-wide per-destination concurrency: `acquireDestinationSlot()`
 *   (postgres-store-slots.ts).
 * - Schema: created and migrated at `open()` (unless `migrate: false`), or by
 *   `postern db migrate`.
 * - Options: postgres-store-options.ts.
 *
 * Lease expiry is judged by the `clock` option on the node, so the nodes' clocks must
 * agree (NTP); node liveness is judged by the database's clock.
 *
 * Does not do: run without the `pg` package (install it: `npm install pg`), create
 * the database, or keep a connection per message.
 *
 * SECURITY: the database is trusted with the mail; use a role that owns only the
 * queue schema, and TLS (`?sslmode=require` in the URL) when it is not on loopback.
 * Values are always bind parameters; the schema name is validated and quoted.
 *
 * @module
 */

import { Readable } from 'node:stream';
import { builtin } from '../../builtin.js';
import { systemClock } from '../../clock.js';
import { ConfigError, QueueStoreError } from '../../errors.js';
import { type ComponentLogger, silentLogger } from '../../log.js';
import type { Clock, QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import type {
  ClaimedMessage,
  ClaimOptions,
  Lease,
  MessageWriter,
  QueueCounts,
  QueueEntry,
  QueueNode,
  QueueSelection,
  QueueState,
  QueueStore,
  QueueSummary,
  RecipientOutcome,
  ReleaseTarget,
} from '../types.js';
import type { CommitItem } from './postgres-store-commit.js';
import {
  checkNewQueueId,
  contentStream,
  DEFAULT_CHUNK_SIZE,
  PgMessageWriter,
} from './postgres-store-content.js';
import type { QueueDb } from './postgres-store-db.js';
import { type OpenedStore, openPostgresStore } from './postgres-store-open.js';
import {
  DEFAULT_NODE_TIMEOUT_MS,
  type PostgresQueueStoreOptions,
} from './postgres-store-options.js';
import { checkSchemaName } from './postgres-store-schema.js';
import type { DestinationSlot, DestinationSlots } from './postgres-store-slots.js';

export {
  DEFAULT_NODE_TIMEOUT_MS,
  type PostgresQueueStoreOptions,
} from './postgres-store-options.js';

import { AvailableListeners } from './available-listeners.js';

/**
 * A QueueStore in PostgreSQL that any number of nodes share (see the module header for
 * durability, leases, takeover and outages). Needs `npm install pg`.
 *
 * @example
 * ```ts
 * const store = new PostgresQueueStore({ url: 'postgres://postern@db.internal/mail', node: 'mx1' });
 * // start() opens it: the schema is created or migrated then, unless `migrate: false`.
 * const mta = new Mta({ nodeId: 'mx1', queueStore: store });
 * await mta.start();
 * ```
 */
export class PostgresQueueStore implements QueueStore, DestinationSlots {
  /** The database URL it connects to. */
  readonly url: string;
  /** The schema holding its tables. */
  readonly schema: string;
  readonly #options: PostgresQueueStoreOptions;
  readonly #clock: Clock;
  readonly #log: ComponentLogger;
  readonly #session = builtin('crypto').randomUUID();
  readonly #available: AvailableListeners;
  /** Commits that went straight to this node's queue manager, until announced. */
  readonly #handedOff = new Set<QueueId>();
  /** Messages being written (created, not yet committed or aborted): commits on their way. */
  #writing = 0;
  #state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  /** Set as soon as open() connects, so that round trips count from then. */
  #db: QueueDb | undefined;
  /** The parts doing the work (postgres-store-open.ts), once open. */
  #parts: OpenedStore | undefined;

  constructor(options: PostgresQueueStoreOptions) {
    if (typeof options.url !== 'string' || !/^postgres(ql)?:\/\//.test(options.url)) {
      throw new ConfigError(
        'queueStore.url: expected a URL like "postgres://user:password@host:5432/database"',
        'queueStore.url',
      );
    }
    this.url = options.url;
    this.schema = checkSchemaName(options.schema ?? 'postern');
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).for('queue');
    this.#available = new AvailableListeners(queueMicrotask, this.#log);
  }

  async open(): Promise<void> {
    if (this.#state === 'open') return;
    if (this.#state !== 'new')
      throw new QueueStoreError(`this PostgresQueueStore is ${this.#state}; make a new one`);
    this.#state = 'opening';
    try {
      // On failure it has stopped whatever it started.
      this.#parts = await openPostgresStore({
        url: this.url,
        schema: this.schema,
        options: this.#options,
        session: this.#session,
        log: this.#log,
        now: () => this.#clock.now(),
        writing: () => this.#writing,
        wake: () => this.#wake(),
        connected: (db) => {
          this.#db = db;
        },
      });
      this.#parts.db.onRestored(() => void this.#recover());
      this.#wake();
    } catch (err) {
      this.#state = 'closed';
      throw err;
    }
    this.#state = 'open';
  }

  get #nodeTimeoutMs(): number {
    return this.#options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
  }

  /** The database answers again: finish what waited, then wake the queue manager. */
  async #recover(): Promise<void> {
    const parts = this.#parts!;
    parts.listener.reconnectNow();
    try {
      const { done, returned } = await parts.writes.recover(
        this.#session,
        parts.claimer.waitingTokens(),
      );
      if (done > 0 || returned > 0)
        this.#log.info(
          undefined,
          `after the queue database outage: ${done} queue write${done === 1 ? '' : 's'} done that had to wait, ${returned} message${returned === 1 ? '' : 's'} whose claim was lost handed back to the queue`,
        );
    } catch (err) {
      // Down again: the next recovery finishes it.
      this.#db?.failed(err);
    }
    if (this.#state === 'open') this.#wake();
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') {
      if (this.#state === 'new') this.#state = 'closed';
      return;
    }
    this.#state = 'closed';
    const parts = this.#parts!;
    try {
      // Lazy sent marks and writes put off are written before the leases go.
      await parts.writes.flush();
      // Leases still held lapse: give the mail back to the cluster now.
      await parts.db.query(
        `UPDATE ${parts.q}.messages SET state = 'incoming', lease_owner = NULL, lease_token = NULL,
           lease_expires = NULL, lease_session = NULL
         WHERE state = 'active' AND lease_session = $1`,
        [this.#session],
      );
      await parts.heartbeat.stop();
    } catch (err) {
      parts.heartbeat.cancel();
      this.#log.warning(undefined, `closing the queue: ${errorMessage(err)}`);
    }
    // Handed-off mail not yet taken is leased to this session: close gives it back.
    parts.claimer.close();
    parts.announcer.close();
    parts.writes.close();
    parts.db.close();
    await parts.listener.close();
    await parts.slots.close();
    await parts.pool.end().catch(() => undefined);
    await parts.unflushedPool.end().catch(() => undefined);
  }

  #assertOpen(): void {
    if (this.#state === 'open') return;
    if (this.#state === 'new' || this.#state === 'opening')
      throw new QueueStoreError('the queue store is not open; call open() first');
    throw new QueueStoreError('the queue store is closed; open a new one');
  }

  get #p(): QueueDb {
    this.#assertOpen();
    return this.#db!;
  }

  /** Statements sent to the database since open (round trips), for benchmarks and metrics. */
  get roundTrips(): number {
    return this.#db?.roundTrips ?? 0;
  }

  /**
   * Starts a message. No round trip: a queue ID is unique by construction (Postern
   * makes it), and the commit refuses one that exists all the same.
   */
  async create(queueId: QueueId): Promise<MessageWriter> {
    const db = this.#p;
    checkNewQueueId(queueId);
    return new PgMessageWriter(
      {
        pool: db,
        schema: this.#parts!.q,
        chunkSize: this.#options.chunkSize ?? DEFAULT_CHUNK_SIZE,
        announce: () => this.#announceNewMail(queueId),
        commit: (item) => this.#commit(item),
        assertOpen: () => this.#assertOpen(),
        writing: (delta) => {
          this.#writing += delta;
        },
      },
      queueId,
    );
  }

  async claim(options: ClaimOptions): Promise<ClaimedMessage[]> {
    this.#assertOpen();
    if (!(options.limit > 0)) return [];
    return this.#parts!.claimer.claim(options);
  }

  async renew(lease: Lease, expiresAt: number): Promise<Lease> {
    this.#assertOpen();
    return this.#parts!.writes.renew(lease, expiresAt);
  }

  openContent(queueId: QueueId): Readable {
    const held = this.#state === 'open' ? this.#parts?.writes.held.content(queueId) : undefined;
    // A fresh stream of the bytes that came with the claim, as often as asked.
    if (held) return Readable.from(held.length > 0 ? [held] : []);
    return contentStream(this.#db!, this.#parts?.q ?? '', queueId, () => this.#state === 'open');
  }

  async recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    this.#assertOpen();
    await this.#parts!.writes.recordOutcomes(lease, outcomes);
  }

  async release(lease: Lease, target: ReleaseTarget): Promise<void> {
    this.#assertOpen();
    await this.#parts!.writes.release(lease, target);
    if (target.state === 'corrupt')
      this.#log.warning(lease.queueId, `moved to corrupt queue: ${target.reason}`);
    if (target.state === 'deferred') {
      this.#parts?.claimer.deferred(target.dueAt);
      this.#available.notify();
    }
  }

  async remove(lease: Lease): Promise<void> {
    this.#assertOpen();
    await this.#parts!.writes.remove(lease);
  }

  async counts(): Promise<QueueCounts> {
    this.#assertOpen();
    return this.#parts!.ops.counts();
  }

  async list(
    options: { states?: readonly QueueState[]; limit?: number } = {},
  ): Promise<QueueEntry[]> {
    this.#assertOpen();
    return this.#parts!.ops.list(options);
  }

  /**
   * The earliest deferred due time. Right after a claim (when the queue manager asks)
   * it is the one the claim brought back, lowered by this node's releases since; else
   * a query.
   */
  async nextDueTime(): Promise<number | undefined> {
    this.#assertOpen();
    const known = this.#parts!.claimer.nextDue();
    if (known) return known.at;
    const at = await this.#parts!.ops.nextDueTime();
    this.#parts!.claimer.learnt(at);
    return at;
  }

  async summaries(options: { states?: readonly QueueState[] } = {}): Promise<QueueSummary[]> {
    this.#assertOpen();
    return this.#parts!.ops.summaries(options);
  }

  /** Every node sharing this queue, its heartbeat age and the mail it holds under leases. */
  async nodes(): Promise<QueueNode[]> {
    this.#assertOpen();
    return this.#parts!.ops.nodes(this.#nodeTimeoutMs);
  }

  async hold(selection: QueueSelection, reason?: string): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#revoked(await this.#parts!.ops.hold(selection, reason));
  }

  async unhold(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#announceIf(await this.#parts!.ops.unhold(selection, this.#clock.now()));
  }

  async delete(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#revoked(await this.#parts!.ops.delete(selection));
  }

  async requeue(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#announceIf(this.#revoked(await this.#parts!.ops.requeue(selection)));
  }

  async expedite(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#announceIf(await this.#parts!.ops.expedite(selection, this.#clock.now()));
  }

  /**
   * Takes one of `limit` cluster-wide slots for `destination`, or resolves undefined
   * when every node together already uses them all (see postgres-store-slots.ts).
   */
  acquireDestinationSlot(destination: string, limit: number): Promise<DestinationSlot | undefined> {
    this.#assertOpen();
    return this.#parts!.slots.acquireDestinationSlot(destination, limit);
  }

  onAvailable(listener: () => void): () => void {
    return this.#available.add(listener);
  }

  /** Messages a queue operation took from their holders: their content is not served. */
  #revoked(ids: QueueId[]): QueueId[] {
    this.#parts?.writes.held.dropContent(ids);
    return ids;
  }

  #announceIf(ids: QueueId[]): QueueId[] {
    if (ids.length > 0) {
      // Due now, whatever the claim saw.
      this.#parts?.claimer.deferred(undefined);
      this.#available.notify();
      this.#parts?.announcer.announce();
    }
    return ids;
  }

  /** Commits a message with others; new mail goes straight to this node's queue manager. */
  async #commit(item: CommitItem): Promise<void> {
    const { claimer, commits } = this.#parts!;
    const prepared = claimer.prepare(item, this.#available.any);
    await commits.submit(prepared);
    if (claimer.committed(prepared)) this.#handedOff.add(item.queueId);
  }

  /** New mail: this node's listeners at once, the other nodes if this one does not claim it. */
  #announceNewMail(queueId: QueueId): void {
    const handed = this.#handedOff.delete(queueId);
    this.#available.notify();
    if (!handed) this.#parts?.announcer.committed(queueId, this.#available.any);
  }

  /** Something other than this node's new mail may be claimable: the next claim asks. */
  #wake(): void {
    this.#parts?.claimer.wanted();
    this.#available.notify();
  }
}
