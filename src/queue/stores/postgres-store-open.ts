/**
 * Opening a PostgresQueueStore: its two connection pools, the schema made ready, the
 * parts that do its work wired together and started (heartbeat, LISTEN connection),
 * and the sweep at start-up of what dead writers and an earlier run of this node left.
 *
 * Postfix counterpart: `postfix check` and qmgr(8)'s start-up, which takes whatever
 * cleanup(8) and an earlier qmgr left in the queue directories.
 *
 * - Pools: commits and durable outcomes wait for the WAL flush; claims, removals,
 *   heartbeats and reads need not (postgres-store-db.ts) and have a pool of their own
 *   (`synchronous_commit=off`), so they do not queue behind them. The durable writes
 *   run on generic plans (`plan_cache_mode`, PostgreSQL 12 or later).
 * - Sweep: rows left `writing` for a day belong to a writer that died and are
 *   deleted, with `nodes` rows as old that hold no lease; a node opened under its
 *   `node` name gives back the leases its earlier run held, so that mail is claimable
 *   at once.
 * - Failure: whatever was started is stopped and both pools are ended before the
 *   error is thrown, so a failed open leaves no timer or connection behind.
 *
 * Does not do: answer any QueueStore call (the store does, through the parts), or
 * close an open store.
 *
 * @module
 */

import type { Pool } from 'pg';
import type { ComponentLogger } from '../../log.js';
import { StatementBatcher } from './postgres-store-batch.js';
import { Claimer } from './postgres-store-claimer.js';
import { type CommitItem, commitBatch } from './postgres-store-commit.js';
import { QueueDb } from './postgres-store-db.js';
import { Announcer, AvailabilityListener, NodeHeartbeat } from './postgres-store-notify.js';
import { QueueOperations } from './postgres-store-operations.js';
import {
  DEFAULT_NODE_TIMEOUT_MS,
  type PostgresQueueStoreOptions,
} from './postgres-store-options.js';
import { LeaseWriter } from './postgres-store-outcomes.js';
import { channelOf, loadPg, readySchema } from './postgres-store-schema.js';
import { AdvisorySlots } from './postgres-store-slots.js';
import { LeaseWrites } from './postgres-store-writes.js';

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
/**
 * How long a lone message waits for company when none is on its way but other
 * messages committed with it or were on their way within the last 100 ms: with one
 * message per connection, a session spends most of its time outside a transaction,
 * so a node of four sessions committed one or two messages per COMMIT, each COMMIT
 * costing ~0.3 ms of the node's CPU and ~0.4 ms of PostgreSQL's (most of it the WAL
 * flush, in the kernel). Waiting costs a 250 at most this long, and only under load;
 * a lone writer never waits (postgres-store-batch.ts).
 */
const COMMIT_COMPANY_MS = 6;
/**
 * The durable writes' statements (prepared once per connection, postgres-store-db.ts)
 * run on their generic plans. Left to choose, PostgreSQL may plan the group commit
 * afresh on every execution for good when its first few batches were small (a custom
 * plan for a few rows looks cheaper than the generic one): about 0.45 ms of server
 * CPU per commit, more than the commit itself. Claims keep custom plans: theirs
 * depend on the parameters (whether deferred mail must be due).
 */
const GENERIC_PLANS = '-c plan_cache_mode=force_generic_plan';
/** How long a connection attempt may take before it counts as an outage. */
const CONNECT_TIMEOUT_MS = 10_000;

/** What the parts of an opening store need from the store itself. */
export interface OpeningStore {
  readonly url: string;
  /** The schema name, checked (checkSchemaName). */
  readonly schema: string;
  readonly options: PostgresQueueStoreOptions;
  /** This store's session: its `nodes` row and the holder of its leases. */
  readonly session: string;
  readonly log: ComponentLogger;
  /** The store's clock, which judges lease expiry. */
  readonly now: () => number;
  /** Messages being written (created, not yet committed or aborted). */
  readonly writing: () => number;
  /** Something may be claimable: the next claim asks the database. */
  readonly wake: () => void;
  /** Called with the database connection as soon as it exists (round trips count from then). */
  readonly connected: (db: QueueDb) => void;
}

/** The parts of an open store. */
export interface OpenedStore {
  readonly pool: Pool;
  readonly unflushedPool: Pool;
  readonly db: QueueDb;
  /** The schema name quoted for SQL. */
  readonly q: string;
  readonly writes: LeaseWrites;
  readonly commits: StatementBatcher<CommitItem, undefined>;
  readonly ops: QueueOperations;
  readonly announcer: Announcer;
  readonly heartbeat: NodeHeartbeat;
  readonly listener: AvailabilityListener;
  readonly slots: AdvisorySlots;
  readonly claimer: Claimer;
}

