import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Logger } from '../../src/log.js';
import { Mta } from '../../src/mta/mta.js';
import type { LogEvent } from '../../src/types.js';

const run = promisify(execFile);

// Postfix's own load generator and swaks against a real Postern over loopback.
describe('interop with Postfix smtp-source and swaks', () => {
  let dir: string;
  let mta: Mta;
  const events: LogEvent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-interop-'));
    mta = new Mta(
      {
        myhostname: 'mx.example.test',
        localRecipientMaps: '', // every local part is a recipient here
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueDirectory: join(dir, 'queue'),
        mailSpoolDirectory: join(dir, 'mail/'),
        defaultTransport: 'discard',
      },
      { logger: new Logger([(e) => events.push(e)]) },
    );
    await mta.start();
  });

  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('smtp-source: 20 sessions, 2000 messages of 4 KB, every one queued and delivered', async () => {
    const port = mta.listeners[0]!.port;
    const { stderr } = await run(
      'smtp-source',
      [
        '-s',
        '20',
        '-m',
        '2000',
        '-l',
        '4096',
        '-f',
        'load@client.example',
        '-t',
        'sink@remote.example',
        `127.0.0.1:${port}`,
      ],
      { timeout: 120_000 },
    );
    expect(stderr).toBe('');
    const end = Date.now() + 60_000;
    const sent = () => events.filter((e) => /status=sent/.test(e.text)).length;
    while (sent() < 2000 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(
      events.filter((e) => /to=<sink@remote\.example>.*status=sent/.test(e.text)),
    ).toHaveLength(2000);
    expect(events.filter((e) => /status=(deferred|bounced)/.test(e.text))).toHaveLength(0);
  });

  it('swaks with --pipeline gets its message queued', async () => {
    const port = mta.listeners[0]!.port;
    const { stdout } = await run(
      'swaks',
      [
        '--server',
        `127.0.0.1:${port}`,
        '--from',
        'swaks@client.example',
        '--to',
        'dave@localhost',
        '--pipeline',
        '--header',
        'Subject: swaks test',
      ],
      { timeout: 30_000 },
    );
    const id = /<[-~]\s+250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)/.exec(stdout)?.[1];
    expect(id).toBeDefined();
    const end = Date.now() + 20_000;
    while (
      !events.some((e) => e.queueId === id && /status=sent/.test(e.text)) &&
      Date.now() < end
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(
      events.some(
        (e) => e.queueId === id && /to=<dave@localhost>, relay=local.*status=sent/.test(e.text),
      ),
    ).toBe(true);
  });
});
