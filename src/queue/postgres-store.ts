/**
 * PostgresQueueStore: a QueueStore in PostgreSQL, shared by several Postern nodes.
 *
 * Postfix counterpart: the queue directories and qmgr(8), for a cluster rather than
 * one host: envelope and per-recipient state in tables, content in bytea chunks
 * (postgres-store-schema.ts has the layout).
 *
 * - Durability: a transaction COMMIT is the durability point. `commit()` resolves
 *   after the COMMIT of the statement that makes the message visible; every outcome,
 *   release and queue operation is committed before its call resolves.
 * - Work sharing: nodes claim with `FOR UPDATE SKIP LOCKED` under a lease (owner,
 *   token, expiry, holder session); every write under a lease is fenced by the token
 *   in its WHERE clause and fails with LeaseLostError once the lease is gone. A node's
 *   leases are taken over when they expire or when its heartbeat in `nodes` stops
 *   for `nodeTimeoutMs`; a node restarted under the same `node` name releases its old
 *   leases at open.
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
import type { Readable } from 'node:stream';
import type { Pool } from 'pg';
import { systemClock } from '../clock.js';
import { ConfigError, QueueStoreError } from '../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import type { Clock, QueueId } from '../types.js';
import { claimMessages } from './postgres-store-claim.js';
import {
  checkNewQueueId,
  contentStream,
  DEFAULT_CHUNK_SIZE,
  PgMessageWriter,
} from './postgres-store-content.js';
import { Announcer, AvailabilityListener, NodeHeartbeat } from './postgres-store-notify.js';
import { QueueOperations } from './postgres-store-operations.js';
import { LeaseWriter } from './postgres-store-outcomes.js';
import {
  channelOf,
  checkSchemaName,
  loadPg,
  migrate,
  SCHEMA_VERSION,
  schemaVersion,
} from './postgres-store-schema.js';
import {
  AdvisorySlots,
  type DestinationSlot,
  type DestinationSlots,
} from './postgres-store-slots.js';
import type {
  ClaimedMessage,
  ClaimOptions,
  Lease,
  MessageWriter,
  QueueCounts,
  QueueEntry,
  QueueSelection,
  QueueState,
  QueueStore,
  QueueSummary,
  RecipientOutcome,
  ReleaseTarget,
} from './types.js';

/** Options of PostgresQueueStore. */
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
  /** Connections in the pool. @default 10 */
  readonly poolSize?: number;
  /** Content chunk size in bytes. @default 262144 */
  readonly chunkSize?: number;
  /** Use LISTEN/NOTIFY (false: poll only). @default true */
  readonly listen?: boolean;
  /** Poll interval while notifications are unavailable. @default 1000 */
  readonly pollMs?: number;
  /** Heartbeat interval of this store's `nodes` row. @default 5000 */
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

