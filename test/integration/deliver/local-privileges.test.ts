/**
 * local(8) delivery rights with real Unix users: what a recipient controls (.forward
 * and :include: file destinations, home mailboxes, a Maildir in the spool) is written
 * with that user's uid, gid and groups, never as root; alias destinations as the alias
 * file's owner or defaultPrivs; :include: files lend their owner's rights only when
 * reached from a root-owned alias. Runs as root (CI does) and creates users named
 * `ptloc...`, removed afterwards. The mailbox helper comes from dist/ (`npm test` builds).
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalDeliveryAgent } from '../../../src/deliver/local-agent.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import type { RecipientResult } from '../../../src/types.js';
import { passwdUserSync } from '../../../src/util/user-database.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';
import {
  createGroup,
  createUser,
  requireRoot,
  type TestGroup,
  type TestUser,
} from '../../helpers/unix-users.js';
import { Collector, makeRequest } from './request.js';

const MESSAGE = 'Subject: rights\r\n\r\nFrom here\r\nbody\r\n';
type HomeUser = TestUser & { readonly home: string };
let base: string;
let alice: HomeUser;
let bob: HomeUser;
let group: TestGroup | undefined;
let nobodyUid: number;
const agents: LocalDeliveryAgent[] = [];

beforeAll(async () => {
  requireRoot();
  nobodyUid = passwdUserSync('nobody')!.uid!;
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-privs-'));
  await fs.chmod(base, 0o755);
  group = createGroup('ptloc');
  const home = (name: string) => path.join(base, 'home', name);
  alice = createUser({ prefix: 'ptloc', home: home('alice'), groups: [group.name] }) as HomeUser;
  bob = createUser({ prefix: 'ptloc', home: home('bob') }) as HomeUser;
  await fs.chmod(path.join(base, 'home'), 0o755);
  await fs.mkdir(path.join(base, 'rootonly'), { mode: 0o700 });
  await fs.mkdir(path.join(base, 'rootro'), { mode: 0o755 });
  await fs.mkdir(path.join(base, 'rootro', 'md'), { mode: 0o755 });
  await fs.mkdir(path.join(base, 'nobody'), { mode: 0o755 });
  await fs.chown(path.join(base, 'nobody'), nobodyUid, nobodyUid);
  await fs.mkdir(path.join(base, 'shared'));
  await fs.chmod(path.join(base, 'shared'), 0o777);
  // Only members of the group may enter: alice reaches her directory through it.
  await fs.mkdir(path.join(base, 'grp'), { mode: 0o750 });
  await fs.chown(path.join(base, 'grp'), 0, group.gid);
  await fs.mkdir(path.join(base, 'grp', 'alice'), { mode: 0o700 });
  await fs.chown(path.join(base, 'grp', 'alice'), alice.uid, alice.gid);
}, 60_000);

afterAll(async () => {
  // The helpers run as the users: they end before the users go.
  await Promise.all(agents.map((a) => a.close?.()));
  alice?.remove();
  bob?.remove();
  group?.remove();
  if (base) await fs.rm(base, { recursive: true, force: true });
}, 60_000);

async function deliver(
  agent: LocalDeliveryAgent,
  ...addresses: string[]
): Promise<RecipientResult[]> {
  const collector = new Collector();
  await agent.deliver(
    makeRequest({
      nexthop: 'example.com',
      transport: 'local',
      recipients: addresses,
      content: MESSAGE,
    }),
    collector,
  );
  return addresses.map((_a, i) => collector.results.get(i)!);
}

function agent(settings: Record<string, unknown> = {}, submission?: RecordingSubmission) {
  const a = new LocalDeliveryAgent({
    params: resolveParameters({
      myhostname: 'mx.example.com',
      mydestination: ['example.com'],
      myorigin: 'example.com',
      localUserDatabase: 'passwd',
      mailSpoolDirectory: path.join(base, 'spool'),
      allowMailToFiles: ['alias', 'forward', 'include'],
      allowMailToCommands: ['alias', 'forward', 'include'],
      ...settings,
    }),
    ...(submission ? { submission } : {}),
  });
  agents.push(a);
  return a;
}

/** Writes a user's file, owned by the user, not writable by others. */
async function userFile(user: HomeUser, name: string, text: string, mode = 0o644) {
  const file = path.join(user.home, name);
  await fs.writeFile(file, text, { mode });
  await fs.chown(file, user.uid, user.gid);
  return file;
}

