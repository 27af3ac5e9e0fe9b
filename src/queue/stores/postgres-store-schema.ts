/**
 * PostgresQueueStore schema: loading the optional `pg` client, the versioned
 * migrations that create and upgrade the queue tables, and the names derived from the
 * schema (channel, lock keys).
 *
 * Postfix counterpart: the queue directory layout made by `postfix check` /
 * postfix-script; here the layout is tables in one PostgreSQL schema:
 * - `messages`: one row per message: state, due time, arrival order (`seq`), the lease
 *   (owner, token, expiry, holder session) and the envelope as jsonb. A row in state
 *   `writing` is a message still being received; no one but its writer sees it.
 * - `recipients`: one row per recipient with its state and last outcome, so a
 *   per-recipient outcome is one small UPDATE.
 * - `content_chunks`: the message bytes as bytea rows of at most the chunk size.
 * - `nodes`: one row per open store with a heartbeat, so the leases of a node that died
 *   are taken over without waiting for them to expire.
 * - `schema_migrations`: the versions applied.
 *
 * Migrations run in order, each in its own transaction with its version row, under a
 * transaction advisory lock, so nodes starting together apply each one once. A database
 * newer than this code is refused rather than used.
 *
 * Does not do: downgrades, or creating the database itself (the role needs CREATE on
 * the database for the schema, or the schema must exist and be owned by it).
 *
 * SECURITY: the schema name is checked against a strict pattern and quoted; every value
 * is passed as a bind parameter.
 *
 * @module
 */

import type * as PgModule from 'pg';
import type { Pool } from 'pg';
import { builtin } from '../../builtin.js';
import { ConfigError, QueueStoreError } from '../../errors.js';
import { asError, errorMessage } from '../../util/error-message.js';
import { isConnectionError } from './postgres-store-db.js';

export type Pg = typeof PgModule;

/** Loads `pg` (an optional peer dependency) only when a PostgresQueueStore is used. */
export async function loadPg(): Promise<Pg> {
  try {
    const mod = (await import('pg')) as Pg & { default?: Pg };
    return mod.default ?? mod;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new ConfigError(
        'the postgres queue store needs the "pg" package: run `npm install pg` in your project',
        'queueStore',
      );
    }
    throw err;
  }
}

/** Schema names: lower-case identifiers short enough for the notification channel. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

/** Throws a ConfigError unless `schema` is a usable schema name. */
export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new ConfigError(
      `queueStore.schema: "${schema.slice(0, 60)}" is not a valid schema name; use 1-48 characters of a-z, 0-9 and _, not starting with a digit`,
      'queueStore.schema',
    );
  }
  return schema;
}

/** The LISTEN/NOTIFY channel announcing claimable mail in `schema`. */
export function channelOf(schema: string): string {
  return `postern_${schema}`;
}

/** A 64-bit advisory lock key (as a decimal string) for `parts` within `schema`. */
export function lockKey(schema: string, ...parts: string[]): string {
  const digest = builtin('crypto')
    .createHash('sha256')
    .update([schema, ...parts].join('\0'))
    .digest();
  return digest.readBigInt64BE(0).toString();
}

interface Migration {
  readonly version: number;
  readonly name: string;
  /** Statements; `S` is replaced by the quoted schema name. */
  readonly sql: readonly string[];
}

/** Every migration, oldest first. Never edit one that has shipped; add a new one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'queue tables',
    sql: [
      'CREATE SEQUENCE S.message_seq',
      `CREATE TABLE S.messages (
        queue_id text PRIMARY KEY,
        state text NOT NULL
          CHECK (state IN ('writing', 'incoming', 'active', 'deferred', 'hold', 'corrupt')),
        seq bigint NOT NULL DEFAULT nextval('S.message_seq'),
        due_at bigint NOT NULL DEFAULT 0,
        claim_from text NOT NULL DEFAULT 'incoming',
        lease_owner text,
        lease_token text,
        lease_expires bigint,
        lease_session text,
        writer_token text,
        created_at timestamptz NOT NULL DEFAULT now(),
        chunks integer NOT NULL DEFAULT 0,
        sender text NOT NULL DEFAULT '',
        size bigint NOT NULL DEFAULT 0,
        arrival_time bigint NOT NULL DEFAULT 0,
        record jsonb
      )`,
      "CREATE INDEX messages_incoming ON S.messages (seq) WHERE state = 'incoming'",
      "CREATE INDEX messages_deferred ON S.messages (due_at, queue_id) WHERE state = 'deferred'",
      "CREATE INDEX messages_active ON S.messages (lease_expires) WHERE state = 'active'",
      "CREATE INDEX messages_session ON S.messages (lease_session) WHERE state = 'active'",
      "CREATE INDEX messages_owner ON S.messages (lease_owner) WHERE state = 'active'",
      "CREATE INDEX messages_writing ON S.messages (created_at) WHERE state = 'writing'",
      `CREATE TABLE S.recipients (
        queue_id text NOT NULL REFERENCES S.messages ON DELETE CASCADE,
        id integer NOT NULL,
        address text NOT NULL,
        domain text NOT NULL,
        state text NOT NULL CHECK (state IN ('pending', 'sent', 'bounced')),
        data jsonb NOT NULL,
        last jsonb,
        PRIMARY KEY (queue_id, id)
      )`,
      `CREATE TABLE S.content_chunks (
        queue_id text NOT NULL REFERENCES S.messages ON DELETE CASCADE,
        seq integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (queue_id, seq)
      )`,
      // Mail is read once or twice; compressing every chunk costs more CPU than it saves.
      'ALTER TABLE S.content_chunks ALTER COLUMN data SET STORAGE EXTERNAL',
      `CREATE TABLE S.nodes (
        session text PRIMARY KEY,
        node text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** What `query` needs: a connected client (pg.Client or a pool client). */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

