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
 *   recipients and the content along) and one share of a batched removal;
 *   `roundTrips` counts every statement sent. A group commit waits up to 2 ms for
 *   the other messages being written on this node, so that a few sessions finishing
 *   together share one COMMIT.
 * - Work sharing: nodes claim with `FOR UPDATE SKIP LOCKED` under a lease (owner,
 *   token, expiry, holder session); every write under a lease is fenced by the token
 *   in its WHERE clause and fails with LeaseLostError once the lease is gone. A node's
 *   leases are taken over when they expire or when its heartbeat in `nodes` stops
 *   for `nodeTimeoutMs`: every heartbeat also looks for such mail (and for due mail
 *   nobody claims) and wakes this node's queue manager, so a dead node's mail moves
 *   within one heartbeat of its timeout. A node restarted under the same `node` name
 *   releases its old leases at open.
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

import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pool } from 'pg';
import { systemClock } from '../../clock.js';
import { ConfigError, QueueStoreError } from '../../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../../log.js';
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
import { StatementBatcher } from './postgres-store-batch.js';
import { Claimer } from './postgres-store-claimer.js';
import { type CommitItem, commitBatch } from './postgres-store-commit.js';
import {
  checkNewQueueId,
  contentStream,
  DEFAULT_CHUNK_SIZE,
  PgMessageWriter,
} from './postgres-store-content.js';
import { QueueDb } from './postgres-store-db.js';
import { Announcer, AvailabilityListener, NodeHeartbeat } from './postgres-store-notify.js';
import { QueueOperations } from './postgres-store-operations.js';
import { LeaseWriter } from './postgres-store-outcomes.js';
import { channelOf, checkSchemaName, loadPg, readySchema } from './postgres-store-schema.js';
import {
  AdvisorySlots,
  type DestinationSlot,
  type DestinationSlots,
} from './postgres-store-slots.js';
import { LeaseWrites } from './postgres-store-writes.js';

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

/** Rows left `writing` this long belong to a writer that died. */
const ABANDONED_WRITE = '1 day';
/** Claimed content kept in memory for all the messages this node holds. */
const CONTENT_BUDGET = 32 * 1024 * 1024;
/** Most messages and content bytes in one group commit. */
const COMMIT_BATCH = 100;
const COMMIT_BYTES = 4 * 1024 * 1024;
/**
 * How long a group commit waits for the messages whose transaction is open (a
 * recipient accepted, not yet committed or aborted): a few sessions committing at
 * nearly the same time share one COMMIT and its WAL flush.
 */
