/**
 * The project's own peers (test/peers/): a private Postfix that discards or relays, a
 * Dovecot LMTP server and smtp-sink, as the interop tests and benchmarks use them. Each
 * starts on a free loopback port inside a temporary directory, and stopping it — or the
 * process exiting without stopping it, as a failed test or an interrupted benchmark
 * does — leaves no process and no file behind.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it } from 'vitest';
import { DovecotLmtp } from '../peers/dovecot-lmtp.mjs';
import { groupMembers } from '../peers/host.mjs';
import { PostfixInstance } from '../peers/postfix.mjs';
import { startSmtpSink } from '../peers/smtp-sink.mjs';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const f of cleanups.reverse()) await f();
});

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const end = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True when `pid` is gone (a zombie waiting for its parent counts as gone). */
function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}

describe('Postfix peer', () => {
  it('relays through smtp(8) to its relayhost when given one', async () => {
    const sink = await startSmtpSink({ dump: true });
    cleanups.push(sink.stop);
    const postfix = await PostfixInstance.create({ relayhost: `[127.0.0.1]:${sink.port}` });
    cleanups.push(() => postfix.stop());
    await postfix.start();
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: postfix.port,
      secure: false,
      ignoreTLS: true,
    });
    for (const n of [1, 2]) {
      await transport.sendMail({
        from: 'a@client.test',
        to: `b${n}@remote.test`,
        subject: `relayed ${n}`,
        text: 'hello',
      });
    }
    transport.close();
    await until(async () => (await postfix.delivered('smtp')) === 2, 'two smtp deliveries');
    expect(await postfix.delivered('discard')).toBe(0);
    const dumps = readdirSync(sink.dir!).map((f) => readFileSync(join(sink.dir!, f), 'latin1'));
    expect(dumps.map((d) => /Subject: (relayed \d)/.exec(d)?.[1]).sort()).toEqual([
      'relayed 1',
      'relayed 2',
    ]);
    expect(dumps.every((d) => d.includes('Received: from '))).toBe(true);
    expect(await postfix.queued()).toBe(0);
  });

  it('stop() ends every process of the instance and removes its directory', async () => {
    const postfix = await PostfixInstance.create();
    cleanups.push(() => postfix.stop());
    await postfix.start();
    // master(8) forks qmgr and pickup after it starts listening: wait for its children.
    await until(() => postfix.processes().length > 1, "master's qmgr and pickup");
    const pids = postfix.processes();
    expect(pids).toContain(postfix.masterPid);
    await postfix.stop();
    expect(pids.filter((p) => !gone(p))).toEqual([]);
    expect(existsSync(postfix.dir)).toBe(false);
  });
});

describe('Dovecot LMTP peer', () => {
  it('stop() ends every process of the server and removes its directory', async () => {
    const dovecot = await DovecotLmtp.start(['lena']);
    cleanups.push(() => dovecot.stop());
    const pids = dovecot.processes();
    expect(pids).toContain(dovecot.masterPid);
    await dovecot.stop();
    expect(pids.filter((p) => !gone(p))).toEqual([]);
    expect(existsSync(dovecot.dir)).toBe(false);
  });
});

describe('peers of a process that exits without stopping them', () => {
  it('are killed and their directories removed at exit', async () => {
    const peers = fileURLToPath(new URL('../peers/', import.meta.url));
    // A program that starts one of each and exits with an error, as a failing test run.
    const program = `
      import { PostfixInstance } from '${peers}postfix.mjs';
      import { DovecotLmtp } from '${peers}dovecot-lmtp.mjs';
      import { startSmtpSink } from '${peers}smtp-sink.mjs';
      const pf = await PostfixInstance.create();
      await pf.start();
      const dc = await DovecotLmtp.start(['lena']);
      const sink = await startSmtpSink({ dump: true });
      console.log(JSON.stringify({
        pids: [...pf.processes(), ...dc.processes(), sink.pid],
        groups: [pf.masterPid, dc.masterPid, sink.pid],
        dirs: [pf.dir, dc.dir, sink.dir],
      }));
      process.exit(3);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', program], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const code = await new Promise((r) => child.once('close', r));
    expect(code, err).toBe(3);
    const seen = JSON.parse(out) as { pids: number[]; groups: number[]; dirs: string[] };
    expect(seen.pids.length).toBeGreaterThan(3);
    // SIGKILL has been sent; the kernel may take a moment to finish each process.
    await until(() => seen.pids.every(gone), 'every peer process to end');
    expect(seen.groups.flatMap((g) => groupMembers(g))).toEqual([]);
    expect(seen.dirs.filter((d) => existsSync(d))).toEqual([]);
  });
});
