/**
 * A dead node's mail moves on time, with default settings: three `postern serve` nodes
 * share one PostgreSQL queue (default heartbeatMs, nodeTimeoutMs and queueRunDelay),
 * Postfix's smtp-source injects mail into all three, every node relays to a recording
 * sink (smtp-server), and node 2 is killed with SIGKILL while it still holds mail under
 * its leases. Every acknowledged message must reach the sink within nodeTimeoutMs +
 * 30 s of the end of the load (long before a queue run), and a message may arrive
 * twice only if the dead node held it at the kill.
 *
 * Each smtp-source run uses -N, so every message has a recipient of its own
 * (`<seq>rcpt@node<n>.example`): that is what is counted. smtp-source exits non-zero
 * if any message is not acknowledged, so a clean exit means all got a 250. Node 2
 * gets the smallest share and is killed once its own injection has ended, so what it
 * acknowledged is known exactly; the sink answers its deliveries slowly, so it always
 * has a backlog under lease at the kill. What it held is read from the database right
 * after the kill, before anyone can take it over.
 *
 * @module
 */

import { chmodSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClusterNodes } from '../../helpers/cluster-nodes.js';
import type { PosternProcess } from '../../helpers/postern-process.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../helpers/postgres-server.js';
import { type SinkServer, startSink } from '../../helpers/sink-server.js';
import { smtpSource, smtpSourceRecipients } from '../../helpers/smtp-source.js';

/** Messages per node; node 2 (the last) is killed. */
const SHARES = [1500, 1500, 600];
const SESSIONS_PER_NODE = 4;
/** The default of PostgresQueueStore's nodeTimeoutMs. */
const NODE_TIMEOUT_MS = 30_000;

describe('a node killed under load, default settings', () => {
  let pg: PostgresServer;
  let sink: SinkServer;
  let work: string;
  const schema = freshSchemaName('takeover');
  const nodes: PosternProcess[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    sink = await startSink();
    work = mkdtempSync(join(tmpdir(), 'postern-pg-takeover-'));
    chmodSync(work, 0o755);
  });

  afterAll(async () => {
    for (const n of nodes) await n.stop('SIGKILL').catch(() => undefined);
    await sink?.close();
    await dropSchema(pg.url, schema).catch(() => undefined);
    await pg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("delivers every acknowledged message within nodeTimeoutMs + 30 s of the load's end", async () => {
    nodes.push(
      ...(await startClusterNodes({
        work,
        count: SHARES.length,
        queueStore: { type: 'postgres', url: pg.url, schema },
        sinkPort: sink.port,
      })),
    );
    sink.slow('node2.test', 100);

    const injections = nodes.map((node, n) =>
      smtpSource({
        port: node.port,
        messages: SHARES[n]!,
        sessions: SESSIONS_PER_NODE,
        domain: `node${n}.example`,
      }),
    );
    const victim = nodes[2]!;
    await injections[2];
    await victim.stop('SIGKILL');

    // What the dead node held under its leases at the kill (nobody takes it over for
    // nodeTimeoutMs): only these recipients may be delivered twice.
    const { default: pgc } = await import('pg');
    const db = new pgc.Client({ connectionString: pg.url });
    await db.connect();
    const q = pgc.escapeIdentifier(schema);
    const held = new Set(
      (
        await db.query(
          `SELECT lower(r.address) AS a FROM ${q}.recipients r JOIN ${q}.messages m USING (queue_id)
           WHERE m.state = 'active' AND m.lease_owner = 'node-2'`,
        )
      ).rows.map((r) => r.a as string),
    );
    await Promise.all(injections);
    const loadEnded = Date.now();

    const expected = SHARES.flatMap((m, n) => smtpSourceRecipients(`node${n}.example`, m));
    const all = await sink.waitFor(expected, NODE_TIMEOUT_MS + 30_000);
    const waited = ((Date.now() - loadEnded) / 1000).toFixed(1);
    // And the queue drains: what the dead node had delivered but not removed is sent
    // again (the duplicates) and removed.
    let left = -1;
    for (let i = 0; i < 120 && left !== 0; i++) {
      left = Number((await db.query(`SELECT count(*) AS n FROM ${q}.messages`)).rows[0]?.n);
      if (left !== 0) await new Promise((r) => setTimeout(r, 250));
    }
    await db.end();

    const missing = expected.filter((r) => !sink.byRecipient.has(r));
    const duplicated = [...sink.byRecipient].filter(([, n]) => n > 1).map(([r]) => r);
    console.log(
      `postgres-takeover: node 2 held ${held.size} recipients at the kill; all delivered ${waited} s after the load ended: ${all}; ` +
        `${missing.length} missing, ${duplicated.length} duplicated; queue rows left ${left}; by node: ${JSON.stringify(Object.fromEntries(sink.byNode))}`,
    );
    expect(held.size).toBeGreaterThan(0);
    expect(missing.slice(0, 5)).toEqual([]);
    expect(all).toBe(true);
    expect(left).toBe(0);
    expect(duplicated.filter((r) => !held.has(r))).toEqual([]);
    expect([...sink.byRecipient.keys()].filter((r) => !expected.includes(r))).toEqual([]);
    // The survivors delivered what the dead node held: it never came back.
    const survivors = (sink.byNode.get('node0.test') ?? 0) + (sink.byNode.get('node1.test') ?? 0);
    expect(survivors).toBeGreaterThan(0);
    expect(nodes[2]!.child.signalCode).toBe('SIGKILL');
  }, 300_000);
});
