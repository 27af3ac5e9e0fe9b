/**
 * Issue 9: per-destination concurrency holds across nodes. Three QueueManagers, each on
 * its own PostgresQueueStore over one database, deliver to one destination through a
 * slow agent; together they never exceed the destination's limit (without the
 * cluster-wide slots each node alone would allow the limit, three times it in all).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/config/parameters.js';
import { AgentRegistry } from '../../../src/deliver/agent-registry.js';
import type {
  DeliveryAgent,
  DeliveryReporter,
  DeliveryRequest,
} from '../../../src/deliver/types.js';
import { QueueManager, type RouteResolver } from '../../../src/queue/qmgr/queue-manager.js';
import { PostgresQueueStore } from '../../../src/queue/stores/postgres-store.js';
import type { ResolveResult } from '../../../src/rewrite/types.js';
import { SmtpReply } from '../../../src/smtp-reply.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../helpers/postgres-server.js';
import { RecordingNotifier } from '../../unit/queue/qmgr/qmgr-harness.js';
import { commitMessage } from '../../unit/queue/stores/store-conformance.js';

const resolver: RouteResolver = {
  async resolve(address: string): Promise<ResolveResult> {
    const domain = address.slice(address.lastIndexOf('@') + 1);
    return {
      addressClass: 'default',
      transport: 'smtp',
      nexthop: domain,
      recipient: address,
      routed: false,
    };
  },
};

/** Counts deliveries in flight over every node (one process here). */
class SlowAgent implements DeliveryAgent {
  inFlight = 0;
  maxInFlight = 0;
  delivered = 0;
  readonly byNode = new Map<string, number>();
  constructor(
    private readonly node: string,
    private readonly shared: { inFlight: number; max: number; delivered: number },
  ) {}
  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    this.shared.inFlight++;
    this.shared.max = Math.max(this.shared.max, this.shared.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 40));
      for (const r of request.recipients) {
        reporter.recipient(r.id, {
          status: 'sent',
          reply: new SmtpReply(250, '2.0.0', 'ok'),
          relay: this.node,
        });
      }
      this.shared.delivered++;
      this.byNode.set(this.node, (this.byNode.get(this.node) ?? 0) + 1);
    } finally {
      this.shared.inFlight--;
    }
  }
}

describe('per-destination concurrency across nodes sharing one PostgreSQL queue', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('three nodes together stay within destinationConcurrencyLimit', async () => {
    const schema = freshSchemaName('slots');
    const params = resolveParameters({
      myhostname: 'mx.example.test',
      defaultDestinationConcurrencyLimit: 2,
      initialDestinationConcurrency: 2,
      // A small window per node, so that every node claims some of the mail.
      qmgrMessageActiveLimit: 3,
    });
    const shared = { inFlight: 0, max: 0, delivered: 0 };
    const nodes = ['a', 'b', 'c'].map((name) => {
      const store = new PostgresQueueStore({
        url: server.url,
        schema,
        node: `node-${name}`,
        poolSize: 4,
      });
      const agent = new SlowAgent(name, shared);
      const agents = new AgentRegistry().register('smtp', agent);
      const qmgr = new QueueManager({
        store,
        resolver,
        agents,
        bounce: new RecordingNotifier(),
        params,
        owner: `node-${name}`,
      });
      return { store, agent, qmgr };
    });
    try {
      for (const n of nodes) await n.store.open();
      const MESSAGES = 30;
      for (let i = 0; i < MESSAGES; i++) {
        await commitMessage(nodes[0]!.store, 'Subject: x\r\n\r\nx\r\n', {
          recipients: [
            { id: 1, address: `u${i}@busy.example`, originalAddress: `u${i}@busy.example` },
          ],
        });
      }
      for (const n of nodes) n.qmgr.start();
      const end = Date.now() + 60_000;
      while (shared.delivered < MESSAGES && Date.now() < end)
        await new Promise((r) => setTimeout(r, 50));
      expect(shared.delivered).toBe(MESSAGES);
      expect(shared.max).toBeLessThanOrEqual(2);
      expect(shared.max).toBeGreaterThanOrEqual(1);
      const active = nodes.filter((n) => (n.agent.byNode.values().next().value ?? 0) > 0).length;
      expect(active).toBeGreaterThan(1);
    } finally {
      for (const n of nodes) await n.qmgr.stop(1000);
      for (const n of nodes) await n.store.close().catch(() => undefined);
      await dropSchema(server.url, schema);
    }
  }, 120_000);
});
