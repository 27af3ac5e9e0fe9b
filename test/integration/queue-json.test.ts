import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPostern } from '../helpers/postern-cli.js';
import { type PosternProcess, startPostern } from '../helpers/postern-process.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('postern queue list --json (postqueue -j)', () => {
  let dir: string;
  let server: PosternProcess;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-qjson-'));
    server = await startPostern(dir, {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory: join(dir, 'queue'),
      transportMaps: { 'slow.example': `smtp:[127.0.0.1]:${await closedPort()}` },
    });
    const c = await SmtpDialogue.open(server.port);
    await c.read();
    await c.expect('EHLO client.example', 250);
    await c.expect('MAIL FROM:<ann@client.example>', 250);
    await c.expect('RCPT TO:<bob@slow.example>', 250);
    await c.expect('RCPT TO:<"odd \\"quoted\\""@slow.example>', 250);
    await c.expect('DATA', 354);
    await c.expect('Subject: waiting\r\n\r\nhello\r\n.', 250);
    await c.expect('QUIT', 221);
    await server.waitForLine(/to=<bob@slow\.example>, .*status=deferred/);
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints one JSON object per message with postqueue -j fields', async () => {
    const r = await runPostern(['queue', 'list', '--json', '--config', join(dir, 'postern.json')], {
      cwd: dir,
    });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    // Postfix's own spacing: `{"queue_name": "deferred", "queue_id": ...}`.
    expect(lines[0]).toMatch(
      /^\{"queue_name": "deferred", "queue_id": "[A-Za-z0-9]+", "arrival_time": \d+, "message_size": \d+, "forced_expire": false, "sender": "ann@client\.example", "recipients": \[\{"address": /,
    );
    const m = JSON.parse(lines[0]!) as {
      queue_name: string;
      arrival_time: number;
      message_size: number;
      recipients: { address: string; delay_reason?: string }[];
    };
    expect(m.arrival_time).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(m.arrival_time).toBeLessThanOrEqual(Date.now() / 1000);
    expect(m.message_size).toBeGreaterThan(0);
    expect(m.recipients.map((x) => x.address)).toEqual([
      'bob@slow.example',
      '"odd \\"quoted\\""@slow.example',
    ]);
    for (const x of m.recipients)
      expect(x.delay_reason).toMatch(/connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+/);
  });
});
