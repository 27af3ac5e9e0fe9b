/**
 * Per-destination concurrency holds across nodes. Three QueueManagers, each on its own
 * PostgresQueueStore over one database, deliver to one destination through an agent
 * that holds each delivery until the limit is in flight; together they reach the
 * destination's limit and never exceed it (without the cluster-wide slots each node
 * alone would allow the limit, three times it in all).
 */

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AgentRegistry } from '../../../src/deliver/agent-registry.js';
import type {
  DeliveryAgent,
  DeliveryReporter,
  DeliveryRequest,
} from '../../../src/deliver/types.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
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

/** Deliveries over every node (one process here): in flight, the most at once, held. */
interface Shared {
  inFlight: number;
  max: number;
  delivered: number;
  /** Releases of the deliveries waiting for the test to let them finish. */
  readonly held: (() => void)[];
}

/** Holds each delivery until the test releases it, then reports it sent. */
class HeldAgent implements DeliveryAgent {
  readonly byNode = new Map<string, number>();
  constructor(
    private readonly node: string,
    private readonly shared: Shared,
  ) {}
  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    this.shared.inFlight++;
    this.shared.max = Math.max(this.shared.max, this.shared.inFlight);
    try {
      await new Promise<void>((release) => this.shared.held.push(release));
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
    const LIMIT = 2;
    const params = resolveParameters({
      myhostname: 'mx.example.test',
      defaultDestinationConcurrencyLimit: LIMIT,
      initialDestinationConcurrency: LIMIT,
      // A small window per node, so that every node claims some of the mail.
      qmgrMessageActiveLimit: 3,
    });
    const shared: Shared = { inFlight: 0, max: 0, delivered: 0, held: [] };
    const nodes = ['a', 'b', 'c'].map((name) => {
      const store = new PostgresQueueStore({
        url: server.url,
        schema,
        node: `node-${name}`,
        poolSize: 4,
      });
      const agent = new HeldAgent(name, shared);
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
      // Deliveries are let go only once the limit is in flight (or all that is left),
      // so they overlap as much as the cluster allows; a node that ignored the others'
      // slots would start a third meanwhile.
      let released = 0;
      while (released < MESSAGES) {
        const want = Math.min(LIMIT, MESSAGES - released);
        await vi.waitFor(() => expect(shared.held.length).toBeGreaterThanOrEqual(want), {
          timeout: 30_000,
          interval: 20,
        });
        const batch = shared.held.splice(0);
        released += batch.length;
        for (const release of batch) release();
      }
      await vi.waitFor(() => expect(shared.delivered).toBe(MESSAGES), { timeout: 30_000 });
      expect(shared.max).toBe(LIMIT);
      const active = nodes.filter((n) => (n.agent.byNode.values().next().value ?? 0) > 0).length;
      expect(active).toBeGreaterThan(1);
    } finally {
      for (const n of nodes) await n.qmgr.stop(1000);
      for (const n of nodes) await n.store.close().catch(() => undefined);
      await dropSchema(server.url, schema);
    }
  }, 120_000);
});
