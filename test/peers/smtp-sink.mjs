/**
 * Postfix's smtp-sink(1) on a free 127.0.0.1 port: an SMTP (or, with `-L`, LMTP) server
 * that accepts and discards, optionally dumping each message to a file, with its flags
 * for fault injection (`-r CMD` 4xx, `-f CMD` 5xx, `-q CMD` disconnect, `-8` no
 * 8BITMIME, ...).
 *
 * Does not do: queue or deliver. It is the protocol-only peer: the upper bound of a
 * benchmark, the remote server of an SMTP client test.
 *
 * SECURITY: started as root, smtp-sink must drop to another user (`-u nobody`); the dump
 * directory is made writable for it.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptDaemon, findCommand, isRoot, retireDaemon } from './host.mjs';
import { freePort, waitForPort } from './loopback.mjs';
import { POSTFIX_INSTALL } from './postfix.mjs';

/** Why smtp-sink cannot run here (what is missing and how to get it), or undefined. */
export function smtpSinkProblem() {
  return findCommand('smtp-sink')
    ? undefined
    : `Postfix's smtp-sink is not installed; ${POSTFIX_INSTALL}`;
}

/**
 * Starts smtp-sink with extra `flags`; with `dump: true` every message lands in a file
 * of `dir`. Resolves once the port accepts connections.
 */
export async function startSmtpSink({ flags = [], dump = false, backlog = 1024 } = {}) {
  const problem = smtpSinkProblem();
  if (problem) throw new Error(problem);
  const port = await freePort();
  const dir = dump ? mkdtempSync(join(tmpdir(), 'postern-sink-')) : undefined;
  if (dir) chmodSync(dir, 0o777);
  const args = [
    ...(isRoot() ? ['-u', 'nobody'] : []),
    ...(dir ? ['-d', `${dir}/%M.`] : []),
    ...flags,
    `127.0.0.1:${port}`,
    String(backlog),
  ];
  // Its own process group, so that it is stopped with the other peers if we exit early.
  const child = spawn(findCommand('smtp-sink'), args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let said = '';
  child.stderr.on('data', (c) => (said += c));
  adoptDaemon(child.pid, dir);
  const stop = () => retireDaemon(child.pid, dir, 2_000);
  try {
    await waitForPort(port, 15_000, () =>
      child.exitCode !== null ? `smtp-sink exited (${child.exitCode}): ${said.trim()}` : undefined,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dir, pid: child.pid, stop };
}
