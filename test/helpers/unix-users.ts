/**
 * Real second Unix users for tests that must cross a privilege boundary: created with
 * useradd (names start with `ptsub`, or the prefix a test gives: local delivery uses
 * `ptloc`), removed with userdel, and commands run as them through child_process's
 * uid/gid (the kernel then drops root's supplementary groups). Groups too, for tests of
 * supplementary groups.
 *
 * A checkout may sit under a directory such a user cannot enter (a fresh clone in a
 * mktemp directory is 0700), so `cliForOtherUsers()` copies what the `postern` command
 * needs (bin/, dist/, package.json and the runtime dependencies) into a world-readable
 * temporary directory.
 *
 * Needs root, as CI runs the tests.
 */

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { chmod, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type PosternRun, runProcess } from './postern-cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A Unix user made for a test. */
export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** The home directory, when the test asked for one. */
  readonly home?: string;
  remove(): void;
}

/** What createUser makes. */
export interface TestUserOptions {
  /** Start of the name (a random suffix follows). @default 'ptsub' */
  readonly prefix?: string;
  /** A home directory to create, owned by the user, mode 0755. @default none */
  readonly home?: string;
  /** Supplementary groups. */
  readonly groups?: readonly string[];
}

/** A Unix group made for a test. */
export interface TestGroup {
  readonly name: string;
  readonly gid: number;
  remove(): void;
}

/** Runs a shadow-utils command, again while another test holds the passwd lock. */
function shadow(command: string, args: readonly string[]): void {
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      return;
    } catch (err) {
      const text = String((err as { stderr?: Buffer }).stderr ?? '');
      if (!/lock|try again/i.test(text) || attempt >= 50) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

/** Throws unless the tests run as root (users cannot be made otherwise). */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'this test creates Unix users and runs commands as them: run it as root, as CI does',
    );
  }
}

/**
 * Creates a user `ptsub<random>` (or `<prefix><random>`) with its own group, and a home
 * directory only when `options.home` names one.
 */
export function createUser(options: TestUserOptions = {}): TestUser {
  requireRoot();
  const name = `${options.prefix ?? 'ptsub'}${randomBytes(4).toString('hex')}`;
  const args = ['--no-create-home', '--user-group', '--shell', '/bin/sh'];
  if (options.home !== undefined) args.push('--home-dir', options.home);
  if (options.groups?.length) args.push('--groups', options.groups.join(','));
  shadow('useradd', [...args, name]);
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  if (options.home !== undefined) {
    mkdirSync(options.home, { recursive: true });
    chownSync(options.home, uid, gid);
    chmodSync(options.home, 0o755);
  }
  return {
    name,
    uid,
    gid,
    ...(options.home === undefined ? {} : { home: options.home }),
    remove() {
      try {
        execFileSync('userdel', [name], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
      try {
        execFileSync('groupdel', [name], { stdio: 'ignore' });
      } catch {
        // userdel removed the user's group already.
      }
    },
  };
}

/**
 * Runs `command args` as `user` (real and effective uid and gid), with `input` on
 * standard input; kills it after `timeoutMs`.
 */
export function runAs(
  user: Pick<TestUser, 'uid' | 'gid' | 'name'>,
  command: string,
  args: readonly string[],
  options: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<PosternRun> {
  return runProcess(command, args, {
    uid: user.uid,
    gid: user.gid,
    cwd: options.cwd ?? tmpdir(),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: tmpdir(),
      USER: user.name,
      LOGNAME: user.name,
      ...options.env,
    },
    ...(options.input !== undefined ? { input: options.input } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
}

/** Runs a small Node script as `user` (`node -e SCRIPT ARGS...`). */
export function nodeAs(
  user: Pick<TestUser, 'uid' | 'gid' | 'name'>,
  script: string,
  args: readonly string[] = [],
): Promise<PosternRun> {
  return runAs(user, process.execPath, ['-e', script, '--', ...args]);
}

/** Every package the runtime dependencies need, found through their package.json files. */
async function runtimePackages(): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (name: string): Promise<void> => {
    if (seen.has(name)) return;
    seen.add(name);
    const pkg = JSON.parse(
      await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8'),
    ) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) await visit(dep);
  };
  const own = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const dep of Object.keys(own.dependencies)) await visit(dep);
  return [...seen];
}

/**
 * A copy of the built `postern` command that every user can run: resolves with the
 * path of its bin/postern.mjs and a function that removes the copy. Build first
 * (`npx tsup`).
 */
export async function cliForOtherUsers(): Promise<{ bin: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-cli-copy-'));
  await chmod(dir, 0o755);
  await cp(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  await cp(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  await cp(join(ROOT, 'package.json'), join(dir, 'package.json'));
  for (const name of await runtimePackages()) {
    await cp(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name), {
      recursive: true,
      dereference: true,
    });
  }
  // Readable and searchable by everyone, whatever the umask made of it.
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  return {
    bin: join(dir, 'bin', 'postern.mjs'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Creates a group `<prefix><random>`. */
export function createGroup(prefix: string): TestGroup {
  requireRoot();
  const name = `${prefix}${randomBytes(4).toString('hex')}`;
  shadow('groupadd', [name]);
  const gid = Number(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2]);
  return {
    name,
    gid,
    remove() {
      try {
        execFileSync('groupdel', [name], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
    },
  };
}
