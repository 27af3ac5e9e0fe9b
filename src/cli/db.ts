/**
 * `postern db migrate|status [--config FILE]`: creates or upgrades the PostgreSQL queue
 * schema of a config's `"queueStore": { "type": "postgres", ... }` ahead of starting
 * the nodes (they also migrate at start unless `"migrate": false`), or reports its
 * version and the nodes sharing the queue (heartbeat age, the mail each holds). Also runs `postern queue` commands on a PostgreSQL queue, straight on the
 * shared tables, so they act on every node's mail.
 *
 * Postfix counterpart: `postfix upgrade-configuration` / `postfix set-permissions`
 * (preparing the queue) and postsuper(1)/postqueue(1) for the queue commands.
 *
 * Does not do: create the database or the role, or downgrade a schema.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import { ConfigError, PosternError, type PosternErrorOptions, QueueStoreError } from '../errors.js';
import { resolveMtaConfig } from '../mta/mta-config.js';
import { type ControlRequest, directQueueOperations, runRequest } from '../queue/queue-control.js';
import { DEFAULT_NODE_TIMEOUT_MS, PostgresQueueStore } from '../queue/stores/postgres-store.js';
import {
  type PostgresQueueStoreConfig,
  postgresStoreOptions,
} from '../queue/stores/postgres-store-config.js';
import { isConnectionError } from '../queue/stores/postgres-store-db.js';
import { formatNodes, nodeStatus, shapeByNode } from '../queue/stores/postgres-store-nodes.js';
import {
  checkSchemaName,
  loadPg,
  migrate,
  SCHEMA_VERSION,
  schemaVersion,
} from '../queue/stores/postgres-store-schema.js';
import { errorMessage } from '../util/error-message.js';
import { loadConfigFile } from './load-config.js';

export const DB_USAGE = `usage: postern db migrate|status [--config FILE]

  migrate  create the PostgreSQL queue schema, or apply the migrations it lacks
  status   print the schema version of the database and the one this Postern needs,
           and every node sharing the queue: alive or dead, heartbeat age, and the
           messages and recipients it holds under leases
  --config the config whose "queueStore" is { "type": "postgres", "url": "postgres://..." }
           (default: $POSTERN_CONFIG)
`;

/** The postgres queue store of a config file, or a ConfigError saying what is wrong. */
async function postgresConfig(file: string | undefined): Promise<PostgresQueueStoreConfig> {
  const resolved = resolveMtaConfig(file ? await loadConfigFile(file) : {});
  const qs = resolved.queueStore;
  if ('claim' in qs || qs.type !== 'postgres') {
    throw new ConfigError(
      `${file ?? 'the default config'}: "queueStore" is not { "type": "postgres", "url": "postgres://..." }; postern db works only on a PostgreSQL queue`,
      'queueStore',
    );
  }
  return qs;
}

/** Runs `postern db ARGS`; resolves with the text to print. Throws ConfigError. */
export async function dbCommand(argv: readonly string[], env = process.env): Promise<string> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' } },
  });
  const [command, ...extra] = positionals;
  if ((command !== 'migrate' && command !== 'status') || extra.length > 0)
    throw new DbUsageError(`expected "migrate" or "status", got "${positionals.join(' ')}"`);
  const config = await postgresConfig(values.config ?? env.POSTERN_CONFIG);
  const schema = checkSchemaName(config.schema ?? 'postern');
  const pg = await loadPg();
  const client = new pg.Client({ connectionString: config.url });
  // A connection lost mid-command fails the statement; unheard, it would also crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new ConfigError(
      `cannot connect to ${redact(config.url)}: ${errorMessage(err)}`,
      'queueStore.url',
    );
  }
  try {
    if (command === 'status') {
      const version = await schemaVersion(client, schema, pg);
      const head = `schema "${schema}": version ${version} (this Postern needs ${SCHEMA_VERSION})\n`;
      if (version < 1) return head;
      const nodes = await nodeStatus(
        client,
        pg.escapeIdentifier(schema),
        config.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS,
      );
      return `${head}${formatNodes(nodes)}`;
    }
    const applied = await migrate(client, schema, pg);
    return applied.length === 0
      ? `schema "${schema}" is up to date (version ${SCHEMA_VERSION})\n`
      : `schema "${schema}": applied migration${applied.length > 1 ? 's' : ''} ${applied.join(', ')}; now at version ${SCHEMA_VERSION}\n`;
  } catch (err) {
    if (!isConnectionError(err)) throw err;
    throw new QueueStoreError(
      `lost the connection to ${redact(config.url)} (${errorMessage(err)}); check that the server is up, then run the command again`,
      undefined,
      { cause: err },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A wrong `postern db` command line. */
export class DbUsageError extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_USAGE', message, options);
  }
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/**
 * `postern queue shape` on a PostgreSQL queue adds the mail held under leases by node
 * (qshape's table with nodes for domains).
 */
export async function postgresShapeByNode(config: PostgresQueueStoreConfig): Promise<string> {
  const schema = checkSchemaName(config.schema ?? 'postern');
  const pg = await loadPg();
  const client = new pg.Client({ connectionString: config.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await shapeByNode(client, pg.escapeIdentifier(schema), Date.now());
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs one `postern queue` request on a PostgreSQL queue. The store is opened without
 * migrating or listening and without a node name, so it disturbs no node's leases.
 */
export async function postgresQueueRequest(
  config: PostgresQueueStoreConfig,
  req: ControlRequest,
): Promise<unknown> {
  const store = new PostgresQueueStore(
    postgresStoreOptions({ ...config, migrate: false, listen: false, poolSize: 2 }, {}),
  );
  await store.open();
  try {
    return await runRequest(directQueueOperations(store), req);
  } finally {
    await store.close();
  }
}
