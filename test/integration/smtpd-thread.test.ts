/**
 * `postern serve` with its smtpd worker in a thread (`smtpdWorkerThreads: 1`, the
 * default), end to end: a real process, real sockets, a real SMTP sink (smtp-server)
 * counting deliveries by recipient.
 *
 * What must hold: it stays one process; every message is delivered exactly once under a
 * unique queue ID, all from the thread's queue ID generator; SIGHUP reloads the thread's
 * listeners; SIGTERM ends it, exit 0; kill -9 mid-load loses no acknowledged message; a
 * 300 MB message streams through the thread with bounded memory; worker processes take
 * the thread's place and DKIM keeps SMTP in the main thread; a config asking for more
 * than one thread is refused saying what to do, and a port the thread cannot bind ends
 * the start with the reason.
 *
 * @module
 */

import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPostern } from '../helpers/postern-cli.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';
import {
  brokenLogLines,
  childrenOf,
  HOST,
  load,
  peakGrowth,
  poll,
  RELOADED_BANNER,
  reloadWithSecondListener,
  restartDelivers,
  sendThroughNodemailer,
  workerServers,
} from '../helpers/worker-load.js';

describe('postern serve with an smtpd worker thread', () => {
  // The default layout: no smtpdWorker* setting at all.
  const { setUp, refused, refusedOnTakenPort, track } = workerServers({});

  it('serves SMTP in a thread of the one process: every message from nodemailer delivered exactly once under a unique queue ID; SIGHUP reloads the thread; SIGTERM ends it', {
    timeout: 60_000,
  }, async () => {
    const { dir, sink, config, server } = await setUp({
      smtpdBanner: 'mx.example.test ESMTP before',
    });
    const primary = server.child.pid!;
    expect(childrenOf(primary)).toEqual([]);

    const recipients = Array.from({ length: 160 }, (_, i) => `n${i}@remote.example`);
    const ids = await sendThroughNodemailer(server.port, recipients);
    expect(new Set(ids).size).toBe(recipients.length);
    // One queue ID generator made them all (the last 5 characters name it): the thread's,
    // not the main thread's, which names what Pickup queues.
    const tags = new Set(ids.map((id) => id.slice(-5)));
    expect(tags.size).toBe(1);
    const sent = await runPostern(['sendmail', 'local@remote.example'], {
      cwd: dir,
      input: 'Subject: from sendmail\n\nhello\n',
    });
    expect(sent.code).toBe(0);
    const picked = await server.waitForLine(/postern\/pickup\[\d+\]: [0-9A-Za-z]+: uid=/);
    const pickupId = /pickup\[\d+\]: ([0-9A-Za-z]+):/.exec(picked)![1]!;
    expect(tags.has(pickupId.slice(-5))).toBe(false);
    recipients.push('local@remote.example');
    expect(await sink.waitFor(recipients, 30_000)).toBe(true);
    expect(recipients.filter((r) => sink.byRecipient.get(r) !== 1)).toEqual([]);
    expect(brokenLogLines(server.output)).toEqual([]);

    // A new banner, and a listener more, which the workers bind.
    const ports = await reloadWithSecondListener(server, dir, config);
    for (const port of ports) {
      const c = await SmtpDialogue.open(port);
      expect((await c.read()).text).toBe(RELOADED_BANNER);
      await c.expect('QUIT', 221);
      c.close();
    }
    expect(childrenOf(primary)).toEqual([]);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('kill -9 mid-load: the restarted server delivers every acknowledged message', {
    timeout: 120_000,
  }, async () => {
    const killed = await setUp({ defaultDestinationConcurrencyLimit: 2 });
    const { sink, server } = killed;
    sink.slow(HOST, 50);
    const acked = new Set<string>();
    const traffic = load(server.port, 't', 10, 100, acked);
    expect(await poll(() => acked.size >= 150, 30_000)).toBe(true);
    await server.stop('SIGKILL');
    const second = await restartDelivers(killed, traffic, acked, track);
    expect(await second.stop('SIGTERM')).toBe(0);
  });

  it('streams a 300 MB message through the thread with bounded memory', {
    timeout: 120_000,
  }, async () => {
    const { server } = await setUp({ messageSizeLimit: 400_000_000, defaultTransport: 'discard' });
    const { id, grewKiB } = await peakGrowth(server, 300);
    // Neither thread held the message: the process's peak grows by a fraction of its
    // 300 MB (buffers already written wait for V8 to collect them: about 70 MB, as much
    // with 100 MB).
    expect(grewKiB[0], `the process grew by ${grewKiB[0]} KiB`).toBeLessThan(96 * 1024);
    const queued = server.output.find((l) => l.includes(`${id}: from=<big@client.example>`));
    expect(Number(/size=(\d+)/.exec(queued ?? '')?.[1])).toBeGreaterThan(307_200_000);
    expect(await server.stop('SIGTERM')).toBe(0);
  });

  it('refuses more than one thread, saying what to do, exit 78', async () => {
    const two = await refused({ smtpdWorkerThreads: 2 });
    expect(two.code).toBe(78);
    expect(two.stderr).toBe(
      'postern: configuration error: smtpdWorkerThreads 2 is more than 1: threads of one process cannot share a listening port; for more workers use smtpdWorkerProcesses\n',
    );
  });

  it('gives way to worker processes, to DKIM and to smtpdWorkerThreads 0, as check-config says', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-layout-'));
    try {
      /** The smtpd line of `postern check-config` for `config`. */
      const smtpdLine = async (config: object): Promise<string> => {
        const file = join(dir, 'postern.json');
        writeFileSync(file, JSON.stringify({ smtpd: [{ listen: '127.0.0.1:2525' }], ...config }));
        const r = await runPostern(['check-config', '--config', file], { cwd: dir });
        expect(r.code, r.stderr).toBe(0);
        return r.stdout.split('\n').find((l) => l.startsWith('  smtpd ')) ?? '';
      };
      expect(await smtpdLine({})).toMatch(/^ {2}smtpd 127\.0\.0\.1:2525 in 1 worker thread,/);
      expect(await smtpdLine({ smtpdWorkerProcesses: 2 })).toMatch(/ in 2 worker processes,/);
      expect(await smtpdLine({ dkimVerification: true })).toMatch(
        /^ {2}smtpd 127\.0\.0\.1:2525, qmqpd/,
      );
      expect(await smtpdLine({ smtpdWorkerThreads: 0 })).toMatch(
        /^ {2}smtpd 127\.0\.0\.1:2525, qmqpd/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a port the thread cannot bind ends the start with the reason, exit 69', async () => {
    const { run, port } = await refusedOnTakenPort();
    expect(run.code).toBe(69);
    expect(run.stderr).toContain(`cannot listen on 127.0.0.1:${port}`);
    expect(run.stderr).toContain('another process uses that port');
  });
});
