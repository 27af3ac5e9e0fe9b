/**
 * A FIFO, a device or a symbolic link in a queue directory is moved to corrupt/ with a
 * warning and never waited on: new mail is delivered, `postern queue list` answers,
 * SIGTERM ends the server. A real server process and real special files.
 */

import { execFileSync } from 'node:child_process';
import { lstat, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileQueueStore } from '../../../src/queue/stores/file-store.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { waitForMaildir } from '../../helpers/maildir.js';
import { runPostern } from '../../helpers/postern-cli.js';
import { type PosternProcess, startPostern } from '../../helpers/postern-process.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';
import { requireRoot } from '../../helpers/unix-users.js';
import { commitMessage, newRecord } from '../../unit/queue/stores/store-conformance.js';

/** `postern queue ARGS`; a run that does not end in time counts as a hang (code null). */
const queueCli = (cwd: string, args: string[]) =>
  runPostern(['queue', ...args], { cwd, timeoutMs: 15_000 });

/** Stops the server; null when SIGTERM did not end it in time (then it is killed). */
async function stopWithin(server: PosternProcess, ms: number): Promise<number | null> {
  const stopped = server.stop('SIGTERM');
  const timer = new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms));
  const outcome = await Promise.race([stopped, timer]);
  if (outcome !== 'hung') return outcome;
  server.child.kill('SIGKILL');
  return null;
}

describe('special files in the queue directories', () => {
  let dir: string;
  const ids = new QueueIdGenerator();
  beforeAll(async () => {
    requireRoot(); // mknod
    dir = await mkdtemp(join(tmpdir(), 'postern-special-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('are moved to corrupt/ at start-up; delivery, queue list and SIGTERM go on', async () => {
    const queue = join(dir, 'queue');
    const store = new FileQueueStore({ directory: queue });
    await store.open();
    const waiting = await commitMessage(store, 'Subject: waiting\r\n\r\nqueued before\r\n', {
      recipients: newRecord('x').recipients.map((r) => ({
        ...r,
        address: 'frank@localhost',
        originalAddress: 'frank@localhost',
      })),
    });
    await store.close();
    const fifo = ids.next();
    const link = ids.next();
    const device = ids.next();
    execFileSync('mkfifo', [join(queue, 'incoming', fifo)]);
    await symlink('/etc/passwd', join(queue, 'deferred', link));
    execFileSync('mknod', [join(queue, 'hold', device), 'c', '1', '3']);

    const config = {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory: queue,
      mailSpoolDirectory: join(dir, 'mail/'),
      // frank is no account of this host: accept every local part at RCPT.
      localRecipientMaps: '',
    };
    const server = await startPostern(dir, config);
    let code: number | null = -1;
    try {
      await server.waitForLine(new RegExp(`incoming/${fifo} is a FIFO, not a queue file; moved`));
      await server.waitForLine(new RegExp(`deferred/${link} is a symbolic link, not a queue file`));
      await server.waitForLine(
        new RegExp(`hold/${device} is a character device, not a queue file`),
      );

      // New mail goes through while the special files sit in corrupt/.
      const smtp = await SmtpDialogue.open(server.port);
      await smtp.read();
      await smtp.expect('HELO me', 250);
      await smtp.expect('MAIL FROM:<a@example.test>', 250);
      await smtp.expect('RCPT TO:<frank@localhost>', 250);
      await smtp.expect('DATA', 354);
      await smtp.expect('Subject: fresh\r\n\r\nnew mail\r\n.', 250);
      smtp.close();
      const messages = await waitForMaildir(join(dir, 'mail/frank'), (m) => m.length === 2);
      expect(messages.map((m) => /Subject: (\w+)/.exec(m)?.[1]).sort()).toEqual([
        'fresh',
        'waiting',
      ]);
      expect(waiting).toMatch(/^\w+$/);

      await writeConfig(dir, config);
      const list = await queueCli(dir, ['list', '--config', join(dir, 'postern.json')]);
      expect(list.code).toBe(0);
      expect(list.stdout).not.toContain(fifo);
    } finally {
      code = await stopWithin(server, 15_000);
    }
    expect(code).toBe(0);
    const corrupt = (await readdir(join(queue, 'corrupt'))).sort();
    expect(corrupt).toEqual([fifo, link, device].sort());
    expect((await lstat(join(queue, 'corrupt', fifo))).isFIFO()).toBe(true);
  });

  it('postern queue list with the server stopped does not hang on a FIFO', async () => {
    const queue = join(dir, 'stopped');
    const store = new FileQueueStore({ directory: queue });
    await store.open();
    await commitMessage(store);
    await store.close();
    const fifo = ids.next();
    execFileSync('mkfifo', [join(queue, 'incoming', fifo)]);
    const config = join(dir, 'stopped.json');
    await writeConfig(dir, { queueDirectory: queue }, config);
    const list = await queueCli(dir, ['list', '--config', config]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/in 1 Request/);
    expect((await lstat(join(queue, 'corrupt', fifo))).isFIFO()).toBe(true);
  });
});

async function writeConfig(
  dir: string,
  config: object,
  file = join(dir, 'postern.json'),
): Promise<void> {
  await writeFile(file, JSON.stringify(config));
}
