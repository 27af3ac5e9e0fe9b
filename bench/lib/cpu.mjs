// CPU time of a server's whole process tree during a benchmark run: the process, its
// threads, and every process it starts, including those that exit before the run ends
// (Postfix's smtpd, cleanup, discard, trivial-rewrite, anvil and proxymap come and go;
// `postern serve` may start helpers).
//
// Two ways, the first that works here:
//   cgroup        the tree is moved into a cgroup of its own (cgroup v2 `cpu.stat`
//                 usage_usec, or v1 `cpuacct.usage`); the kernel charges it every
//                 nanosecond of every member, living or gone, and every child forked after
//                 the move joins it. Needs root and a writable cgroup mount.
//   process tree  utime + stime + cutime + cstime of the root and of every descendant alive
//                 (zombies included) at each reading: a child that exited and was reaped
//                 left its times in its parent's cutime/cstime, so a reading misses only the
//                 CPU of a process whose parent has exited. Ticks of 10 ms per process.
// A meter counts from its creation; `usageUs()` is the CPU used since then.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuTicks } from '../../test/peers/host.mjs';

const CLK_TCK = 100;
let made = 0;
/** Cgroups made and not closed yet: removed when this process exits (interrupted runs). */
const open = new Map();

function closeAll() {
  for (const [dir, mount] of open) removeCgroup(dir, mount);
}

/** Every process's parent PID, from /proc (zombies included). */
function parents() {
  const ppid = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      ppid.set(Number(entry), Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  return ppid;
}

/** `pid` and every live or zombie descendant of it. */
export function processTree(pid) {
  const children = new Map();
  for (const [child, parent] of parents()) {
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(child);
  }
  const tree = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop();
    tree.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return tree;
}

/** Where a cgroup for the meter can go, and how it reads usage, or undefined. */
function cgroupRoot() {
  let mounts;
  try {
    mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const found = [];
  for (const line of mounts) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const mountPoint = left.split(' ')[4];
    const [fsType, , superOptions = ''] = right.split(' ');
    if (fsType === 'cgroup2') found.push({ dir: mountPoint, v2: true });
    else if (fsType === 'cgroup' && superOptions.split(',').includes('cpuacct')) {
      found.push({ dir: mountPoint, v2: false });
    }
  }
  // v2 first: cpu.stat exists in every v2 cgroup, with or without the cpu controller.
  return found.sort((a, b) => Number(b.v2) - Number(a.v2));
}

/** A cgroup holding the tree of `pid`, or undefined when none can be made here. */
function cgroupMeter(pid) {
  for (const { dir: mount, v2 } of cgroupRoot() ?? []) {
    const dir = join(mount, `postern-bench-${process.pid}-${++made}`);
    try {
      mkdirSync(dir);
    } catch {
      continue; // not root, or read-only
    }
    const read = v2
      ? () => Number(/^usage_usec (\d+)$/m.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'))[1])
      : () => Number(readFileSync(join(dir, 'cpuacct.usage'), 'utf8')) / 1000;
    try {
      // The root first: whatever it forks from now on is born inside. Then what it had
      // already forked, twice over, for children forked while the first pass ran.
      for (let pass = 0; pass < 3; pass++) {
        for (const p of pass === 0 ? [pid] : processTree(pid)) {
          try {
            writeFileSync(join(dir, 'cgroup.procs'), String(p));
          } catch (err) {
            if (err.code !== 'ESRCH') throw err;
          }
        }
      }
      const start = read();
      if (open.size === 0) process.once('exit', closeAll);
      open.set(dir, mount);
      return {
        method: `cgroup${v2 ? ' v2' : ' v1 cpuacct'}`,
        usageUs: () => read() - start,
        close: () => removeCgroup(dir, mount),
      };
    } catch {
      removeCgroup(dir, mount);
    }
  }
  return undefined;
}

/** Moves what is left in cgroup `dir` back to the root of `mount`, then removes it. */
function removeCgroup(dir, mount) {
  open.delete(dir);
  if (open.size === 0) process.removeListener('exit', closeAll);
  try {
    for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
      if (p) {
        try {
          writeFileSync(join(mount, 'cgroup.procs'), p);
        } catch {
          // exited meanwhile
        }
      }
    }
    rmdirSync(dir);
  } catch {
    // already gone
  }
}

/** Counts from the times of the tree of `pid` at each reading. */
function treeMeter(pid) {
  const read = () => (cpuTicks(processTree(pid)) / CLK_TCK) * 1e6;
  const start = read();
  return { method: 'process tree', usageUs: () => read() - start, close: () => {} };
}

/**
 * Starts counting the CPU time of process `pid` and all its descendants, present and
 * future, in a cgroup when one can be made (unless `cgroup` is false), else from the
 * process tree's times.
 */
export function cpuMeter(pid, { cgroup = true } = {}) {
  return (cgroup && cgroupMeter(pid)) || treeMeter(pid);
}

/**
 * Resolves once the metered tree has gone quiet (less than `idleShare` of a core over
 * `windowMs`), or after `timeoutMs`: the work a run caused (a queue draining to
 * delivery after the load generator stopped) counts for that run.
 */
export async function settle(meter, { windowMs = 300, idleShare = 0.02, timeoutMs = 30_000 } = {}) {
  const end = Date.now() + timeoutMs;
  let last = meter.usageUs();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, windowMs));
    const now = meter.usageUs();
    if (now - last < windowMs * 1000 * idleShare) return;
    last = now;
  }
}
