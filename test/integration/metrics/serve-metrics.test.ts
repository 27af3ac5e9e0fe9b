import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { type PosternProcess, startPostern } from '../../helpers/postern-process.js';

let server: PosternProcess | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('postern serve with "metrics" in a JSON config', () => {
  it('serves /metrics and counts what the server does', async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-serve-metrics-'));
    server = await startPostern(dir, {
      myhostname: 'mx.example.test',
      localRecipientMaps: '', // every local part is a recipient here
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory: join(dir, 'queue'),
      mailSpoolDirectory: join(dir, 'mail/'),
      metrics: { listen: '127.0.0.1:0' },
    });
    const line = await server.waitForLine(/metrics on http:\/\//);
    const url = /(http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(line)![1]!;

    const mailer = nodemailer.createTransport({
      host: '127.0.0.1',
      port: server.port,
      ignoreTLS: true,
    });
    await mailer.sendMail({
      from: 'app@example.test',
      to: 'alice@localhost',
      subject: 'hi',
      text: 'hi',
    });
    await server.waitForLine(/to=<alice@localhost>, relay=local, .*status=sent/);

    const res = await fetch(url);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    expect(body).toContain('postern_deliveries_total{transport="local",status="sent"} 1\n');
    expect(body).toContain('postern_messages_received_total{receiver="smtpd"} 1\n');
    expect(body).toContain(
      `postern_sessions_active{service="smtpd",listener="127.0.0.1:${server.port}"} `,
    );
    expect(body).toContain('postern_queue_messages{queue="incoming"} ');
  });
});