/** Opens the store's connections and parts; see the module header. */
export async function openPostgresStore(s: OpeningStore): Promise<OpenedStore> {
  let pool: Pool | undefined;
  let unflushed: Pool | undefined;
  let db: QueueDb | undefined;
  let writes: LeaseWrites | undefined;
  let announcer: Announcer | undefined;
  let listener: AvailabilityListener | undefined;
  let claimer: Claimer | undefined;
  try {
    const pg = await loadPg();
    const o = s.options;
    const size = o.poolSize ?? 10;
    const settings = {
      connectionString: s.url,
      application_name: `postern ${o.node ?? ''}`.trim(),
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    };
    pool = new pg.Pool({
      ...settings,
      max: Math.max(2, Math.ceil(size / 3)),
      options: GENERIC_PLANS,
    });
    unflushed = new pg.Pool({
      ...settings,
      max: size,
      options: '-c synchronous_commit=off',
    });
    // Also takes the errors of idle connections, which must not crash the process.
    const queueDb = new QueueDb(pool, unflushed, s.log);
    db = queueDb;
    s.connected(queueDb);
    const q = pg.escapeIdentifier(s.schema);
    const applied = await readySchema(pool, s.schema, pg, o.migrate !== false);
    if (applied !== undefined)
      s.log.info(undefined, `queue schema "${s.schema}" migrated to version ${applied}`);
    const nodeTimeoutMs = o.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
    const writer = new LeaseWriter(queueDb, q, s.now);
    const leaseWrites = new LeaseWrites({
      db: queueDb,
      writer,
      session: s.session,
      now: s.now,
      log: s.log,
      contentBudget: CONTENT_BUDGET,
    });
    writes = leaseWrites;
    const commits = new StatementBatcher<CommitItem, undefined>({
      // Removals waiting for their statement ride along with the commit.
      run: (items) => commitBatch(queueDb, q, s.session, items, leaseWrites.ridingRemovals()),
      maxItems: COMMIT_BATCH,
      weight: (item) => item.last?.data.length ?? 0,
      maxWeight: COMMIT_BYTES,
      expected: s.writing,
      expectedMs: COMMIT_EXPECTED_MS,
      companyMs: COMMIT_COMPANY_MS,
    });
    const ops = new QueueOperations(queueDb, q);
    announcer = new Announcer(queueDb, channelOf(s.schema), s.log);
    const heartbeat = new NodeHeartbeat({
      db: queueDb,
      schema: q,
      session: s.session,
      node: o.node ?? `pid-${process.pid}`,
      everyMs: o.heartbeatMs ?? 5000,
      nodeTimeoutMs,
      now: s.now,
      log: s.log,
      orphans: s.wake,
    });
    await heartbeat.start();
    await queueDb.query(
      `DELETE FROM ${q}.messages WHERE state = 'writing' AND created_at < now() - interval '${ABANDONED_WRITE}'`,
    );
    await queueDb.query(
      `DELETE FROM ${q}.nodes n WHERE heartbeat_at < now() - interval '${ABANDONED_WRITE}'
       AND NOT EXISTS (SELECT 1 FROM ${q}.messages m WHERE m.state = 'active' AND m.lease_session = n.session)`,
    );
    if (o.node !== undefined) {
      // Mail this node held when it stopped or crashed is claimable at once.
      await queueDb.query(
        `UPDATE ${q}.messages SET state = 'incoming', lease_owner = NULL, lease_token = NULL,
           lease_expires = NULL, lease_session = NULL
         WHERE state = 'active' AND lease_owner = $1 AND lease_session <> $2`,
        [o.node, s.session],
      );
    }
    listener = new AvailabilityListener({
      pg,
      url: s.url,
      channel: channelOf(s.schema),
      pollMs: o.pollMs ?? 1000,
      listen: o.listen !== false,
      log: s.log,
      count: () => queueDb.count(),
      // Nothing is claimable while the database is away; its return wakes us anyway.
      fire: () => {
        if (queueDb.available) s.wake();
      },
    });
    await listener.start();
    const slots = new AdvisorySlots({
      pg,
      url: s.url,
      schema: s.schema,
      log: s.log,
      count: () => queueDb.count(),
    });
    claimer = new Claimer({
      db: queueDb,
      schema: q,
      session: s.session,
      nodeTimeoutMs,
      writes,
      writer,
      announcer,
      now: s.now,
      wake: s.wake,
    });
    return {
      pool,
      unflushedPool: unflushed,
      db: queueDb,
      q,
      writes,
      commits,
      ops,
      announcer,
      heartbeat,
      listener,
      slots,
      claimer,
    };
  } catch (err) {
    claimer?.close();
    announcer?.close();
    writes?.close();
    db?.close();
    await listener?.close();
    await pool?.end().catch(() => undefined);
    await unflushed?.end().catch(() => undefined);
    throw err;
  }
}
