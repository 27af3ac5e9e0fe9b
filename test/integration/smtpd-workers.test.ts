/**
 * `postern serve` with smtpd worker processes (`smtpdWorkerProcesses: 2`), end to end:
 * real processes, real sockets, a real SMTP sink (smtp-server) counting deliveries by
 * recipient (each message has its own).
 *
 * What must hold: every message is delivered exactly once and its queue ID is unique;
 * the SMTP sessions are served by the workers, never by the primary; kill -9 of a
 * worker loses only what it had not acknowledged and the worker is started again; kill
 * -9 of the primary makes the workers exit, and a restart delivers every acknowledged
 * message; a 100 MB message streams through a worker with bounded memory in both
 * processes.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';
import {
  alive,
  brokenLogLines,
  childrenOf,
  HOST,
  load,
  peakGrowth,
  pidsOf,
  poll,
  RELOADED_BANNER,
  reloadWithSecondListener,
  restartDelivers,
  sendThroughNodemailer,
  workerServers,
} from '../helpers/worker-load.js';

describe('postern serve with smtpd worker processes', () => {
  const { setUp, refused, refusedOnTakenPort, track } = workerServers({
    smtpdWorkerProcesses: 2,
  });

  it('serves SMTP in two worker processes: every message from nodemailer delivered exactly once under a unique queue ID; SIGHUP reloads them; SIGTERM ends them all', {
    timeout: 60_000,
  }, async () => {
    const { dir, sink, config, server } = await setUp({
      smtpdBanner: 'mx.example.test ESMTP before',
      metrics: { listen: '127.0.0.1:0' },
    });
    const primary = server.child.pid!;
    const workers = childrenOf(primary);
    expect(workers).toHaveLength(2);
    // Each worker runs libuv's default thread pool and few malloc arenas (less memory),
    // and keeps its heap between bursts of mail (no memory reducer).
    for (const pid of workers) {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      expect(env).toContain('UV_THREADPOOL_SIZE=4');
      expect(env).toContain('MALLOC_ARENA_MAX=2');
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain(
        '--no-memory-reducer',
      );
    }

    const recipients = Array.from({ length: 160 }, (_, i) => `n${i}@remote.example`);
    const ids = await sendThroughNodemailer(server.port, recipients);
    expect(new Set(ids).size).toBe(recipients.length);

    expect(await sink.waitFor(recipients, 30_000)).toBe(true);
    expect(recipients.filter((r) => sink.byRecipient.get(r) !== 1)).toEqual([]);
    // The sessions and their Cleanup ran in the workers; delivery in the primary.
    const smtpd = pidsOf(server.output, 'smtpd');
    expect(smtpd.size).toBeGreaterThan(0);
    expect([...smtpd].every((pid) => workers.includes(pid))).toBe(true);
    expect([...pidsOf(server.output, 'cleanup')].every((pid) => workers.includes(pid))).toBe(true);
    expect([...pidsOf(server.output, 'qmgr')]).toEqual([primary]);
    // The primary's metrics count what the workers queued.
    const metrics = /(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(
      await server.waitForLine(/metrics on http:\/\//),
    )![1]!;
    expect(await (await fetch(metrics)).text()).toContain(
      `postern_messages_received_total{receiver="smtpd"} ${recipients.length}\n`,
    );
    // ... and the sessions open in them (reported each second).
    const idle = await SmtpDialogue.open(server.port);
    await idle.read();
    const gauge = `postern_sessions_active{service="smtpd",listener="127.0.0.1:${server.port}"} 1\n`;
    const end = Date.now() + 10_000;
    let scraped = '';
    while (!scraped.includes(gauge) && Date.now() < end) {
      scraped = await (await fetch(metrics)).text();
      if (!scraped.includes(gauge)) await new Promise((r) => setTimeout(r, 100));
    }
    expect(scraped).toContain(gauge);
    await idle.expect('QUIT', 221);
    idle.close();
    // Lines from three processes, each one whole.
    expect(brokenLogLines(server.output)).toEqual([]);

    // postfix reload: the primary reads the file, then each worker; the primary's line
    // comes once every worker has applied it.
    // A new banner, and a listener more, which the workers bind.
    const ports = await reloadWithSecondListener(server, dir, config);
    for (let i = 0; i < 6; i++) {
      const c = await SmtpDialogue.open(ports[i % 2]!);
      expect((await c.read()).text).toBe(RELOADED_BANNER);
      await c.expect('QUIT', 221);
      c.close();
    }
    expect(childrenOf(primary).sort()).toEqual([...workers].sort());

    expect(await server.stop('SIGTERM')).toBe(0);
    expect(await poll(() => !workers.some(alive), 10_000)).toBe(true);
  });

  it('kill -9 of a worker mid-load: every acknowledged message is delivered exactly once, the death is logged once and the worker is started again', {
    timeout: 90_000,
  }, async () => {
    const { sink, server } = await setUp();
    const primary = server.child.pid!;
    const [victim, other] = childrenOf(primary);
    expect(victim).toBeDefined();

    const acked = new Set<string>();
    const first = load(server.port, 'k', 10, 60, acked);
    expect(await poll(() => acked.size >= 100, 30_000)).toBe(true);
    process.kill(victim!, 'SIGKILL');
    await server.waitForLine(new RegExp(`process postern/smtpd pid ${victim} killed by signal 9`));
    await first.done;
    // Started again: two workers, the survivor and a new one.
    expect(
      await poll(() => {
        const now = childrenOf(primary);
        return now.length === 2 && now.includes(other!) && !now.includes(victim!);
      }, 20_000),
    ).toBe(true);

    // The restarted set serves new sessions: all of them acknowledged.
    const after = new Set<string>();
    await load(server.port, 'r', 6, 10, after).done;
    expect(after.size).toBe(60);
    for (const r of after) acked.add(r);

    expect(await sink.waitFor(acked, 60_000)).toBe(true);
    expect([...acked].filter((r) => sink.byRecipient.get(r) !== 1)).toEqual([]);
    expect(server.output.filter((l) => /killed by signal 9/.test(l))).toHaveLength(1);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('one worker process; kill -9 of the primary: the worker exits; the restarted server delivers every acknowledged message', {
    timeout: 120_000,
  }, async () => {
    // Slow deliveries keep acknowledged mail queued at the kill.
    const killed = await setUp({ defaultDestinationConcurrencyLimit: 2, smtpdWorkerProcesses: 1 });
    const { sink, server } = killed;
    sink.slow(HOST, 50);
    const primary = server.child.pid!;
    const workers = childrenOf(primary);
    expect(workers).toHaveLength(1);

    const acked = new Set<string>();
    const traffic = load(server.port, 'p', 10, 100, acked);
    expect(await poll(() => acked.size >= 150, 30_000)).toBe(true);
    await server.stop('SIGKILL');
    // Without their primary the workers go, and with them every session.
    expect(await poll(() => !workers.some(alive), 10_000)).toBe(true);
    const second = await restartDelivers(killed, traffic, acked, track);
    expect(await second.stop('SIGTERM')).toBe(0);
  });

  it('streams a 100 MB message through a worker with bounded memory in the worker and the primary', {
    timeout: 120_000,
  }, async () => {
    const { server } = await setUp({ messageSizeLimit: 200_000_000, defaultTransport: 'discard' });
    const primary = server.child.pid!;
    const processes = [primary, ...childrenOf(primary)];
    expect(processes).toHaveLength(3);
    const { id, grewKiB } = await peakGrowth(server, 100, processes);

    // No process held the message: each peak stays far below its 100 MB.
    for (const [i, pid] of processes.entries())
      expect(grewKiB[i], `process ${pid} grew by ${grewKiB[i]} KiB`).toBeLessThan(48 * 1024);
    // The whole message was queued and delivered.
    const queued = server.output.find((l) => l.includes(`${id}: from=<big@client.example>`));
    expect(Number(/size=(\d+)/.exec(queued ?? '')?.[1])).toBeGreaterThan(102_400_000);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('refuses DKIM with worker processes, saying what to do, exit 78', async () => {
    const r = await refused({ smtpdWorkerProcesses: 1, dkimVerification: true });
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(
      'postern: configuration error: dkimVerification cannot be used with smtpdWorkerProcesses 1 yet: set smtpdWorkerProcesses to 0\n',
    );
  });

  it('a port the workers cannot bind ends the start with the reason, exit 69', async () => {
    const { run, port } = await refusedOnTakenPort();
    expect(run.code).toBe(69);
    expect(run.stderr).toContain(`cannot listen on 127.0.0.1:${port}`);
    expect(run.stderr).toContain('another process uses that port');
  });
});
