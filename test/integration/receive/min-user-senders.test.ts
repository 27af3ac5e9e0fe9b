/**
 * allowMinUser applies to senders on every way in: a sender that starts with `-` is
 * refused by SMTP MAIL FROM (`501 5.1.7 Bad sender address syntax`, as Postfix's smtpd),
 * by QMQP (a `D` reply), by `submit()` (SmtpError 501 5.1.7) and by `sendmail -f`
 * (EX_USAGE), and nothing is queued. With `allowMinUser` the operator accepts them.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EX, sendmail } from '../../../src/cli/sendmail.js';
import { SmtpError } from '../../../src/errors.js';
import { Mta } from '../../../src/mta/mta.js';
import { qmqpSend } from '../../helpers/qmqp-client.js';
import { queuedFiles } from '../../helpers/queue-files.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';

const EVIL = '-oQ/var/evil@example.org';

describe('a sender that starts with "-"', () => {
  let dir: string;
  let queue: string;
  let mta: Mta;
  let smtpPort: number;
  let lenientPort: number;
  let qmqpPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-minuser-'));
    queue = join(dir, 'queue');
    mta = new Mta({
      myhostname: 'mx.example.test',
      queueDirectory: queue,
      mailSpoolDirectory: join(dir, 'mail/'),
      smtpd: [{ listen: '127.0.0.1:0' }, { listen: '127.0.0.1:0', allowMinUser: true }],
      qmqpd: [{ listen: '127.0.0.1:0' }],
      qmqpdAuthorizedClients: ['127.0.0.0/8'],
      qmqpdErrorDelay: '0s',
      smtpdErrorSleepTime: '0s',
    });
    await mta.start();
    smtpPort = mta.listeners[0]!.port;
    lenientPort = mta.listeners[1]!.port;
    qmqpPort = mta.qmqpListeners[0]!.port;
  });
  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('gets 501 5.1.7 at SMTP MAIL FROM, in every spelling', async () => {
    const c = await SmtpDialogue.open(smtpPort);
    await c.read();
    await c.expect('EHLO client.example', 250);
    for (const arg of [`<${EVIL}>`, '<"-oQ/var/evil"@example.org>', '<-f>', `<${EVIL}> SIZE=10`]) {
      const r = await c.command(`MAIL FROM:${arg}`);
      expect(`${r.code} ${r.text}`).toBe('501 5.1.7 Bad sender address syntax');
    }
    // The session goes on: a good sender is taken.
    await c.expect('MAIL FROM:<alice@example.org>', 250);
    c.close();
  });

  it('is taken at SMTP when the listener sets allowMinUser, as in Postfix', async () => {
    const c = await SmtpDialogue.open(lenientPort);
    await c.read();
    await c.expect('EHLO client.example', 250);
    await c.expect(`MAIL FROM:<${EVIL}>`, 250);
    await c.expect('RSET', 250);
    c.close();
  });

  it('gets a D reply from QMQP', async () => {
    const r = await qmqpSend(qmqpPort, 'Subject: x\n\nbody\n', EVIL, ['alice@localhost']);
    expect(r.status).toBe('D');
    expect(r.text).toMatch(/bad sender address syntax: it starts with "-"/);
  });

  it('makes submit() reject with 501 5.1.7 before anything is queued', async () => {
    const err = await mta
      .submit({ from: EVIL, to: ['alice@localhost'], content: 'Subject: x\n\nbody\n' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect((err as SmtpError).reply.toString()).toBe('501 5.1.7 Bad sender address syntax');
    expect((err as SmtpError).message).toMatch(/<-oQ\/var\/evil@example\.org>: it starts with "-"/);
  });

  it('makes sendmail -f exit with EX_USAGE and write nothing', async () => {
    const stderr = new PassThrough();
    let said = '';
    stderr.on('data', (c: Buffer) => {
      said += c.toString();
    });
    const config = join(dir, 'postern.json');
    await writeFile(config, JSON.stringify({ queueDirectory: queue }));
    const code = await sendmail(['-f', EVIL, 'alice@localhost'], {
      stdin: Readable.from(['Subject: x\n\nbody\n']),
      stdout: new PassThrough(),
      stderr,
      env: { POSTERN_CONFIG: config },
    });
    expect(code).toBe(EX.USAGE);
    expect(said).toMatch(/-f <-oQ\/var\/evil@example\.org>: bad sender address syntax/);
  });

  it('left nothing in the queue', async () => {
    expect(await queuedFiles(queue)).toEqual([]);
  });
});
