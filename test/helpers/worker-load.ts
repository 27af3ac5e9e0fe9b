/**
 * What the tests of `postern serve` with smtpd workers (processes or a thread) share: the
 * state of its processes read from /proc, and an SMTP load whose acknowledged messages
 * are recorded.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { SmtpDialogue } from './smtp-dialogue.js';

/** A message body of about 4 KB. */
export const BODY = `${'x'.repeat(76)}\r\n`.repeat(52);

/** The live child processes of `pid` (its smtpd workers). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter(alive);
  } catch {
    return [];
  }
}

/** Whether `pid` runs (a zombie does not). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A process's status field in KiB (VmHWM, VmRSS). */
export function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync(`/proc/${pid}/status`, 'utf8'),
  );
  return m ? Number(m[1]) : 0;
}

/**
 * Resolves once `done()` holds, checking every 50 ms (process states have no event to
 * wait on); false after `ms`.
 */
export async function poll(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** The pids in `postern/NAME[pid]` log lines of `output`. */
export function pidsOf(output: readonly string[], name: string): Set<number> {
  const re = new RegExp(`postern/${name}\\[(\\d+)\\]`);
  return new Set(output.flatMap((l) => re.exec(l)?.[1] ?? []).map(Number));
}

/**
 * `sessions` SMTP sessions, each sending up to `perSession` messages to recipients of
 * their own (`PREFIX-sS-mI@remote.example`); the recipients of every message that got
 * its 250 go into `acked`. A session whose server dies ends; `stop()` ends them all
 * after the message in progress.
 */
export function load(
  port: number,
  prefix: string,
  sessions: number,
  perSession: number,
  acked: Set<string>,
): { done: Promise<void>; stop(): void } {
  let stopped = false;
  const session = async (s: number): Promise<void> => {
    let c: SmtpDialogue | undefined;
    try {
      c = await SmtpDialogue.open(port);
      if ((await c.read()).code !== 220) return;
      await c.expect('EHLO load.example', 250);
      for (let i = 0; i < perSession && !stopped; i++) {
        const rcpt = `${prefix}-s${s}-m${i}@remote.example`;
        await c.expect('MAIL FROM:<load@client.example>', 250);
        await c.expect(`RCPT TO:<${rcpt}>`, 250);
        await c.expect('DATA', 354);
        const r = await c.command(`Subject: ${rcpt}\r\n\r\n${BODY}.`);
        if (r.code !== 250) return;
        acked.add(rcpt);
      }
      await c.command('QUIT');
    } catch {
      // The process serving this session died: what it acknowledged is recorded.
    } finally {
      c?.close();
    }
  };
  return {
    done: Promise.all(Array.from({ length: sessions }, (_, s) => session(s))).then(() => {}),
    stop: () => {
      stopped = true;
    },
  };
}
