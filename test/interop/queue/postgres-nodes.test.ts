/**
 * Three `postern serve` nodes share one PostgreSQL queue: Postfix's smtp-source injects
 * 10 000 messages spread over the nodes, every node relays to Postfix's smtp-sink
 * (which dumps each message to a file), and one node is killed with SIGKILL while
 * mail is still being delivered. Every acknowledged message must reach the sink, and
 * only recipients the dead node had in flight (claimed under its lease at the kill)
 * may arrive twice.
 *
 * Each smtp-source run uses -N, so every message has its own recipient
 * (`<seq>rcpt@<node>.example`); the sink's dump records it (X-Rcpt-Args), which is
 * what is counted. smtp-source exits non-zero if any message is not acknowledged, so
 * a clean exit means all its messages got a 250. The node to be killed gets the
 * smallest share and is killed only after its injection has finished, so what it
 * acknowledged is known exactly; it is then still delivering mail accepted by the
 * others.
 *
 * The schema is migrated first with `postern db migrate`, as an operator would.
 *
 * @module
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClusterNodes } from '../../helpers/cluster-nodes.js';
import type { PosternProcess } from '../../helpers/postern-process.js';
import {
  dropSchema,
  freshSchemaName,
  type PostgresServer,
  startPostgres,
} from '../../helpers/postgres-server.js';
import { smtpSource, smtpSourceRecipients } from '../../helpers/smtp-source.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../../bin/postern.mjs', import.meta.url));

/** Messages per node: the last node is the one killed. Total 10 000. */
const SCALE = Number(process.env.POSTERN_PG_NODES_SCALE ?? 1);
const SHARES = [4000, 4000, 2000].map((n) => Math.round(n * SCALE));
const TOTAL = SHARES.reduce((a, b) => a + b, 0);
const SESSIONS_PER_NODE = 4;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** Reads every dump: recipient → deliveries, and deliveries per delivering node. */
async function readSink(dir: string): Promise<{
  byRecipient: Map<string, number>;
  byNode: Map<string, number>;
  files: number;
}> {
  const byRecipient = new Map<string, number>();
  const byNode = new Map<string, number>();
  const names = await readdir(dir);
  for (const name of names) {
    const text = await readFile(join(dir, name), 'latin1');
    const rcpt = /X-Rcpt-Args: <([^>]+)>/.exec(text)?.[1]?.toLowerCase();
    if (rcpt) byRecipient.set(rcpt, (byRecipient.get(rcpt) ?? 0) + 1);
    // The delivering node greets the sink with its myhostname.
    const by = /X-Helo-Args: (\S+)/.exec(text)?.[1];
    if (by) byNode.set(by, (byNode.get(by) ?? 0) + 1);
  }
  return { byRecipient, byNode, files: names.length };
}

