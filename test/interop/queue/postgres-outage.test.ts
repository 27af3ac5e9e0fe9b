/**
 * The shared PostgreSQL queue rides out database outages under load: three
 * `postern serve` nodes take mail from nodemailer clients (one pooled transport per
 * node, sending without pause) and relay it to a recording sink (smtp-server) while
 * the PostgreSQL server is restarted with `pg_ctl restart -m fast`, then with
 * `-m immediate` (the server killed), then stopped for 20 s and started again. The
 * nodes are never restarted.
 *
 * Every message a client got a 250 for must reach the sink (so no 250 went out for a
 * message that was not committed: it would be lost); every refusal must be
 * `451 4.3.0`; every node must take mail again after each outage and the queue must
 * drain; each node logs an outage once, not once per message.
 *
 * The server runs with synchronous_commit on (fsync off): a COMMIT has reached the
 * operating system before it returns, so it survives the server being killed, which
 * is what a 250 relies on.
 *
 * @module
 */

import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
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

const NODES = 3;
/** Messages acknowledged on every node after each outage before the next. */
const AFTER_EACH = 40;
/** At most this many messages per node in all (bounds the load). */
const MAX_PER_NODE = 20_000;

interface Sent {
  readonly rcpt: string;
  readonly code: number;
  readonly response: string;
}

/** A client sending to one node without pause until stopped, recording every reply. */
class Load {
  readonly results: Sent[] = [];
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(port: number, node: number) {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      ignoreTLS: true,
      pool: true,
      maxConnections: 3,
    });
    const one = async (i: number) => {
      const rcpt = `n${node}m${i}@sink.example`;
      try {
        const info = await transport.sendMail({
          from: 'load@client.example',
          to: rcpt,
          subject: `outage ${node}/${i}`,
          text: 'x'.repeat(2000),
        });
        this.results.push({ rcpt, code: 250, response: info.response });
      } catch (err) {
        const e = err as { responseCode?: number; response?: string; message: string };
        this.results.push({ rcpt, code: e.responseCode ?? 0, response: e.response ?? e.message });
      }
    };
    const worker = async (w: number) => {
      for (let i = w; i < MAX_PER_NODE && !this.#stopped; i += 3) await one(i);
    };
    this.#done = Promise.all([0, 1, 2].map(worker)).then(() => transport.close());
  }

  get accepted(): number {
    return this.results.filter((r) => r.code === 250).length;
  }

  get refused(): number {
    return this.results.filter((r) => r.code !== 250).length;
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.#done;
  }
}

/** Resolves once `check` holds, polling; rejects after `ms`. */
async function until(what: string, check: () => boolean, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PostgreSQL restarted and stopped under load', () => {
  let pg: PostgresServer;
  let sink: SinkServer;
  let work: string;
  const schema = freshSchemaName('outage');
  const nodes: PosternProcess[] = [];
  const loads: Load[] = [];

  beforeAll(async () => {
    pg = await startPostgres({ own: true, synchronousCommit: true });
    sink = await startSink();
    work = mkdtempSync(join(tmpdir(), 'postern-pg-outage-'));
  });

  afterAll(async () => {
    for (const l of loads) await l.stop().catch(() => undefined);
    for (const n of nodes) await n.stop('SIGKILL').catch(() => undefined);
    await sink?.close();
    await dropSchema(pg.url, schema).catch(() => undefined);
    await pg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('acknowledges only committed mail, delivers all of it, and recovers without a restart', async () => {
    nodes.push(
      ...(await startClusterNodes({
        work,
        count: NODES,
        queueStore: { type: 'postgres', url: pg.url, schema },
        sinkPort: sink.port,
      })),
    );
    for (const [n, node] of nodes.entries()) loads.push(new Load(node.port, n));
    const progress = async (what: string) => {
      const base = loads.map((l) => l.accepted);
      await until(what, () => loads.every((l, n) => l.accepted >= base[n]! + AFTER_EACH));
    };

    await progress('mail before the outages');
    await pg.restart('fast');
    await progress('mail after pg_ctl restart -m fast');
    await pg.restart('immediate');
    await progress('mail after pg_ctl restart -m immediate');
    const refusedBefore = loads.map((l) => l.refused);
    await pg.halt('fast');
    // The database is away for 20 s; meanwhile every node refuses mail with 451.
    const haltedAt = Date.now();
    await until('451s while the database is stopped', () =>
      loads.every((l, n) => l.refused > refusedBefore[n]!),
    );
    await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - haltedAt))));
    await pg.resume();
    await progress('mail after the database came back');
    await Promise.all(loads.map((l) => l.stop()));

    const all = loads.flatMap((l) => l.results);
    const acked = all.filter((r) => r.code === 250).map((r) => r.rcpt);
    const refused = all.filter((r) => r.code !== 250);
    const delivered = await sink.waitFor(acked, 120_000);
    const missing = acked.filter((r) => !sink.byRecipient.has(r));
    const { default: pgc } = await import('pg');
    const db = new pgc.Client({ connectionString: pg.url });
    await db.connect();
    const q = pgc.escapeIdentifier(schema);
    let left = -1;
    for (let i = 0; i < 200 && left !== 0; i++) {
      left = Number((await db.query(`SELECT count(*) AS n FROM ${q}.messages`)).rows[0]?.n);
      if (left !== 0) await new Promise((r) => setTimeout(r, 250));
    }
    await db.end();
    const logs = nodes.map((n) => n.output);
    const count = (re: RegExp) => logs.map((lines) => lines.filter((l) => re.test(l)).length);
    const unavailable = count(/queue database unavailable/);
    const back = count(/queue database available again/);
    const duplicates = [...sink.byRecipient.values()].filter((n) => n > 1).length;
    console.log(
      `postgres-outage: ${acked.length} acknowledged, ${refused.length} refused ` +
        `(${[...new Set(refused.map((r) => r.response.slice(0, 60)))].join(' | ')}); ` +
        `${missing.length} acknowledged but not delivered, ${duplicates} delivered twice; ` +
        `queue rows left ${left}; "unavailable" lines per node ${unavailable.join('/')}, ` +
        `"available again" ${back.join('/')}`,
    );

    expect(missing.slice(0, 5)).toEqual([]);
    expect(delivered).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.filter((r) => !/^451[ -]4\.3\.0/.test(r.response)).slice(0, 5)).toEqual([]);
    expect(left).toBe(0);
    // Each outage is logged once per node at most (a quick restart may go unnoticed).
    for (const n of unavailable) expect(n).toBeGreaterThanOrEqual(1);
    for (const n of unavailable) expect(n).toBeLessThanOrEqual(3);
    for (const n of back) expect(n).toBeGreaterThanOrEqual(1);
  }, 400_000);
});
