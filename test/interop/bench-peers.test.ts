/**
 * The benchmarks compare against Postfix or say why they cannot: `npm run bench` and
 * `npm run bench:relay` run where Postfix cannot (here: not as root) stop with status 69,
 * what is missing and the --without-postfix hint, instead of printing a table without
 * Postfix; with --without-postfix they measure the Node contenders alone.
 *
 * The scripts run as the `nobody` user, a real unprivileged account.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { userIds } from '../peers/host.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const nobody = userIds('nobody')!;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs bench/`script` with `args` as nobody. */
function benchAsNobody(script: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'bench', script), ...args],
      {
        cwd: root,
        uid: nobody.uid,
        gid: nobody.gid,
        timeout: 120_000,
        env: { ...process.env, HOME: '/tmp' },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('benchmarks without a usable Postfix', () => {
  it.each([
    ['run.mjs', 'npm run bench'],
    ['relay.mjs', 'npm run bench:relay'],
  ])('%s stops and says what is missing and how to go on', async (script, command) => {
    const r = await benchAsNobody(script, ['--runs', '1', '--messages', '20']);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/Postfix contender cannot run: .*must be started as root/);
    expect(r.stderr).toContain(`${command} -- --without-postfix`);
    expect(r.stdout).toBe('');
  });

  it.each([
    ['run.mjs', ['--only', 'postern'], /run 1 {2}postern +\d+ msg\/s/],
    ['relay.mjs', [], /run 1 postern +\d+ msg\/s end-to-end/],
  ])('%s --without-postfix measures Postern alone', async (script, only, row) => {
    const small = ['--runs', '1', '--messages', '40', '--sessions', '2'];
    const r = await benchAsNobody(script, ['--without-postfix', ...only, ...small]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(row);
    expect(r.stdout).not.toMatch(/postfix/);
  });
});
