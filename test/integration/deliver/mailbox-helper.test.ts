/**
 * The mailbox helper process and its pool, for real: the built helper (dist/) switches
 * to the user before it reads anything, refuses root, writes and reads with the user's
 * rights, is reused per user and ended when idle; an aborted or failed message leaves
 * nothing behind; a helper that dies, lies about its identity, breaks the protocol or
 * hangs is a deferral, not a hang. Also: without root nothing is handed to a helper.
 * Runs as root (CI does).
 *
 * @module
 */

import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DeliveryRights } from '../../../src/deliver/delivery-rights.js';
import {
  HelperError,
  locateHelper,
  MailboxHelperPool,
} from '../../../src/deliver/mailbox-helper-pool.js';
import { encodeFrame, FRAME, jsonFrame } from '../../../src/deliver/mailbox-helper-protocol.js';
import { passwdUserSync } from '../../../src/util/user-database.js';
import { requireRoot } from '../../helpers/unix-users.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
let dir: string;
let nobody: DeliveryRights;
const pools: MailboxHelperPool[] = [];

beforeAll(async () => {
  requireRoot();
  const entry = passwdUserSync('nobody')!;
  nobody = { uid: entry.uid!, gid: entry.gid!, user: 'nobody' };
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-helper-'));
  await fs.chmod(dir, 0o755);
  await fs.chown(dir, nobody.uid, nobody.gid);
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await fs.rm(dir, { recursive: true, force: true });
});

function pool(options: Partial<ConstructorParameters<typeof MailboxHelperPool>[0]> = {}) {
  const p = new MailboxHelperPool({ maxIdleMs: 60_000, ...options });
  pools.push(p);
  return p;
}

async function* bytes(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

const MBOX = { sizeLimit: 0, lock: { attempts: 2, delayMs: 10, staleMs: 500_000 } };

function runHelper(
  args: string[],
  options: { uid?: number; gid?: number } = {},
): Promise<{ code: number | null; stderr: string; stdout: Buffer }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [locateHelper(), ...args], {
      env: {},
      stdio: ['pipe', 'pipe', 'pipe'],
      ...options,
    });
    let stderr = '';
    const out: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('close', (code) => resolve({ code, stderr, stdout: Buffer.concat(out) }));
    child.stdin.end();
  });
}

/**
 * A program (ESM or CommonJS, after `imports`) that delivers one message to `address`
 * with the agent `agent` builds, prints each outcome and closes the agent.
 */
function deliveryProgram(imports: string, agent: string, address: string): string {
  return `${imports}
    (async () => {
      const { Readable } = await import('node:stream');
      const agent = ${agent};
      const body = Buffer.from('Subject: x\\r\\n\\r\\nhi\\r\\n');
      await agent.deliver({
        queueId: 'HELPERTEST', transport: 'local', nexthop: 'example.com', sender: 's@example.org',
        recipients: [{ id: 0, address: '${address}', originalAddress: '${address}' }],
        size: body.length, bodyType: '7BIT', smtputf8: false, eightBit: false, arrivalTime: 0,
        source: { component: 'smtpd', protocol: 'ESMTP' },
        openContent: () => Readable.from([body]), signal: new AbortController().signal,
      }, { recipient: (id, r) => console.log(r.status + ' ' + r.reply.toString()), destination() {} });
      await agent.close();
    })();
  `;
}

