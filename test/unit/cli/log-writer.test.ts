import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readSync, renameSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogWriter } from '../../../src/cli/log-writer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-logwriter-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = (n: number, from = 0): string[] =>
  Array.from({ length: n }, (_, i) => `line ${from + i} ${'x'.repeat(60)}\n`);

/** A FIFO whose read end is open but not read until the test drains it. */
function stalledPipe(name: string): { writeFd: number; drain: () => string; close: () => void } {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(path, constants.O_WRONLY);
  const buf = Buffer.alloc(1 << 16);
  return {
    writeFd,
    drain: () => {
      let out = '';
      for (;;) {
        try {
          const n = readSync(readFd, buf, 0, buf.length, null);
          if (n === 0) return out;
          out += buf.toString('utf8', 0, n);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return out;
          throw err;
        }
      }
    },
    close: () => {
      closeSync(readFd);
      closeSync(writeFd);
    },
  };
}

/**
 * More than the pipe (64 KiB) plus the queue can hold, over several turns: 20 turns of
 * 500 lines handed to `write`, the queue checked against its bound after each. Returns
 * how many lines were written.
 */
async function flood(w: LogWriter, write: (batch: string[]) => void): Promise<number> {
  let next = 0;
  for (let turn = 0; turn < 20; turn++) {
    write(lines(500, next));
    next += 500;
    await new Promise((r) => setImmediate(r));
    expect(w.queuedBytes).toBeLessThanOrEqual(64 * 1024);
  }
  return next;
}

/** Closes `w` while reading what it writes into `pipe`; resolves with all of it. */
async function closeDraining(w: LogWriter, pipe: ReturnType<typeof stalledPipe>): Promise<string> {
  let got = '';
  let done = false;
  void w.close().then(() => {
    done = true;
  });
  while (!done) {
    got += pipe.drain();
    await new Promise((r) => setTimeout(r, 5));
  }
  got += pipe.drain();
  pipe.close();
  return got;
}

