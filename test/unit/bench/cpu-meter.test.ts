/**
 * The benchmarks' CPU meter counts a server's whole process tree: the process itself,
 * a helper that lives through the run, children that exit (and are reaped) during it,
 * and — in a cgroup — a grandchild orphaned by its parent and reaped by init. Each
 * process of the fixture burns CPU and reports its own total (getrusage), so the
 * expected sum is known; nothing here depends on how long anything takes.
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuMeter } from '../../../bench/lib/cpu.mjs';

// Burns until this process has used `ms` of CPU, prints `<label> <µs used>`.
const burn = (label: string, ms: number): string =>
  `let u; do { for (let i = 0; i < 1e5; i++); u = process.cpuUsage(); } while (u.user + u.system < ${ms * 1000}); console.log('${label}', u.user + u.system);`;

// The server: on "go", a long-lived helper, three short-lived children (waited for) and
// one child that starts a detached grandchild and exits at once (the orphan).
const SERVER = `
const { spawn } = require('node:child_process');
const node = (code, o = {}) => spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'inherit', 'inherit'], ...o });
const exited = (p) => new Promise((r) => p.once('exit', r));
process.stdin.once('data', async () => {
  node(${JSON.stringify(`${burn('helper', 200)} process.stdin.resume();`)});
  for (let i = 0; i < 3; i++) await exited(node(${JSON.stringify(burn('child', 100))}));
  const orphan = ${JSON.stringify(burn('orphan', 300))};
  await exited(node(${JSON.stringify('')} + "require('node:child_process').spawn(process.execPath, ['-e', " + JSON.stringify(orphan) + "], { detached: true, stdio: 'inherit' }).unref();" + ${JSON.stringify(burn('parent', 0))}));
  const u = process.cpuUsage();
  console.log('server', u.user + u.system);
});
process.stdin.resume();
`;

let server: ChildProcess | undefined;
afterEach(() => {
  server?.kill('SIGKILL');
  server = undefined;
});

/** Runs the fixture under two meters; resolves with the reported CPU by label (µs). */
async function runFixture() {
  server = spawn(process.execPath, ['-e', SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pid = server.pid!;
  const cgroup = cpuMeter(pid);
  const tree = cpuMeter(pid, { cgroup: false });
  const reported = new Map<string, number>();
  const lines = createInterface({ input: server.stdout! });
  let count = 0;
  const done = new Promise<void>((resolve) => {
    lines.on('line', (line) => {
      const [label = '', us] = line.split(' ');
      reported.set(label, (reported.get(label) ?? 0) + Number(us));
      // helper, 3 children, parent, orphan, server: every process has burnt its share
      if (++count === 7) resolve();
    });
  });
  server.stdin!.write('go\n');
  await done;
  const usage = { cgroup: cgroup.usageUs(), tree: tree.usageUs(), method: cgroup.method };
  cgroup.close();
  tree.close();
  return { usage, reported };
}

describe('cpuMeter', () => {
  it('counts a live helper, reaped children and, in a cgroup, an orphaned grandchild', async () => {
    const { usage, reported } = await runFixture();
    const r = (label: string): number => reported.get(label) ?? 0;
    // Six processes, each truncated to whole 10 ms ticks by the process-tree reading.
    const tick = 60_000;
    const descendants = r('helper') + r('child') + r('parent');
    expect(r('child')).toBeGreaterThanOrEqual(300_000);

    // The process tree: the server, its live helper, and its reaped children (in its
    // cutime/cstime); not the orphan, whose CPU went to init's account.
    expect(usage.tree).toBeGreaterThanOrEqual(descendants - tick);
    expect(usage.tree).toBeLessThanOrEqual(descendants + r('server') + tick);

    // The cgroup charges every process that was ever in it, the orphan included. Root
    // can make one here (the tests run as root, like the benchmarks).
    expect(usage.method).toMatch(/^cgroup/);
    expect(usage.cgroup).toBeGreaterThanOrEqual(descendants + r('orphan') - tick);
    expect(usage.cgroup).toBeLessThanOrEqual(descendants + r('orphan') + r('server') + tick);
  });
});