describe('mailbox helper process', () => {
  it('refuses to run as root, without root, or with bad arguments', async () => {
    const asRoot = await runHelper(['0', '0']);
    expect([asRoot.code, asRoot.stderr]).toEqual([75, expect.stringMatching(/as root/)]);
    const unprivileged = await runHelper([String(nobody.uid), String(nobody.gid)], nobody);
    expect([unprivileged.code, unprivileged.stderr]).toEqual([
      75,
      expect.stringMatching(/must be started as root/),
    ]);
    const bad = await runHelper(['x', '1']);
    expect(bad.code).toBe(64);
    for (const r of [asRoot, unprivileged, bad]) expect(r.stdout.length).toBe(0);
  });

  it('switches user, groups included, before reading, and exits on input that breaks the protocol', async () => {
    const target = path.join(dir, 'never');
    const child = spawn(
      process.execPath,
      [locateHelper(), String(nobody.uid), String(nobody.gid), 'nobody'],
      { env: {}, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    const closed = new Promise<number | null>((r) => child.on('close', r));
    // An mbox request without its lock settings.
    child.stdin.write(jsonFrame(FRAME.BEGIN, { op: 'mbox', path: target, sizeLimit: 0 }));
    child.stdin.write(encodeFrame(FRAME.DATA, Buffer.from('From x\n\n')));
    child.stdin.write(encodeFrame(FRAME.END));
    child.stdin.end();
    expect(await closed).toBe(70);
    const ready = JSON.parse(Buffer.concat(out).subarray(5).toString());
    expect(ready).toEqual({ uid: nobody.uid, gid: nobody.gid, groups: [nobody.gid] });
    expect(await fs.readdir(dir)).not.toContain('never');
  });
});

describe('MailboxHelperPool', () => {
  it('writes and reads with the rights given, reusing one helper per user', async () => {
    const p = pool();
    const maildir = path.join(dir, 'Maildir');
    const r1 = await p.write(
      nobody,
      { op: 'maildir', path: maildir, hostname: 'mx.example.com' },
      bytes('Subject: a\n\n', 'one\n'),
    );
    expect(r1).toMatchObject({ ok: true, op: 'maildir' });
    const file = (r1 as { path: string }).path;
    expect(await fs.readFile(file, 'utf8')).toBe('Subject: a\n\none\n');
    expect((await fs.stat(file)).uid).toBe(nobody.uid);
    const mbox = path.join(dir, 'mbox');
    const r2 = await p.write(nobody, { op: 'mbox', path: mbox, ...MBOX }, bytes('From x\n\n'));
    expect(r2).toEqual({ ok: true, op: 'mbox' });
    expect(p.size).toBe(1);
    const found = await p.read(nobody, mbox);
    expect(found).toMatchObject({ regular: true, uid: nobody.uid, text: 'From x\n\n' });
    await expect(p.read(nobody, '/etc/shadow')).rejects.toMatchObject({ code: 'EACCES' });
    await expect(p.read(nobody, path.join(dir, 'missing'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(p.size).toBe(1);
  });

  it('ends idle helpers after maxIdle, and an idle helper of another user when full', async () => {
    const idle = pool({ maxIdleMs: 50 });
    await idle.read(nobody, '/etc/hostname');
    expect(idle.size).toBe(1);
    await vi.waitFor(() => expect(idle.size).toBe(0), { timeout: 10_000, interval: 20 });

    const full = pool({ limit: 1 });
    await full.read(nobody, '/etc/hostname');
    const daemon = passwdUserSync('daemon')!;
    await full.read({ uid: daemon.uid!, gid: daemon.gid!, user: 'daemon' }, '/etc/hostname');
    expect(full.size).toBe(1);
  });

  it('an aborted or unreadable message leaves the mbox as it was and no Maildir file', async () => {
    const p = pool();
    const mbox = path.join(dir, 'abort.mbox');
    await fs.writeFile(mbox, 'From old\n\nold\n\n', { mode: 0o600 });
    await fs.chown(mbox, nobody.uid, nobody.gid);
    const controller = new AbortController();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* stalled(): AsyncGenerator<Buffer> {
      yield Buffer.from('From new\n\npartial');
      controller.abort();
      await gate;
      yield Buffer.from(' rest\n\n');
    }
    const pending = p.write(
      nobody,
      { op: 'mbox', path: mbox, ...MBOX },
      stalled(),
      controller.signal,
    );
    release();
    expect(await pending).toMatchObject({ ok: false, kind: 'aborted' });
    expect(await fs.readFile(mbox, 'utf8')).toBe('From old\n\nold\n\n');

    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: half\n\n');
      throw new Error('queue file vanished');
    }
    const maildir = path.join(dir, 'AbortMaildir');
    await expect(
      p.write(nobody, { op: 'maildir', path: maildir, hostname: 'h' }, failing()),
    ).rejects.toThrow('queue file vanished');
    const left = await fs
      .readdir(maildir, { recursive: true, withFileTypes: true })
      .catch(() => []);
    expect(left.filter((e) => !e.isDirectory())).toEqual([]);
    await expect(p.write(nobody, { op: 'mbox', path: mbox, ...MBOX }, failing())).rejects.toThrow(
      'queue file vanished',
    );
    expect(await fs.readFile(mbox, 'utf8')).toBe('From old\n\nold\n\n');
  });

  it('turns a helper that dies, lies, breaks the protocol or hangs into a HelperError', async () => {
    const script = async (name: string, body: string) => {
      const file = path.join(dir, name);
      await fs.writeFile(
        file,
        `const f=(t,o)=>{const p=Buffer.from(JSON.stringify(o));const b=Buffer.alloc(5);b[0]=t;b.writeUInt32BE(p.length,1);return Buffer.concat([b,p])};\n${body}\n`,
      );
      return file;
    };
    const cases: [string, RegExp][] = [
      [await script('dies.cjs', 'process.exit(3)'), /exited with status 3/],
      [
        await script(
          'lies.cjs',
          'process.stdout.write(f(16,{uid:0,gid:0,groups:[0]}));process.stdin.resume()',
        ),
        /runs as uid 0/,
      ],
      [
        await script(
          'garbles.cjs',
          `process.stdout.write(f(16,{uid:${nobody.uid},gid:${nobody.gid},groups:[${nobody.gid}]}));process.stdin.once('data',()=>process.stdout.write(f(99,{})));process.stdin.resume()`,
        ),
        /broke the protocol/,
      ],
      [
        await script(
          'hangs.cjs',
          `process.stdout.write(f(16,{uid:${nobody.uid},gid:${nobody.gid},groups:[${nobody.gid}]}));process.stdin.resume()`,
        ),
        /took longer than 300 ms/,
      ],
    ];
    for (const [helperPath, why] of cases) {
      const p = pool({ helperPath, timeoutMs: 300 });
      const err = await p.read(nobody, '/etc/hostname').catch((e: unknown) => e);
      expect(err, helperPath).toBeInstanceOf(HelperError);
      expect((err as Error).message, helperPath).toMatch(why);
      await vi.waitFor(() => expect(p.size).toBe(0), { timeout: 10_000, interval: 20 });
    }
  });
});

describe('from the packed package', () => {
  it('finds and runs the helper from the ESM and the CommonJS build', {
    timeout: 120_000,
  }, async () => {
    const work = path.join(dir, 'pack');
    await fs.mkdir(work);
    const tarball = await new Promise<string>((resolve, reject) => {
      execFile(
        'npm',
        ['pack', '--silent', '--pack-destination', work],
        { cwd: repo },
        (err, out) => (err ? reject(err) : resolve(out.trim().split('\n').pop()!)),
      );
    });
    const modules = path.join(work, 'node_modules');
    await fs.mkdir(path.join(modules, 'postern'), { recursive: true });
    await new Promise<void>((resolve, reject) =>
      execFile(
        'tar',
        [
          'xzf',
          path.join(work, tarball),
          '-C',
          path.join(modules, 'postern'),
          '--strip-components=1',
        ],
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    const pkg = JSON.parse(await fs.readFile(path.join(repo, 'package.json'), 'utf8'));
    for (const dep of Object.keys(pkg.dependencies))
      await fs.symlink(path.join(repo, 'node_modules', dep), path.join(modules, dep));
    const out = path.join(dir, 'packed');
    await fs.mkdir(out, { mode: 0o755 });
    await fs.chown(out, nobody.uid, nobody.gid);
    const program = (format: 'esm' | 'cjs') =>
      deliveryProgram(
        format === 'esm'
          ? "import { LocalDeliveryAgent, resolveParameters } from 'postern'; import { AliasTable } from 'postern/tables';"
          : "const { LocalDeliveryAgent, resolveParameters } = require('postern'); const { AliasTable } = require('postern/tables');",
        `new LocalDeliveryAgent({
          params: resolveParameters({ mydestination: ['example.com'], myorigin: 'example.com' }),
          aliases: AliasTable.fromText('arch: ${out}/${format}'),
        })`,
        'arch@example.com',
      );
    for (const format of ['esm', 'cjs'] as const) {
      const file = path.join(work, format === 'esm' ? 'run.mjs' : 'run.cjs');
      await fs.writeFile(file, program(format));
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [file], { cwd: work }, (err, o, e) =>
          err ? reject(new Error(`${err.message}\n${e}`)) : resolve(o),
        ),
      );
      expect(stdout.trim(), format).toMatch(/^sent 250 /);
      expect((await fs.stat(path.join(out, format))).uid, format).toBe(nobody.uid);
    }
  });
});

describe('without root', () => {
  it('writes mailboxes and files itself, as the user it runs as', async () => {
    const home = path.join(dir, 'home');
    await fs.mkdir(home, { mode: 0o755 });
    await fs.chown(home, nobody.uid, nobody.gid);
    await fs.writeFile(path.join(home, '.forward'), `${home}/archive\nme\n`, { mode: 0o644 });
    await fs.chown(path.join(home, '.forward'), nobody.uid, nobody.gid);
    const program = deliveryProgram(
      `import { LocalDeliveryAgent, resolveParameters } from ${JSON.stringify(path.join(repo, 'dist/index.js'))};`,
      `new LocalDeliveryAgent({
        params: resolveParameters({ mydestination: ['example.com'], myorigin: 'example.com', homeMailbox: 'Maildir/' }),
        users: { lookup: async (name) => ({ name, home: ${JSON.stringify(home)}, uid: ${nobody.uid}, gid: ${nobody.gid} }) },
      })`,
      'me@example.com',
    );
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', program],
        { uid: nobody.uid, gid: nobody.gid, cwd: home, env: {} },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
      );
    });
    expect(stdout.trim()).toMatch(/^sent 250 /);
    expect((await fs.stat(path.join(home, 'archive'))).uid).toBe(nobody.uid);
    const [file] = await fs.readdir(path.join(home, 'Maildir', 'new'));
    expect((await fs.stat(path.join(home, 'Maildir', 'new', file!))).uid).toBe(nobody.uid);
  });
});