/** The SQL of a migration for `schema`. */
function expand(sql: string, schema: string, pg: Pg): string {
  return sql.replace(/\bS\./g, `${pg.escapeIdentifier(schema)}.`);
}

/**
 * Creates the schema if needed and applies every migration not yet applied. Resolves
 * with the versions applied now (empty when the database was current).
 */
export async function migrate(client: Queryable, schema: string, pg: Pg): Promise<number[]> {
  checkSchemaName(schema);
  const q = pg.escapeIdentifier(schema);
  const key = lockKey(schema, 'migrate');
  const applied: number[] = [];
  for (;;) {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [key]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`,
      );
      const { rows } = await client.query(
        `SELECT coalesce(max(version), 0) AS v FROM ${q}.schema_migrations`,
      );
      const current = Number(rows[0]?.v ?? 0);
      if (current > SCHEMA_VERSION) {
        throw new ConfigError(
          `the queue schema "${schema}" is at version ${current}, newer than this Postern knows (${SCHEMA_VERSION}); upgrade Postern on this node`,
          'queueStore',
        );
      }
      const next = MIGRATIONS.find((m) => m.version > current);
      if (!next) {
        await client.query('COMMIT');
        return applied;
      }
      for (const statement of next.sql) await client.query(expand(statement, schema, pg));
      await client.query(`INSERT INTO ${q}.schema_migrations (version, name) VALUES ($1, $2)`, [
        next.version,
        next.name,
      ]);
      await client.query('COMMIT');
      applied.push(next.version);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
}

/** The version a database is at (0 when the schema or its tables do not exist). */
export async function schemaVersion(client: Queryable, schema: string, pg: Pg): Promise<number> {
  const { rows } = await client.query('SELECT to_regclass($1) AS t', [
    `${pg.escapeIdentifier(checkSchemaName(schema))}.schema_migrations`,
  ]);
  if (!rows[0]?.t) return 0;
  const res = await client.query(
    `SELECT coalesce(max(version), 0) AS v FROM ${pg.escapeIdentifier(schema)}.schema_migrations`,
  );
  return Number(res.rows[0]?.v ?? 0);
}

/**
 * Makes the schema ready at open: migrates it (resolving with the version reached, or
 * undefined when it was current), or, when `migrate` is false, checks that it is
 * current and says to run `postern db migrate` if not.
 */
export async function readySchema(
  pool: Pool,
  schema: string,
  pg: Pg,
  migrateNow: boolean,
): Promise<number | undefined> {
  if (!migrateNow) {
    if ((await schemaVersion(pool, schema, pg)) < SCHEMA_VERSION) {
      throw new ConfigError(
        `the queue schema "${schema}" is missing or out of date and "migrate" is false; run \`postern db migrate --config FILE\` first`,
        'queueStore',
      );
    }
    return undefined;
  }
  const client = await pool.connect().catch((err: unknown) => {
    throw new QueueStoreError(
      `cannot connect to the queue database: ${errorMessage(err)}`,
      undefined,
      { cause: err },
    );
  });
  // A checked-out client has no pool listener: a connection lost during the migration
  // would be an uncaught 'error' event (a fatal exit) instead of a failed open().
  let lost: Error | undefined;
  const onError = (err: Error) => {
    lost ??= err;
  };
  client.on('error', onError);
  try {
    return (await migrate(client, schema, pg)).at(-1);
  } catch (err) {
    if (!isConnectionError(err) && lost === undefined) throw err;
    lost ??= asError(err);
    throw new QueueStoreError(
      `lost the connection to the queue database while preparing schema "${schema}" (${errorMessage(err)}); check that the server is up, then start again`,
      undefined,
      { cause: err },
    );
  } finally {
    // Released with the error, a broken connection leaves the pool instead of going back.
    client.release(lost);
    client.removeListener('error', onError);
  }
}