export class PostgresQueueStore implements QueueStore, DestinationSlots {
  readonly url: string;
  readonly schema: string;
  readonly #options: PostgresQueueStoreOptions;
  readonly #clock: Clock;
  readonly #log: ComponentLogger;
  readonly #session = randomUUID();
  readonly #listeners = new Set<() => void>();
  #notifyPending = false;
  #state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  #pool: Pool | undefined;
  #q = '';
  #writer: LeaseWriter | undefined;
  #ops: QueueOperations | undefined;
  #listener: AvailabilityListener | undefined;
  #announcer: Announcer | undefined;
  #heartbeat: NodeHeartbeat | undefined;
  #slots: AdvisorySlots | undefined;

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
      await this.#pool?.end().catch(() => undefined);
      await this.#listener?.close();
      throw err;
    }
    this.#state = 'open';
  }

  async #open(): Promise<void> {
    const pg = await loadPg();
    const o = this.#options;
    const pool = new pg.Pool({
      connectionString: this.url,
      max: o.poolSize ?? 10,
      application_name: `postern ${o.node ?? ''}`.trim(),
    });
    // An idle connection dropped by the server must not crash the process.
    pool.on('error', (err) =>
      this.#log.warning(undefined, `database connection lost: ${err.message}`),
    );
    this.#pool = pool;
    const q = pg.escapeIdentifier(this.schema);
    this.#q = q;
    if (o.migrate !== false) {
      const client = await pool.connect().catch((err: unknown) => {
        throw new QueueStoreError(
          `cannot connect to the queue database: ${(err as Error).message}`,
          undefined,
          { cause: err },
        );
      });
      try {
        const applied = await migrate(client, this.schema, pg);
        if (applied.length > 0)
          this.#log.info(
            undefined,
            `queue schema "${this.schema}" migrated to version ${applied.at(-1)}`,
          );
      } finally {
        client.release();
      }
    } else if ((await schemaVersion(pool, this.schema, pg)) < SCHEMA_VERSION) {
      throw new ConfigError(
        `the queue schema "${this.schema}" is missing or out of date and "migrate" is false; run \`postern db migrate --config FILE\` first`,
        'queueStore',
      );
    }
    this.#writer = new LeaseWriter(pool, q, () => this.#clock.now());
    this.#ops = new QueueOperations(pool, q);
    this.#announcer = new Announcer(pool, channelOf(this.schema), this.#log);
    this.#heartbeat = new NodeHeartbeat(
      pool,
      q,
      this.#session,
      o.node ?? `pid-${process.pid}`,
      o.heartbeatMs ?? 5000,
      this.#log,
    );
    await this.#heartbeat.start();
    await pool.query(
      `DELETE FROM ${q}.messages WHERE state = 'writing' AND created_at < now() - interval '${ABANDONED_WRITE}'`,
    );
    await pool.query(
      `DELETE FROM ${q}.nodes n WHERE heartbeat_at < now() - interval '${ABANDONED_WRITE}'
       AND NOT EXISTS (SELECT 1 FROM ${q}.messages m WHERE m.state = 'active' AND m.lease_session = n.session)`,
    );
    if (o.node !== undefined) {
      // Mail this node held when it stopped or crashed is claimable at once.
      await pool.query(
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
      fire: () => this.#notifyLocal(),
    });
    await this.#listener.start();
    this.#slots = new AdvisorySlots(pg, this.url, this.schema);
    this.#notifyLocal();
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') {
      if (this.#state === 'new') this.#state = 'closed';
      return;
    }
    this.#state = 'closed';
    const pool = this.#pool!;
    try {
      // Leases still held lapse: give the mail back to the cluster now.
      await pool.query(
        `UPDATE ${this.#q}.messages SET state = 'incoming', lease_owner = NULL, lease_token = NULL,
           lease_expires = NULL, lease_session = NULL
         WHERE state = 'active' AND lease_session = $1`,
        [this.#session],
      );
      await this.#heartbeat?.stop();
    } catch (err) {
      this.#log.warning(undefined, `closing the queue: ${(err as Error).message}`);
    }
    await this.#listener?.close();
    await this.#slots?.close();
    await pool.end().catch(() => undefined);
  }

  #assertOpen(): void {
    if (this.#state === 'open') return;
    if (this.#state === 'new' || this.#state === 'opening')
      throw new QueueStoreError('the queue store is not open; call open() first');
    throw new QueueStoreError('the queue store is closed; open a new one');
  }

  get #p(): Pool {
    this.#assertOpen();
    return this.#pool!;
  }

  async create(queueId: QueueId): Promise<MessageWriter> {
    const pool = this.#p;
    checkNewQueueId(queueId);
    const { rows } = await pool.query(`SELECT 1 FROM ${this.#q}.messages WHERE queue_id = $1`, [
      queueId,
    ]);
    if (rows.length > 0) throw new QueueStoreError('a message with this queue ID exists', queueId);
    return new PgMessageWriter(
      {
        pool,
        schema: this.#q,
        chunkSize: this.#options.chunkSize ?? DEFAULT_CHUNK_SIZE,
        announce: () => this.#announce(),
        assertOpen: () => this.#assertOpen(),
      },
      queueId,
    );
  }

  claim(options: ClaimOptions): Promise<ClaimedMessage[]> {
    return claimMessages(
      {
        pool: this.#p,
        schema: this.#q,
        session: this.#session,
        nodeTimeoutMs: this.#options.nodeTimeoutMs ?? 30_000,
      },
      options,
    );
  }

  async renew(lease: Lease, expiresAt: number): Promise<Lease> {
    this.#assertOpen();
    return this.#writer!.renew(lease, expiresAt);
  }

  openContent(queueId: QueueId): Readable {
    return contentStream(this.#pool!, this.#q, queueId, () => this.#state === 'open');
  }

  async recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    this.#assertOpen();
    await this.#writer!.recordOutcomes(lease, outcomes);
  }

  async release(lease: Lease, target: ReleaseTarget): Promise<void> {
    this.#assertOpen();
    await this.#writer!.release(lease, target);
    if (target.state === 'corrupt')
      this.#log.warning(lease.queueId, `moved to corrupt queue: ${target.reason}`);
    if (target.state === 'deferred') this.#announce();
  }

  async remove(lease: Lease): Promise<void> {
    this.#assertOpen();
    await this.#writer!.remove(lease);
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

  async nextDueTime(): Promise<number | undefined> {
    this.#assertOpen();
    return this.#ops!.nextDueTime();
  }

  async summaries(options: { states?: readonly QueueState[] } = {}): Promise<QueueSummary[]> {
    this.#assertOpen();
    return this.#ops!.summaries(options);
  }

  async hold(selection: QueueSelection, reason?: string): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#ops!.hold(selection, reason);
  }

  async unhold(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#announceIf(await this.#ops!.unhold(selection, this.#clock.now()));
  }

  async delete(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#ops!.delete(selection);
  }

  async requeue(selection: QueueSelection): Promise<QueueId[]> {
    this.#assertOpen();
    return this.#announceIf(await this.#ops!.requeue(selection));
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

  #announceIf(ids: QueueId[]): QueueId[] {
    if (ids.length > 0) this.#announce();
    return ids;
  }

  /** Tells this node's listeners at once and every other node through NOTIFY. */
  #announce(): void {
    this.#notifyLocal();
    this.#announcer?.announce();
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
          this.#log.warning(undefined, `onAvailable listener failed: ${(err as Error).message}`);
        }
      }
    });
  }
}