async function rootFile(name: string, text: string, mode = 0o644) {
  const file = path.join(base, name);
  await fs.writeFile(file, text, { mode });
  return file;
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []))
    if (!e.isDirectory()) out.push(path.join(e.parentPath, e.name));
  return out;
}

describe('local delivery with the recipient rights', () => {
  it('a .forward naming a file in a root-only directory writes nothing there and bounces with permission denied', async () => {
    const targets = [path.join(base, 'rootonly', 'stolen'), path.join(base, 'rootro', 'stolen')];
    await userFile(alice, '.forward', `${targets.join('\n')}\n`);
    try {
      const [r] = await deliver(agent(), `${alice.name}@example.com`);
      expect(r!.status, r!.reply.toString()).toBe('bounced');
      expect(r!.reply.enhanced).toBe('5.2.0');
      expect(r!.reply.text).toMatch(/permission denied/i);
      for (const t of targets) expect(await exists(t)).toBe(false);
    } finally {
      await fs.rm(path.join(alice.home, '.forward'));
    }
  });

  it('a symbolic ~/Maildir (or Maildir/tmp) into a root-only directory gets nothing written there', async () => {
    await fs.mkdir(path.join(base, 'rootonly', 'md'), { mode: 0o755 });
    await fs.symlink(path.join(base, 'rootonly', 'md'), path.join(alice.home, 'Maildir'));
    await fs.symlink(path.join(base, 'rootro', 'md'), path.join(bob.home, 'Maildir'));
    try {
      const results = await deliver(
        agent({ homeMailbox: 'Maildir/' }),
        `${alice.name}@example.com`,
        `${bob.name}@example.com`,
      );
      expect(await filesBelow(path.join(base, 'rootonly'))).toEqual([]);
      expect(await filesBelow(path.join(base, 'rootro'))).toEqual([]);
      for (const r of results) {
        expect(r.status, r.reply.toString()).toBe('bounced');
        expect(r.reply.text).toMatch(/permission denied/i);
      }
      // A real Maildir whose tmp/ leads into root's directory.
      await fs.rm(path.join(alice.home, 'Maildir'));
      const md = path.join(alice.home, 'Maildir');
      for (const d of [md, path.join(md, 'new'), path.join(md, 'cur')]) {
        await fs.mkdir(d, { mode: 0o700 });
        await fs.chown(d, alice.uid, alice.gid);
      }
      await fs.symlink(path.join(base, 'rootro', 'md'), path.join(md, 'tmp'));
      await fs.lchown(path.join(md, 'tmp'), alice.uid, alice.gid);
      const [again] = await deliver(
        agent({ homeMailbox: 'Maildir/' }),
        `${alice.name}@example.com`,
      );
      expect(await filesBelow(path.join(base, 'rootro'))).toEqual([]);
      expect(again!.status).not.toBe('sent');
    } finally {
      await fs.rm(path.join(base, 'rootonly', 'md'), { recursive: true, force: true });
      await fs.rm(path.join(alice.home, 'Maildir'), { recursive: true, force: true });
      await fs.rm(path.join(bob.home, 'Maildir'), { force: true });
    }
  });

  it('a .forward file destination in the home is written by the user, and so is the home Maildir', async () => {
    const mbox = path.join(alice.home, 'archive');
    const maildir = path.join(alice.home, 'saved/');
    await userFile(alice, '.forward', `${mbox}\n${maildir}\n${alice.name}\n`);
    try {
      const [r] = await deliver(agent({ homeMailbox: 'Maildir/' }), `${alice.name}@example.com`);
      expect(r!.status, r!.reply.toString()).toBe('sent');
      const st = await fs.stat(mbox);
      expect([st.uid, st.gid, st.mode & 0o777]).toEqual([alice.uid, alice.gid, 0o600]);
      expect(await fs.readFile(mbox, 'utf8')).toMatch(/\nSubject: rights\n\n>From here\nbody\n\n$/);
      const files = [
        ...(await filesBelow(maildir)),
        ...(await filesBelow(path.join(alice.home, 'Maildir'))),
      ];
      expect(files).toHaveLength(2);
      for (const f of files) {
        const fst = await fs.stat(f);
        expect([fst.uid, fst.mode & 0o777]).toEqual([alice.uid, 0o600]);
        expect((await fs.stat(path.dirname(f))).uid).toBe(alice.uid);
      }
    } finally {
      await fs.rm(path.join(alice.home, '.forward'));
      for (const p of ['archive', 'saved', 'Maildir'])
        await fs.rm(path.join(alice.home, p), { recursive: true, force: true });
    }
  });

  it('alias file destinations are written as defaultPrivs, or as the owner of a user-owned aliases file', async () => {
    const nobodyFile = path.join(base, 'nobody', 'archive');
    const bobFile = path.join(bob.home, 'from-alias');
    const aliceFile = path.join(alice.home, 'user-alias');
    const rootAliases = await rootFile('aliases', `arch: ${nobodyFile}\nbobs: ${bobFile}\n`);
    const aliceAliases = await userFile(alice, 'aliases', `mine: ${aliceFile}\n`);
    try {
      const maps = [`aliases:${rootAliases}`, `aliases:${aliceAliases}`];
      const results = await deliver(
        agent({ aliasMaps: maps }),
        'arch@example.com',
        'mine@example.com',
      );
      for (const r of results) expect(r.status, r.reply.toString()).toBe('sent');
      expect((await fs.stat(nobodyFile)).uid).toBe(nobodyUid);
      expect((await fs.stat(aliceFile)).uid).toBe(alice.uid);
      // defaultPrivs names the account root-owned aliases run as.
      const [b] = await deliver(
        agent({ aliasMaps: maps, defaultPrivs: bob.name }),
        'bobs@example.com',
      );
      expect(b!.status, b!.reply.toString()).toBe('sent');
      expect((await fs.stat(bobFile)).uid).toBe(bob.uid);
    } finally {
      await fs.rm(rootAliases);
      for (const f of [nobodyFile, bobFile, aliceFile, aliceAliases])
        await fs.rm(f, { force: true });
    }
  });

  it(':include: rights: a root alias lends the include owner its rights, a .forward keeps the user, an unreadable include bounces', async () => {
    const bobOut = path.join(bob.home, 'inc-out');
    const aliceOut = path.join(alice.home, 'via-include');
    const bobCmd = path.join(bob.home, 'inc-cmd');
    const list = await userFile(bob, 'list.inc', `${bobOut}\n"|id -u > ${bobCmd}"\n`);
    const list2 = await userFile(bob, 'list2.inc', `${aliceOut}\n`);
    const secret = path.join(base, 'rootonly', 'secret.inc');
    await fs.writeFile(secret, 'leak@remote.example\n', { mode: 0o600 });
    const aliases = await rootFile('aliases-inc', `inc: :include:${list}\n`);
    const sub = new RecordingSubmission();
    try {
      const a = agent({ aliasMaps: `aliases:${aliases}` }, sub);
      const [viaAlias] = await deliver(a, 'inc@example.com');
      expect(viaAlias!.status, viaAlias!.reply.toString()).toBe('sent');
      expect((await fs.stat(bobOut)).uid).toBe(bob.uid);
      expect((await fs.readFile(bobCmd, 'utf8')).trim()).toBe(String(bob.uid));

      await userFile(alice, '.forward', `:include:${list2}\n`);
      const [viaForward] = await deliver(a, `${alice.name}@example.com`);
      expect(viaForward!.status, viaForward!.reply.toString()).toBe('sent');
      expect((await fs.stat(aliceOut)).uid).toBe(alice.uid);

      await userFile(alice, '.forward', `:include:${secret}\n`);
      const [leak] = await deliver(a, `${alice.name}@example.com`);
      expect(leak!.status).toBe('bounced');
      expect(leak!.reply.enhanced).toBe('5.3.5');
      expect(leak!.reply.text).toMatch(/permission denied/);
      expect(sub.committed).toEqual([]);
    } finally {
      await fs.rm(path.join(alice.home, '.forward'), { force: true });
      for (const f of [bobOut, aliceOut, bobCmd, list, list2, secret, aliases])
        await fs.rm(f, { force: true });
    }
  });

  it('commands run as the .forward user, the aliases file owner, or defaultPrivs', async () => {
    const aliceCmd = path.join(alice.home, 'cmd-uid');
    const bobCmd = path.join(bob.home, 'alias-cmd');
    const nobodyCmd = path.join(base, 'nobody', 'cmd-uid');
    await userFile(alice, '.forward', `"|id -u > ${aliceCmd}"\n`);
    const bobAliases = await userFile(bob, 'aliases', `bcmd: "|id -u > ${bobCmd}"\n`);
    const rootAliases = await rootFile('aliases-cmd', `ncmd: "|id -u > ${nobodyCmd}"\n`);
    try {
      const results = await deliver(
        agent({ aliasMaps: [`aliases:${rootAliases}`, `aliases:${bobAliases}`] }),
        `${alice.name}@example.com`,
        'bcmd@example.com',
        'ncmd@example.com',
      );
      for (const r of results) expect(r.status, r.reply.toString()).toBe('sent');
      expect((await fs.readFile(aliceCmd, 'utf8')).trim()).toBe(String(alice.uid));
      expect((await fs.readFile(bobCmd, 'utf8')).trim()).toBe(String(bob.uid));
      expect((await fs.readFile(nobodyCmd, 'utf8')).trim()).toBe(String(nobodyUid));
    } finally {
      for (const f of [path.join(alice.home, '.forward'), aliceCmd, bobCmd, nobodyCmd, bobAliases])
        await fs.rm(f, { force: true });
      await fs.rm(rootAliases, { force: true });
    }
  });

  it('reads the .forward file as the user: one the user cannot read is ignored', async () => {
    const target = path.join(alice.home, 'unread-target');
    await userFile(alice, '.forward', `${target}\n`, 0o000);
    await fs.mkdir(path.join(base, 'spool'), { recursive: true, mode: 0o755 });
    try {
      const [r] = await deliver(agent(), `${alice.name}@example.com`);
      expect(r!.status, r!.reply.toString()).toBe('sent');
      expect(r!.reply.text).toBe('delivered to mailbox');
      expect(await exists(target)).toBe(false);
    } finally {
      await fs.rm(path.join(alice.home, '.forward'));
    }
  });

  it("writes with the user's supplementary groups", async () => {
    const target = path.join(base, 'grp', 'alice', 'log');
    await userFile(alice, '.forward', `${target}\n`);
    try {
      const [r] = await deliver(agent(), `${alice.name}@example.com`);
      expect(r!.status, r!.reply.toString()).toBe('sent');
      expect((await fs.stat(target)).uid).toBe(alice.uid);
    } finally {
      await fs.rm(path.join(alice.home, '.forward'));
      await fs.rm(target, { force: true });
    }
  });

  it('refuses a destination below a directory that others may write', async () => {
    const target = path.join(base, 'shared', 'inbox');
    await userFile(alice, '.forward', `${target}\n`);
    try {
      const [r] = await deliver(agent(), `${alice.name}@example.com`);
      expect(r!.status).toBe('deferred');
      expect(r!.reply.enhanced).toBe('4.2.0');
      expect(r!.reply.text).toMatch(/writable by group or others/);
      expect(await filesBelow(path.join(base, 'shared'))).toEqual([]);
    } finally {
      await fs.rm(path.join(alice.home, '.forward'));
    }
  });

  it('spool mailboxes: mbox files written by the server for the user, a spool Maildir by the user', async () => {
    const spool = path.join(base, 'spool');
    await fs.mkdir(spool, { recursive: true, mode: 0o755 });
    const [m] = await deliver(agent(), `${alice.name}@example.com`);
    expect(m!.status, m!.reply.toString()).toBe('sent');
    const st = await fs.stat(path.join(spool, alice.name));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([alice.uid, alice.gid, 0o600]);

    const mdSpool = path.join(base, 'mdspool');
    const a = agent({ mailSpoolDirectory: `${mdSpool}/` });
    const [d] = await deliver(a, `${alice.name}@example.com`);
    expect(d!.status, d!.reply.toString()).toBe('sent');
    const dir = path.join(mdSpool, alice.name);
    expect((await fs.stat(dir)).uid).toBe(alice.uid);
    const [file] = await filesBelow(path.join(dir, 'new'));
    expect((await fs.stat(file!)).uid).toBe(alice.uid);
    // The user owns that directory: a link she plants there leads nowhere root writes.
    await fs.rm(path.join(dir, 'tmp'), { recursive: true });
    await fs.symlink(path.join(base, 'rootro', 'md'), path.join(dir, 'tmp'));
    const [again] = await deliver(a, `${alice.name}@example.com`);
    expect(await filesBelow(path.join(base, 'rootro'))).toEqual([]);
    expect(again!.status).not.toBe('sent');
  });
});