describe('LogWriter', () => {
  it('queues lines without touching the file and writes them, in order, after the turn', async () => {
    const path = join(dir, 'order.log');
    const w = new LogWriter({ path });
    const all = lines(5000);
    for (const l of all) w.write(l);
    // Nothing is written from inside write(): the caller never waits for the disk.
    expect(readFileSync(path, 'utf8')).toBe('');
    await w.close();
    expect(readFileSync(path, 'utf8')).toBe(all.join(''));
    expect(w.dropped).toBe(0);
  });

  it('gathers the lines of many turns into one write', async () => {
    const path = join(dir, 'gather.log');
    const w = new LogWriter({ path, gatherMs: 60_000 });
    const all = lines(50);
    for (const l of all) {
      w.write(l);
      await new Promise((r) => setImmediate(r));
    }
    // Fifty turns, and the gather time has not run out: nothing written yet.
    expect(w.writes).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('');
    await w.close();
    expect(w.writes).toBe(1);
    expect(readFileSync(path, 'utf8')).toBe(all.join(''));
  });

  it('does not wait out the gather time once 64 KiB are queued', async () => {
    const path = join(dir, 'gather-full.log');
    const w = new LogWriter({ path, gatherMs: 60_000 });
    const all = lines(1100); // about 72 KB
    for (const l of all) w.write(l);
    expect(w.writes).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(w.writes).toBe(1);
    await w.close();
    expect(readFileSync(path, 'utf8')).toBe(all.join(''));
  });

  it('writes a gathered line by itself, without close(), and refuses a negative gather time', async () => {
    const path = join(dir, 'gather-default.log');
    const w = new LogWriter({ path });
    w.write('alone\n');
    for (let i = 0; i < 500 && readFileSync(path, 'utf8') === ''; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(readFileSync(path, 'utf8')).toBe('alone\n');
    await w.close();
    expect(() => new LogWriter({ path, gatherMs: -1 })).toThrow(/gatherMs/);
  });

  it('keeps the queue bounded when the reader stalls: drops the oldest, counts them, says so', async () => {
    const pipe = stalledPipe('stalled');
    const notices: number[] = [];
    const w = new LogWriter({
      fd: pipe.writeFd,
      maxBufferBytes: 64 * 1024,
      dropNotice: (n) => {
        notices.push(n);
        return `DROPPED ${n}\n`;
      },
    });
    const next = await flood(w, (batch) => {
      for (const l of batch) w.write(l);
    });
    expect(w.dropped).toBeGreaterThan(0);
    const got = await closeDraining(w, pipe);
    const out = got.split('\n').filter(Boolean);
    const numbers = out.filter((l) => l.startsWith('line ')).map((l) => Number(l.split(' ')[1]));
    // What was kept is in order, the newest line is there, and the notice counts the rest.
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(numbers.at(-1)).toBe(next - 1);
    expect(notices.reduce((a, b) => a + b, 0)).toBe(w.dropped);
    expect(numbers.length + w.dropped).toBe(next);
    expect(out.filter((l) => l.startsWith('DROPPED '))).toHaveLength(notices.length);
  });

  it('writeBytes() queues encoded lines as they are, in order with lines given as strings', async () => {
    const path = join(dir, 'bytes.log');
    const w = new LogWriter({ path, gatherMs: 60_000 });
    w.write('primary one\n');
    w.writeBytes(Buffer.from('worker: from=<usér@exämple.org>\nworker two\n', 'utf8'));
    w.write('primary ünïcode\n');
    w.write('primary three\n');
    w.writeBytes(Buffer.alloc(0));
    w.writeBytes(Buffer.from('worker three\n'));
    expect(w.queuedBytes).toBeGreaterThan(0);
    // Everything gathered goes out in one write.
    await w.close();
    expect(w.writes).toBe(1);
    expect(readFileSync(path, 'utf8')).toBe(
      'primary one\nworker: from=<usér@exämple.org>\nworker two\nprimary ünïcode\nprimary three\nworker three\n',
    );
  });

  it('writeBytes() lines count against the bound: each dropped line is counted, the newest kept', async () => {
    const pipe = stalledPipe('stalled-bytes');
    const w = new LogWriter({
      fd: pipe.writeFd,
      maxBufferBytes: 64 * 1024,
      dropNotice: (n) => `DROPPED ${n}\n`,
    });
    const next = await flood(w, (batch) => w.writeBytes(Buffer.from(batch.join(''))));
    expect(w.dropped).toBeGreaterThan(0);
    const got = await closeDraining(w, pipe);
    // The newest lines are there, whole, after the notice; every line is written or counted.
    const out = got.split('\n').filter(Boolean);
    const kept = out.filter((l) => l.startsWith('line ')).length;
    expect(out.some((l) => /^DROPPED \d+$/.test(l))).toBe(true);
    expect(got.endsWith(lines(1, next - 1)[0]!)).toBe(true);
    expect(kept + w.dropped).toBe(next);
  });

  it('flushSync() writes queued bytes with the strings, in order', () => {
    const path = join(dir, 'sync-bytes.log');
    const w = new LogWriter({ path });
    w.write('one\n');
    w.writeBytes(Buffer.from('twö\nthree\n'));
    w.write('four\n');
    w.flushSync();
    expect(readFileSync(path, 'utf8')).toBe('one\ntwö\nthree\nfour\n');
  });

  it('reopen() starts a new file after logrotate moved the old one', async () => {
    const path = join(dir, 'rotate.log');
    const w = new LogWriter({ path });
    w.write('before\n');
    await new Promise((r) => setTimeout(r, 20));
    renameSync(path, `${path}.1`);
    w.write('between\n');
    w.reopen();
    w.write('after\n');
    await w.close();
    expect(readFileSync(`${path}.1`, 'utf8')).toBe('before\nbetween\n');
    expect(readFileSync(path, 'utf8')).toBe('after\n');
  });

  it('flushSync() writes what is queued at once (the exit path)', () => {
    const path = join(dir, 'sync.log');
    const w = new LogWriter({ path });
    w.write('one\n');
    w.write('two\n');
    w.flushSync();
    expect(readFileSync(path, 'utf8')).toBe('one\ntwo\n');
  });

  it('reports a destination that fails for good once, and counts its lines as dropped', async () => {
    const pipe = stalledPipe('broken');
    const reports: string[] = [];
    const w = new LogWriter({ fd: pipe.writeFd, report: (m) => reports.push(m) });
    pipe.close();
    w.write('a\n');
    w.write('b\n');
    await w.close();
    w.write('c\n');
    w.writeBytes(Buffer.from('d\ne\n'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(
      /cannot write log lines to file descriptor \d+: .*further log lines are dropped/,
    );
    expect(w.dropped).toBe(5);
  });
});