describe('three nodes on one PostgreSQL queue', () => {
  let pg: PostgresServer;
  let work: string;
  const schema = freshSchemaName('nodes');
  const children: ChildProcess[] = [];
  const nodes: PosternProcess[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    work = mkdtempSync(join(tmpdir(), 'postern-pg-nodes-'));
    // smtp-sink runs as nobody and must reach its dump directory.
    chmodSync(work, 0o755);
  });

  afterAll(async () => {
    for (const n of nodes) await n.stop('SIGKILL').catch(() => undefined);
    for (const c of children) c.kill('SIGKILL');
    await dropSchema(pg.url, schema).catch(() => undefined);
    await pg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it(`delivers ${TOTAL} messages exactly once across a SIGKILL of one node`, async () => {
    const sinkDir = join(work, 'sink');
    await mkdir(sinkDir);
    chmodSync(sinkDir, 0o777);
    const sinkPort = await freePort();
    const sink = spawn(
      'smtp-sink',
      ['-u', 'nobody', '-d', `${sinkDir}/%M.`, `127.0.0.1:${sinkPort}`, '1000'],
      { stdio: 'ignore' },
    );
    children.push(sink);
    await waitForPort(sinkPort);

    const queueStore = {
      type: 'postgres',
      url: pg.url,
      schema,
      poolSize: 8,
      heartbeatMs: 500,
      nodeTimeoutMs: 3000,
      pollMs: 500,
    };
    const configFile = join(work, 'db.json');
    await writeFile(configFile, JSON.stringify({ queueStore }));
    const migrated = await run(process.execPath, [BIN, 'db', 'migrate', '--config', configFile]);
    expect(migrated.stdout).toMatch(/applied migration 1/);
    const status = await run(process.execPath, [BIN, 'db', 'status', '--config', configFile]);
    expect(status.stdout).toMatch(/version 1 \(this Postern needs 1\)/);

    nodes.push(
      ...(await startClusterNodes({
        work,
        count: SHARES.length,
        queueStore: { ...queueStore, migrate: false },
        sinkPort,
        extra: { queueRunDelay: '1s' },
      })),
    );

    const started = Date.now();
    const injections = nodes.map((node, n) =>
      smtpSource({
        port: node.port,
        messages: SHARES[n]!,
        sessions: SESSIONS_PER_NODE,
        domain: `node${n}.example`,
      }),
    );
    const victim = nodes[SHARES.length - 1]!;
    await injections[SHARES.length - 1];
    const countSink = async () => (await readdir(sinkDir)).length;
    const atKill = await countSink();
    victim.child.kill('SIGKILL');
    await victim.stop('SIGKILL');

    // What the dead node had claimed: recipients still pending under its leases.
    const { default: pgc } = await import('pg');
    const db = new pgc.Client({ connectionString: pg.url });
    await db.connect();
    const q = pgc.escapeIdentifier(schema);
    const inflight = Number(
      (
        await db.query(
          `SELECT count(*) AS n FROM ${q}.recipients r JOIN ${q}.messages m USING (queue_id)
           WHERE m.state = 'active' AND m.lease_owner = 'node-2' AND r.state = 'pending'`,
        )
      ).rows[0]?.n,
    );
    await Promise.all(injections);
    const injectedAt = Date.now();

    // Wait for the queue to drain (bounded).
    const deadline = Date.now() + 150_000;
    let remaining = -1;
    while (Date.now() < deadline) {
      remaining = Number(
        (await db.query(`SELECT count(*) AS n FROM ${q}.messages`)).rows[0]?.n ?? -1,
      );
      if (remaining === 0 && (await countSink()) >= TOTAL) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const drained = Date.now();
    await db.end();
    // smtp-sink closes each dump before its 250, and a message leaves the queue only
    // after that reply: with the queue empty, every dump is complete.
    const { byRecipient, byNode, files } = await readSink(sinkDir);
    const duplicates = [...byRecipient.values()].reduce((a, c) => a + (c - 1), 0);
    const expected = new Set(SHARES.flatMap((m, n) => smtpSourceRecipients(`node${n}.example`, m)));
    const missing = [...expected].filter((r) => !byRecipient.has(r));

    console.log(
      `postgres-nodes: ${TOTAL} injected in ${((injectedAt - started) / 1000).toFixed(1)} s, ` +
        `drained after ${((drained - started) / 1000).toFixed(1)} s; sink had ${atKill} at the kill; ` +
        `in flight on the killed node: ${inflight} recipients; delivered ${files} ` +
        `(${byRecipient.size} distinct, ${duplicates} duplicates, ${missing.length} missing); ` +
        `by node: ${JSON.stringify(Object.fromEntries(byNode))}`,
    );
    if (remaining !== 0) {
      for (const n of nodes) console.log(n.output.slice(-30).join('\n'));
    }
    expect(remaining).toBe(0);
    expect(missing.slice(0, 5)).toEqual([]);
    expect(byRecipient.size).toBe(TOTAL);
    expect([...byRecipient.keys()].every((r) => expected.has(r))).toBe(true);
    expect(duplicates).toBeLessThanOrEqual(inflight);
    // The kill came while mail was still flowing, and every node delivered some of it.
    expect(atKill).toBeLessThan(TOTAL);
    for (let n = 0; n < SHARES.length; n++)
      expect(byNode.get(`node${n}.test`) ?? 0).toBeGreaterThan(0);
  }, 300_000);
});
