import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireDotLock, LockBusyError } from '../../../src/deliver/dotlock.js';
import { copyMessage } from '../../../src/deliver/mail-copy.js';
import { fromLine, MailboxRefusedError, MboxWriter } from '../../../src/deliver/mbox.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-mbox-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p, 'latin1');
}
async function collect(gen: AsyncIterable<Buffer>): Promise<string> {
  const out: Buffer[] = [];
  for await (const c of gen) out.push(c);
  return Buffer.concat(out).toString('latin1');
}

describe('copyMessage (mail_copy.c)', () => {
  it('converts line ends, quotes From_, stuffs dots, adds a final newline and blank line', async () => {
    const out = await collect(
      copyMessage(
        chunks('Subject: x\r\n\r\nFrom me\r', '\n.dot\r\nFr', 'om split\r\nnot From \r\nend'),
        {
          head: Buffer.from('HEAD\n'),
          eol: '\n',
          quoteFrom: true,
          dotStuff: true,
          blankLine: true,
        },
      ),
    );
    expect(out).toBe('HEAD\nSubject: x\n\n>From me\n..dot\n>From split\nnot From \nend\n\n');
  });

  it('gives the same bytes however the input is split (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('From ', 'F', 'r', '.', '\r\n', '\r', '\n', 'x', ' ', '>'), {
          maxLength: 60,
        }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (tokens, cuts) => {
          const text = tokens.join('');
          const positions = [...new Set(cuts.map((c) => (text.length ? c % text.length : 0)))].sort(
            (a, b) => a - b,
          );
          const parts: string[] = [];
          let last = 0;
          for (const p of positions) {
            parts.push(text.slice(last, p));
            last = p;
          }
          parts.push(text.slice(last));
          const opts = { eol: '\n' as const, quoteFrom: true, dotStuff: true };
          expect(await collect(copyMessage(chunks(...parts), opts))).toBe(
            await collect(copyMessage(chunks(text), opts)),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('MboxWriter', () => {
  it('writes a From_ line with the null sender as MAILER-DAEMON', () => {
    expect(fromLine('', Date.parse('2026-11-09T08:07:06Z'))).toBe(
      'From MAILER-DAEMON  Mon Nov  9 08:07:06 2026\n',
    );
    expect(fromLine('a b\n@x', 0)).toMatch(/^From a_b_@x {2}Thu Jan {2}1 00:00:00 1970\n$/);
  });

  it('truncates back to the old size when the content fails, and releases the lock', async () => {
    const file = path.join(dir, 'box');
    const w = new MboxWriter();
    await w.deliver(file, chunks('From a  x\nfirst\n\n'));
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('From b  y\npartial');
      throw new Error('queue file vanished');
    }
    await expect(w.deliver(file, failing())).rejects.toThrow('queue file vanished');
    expect(await fs.readFile(file, 'utf8')).toBe('From a  x\nfirst\n\n');
    await expect(fs.access(`${file}.lock`)).rejects.toThrow();
  });

  it('refuses executable, linked and symlinked mailboxes and enforces the size limit', async () => {
    const w = new MboxWriter({ sizeLimit: 30 });
    const exe = path.join(dir, 'exe');
    await fs.writeFile(exe, '', { mode: 0o744 });
    await expect(w.deliver(exe, chunks('x'))).rejects.toThrow(/executable/);
    const target = path.join(dir, 'target');
    await fs.writeFile(target, '');
    await fs.symlink(target, path.join(dir, 'link'));
    await expect(w.deliver(path.join(dir, 'link'), chunks('x'))).rejects.toBeInstanceOf(
      MailboxRefusedError,
    );
    await fs.link(target, path.join(dir, 'hard'));
    await expect(w.deliver(target, chunks('x'))).rejects.toThrow(/hard link/);
    const box = path.join(dir, 'small');
    await w.deliver(box, chunks('0123456789'));
    const err = await w
      .deliver(box, chunks('0123456789', '0123456789', '0123456789'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailboxRefusedError);
    expect((err as MailboxRefusedError).enhanced).toBe('5.2.2');
    expect(await fs.readFile(box, 'utf8')).toBe('0123456789');
  });
});

describe('dotlock', () => {
  it('waits for a held lock, gives up after the attempts, and removes stale locks', async () => {
    const file = path.join(dir, 'box');
    await fs.writeFile(`${file}.lock`, '');
    await expect(acquireDotLock(file, { attempts: 3, delayMs: 5 })).rejects.toBeInstanceOf(
      LockBusyError,
    );
    const old = new Date(Date.now() - 600_000);
    await fs.utimes(`${file}.lock`, old, old);
    const release = await acquireDotLock(file, { attempts: 3, delayMs: 5, staleMs: 500_000 });
    expect((await fs.stat(`${file}.lock`)).mtimeMs).toBeGreaterThan(old.getTime());
    const second = acquireDotLock(file, { attempts: 200, delayMs: 5 });
    await release();
    await (await second)();
    await expect(fs.access(`${file}.lock`)).rejects.toThrow();
  });
});
