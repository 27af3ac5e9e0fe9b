/**
 * No loss across kill -9 in the middle of the queue journal's batched commits, end to
 * end: a real `postern serve` relays to an SMTP sink (smtp-server) while 20 sessions
 * send to it; it is killed with SIGKILL while commits are in flight, then started again
 * on the same queue. The client side records the queue ID of every 250 ("queued as
 * ID"); the sink records the queue ID of every delivery (Postern's Received header).
 *
 * What must hold: every acknowledged message is delivered; one the sink had not seen at
 * the kill is delivered exactly once; one it had seen (a delivery whose removal was not
 * yet written) at least once; and the queue is empty at the end.
 *
 * @module
 */

import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { FileQueueStore } from '../../src/queue/stores/file-store.js';
import { ConditionWaits } from '../helpers/condition-waits.js';
import { runPostern } from '../helpers/postern-cli.js';
import { type PosternProcess, startPostern } from '../helpers/postern-process.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

const SESSIONS = 20;
/** Bounded load: at most SESSIONS x PER_SESSION messages. */
const PER_SESSION = 150;
/** The kill comes once this many messages were acknowledged. */
const KILL_AFTER = 600;

/** An SMTP sink that counts deliveries by Postern queue ID and knows its open connections. */
interface CountingSink {
  readonly port: number;
  /** Deliveries per queue ID (from the topmost Received header). */
  readonly byQueueId: Map<string, number>;
  /** Connections open now. */
  readonly open: () => number;
  /** Delay of the 250 after DATA, in ms (keeps a backlog queued during the load). */
  delay: number;
  /** Resolves once `done()` holds, checked after each delivery and each closed connection. */
  until(done: () => boolean, ms: number): Promise<boolean>;
  close(): Promise<void>;
}

