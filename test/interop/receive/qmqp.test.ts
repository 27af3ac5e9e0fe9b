import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Logger } from '../../../src/log.js';
import { Mta } from '../../../src/mta/mta.js';
import type { LogEvent } from '../../../src/types.js';
import { qmqpSend } from '../../helpers/qmqp-client.js';

const run = promisify(execFile);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

// Issue 4, acceptance 1: Postfix's QMQP tools against Postern and against our test client.
describe('QMQP interop with qmqp-source and qmqp-sink', () => {
  let dir: string;
  let mta: Mta;
  const events: LogEvent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-qmqp-interop-'));
    mta = new Mta(
      {
        myhostname: 'mx.example.test',
        smtpd: [],
        qmqpd: [{ listen: '127.0.0.1:0' }],
        qmqpdAuthorizedClients: ['127.0.0.1'],
        queueDirectory: join(dir, 'queue'),
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

  it('qmqp-source: 10 sessions, 5000 messages, every one queued and delivered', async () => {
    const port = mta.qmqpListeners[0]!.port;
    const { stderr } = await run(
      'qmqp-source',
      [
        '-s',
        '10',
        '-m',
        '5000',
        '-l',
        '4096',
        '-f',
        'load@client.example',
        '-t',
        'sink@remote.example',
        `127.0.0.1:${port}`,
      ],
      { timeout: 150_000 },
    );
    expect(stderr).toBe('');
    const delivered = () =>
      events.filter((e) => /to=<sink@remote\.example>.*status=sent/.test(e.text)).length;
    const end = Date.now() + 60_000;
    while (delivered() < 5000 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(delivered()).toBe(5000);
    expect(events.filter((e) => e.component === 'qmqpd' && /client=/.test(e.text))).toHaveLength(
      5000,
    );
  });

  it("the test client's framing is accepted by Postfix's qmqp-sink", async () => {
    const port = await freePort();
    const sink: ChildProcess = spawn('qmqp-sink', [`127.0.0.1:${port}`, '10'], { stdio: 'ignore' });
    try {
      let reply: Awaited<ReturnType<typeof qmqpSend>> | undefined;
      for (let i = 0; i < 50 && !reply; i++) {
        reply = await qmqpSend(port, 'Subject: framing\n\nbody\n', 'a@client.example', [
          'b@remote.example',
          'c@remote.example',
        ]).catch(async () => {
          await new Promise((r) => setTimeout(r, 100));
          return undefined;
        });
      }
      expect(reply?.status).toBe('K');
    } finally {
      sink.kill();
    }
  });
});
