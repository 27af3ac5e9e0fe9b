/**
 * What the host offers the peers: commands on the PATH (and in the sbin directories,
 * where Debian puts the daemons' tools), the numeric ids of a system user, the processes
 * of a daemon's process group, and stopping daemons: on request, or at the latest when
 * this process exits.
 *
 * Does not do: install anything. Callers turn a missing piece into a message that says
 * which package provides it.
 *
 * @module
 */

import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** The full path of command `name`, or undefined when it is not installed. */
export function findCommand(name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN];
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when this process runs as root (daemons that bind and drop privileges need it). */
export function isRoot() {
  return process.getuid?.() === 0;
}

/** The uid and gid of system user `name`, or undefined when there is no such user. */
export function userIds(name) {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** Fields of /proc/PID/stat after the command name, or undefined once the process is gone. */
function statFields(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * The PIDs of every live process in process group `pgid`: a daemon that called setsid()
 * leads a group holding all of its children.
 */
export function groupMembers(pgid) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    // f[0] is the state (Z: a zombie that is already gone but for its exit status),
    // f[2] the process group.
    if (f && f[0] !== 'Z' && Number(f[2]) === pgid) pids.push(Number(entry));
  }
  return pids;
}

/** CPU time (user + system, children included) of `pids` so far, in clock ticks. */
export function cpuTicks(pids) {
  let total = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    // utime, stime, cutime, cstime
    if (f) total += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return total;
}

/**
 * Sends SIGTERM to every process of group `pgid` (the daemon leading it and its
 * children: a Dovecot master alone waits seconds for its children) and waits until none
 * is left; what is still there after `graceMs` gets SIGKILL.
 */
export async function stopGroup(pgid, graceMs = 5_000) {
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    // gone already
  }
  const end = Date.now() + graceMs;
  while (groupMembers(pgid).length > 0) {
    if (Date.now() > end) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone in the meantime
      }
      for (let i = 0; i < 100 && groupMembers(pgid).length > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The PID a daemon wrote to `file`; waits for the file, which a daemon may write only
 * after the command that started it has returned.
 */
export async function readPidFile(file, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
      if (pid > 0) return pid;
    } catch {
      // not written yet
    }
    if (Date.now() > end) throw new Error(`no PID in ${file} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Daemons started and not stopped yet: process group → their temporary directory. */
const daemons = new Map();

/** The last resort when the process exits with daemons left: SIGKILL, remove their files. */
function killLeftovers() {
  for (const [pgid, dir] of daemons) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
    try {
      if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    } catch {
      // a killed daemon still writing: the temporary directory stays, the others go
    }
  }
}

/**
 * Records a daemon that leads process group `pgid` and lives in `dir` (if any), so that
 * it is killed and its directory removed even when the caller never stops it (a test
 * that throws past its clean-up, a benchmark interrupted).
 */
export function adoptDaemon(pgid, dir) {
  if (daemons.size === 0) process.once('exit', killLeftovers);
  daemons.set(pgid, dir);
}

/** Stops daemon `pgid` (see stopGroup) if there is one, and removes `dir`. */
export async function retireDaemon(pgid, dir, graceMs = 5_000) {
  if (pgid) await stopGroup(pgid, graceMs);
  daemons.delete(pgid);
  if (daemons.size === 0) process.removeListener('exit', killLeftovers);
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
}
