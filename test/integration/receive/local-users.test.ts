/**
 * Every local user can send with `postern sendmail`, and none can pass for another:
 * real Unix users (useradd), the built CLI run as them, `postern serve` run as root.
 */

import { chmod, lstat, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headersOf, waitForMaildir } from '../../helpers/maildir.js';
import { type PosternProcess, startPostern } from '../../helpers/postern-process.js';
import {
  cliForOtherUsers,
  createUser,
  nodeAs,
  requireRoot,
  runAs,
  type TestUser,
} from '../../helpers/unix-users.js';

describe('local users submit with postern sendmail', () => {
  let base: string;
  let bin: string;
  let removeCli: () => Promise<void>;
  let ann: TestUser;
  let bob: TestUser;
  let config: string;
  let server: PosternProcess | undefined;
  const queue = () => join(base, 'queue');
  const drop = () => join(base, 'queue', 'maildrop');

  const serverConfig = () => ({
    myhostname: 'mx.example.test',
    smtpd: [{ listen: '127.0.0.1:0' }],
    queueDirectory: queue(),
    mailSpoolDirectory: join(base, 'mail/'),
  });

  /** `postern sendmail ARGS` as `user`, with the shared config. */
  const sendmailAs = (user: TestUser, args: string[], input: string) =>
    runAs(user, process.execPath, [bin, 'sendmail', '-C', config, ...args], { input });

  /** The maildrop's files as root sees them. */
  const maildropFiles = async () =>
    (await readdir(drop())).filter((n) => n !== 'corrupt' && !n.startsWith('.'));

  beforeAll(async () => {
    requireRoot();
    base = await mkdtemp(join(tmpdir(), 'postern-users-'));
    await chmod(base, 0o755);
    ({ bin, remove: removeCli } = await cliForOtherUsers());
    ann = createUser();
    bob = createUser();
    config = join(base, 'postern.json');
    await writeFile(config, JSON.stringify(serverConfig()));
    await chmod(config, 0o644);
  }, 60_000);

  afterAll(async () => {
    await server?.stop('SIGKILL');
    ann?.remove();
    bob?.remove();
    await removeCli?.();
    await rm(base, { recursive: true, force: true });
  });

  it('with the server running: delivered and attributed to the real uid', async () => {
    server = await startPostern(base, serverConfig());
    const r = await sendmailAs(ann, ['frank@localhost'], 'Subject: from ann\n\nhello\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [msg] = await waitForMaildir(join(base, 'mail/frank'), (m) => m.length === 1);
    expect(msg).toContain(`Received: by mx.example.test (Postern, from userid ${ann.uid})`);
    // The default sender is the login name at $myorigin.
    const from = headersOf(msg!).find(([n]) => n === 'return-path')?.[1];
    expect(from).toBe(`<${ann.name}@mx.example.test>`);
    await server.waitForLine(
      new RegExp(`postern/pickup\\[\\d+\\]: \\w+: uid=${ann.uid} from=<${ann.name}>`),
    );

    // sendmail -bs as a user too.
    const bs = await runAs(ann, process.execPath, [bin, 'sendmail', '-C', config, '-bs'], {
      input:
        'EHLO me\r\nMAIL FROM:<ann@example.test>\r\nRCPT TO:<frank@localhost>\r\nDATA\r\nSubject: over -bs\r\n\r\nhi\r\n.\r\nQUIT\r\n',
    });
    expect(bs.stdout).toMatch(/\r\n250 2\.0\.0 Ok: queued as \w+\r\n/);
    const two = await waitForMaildir(join(base, 'mail/frank'), (m) => m.length === 2);
    const overBs = two.find((m) => m.includes('Subject: over -bs'))!;
    expect(overBs).toContain(`(Postern, from userid ${ann.uid})`);
  });

  it('another user cannot list the maildrop, nor read or remove a file in it', async () => {
    await server!.stop('SIGTERM');
    server = undefined;
    const r = await sendmailAs(bob, ['frank@localhost'], 'Subject: from bob\n\nwaiting\n');
    expect(r.code).toBe(0);
    const [file] = await maildropFiles();
    expect(file).toBeDefined();
    const st = await stat(join(drop(), file!));
    expect(st.uid).toBe(bob.uid);
    expect(st.mode & 0o777).toBe(0o640);

    const list = await nodeAs(ann, 'require("fs").readdirSync(process.argv[1])', [drop()]);
    expect(list.code).not.toBe(0);
    expect(list.stderr).toMatch(/EACCES/);
    const read = await nodeAs(ann, 'require("fs").readFileSync(process.argv[1])', [
      join(drop(), file!),
    ]);
    expect(read.stderr).toMatch(/EACCES/);
    const remove = await nodeAs(ann, 'require("fs").unlinkSync(process.argv[1])', [
      join(drop(), file!),
    ]);
    expect(remove.stderr).toMatch(/EPERM|EACCES/);
    const rename = await nodeAs(
      ann,
      'require("fs").renameSync(process.argv[1], process.argv[1] + "x")',
      [join(drop(), file!)],
    );
    expect(rename.stderr).toMatch(/EPERM|EACCES/);
    expect((await lstat(join(drop(), file!))).uid).toBe(bob.uid);
  });

  it('with the server stopped, then started: delivered with the uid of the user', async () => {
    server = await startPostern(base, serverConfig());
    const messages = await waitForMaildir(join(base, 'mail/frank'), (m) =>
      m.some((x) => x.includes('Subject: from bob')),
    );
    const msg = messages.find((m) => m.includes('Subject: from bob'))!;
    expect(msg).toContain(`Received: by mx.example.test (Postern, from userid ${bob.uid})`);
    expect(headersOf(msg).find(([n]) => n === 'return-path')?.[1]).toBe(
      `<${bob.name}@mx.example.test>`,
    );
    await server.waitForLine(
      new RegExp(`postern/pickup\\[\\d+\\]: \\w+: uid=${bob.uid} from=<${bob.name}>`),
    );
    expect(await maildropFiles()).toEqual([]);
  });

  it('a file planted in the maildrop claiming another user is attributed to its real owner', async () => {
    // Written by hand, as a user who bypasses sendmail could: it claims to be root's.
    const script = `
      const fs = require('fs');
      const content = 'Subject: claims root\\n\\nnot really\\n';
      const env = JSON.stringify({ recipients: [{ address: 'frank@localhost' }], user: 'root', time: Date.now() }) + '\\n';
      const trailer = 'POSTERN-MAILDROP 1 ' + Buffer.byteLength(content) + ' ' + Buffer.byteLength(env) + '\\n';
      const dir = process.argv[1];
      fs.writeFileSync(dir + '/.planted', content + env + trailer, { mode: 0o640 });
      fs.renameSync(dir + '/.planted', dir + '/8ZZplanted0001');
    `;
    const planted = await nodeAs(ann, script, [drop()]);
    expect(planted.stderr).toBe('');
    const messages = await waitForMaildir(join(base, 'mail/frank'), (m) =>
      m.some((x) => x.includes('Subject: claims root')),
    );
    const msg = messages.find((m) => m.includes('Subject: claims root'))!;
    expect(msg).toContain(`(Postern, from userid ${ann.uid})`);
    expect(msg).not.toContain('from userid root');
    expect(msg).not.toContain('from userid 0)');
    expect(headersOf(msg).find(([n]) => n === 'return-path')?.[1]).toBe(
      `<${ann.name}@mx.example.test>`,
    );
    await server!.waitForLine(
      new RegExp(`8ZZplanted0001: the file says it is from user "root", but uid ${ann.uid}`),
    );
    await server!.waitForLine(
      new RegExp(`postern/pickup\\[\\d+\\]: \\w+: uid=${ann.uid} from=<${ann.name}>`),
    );
  });

  it('refuses an oversized message as it reads, leaving nothing in the maildrop', async () => {
    await writeFile(
      join(base, 'small.json'),
      JSON.stringify({ ...serverConfig(), messageSizeLimit: 1000 }),
    );
    await chmod(join(base, 'small.json'), 0o644);
    const r = await runAs(
      ann,
      process.execPath,
      [bin, 'sendmail', '-C', join(base, 'small.json'), 'frank@localhost'],
      { input: `Subject: big\n\n${'x'.repeat(5000)}\n` },
    );
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/message file too big: more than 1000 bytes \(messageSizeLimit\)/);
    expect((await readdir(drop())).filter((n) => n !== 'corrupt')).toEqual([]);
  });

  it('postern queue: anyone may list while the server runs; only the owner may change the queue', async () => {
    const list = await runAs(ann, process.execPath, [bin, 'queue', 'list', '--config', config]);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/Mail queue is empty|Requests\./);
    for (const op of [['hold', 'ALL'], ['delete', 'ALL'], ['flush'], ['requeue', 'ALL']]) {
      const r = await runAs(ann, process.execPath, [bin, 'queue', ...op, '--config', config]);
      expect(r.code, op.join(' ')).toBe(77);
      expect(r.stderr).toMatch(new RegExp(`"${op[0]}" is reserved for the owner of the queue`));
    }
    const q = await runAs(ann, process.execPath, [bin, 'sendmail', '-C', config, '-q']);
    expect(q.code).toBe(77);
    // Root, the queue's owner, may.
    const { code } = await runAs({ uid: 0, gid: 0, name: 'root' }, process.execPath, [
      bin,
      'queue',
      'flush',
      '--config',
      config,
    ]);
    expect(code).toBe(0);

    await server!.stop('SIGTERM');
    server = undefined;
    const down = await runAs(ann, process.execPath, [bin, 'queue', 'list', '--config', config]);
    expect(down.code).toBe(69);
    expect(down.stderr).toMatch(/Queue report unavailable - mail system is down/);
  });
});