async function startCountingSink(): Promise<CountingSink> {
  const byQueueId = new Map<string, number>();
  const waits = new ConditionWaits();
  let open = 0;
  const sink: CountingSink = {
    port: 0,
    byQueueId,
    open: () => open,
    delay: 0,
    until: (done, ms) => waits.until(done, ms),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    maxClients: 500,
    onConnect(_session, callback) {
      open++;
      callback();
    },
    onClose() {
      open--;
      waits.wake();
    },
    onData(stream, _session, callback) {
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        if (head.length < 4096) head += chunk.toString('latin1');
      });
      stream.on('end', () => {
        // Counted when the whole message has arrived, whether or not the 250 gets back.
        const id = /^Received: [\s\S]*?\bid ([0-9A-Za-z]+)[;\s]/.exec(head)?.[1] ?? 'unparsed';
        byQueueId.set(id, (byQueueId.get(id) ?? 0) + 1);
        waits.wake();
        if (sink.delay > 0) setTimeout(() => callback(), sink.delay);
        else callback();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  (sink as { port: number }).port = typeof address === 'object' && address ? address.port : 0;
  return sink;
}

/** `postern queue list --json` through the running server: '' when the queue is empty. */
async function listQueue(cwd: string): Promise<string> {
  const r = await runPostern(['queue', 'list', '--json', '--config', join(cwd, 'postern.json')], {
    cwd,
  });
  if (r.code !== 0) throw new Error(`postern queue list exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

describe('crash safety with the queue journal', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('kill -9 during batched commits: every acknowledged queue ID reaches the sink, exactly once unless it was being delivered', {
    timeout: 150_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-crash-journal-'));
    dirs.push(dir);
    const sink = await startCountingSink();
    const config = {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      relayhost: `[127.0.0.1]:${sink.port}`,
      smtpTlsSecurityLevel: 'none',
    };
    // During the load, deliveries are slower than acceptance: a backlog is queued at the kill.
    sink.delay = 20;
    let first: PosternProcess | undefined = await startPostern(dir, {
      ...config,
      defaultDestinationConcurrencyLimit: 2,
    });
    let second: PosternProcess | undefined;
    try {
      const acked = new Set<string>();
      let enough: () => void = () => undefined;
      const reached = new Promise<void>((resolve) => {
        enough = resolve;
      });
      /** Sessions whose end of DATA was sent and whose reply had not come yet. */
      let committing = 0;
      let killed = false;
      const body = `${'x'.repeat(76)}\r\n`.repeat(52); // about 4 KB
      const session = async (s: number, port: number) => {
        let c: SmtpDialogue | undefined;
        try {
          c = await SmtpDialogue.open(port);
          await c.read();
          await c.expect('EHLO load.example', 250);
          for (let i = 0; i < PER_SESSION && !killed; i++) {
            await c.expect('MAIL FROM:<load@client.example>', 250);
            await c.expect(`RCPT TO:<s${s}m${i}@remote.example>`, 250);
            await c.expect('DATA', 354);
            committing++;
            const reply = c.command(`Subject: s${s}m${i}\r\n\r\n${body}.`).finally(() => {
              committing--;
            });
            // Once enough were acknowledged, the kill comes while this commit is in flight.
            if (acked.size >= KILL_AFTER) enough();
            const r = await reply;
            const id = /queued as ([0-9A-Za-z]+)/.exec(r.text)?.[1];
            if (r.code === 250 && id) acked.add(id);
          }
        } catch {
          // The server died under us: what was acknowledged is recorded.
        } finally {
          c?.close();
        }
      };
      const port = first.port;
      const load = Promise.all(Array.from({ length: SESSIONS }, (_, s) => session(s, port)));
      // The kill comes once enough were acknowledged (or the load ended: then it fails below).
      await Promise.race([reached, load]);
      const inFlightAtKill = committing;
      killed = true;
      first.child.kill('SIGKILL');
      await first.stop('SIGKILL');
      first = undefined;
      await load;
      expect(acked.size).toBeGreaterThanOrEqual(KILL_AFTER);
      // The kill came while messages were being committed (a batch in flight).
      expect(inFlightAtKill).toBeGreaterThan(0);
      // The messages were journalled: no file of their own, segments in journal/.
      expect(await readdir(join(dir, 'var/queue/incoming'))).toEqual([]);
      expect((await readdir(join(dir, 'var/queue/journal'))).length).toBeGreaterThan(0);

      // Whatever the dead server had sent has arrived once the sink's connections closed.
      expect(await sink.until(() => sink.open() === 0, 30_000)).toBe(true);
      const seenAtKill = new Map(sink.byQueueId);
      const pending = [...acked].filter((id) => !seenAtKill.has(id));
      // Otherwise the restart would have nothing to recover and the test would prove nothing.
      expect(pending.length).toBeGreaterThan(0);

      sink.delay = 0;
      second = await startPostern(dir, config);
      // The restarted server drains its queue (what it recovered from the journal and
      // files); then the sink must hold every acknowledged message.
      let listed = await listQueue(dir);
      for (let tries = 0; listed !== '' && tries < 300; tries++) listed = await listQueue(dir);
      expect(listed).toBe('');
      const missing = [...acked].filter((id) => !sink.byQueueId.has(id));
      expect(missing).toEqual([]);
      expect(await second.stop('SIGTERM')).toBe(0);
      second = undefined;

      // Exactly once for what the sink had not seen at the kill.
      const twice = pending.filter((id) => sink.byQueueId.get(id) !== 1);
      expect(twice).toEqual([]);
      // At least once (and no more than once again) for what was being delivered.
      for (const [id, n] of seenAtKill) expect(sink.byQueueId.get(id)).toBeLessThanOrEqual(n + 1);
      expect(sink.byQueueId.has('unparsed')).toBe(false);

      // The queue is empty: nothing acknowledged is left behind in files or the journal.
      expect(existsSync(join(dir, 'var/queue/journal'))).toBe(true);
      const store = new FileQueueStore({ directory: join(dir, 'var/queue') });
      await store.open();
      try {
        expect(await store.counts()).toMatchObject({
          incoming: 0,
          active: 0,
          deferred: 0,
          hold: 0,
          corrupt: 0,
        });
      } finally {
        await store.close();
      }
    } finally {
      await first?.stop('SIGKILL');
      await second?.stop('SIGKILL');
      await sink.close();
    }
  });
});
