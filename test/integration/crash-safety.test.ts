import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMaildir, waitForMaildir } from '../helpers/maildir.js';
import { startPostern } from '../helpers/postern-process.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

/**
 * Invariant 1 (no loss): every message that got a 250 is delivered after a SIGKILL and a
 * restart. Several sessions send concurrently; the server is killed mid-load.
 */
describe('crash safety', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('delivers every acknowledged message after SIGKILL and restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-crash-'));
    dirs.push(dir);
    const config = {
      myhostname: 'mx.example.test',
      localRecipientMaps: '', // every local part is a recipient here
      smtpd: [{ listen: '127.0.0.1:0' }],
    };
    // The first run delivers one message at a time so that a backlog is queued at the kill.
    const first = await startPostern(dir, { ...config, qmgrMessageActiveLimit: 1 });

    const acked = new Set<string>();
    let stop = false;
    const SESSIONS = 8;
    const PER_SESSION = 200; // bounded: at most 1600 messages
    const sender = async (s: number) => {
      for (let i = 0; i < PER_SESSION && !stop; i++) {
        const tag = `s${s}m${i}`;
        let c: SmtpDialogue | undefined;
        try {
          c = await SmtpDialogue.open(first.port);
          await c.read();
          await c.expect('EHLO load.example', 250);
          await c.expect('MAIL FROM:<load@client.example>', 250);
          await c.expect(`RCPT TO:<user${s}@localhost>`, 250);
          await c.expect('DATA', 354);
          const r = await c.command(`Subject: ${tag}\r\n\r\n${'x'.repeat(2000)}\r\n.`);
          if (r.code === 250) acked.add(tag);
          c.close();
        } catch {
          c?.close();
          return; // the server died under us
        }
      }
    };
    const load = Promise.all(Array.from({ length: SESSIONS }, (_, s) => sender(s)));
    // Kill once a good number of messages were acknowledged (bounded wait).
    const deadline = Date.now() + 30_000;
    while (acked.size < 150 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    first.child.kill('SIGKILL');
    stop = true;
    await load;
    await first.stop('SIGKILL');
    expect(acked.size).toBeGreaterThanOrEqual(150);
    let deliveredAtKill = 0;
    for (let s = 0; s < SESSIONS; s++)
      deliveredAtKill += (await readMaildir(join(dir, 'var/mail', `user${s}`))).length;
    // Otherwise the restart would have nothing to recover and the test would prove nothing.
    expect(deliveredAtKill).toBeLessThan(acked.size);

    const second = await startPostern(dir, config);
    try {
      const wanted = [...acked];
      const delivered = new Set<string>();
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        delivered.clear();
        for (let s = 0; s < SESSIONS; s++) {
          for (const m of await readMaildir(join(dir, 'var/mail', `user${s}`))) {
            const subject = /\r\nSubject: (\S+)\r\n/.exec(m)?.[1];
            if (subject) delivered.add(subject);
          }
        }
        if (wanted.every((t) => delivered.has(t))) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const missing = wanted.filter((t) => !delivered.has(t));
      expect(missing).toEqual([]);
      // The queue drains completely: nothing acknowledged is left behind either.
      await waitForMaildir(join(dir, 'var/mail/user0'), () => true);
      const end2 = Date.now() + 30_000;
      let left: string[] = [];
      while (Date.now() < end2) {
        left = [];
        for (const q of ['incoming', 'active', 'deferred']) {
          left.push(...(await readdir(join(dir, 'var/queue', q)).catch(() => [])));
        }
        if (left.length === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(left).toEqual([]);
    } finally {
      expect(await second.stop('SIGTERM')).toBe(0);
    }
  });
});