const COMMIT_EXPECTED_MS = 2;
/** The default of `nodeTimeoutMs`. */
export const DEFAULT_NODE_TIMEOUT_MS = 30_000;
/** How long a connection attempt may take before it counts as an outage. */
const CONNECT_TIMEOUT_MS = 10_000;

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
  readonly #session = randomUUID();
  readonly #listeners = new Set<() => void>();
  /** Commits that went straight to this node's queue manager, until announced. */
  readonly #handedOff = new Set<QueueId>();
  #notifyPending = false;
  /** Messages being written (created, not yet committed or aborted): commits on their way. */
  #writing = 0;
  #state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  #pool: Pool | undefined;
  #unflushedPool: Pool | undefined;
  #db: QueueDb | undefined;
  #q = '';
  #writer: LeaseWriter | undefined;
  #writes: LeaseWrites | undefined;
  #commits: StatementBatcher<CommitItem, undefined> | undefined;
  #ops: QueueOperations | undefined;
  #listener: AvailabilityListener | undefined;
  #announcer: Announcer | undefined;
  #heartbeat: NodeHeartbeat | undefined;
  #slots: AdvisorySlots | undefined;
  #claimer: Claimer | undefined;

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
  }

  async open(): Promise<void> {
    if (this.#state === 'open') return;
    if (this.#state !== 'new')
      throw new QueueStoreError(`this PostgresQueueStore is ${this.#state}; make a new one`);
    this.#state = 'opening';
    try {
      await this.#open();
    } catch (err) {
      this.#state = 'closed';
      this.#stopTimers();
      await this.#listener?.close();
      await this.#pool?.end().catch(() => undefined);
      await this.#unflushedPool?.end().catch(() => undefined);
      throw err;
    }
    this.#state = 'open';
  }

  async #open(): Promise<void> {
    const pg = await loadPg();
    const o = this.#options;
    const size = o.poolSize ?? 10;
    const settings = {
      connectionString: this.url,
      application_name: `postern ${o.node ?? ''}`.trim(),
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    };
    // Commits and durable outcomes wait for the WAL flush; claims, removals, heartbeats
    // and reads need not (postgres-store-db.ts), and should not queue behind them.
    const pool = new pg.Pool({ ...settings, max: Math.max(2, Math.ceil(size / 3)) });
    const unflushed = new pg.Pool({
      ...settings,
      max: size,
      options: '-c synchronous_commit=off',
    });
    this.#pool = pool;
    this.#unflushedPool = unflushed;
    // Also takes the errors of idle connections, which must not crash the process.
    const db = new QueueDb(pool, unflushed, this.#log);
    this.#db = db;
    const q = pg.escapeIdentifier(this.schema);
    this.#q = q;
    const applied = await readySchema(pool, this.schema, pg, o.migrate !== false);
    if (applied !== undefined)
      this.#log.info(undefined, `queue schema "${this.schema}" migrated to version ${applied}`);
    const now = () => this.#clock.now();
    this.#writer = new LeaseWriter(db, q, now);
    this.#writes = new LeaseWrites({
      db,
      writer: this.#writer,
      session: this.#session,
      now,
      log: this.#log,
      contentBudget: CONTENT_BUDGET,
    });
    this.#commits = new StatementBatcher({
      run: (items) => commitBatch(db, q, this.#session, items),
      maxItems: COMMIT_BATCH,
      weight: (item) => item.last?.data.length ?? 0,
      maxWeight: COMMIT_BYTES,
      expected: () => this.#writing,
      expectedMs: COMMIT_EXPECTED_MS,
    });
    this.#ops = new QueueOperations(db, q);
    this.#announcer = new Announcer(db, channelOf(this.schema), this.#log);
    this.#heartbeat = new NodeHeartbeat({
      db,
      schema: q,
      session: this.#session,
      node: o.node ?? `pid-${process.pid}`,
      everyMs: o.heartbeatMs ?? 5000,
      nodeTimeoutMs: this.#nodeTimeoutMs,
      now,
      log: this.#log,
      orphans: () => this.#wake(),
    });
    await this.#heartbeat.start();
    await db.query(
      `DELETE FROM ${q}.messages WHERE state = 'writing' AND created_at < now() - interval '${ABANDONED_WRITE}'`,
    );
    await db.query(
      `DELETE FROM ${q}.nodes n WHERE heartbeat_at < now() - interval '${ABANDONED_WRITE}'
       AND NOT EXISTS (SELECT 1 FROM ${q}.messages m WHERE m.state = 'active' AND m.lease_session = n.session)`,
    );
    if (o.node !== undefined) {
      // Mail this node held when it stopped or crashed is claimable at once.
      await db.query(
        `UPDATE ${q}.messages SET state = 'incoming', lease_owner = NULL, lease_token = NULL,
           lease_expires = NULL, lease_session = NULL
         WHERE state = 'active' AND lease_owner = $1 AND lease_session <> $2`,
        [o.node, this.#session],
      );
    }
    this.#listener = new AvailabilityListener({
      pg,
      url: this.url,
      channel: channelOf(this.schema),
      pollMs: o.pollMs ?? 1000,
      listen: o.listen !== false,
      log: this.#log,
      count: () => db.count(),
      // Nothing is claimable while the database is away; its return wakes us anyway.
      fire: () => {
        if (db.available) this.#wake();
      },
    });
    await this.#listener.start();
    this.#slots = new AdvisorySlots({
      pg,
      url: this.url,
      schema: this.schema,
      log: this.#log,
      count: () => db.count(),
    });
    this.#claimer = new Claimer({
      db,
      schema: q,
      session: this.#session,
      nodeTimeoutMs: this.#nodeTimeoutMs,
      writes: this.#writes,
      writer: this.#writer,
      announcer: this.#announcer,
      now,
      wake: () => this.#wake(),
    });
    db.onRestored(() => void this.#recover());
    this.#wake();
  }

  get #nodeTimeoutMs(): number {
    return this.#options.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
  }

  /** The database answers again: finish what waited, then wake the queue manager. */
  async #recover(): Promise<void> {
    this.#listener?.reconnectNow();
    try {
      const { done, returned } = await this.#writes!.recover(
        this.#session,
        this.#claimer!.waitingTokens(),
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

  #stopTimers(): void {
    // Handed-off mail not yet taken is leased to this session: close gives it back.
    this.#claimer?.close();
    this.#announcer?.close();
    this.#writes?.close();
    this.#db?.close();
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') {
      if (this.#state === 'new') this.#state = 'closed';
      return;
    }
    this.#state = 'closed';
    const pool = this.#pool!;
    try {
      // Lazy sent marks and writes put off are written before the leases go.
      await this.#writes!.flush();
      // Leases still held lapse: give the mail back to the cluster now.
      await this.#db!.query(
        `UPDATE ${this.#q}.messages SET state = 'incoming', lease_owner = NULL, lease_token = NULL,
           lease_expires = NULL, lease_session = NULL
         WHERE state = 'active' AND lease_session = $1`,
        [this.#session],
      );
      await this.#heartbeat?.stop();
    } catch (err) {
      this.#heartbeat?.cancel();
      this.#log.warning(undefined, `closing the queue: ${errorMessage(err)}`);
    }
    this.#stopTimers();
    await this.#listener?.close();
    await this.#slots?.close();
    await pool.end().catch(() => undefined);
    await this.#unflushedPool?.end().catch(() => undefined);
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
        schema: this.#q,
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
    return this.#claimer!.claim(options);
  }

  async renew(lease: Lease, expiresAt: number): Promise<Lease> {
    this.#assertOpen();
    return this.#writes!.renew(lease, expiresAt);
  }

  openContent(queueId: QueueId): Readable {
    const held = this.#state === 'open' ? this.#writes?.held.content(queueId) : undefined;
    // A fresh stream of the bytes that came with the claim, as often as asked.
    if (held) return Readable.from(held.length > 0 ? [held] : []);
    return contentStream(this.#db!, this.#q, queueId, () => this.#state === 'open');
  }

  async recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    this.#assertOpen();
    await this.#writes!.recordOutcomes(lease, outcomes);
  }

  async release(lease: Lease, target: ReleaseTarget): Promise<void> {
    this.#assertOpen();
    await this.#writes!.release(lease, target);
    if (target.state === 'corrupt')
      this.#log.warning(lease.queueId, `moved to corrupt queue: ${target.reason}`);
    if (target.state === 'deferred') {
      this.#claimer?.deferred(target.dueAt);
      this.#notifyLocal();
    }
  }

  async remove(lease: Lease): Promise<void> {
    this.#assertOpen();
    await this.#writes!.remove(lease);
  }

  async counts(): Promise<QueueCounts> {
    this.#assertOpen();
    return this.#ops!.counts();
  }

  async list(
    options: { states?: readonly QueueState[]; limit?: number } = {},
  ): Promise<QueueEntry[]> {
    this.#assertOpen();
    return this.#ops!.list(options);
  }

  /**
   * The earliest deferred due time. Right after a claim (when the queue manager asks)
   * it is the one the claim brought back, lowered by this node's releases since; else
   * a query.
   */
  async nextDueTime(): Promise<number | undefined> {
    this.#assertOpen();
    const known = this.#claimer!.nextDue();
    if (known) return known.at;
    const at = await this.#ops!.nextDueTime();
    this.#claimer!.learnt(at);
    return at;
  }

  async summaries(options: { states?: readonly QueueState[] } = {}): Promise<QueueSummary[]> {
    this.#assertOpen();
    return this.#ops!.summaries(options);
  }

  /** Every node sharing this queue, its heartbeat age and the mail it holds under leases. */
  async nodes(): Promise<QueueNode[]> {
    this.#assertOpen();
    return this.#ops!.nodes(this.#nodeTimeoutMs);
  }

  async hold(selection: QueueSelection, reason?: string): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#revoked(await this.#ops!.hold(selection, reason));
  }

  async unhold(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#announceIf(await this.#ops!.unhold(selection, this.#clock.now()));
  }

  async delete(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#revoked(await this.#ops!.delete(selection));
  }

  async requeue(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#announceIf(this.#revoked(await this.#ops!.requeue(selection)));
  }

  async expedite(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#announceIf(await this.#ops!.expedite(selection, this.#clock.now()));
  }

  /**
   * Takes one of `limit` cluster-wide slots for `destination`, or resolves undefined
   * when every node together already uses them all (see postgres-store-slots.ts).
   */
  acquireDestinationSlot(destination: string, limit: number): Promise<DestinationSlot | undefined> {
    this.#assertOpen();
    return this.#slots!.acquireDestinationSlot(destination, limit);
  }

  onAvailable(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Messages a queue operation took from their holders: their content is not served. */
  #revoked(ids: QueueId[]): QueueId[] {
    this.#writes?.held.dropContent(ids);
    return ids;
  }

  #announceIf(ids: QueueId[]): QueueId[] {
    if (ids.length > 0) {
      // Due now, whatever the claim saw.
      this.#claimer?.deferred(undefined);
      this.#notifyLocal();
      this.#announcer?.announce();
    }
    return ids;
  }

  /** Commits a message with others; new mail goes straight to this node's queue manager. */
  async #commit(item: CommitItem): Promise<void> {
    const claimer = this.#claimer!;
    const prepared = claimer.prepare(item, this.#listeners.size > 0);
    await this.#commits!.submit(prepared);
    if (claimer.committed(prepared)) this.#handedOff.add(item.queueId);
  }

  /** New mail: this node's listeners at once, the other nodes if this one does not claim it. */
  #announceNewMail(queueId: QueueId): void {
    const handed = this.#handedOff.delete(queueId);
    this.#notifyLocal();
    if (!handed) this.#announcer?.committed(queueId, this.#listeners.size > 0);
  }

  /** Something other than this node's new mail may be claimable: the next claim asks. */
  #wake(): void {
    this.#claimer?.wanted();
    this.#notifyLocal();
  }

  /** Calls local listeners once per turn of the event loop however many events came. */
  #notifyLocal(): void {
    if (this.#notifyPending || this.#listeners.size === 0) return;
    this.#notifyPending = true;
    queueMicrotask(() => {
      this.#notifyPending = false;
      for (const listener of [...this.#listeners]) {
        try {
          listener();
        } catch (err) {
          this.#log.warning(undefined, `onAvailable listener failed: ${errorMessage(err)}`);
        }
      }
    });
  }
}
