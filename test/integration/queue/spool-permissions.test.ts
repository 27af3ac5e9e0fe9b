/**
 * `postern serve` checks the owners and modes of its queue at start-up, as
 * `postfix check` does: too loose and ours is fixed with a warning; another user's is
 * refused with the path and the mode in the message. Real files, a real server
 * process, a real second user.
 */

import { chmod, chown, lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileQueueStore } from '../../../src/queue/stores/file-store.js';
import { runPostern } from '../../helpers/postern-cli.js';
import { startPostern } from '../../helpers/postern-process.js';
import { createUser, requireRoot, type TestUser } from '../../helpers/unix-users.js';
import { commitMessage } from '../../unit/queue/stores/store-conformance.js';

const mode = async (path: string) => ((await lstat(path)).mode & 0o7777).toString(8);

/** `postern serve` that is expected to refuse to start: its exit code and output. */
const serveRefused = (cwd: string, configFile: string) =>
  runPostern(['serve', '--config', configFile], { cwd, timeoutMs: 20_000 });

describe('spool permissions at start-up', () => {
  let dir: string;
  let eve: TestUser;
  beforeAll(async () => {
    requireRoot();
    dir = await mkdtemp(join(tmpdir(), 'postern-perms-'));
    eve = createUser();
  });
  afterAll(async () => {
    eve?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('fixes loose modes of its own queue with a warning, and sets up the sockets', async () => {
    const queue = join(dir, 'loose');
    // A queue left world-writable, a maildrop anyone may list, a queue file others may read.
    const store = new FileQueueStore({ directory: queue });
    await store.open();
    const id = await commitMessage(store, 'Subject: x\r\n\r\ny\r\n');
    await store.hold([id]);
    await store.close();
    await mkdir(join(queue, 'maildrop'));
    await chmod(queue, 0o777);
    await chmod(join(queue, 'maildrop'), 0o777);
    await chmod(join(queue, 'deferred'), 0o755);
    await chmod(join(queue, 'hold', id), 0o644);
    const server = await startPostern(dir, {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory: queue,
    });
    try {
      const out = server.output.join('\n');
      expect(out).toMatch(
        new RegExp(`warning: ${queue} had mode 0777, looser than 0755 .*: changed to 0755`),
      );
      expect(out).toMatch(
        new RegExp(`warning: ${queue}/maildrop had mode 0777, looser than 3733 .*changed to 3733`),
      );
      expect(out).toMatch(new RegExp(`warning: ${queue}/deferred had mode 0755, looser than 0700`));
      expect(out).toMatch(new RegExp(`${id}: hold/${id} had mode 0644, looser than 0600: changed`));
      expect(await mode(queue)).toBe('755');
      expect(await mode(join(queue, 'maildrop'))).toBe('3733');
      expect(await mode(join(queue, 'maildrop', 'corrupt'))).toBe('700');
      expect(await mode(join(queue, 'deferred'))).toBe('700');
      expect(await mode(join(queue, 'hold', id))).toBe('600');
      expect(await mode(join(queue, 'private'))).toBe('700');
      expect(await mode(join(queue, 'private', 'control.sock'))).toBe('600');
      expect(await mode(join(queue, 'public'))).toBe('711');
      expect(await mode(join(queue, 'public', 'showq.sock'))).toBe('666');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it.each([
    ['the queue directory', ''],
    ['the maildrop', 'maildrop'],
    ['a queue state directory', 'deferred'],
  ])('refuses to start when %s belongs to another user', async (_what, sub) => {
    const queue = join(dir, `foreign-${sub || 'queue'}`);
    const store = new FileQueueStore({ directory: queue });
    await store.open();
    await store.close();
    await mkdir(join(queue, 'maildrop'), { recursive: true });
    const target = join(queue, sub);
    await chown(target, eve.uid, eve.gid);
    await chmod(target, 0o755);
    const configFile = join(dir, `foreign-${sub || 'queue'}.json`);
    await writeFile(
      configFile,
      JSON.stringify({ smtpd: [{ listen: '127.0.0.1:0' }], queueDirectory: queue }),
    );
    const r = await serveRefused(dir, configFile);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${target.replace(/\/$/, '')} is owned by uid ${eve.uid}`);
    expect(r.stderr).toContain('(mode 0755)');
    expect(r.stderr).toContain('not by uid 0 that runs postern');
    // Nothing was changed in the other user's directory.
    expect(await mode(target)).toBe('755');
    expect((await lstat(target)).uid).toBe(eve.uid);
  });

  it('refuses a symbolic link where the maildrop should be', async () => {
    const queue = join(dir, 'linked');
    await mkdir(queue, { recursive: true });
    await mkdir(join(dir, 'elsewhere'));
    const { symlink } = await import('node:fs/promises');
    await symlink(join(dir, 'elsewhere'), join(queue, 'maildrop'));
    const configFile = join(dir, 'linked.json');
    await writeFile(
      configFile,
      JSON.stringify({ smtpd: [{ listen: '127.0.0.1:0' }], queueDirectory: queue }),
    );
    const r = await serveRefused(dir, configFile);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${queue}/maildrop is a symbolic link`);
  });
});
