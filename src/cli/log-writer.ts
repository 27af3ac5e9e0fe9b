/**
 * LogWriter: log lines buffered in memory and written asynchronously, many lines per
 * write, to a file descriptor (standard output) or an append-only file.
 *
 * Postfix counterpart: postlogd(8) and the logwriter(3) behind `maillog_file`, which
 * take records from every daemon and append them to the file. Postern logs from one
 * process, so a writer in that process does the job without a daemon.
 *
 * How: `write()` only queues the line (`writeBytes()` queues lines already encoded as
 * UTF-8, such as those an smtpd worker process rendered, without decoding them). Lines
 * gather for `gatherMs` (10 ms), or until 64 KiB are queued, and then go out together
 * in one `fs.write`, which runs on libuv's thread pool, so the main thread never waits
 * for the disk or a pipe; while that write is in flight, new lines queue for the next
 * one. Gathering matters: each write costs a round trip through the thread pool (a
 * handful of system calls and thread wake-ups), and a server logs about seven lines
 * per message, most of them in turns of their own.
 * A short write continues where it stopped; EAGAIN (a non-blocking pipe that is full)
 * is retried after a pause.
 *
 * Memory is bounded: when the queue passes `maxBufferBytes` (the destination has not
 * kept up, e.g. a pipe whose reader stopped), the oldest queued lines are dropped and
 * counted, and a warning with the count is written once output flows again. Dropping
 * rather than blocking is deliberate: blocking would stop every SMTP session and
 * delivery until the log reader wakes up — mail must not wait for its log, and a
 * counted gap says exactly what was lost (journald and rsyslog rate limits do the same).
 * Nothing is dropped while the destination keeps up, and nothing queued is lost on a
 * clean exit: `close()` resolves only when every line is written. `flushSync()` is the
 * last resort for a process that must exit at once (the `exit` event): it writes what
 * is queued synchronously.
 *
 * Does not: rotate files (logrotate moves the file; `reopen()` then starts a new one),
 * format lines (see log-format.ts), or retry a destination that failed for good (EPIPE,
 * EBADF, ENOSPC...): its lines are counted as dropped and one error goes to stderr.
 *
 * @module
 */

import { closeSync, constants, openSync, write, writeSync } from 'node:fs';
import { errorMessage } from '../util/error-message.js';

/**
 * Options of a LogWriter.
 *
 * @example
 * ```ts
 * const writer = new LogWriter({ fd: 1, maxBufferBytes: 4 << 20 } satisfies LogWriterOptions);
 * ```
 */
export interface LogWriterOptions {
  /** Write to this open descriptor (not closed by the writer); or give `path`. */
  readonly fd?: number;
  /** Append to this file (created 0640 if missing; reopened by `reopen()`). */
  readonly path?: string;
  /** Most bytes queued before the oldest lines are dropped. @default 4 MiB */
  readonly maxBufferBytes?: number;
  /** The line written once output flows again after `count` lines were dropped. */
  readonly dropNotice?: (count: number) => string;
  /** Where a failing destination is reported once. @default process.stderr */
  readonly report?: (message: string) => void;
  /**
   * How long queued lines wait for others before they are written (0: at the end of the
   * event-loop turn). A line is never held longer, nor past `close()` or `flushSync()`.
   * @default 10
   */
  readonly gatherMs?: number;
}

const DEFAULT_MAX_BUFFER = 4 * 1024 * 1024;
const DEFAULT_GATHER_MS = 10;
/** Write at once, without waiting out `gatherMs`, when this much is queued. */
const WRITE_NOW_BYTES = 64 * 1024;
/** First pause after EAGAIN; doubled up to EAGAIN_MAX_MS while the pipe stays full. */
const EAGAIN_MS = 5;
const EAGAIN_MAX_MS = 200;
/** How long flushSync() keeps retrying a full non-blocking pipe before giving up. */
const SYNC_EAGAIN_LIMIT_MS = 2000;

/**
 * Buffered, asynchronous log output with a bounded queue.
 *
 * @example
 * ```ts
 * const writer = new LogWriter({ fd: process.stdout.fd });
 * logger.addSink((e) => writer.write(`${formatLogLine(e)}\n`));
 * process.on('exit', () => writer.flushSync());
 * await writer.close();
 * ```
 */
export class LogWriter {
  readonly #path: string | undefined;
  readonly #ownsFd: boolean;
  readonly #max: number;
  readonly #dropNotice: (count: number) => string;
  readonly #report: (message: string) => void;
  #fd: number;
  /** Lines as strings, or as UTF-8 bytes (each entry whole lines). */
  #queue: (string | Buffer)[] = [];
  #queued = 0;
  #dropped = 0;
  #droppedTotal = 0;
  readonly #gatherMs: number;
  /** The pending flush: a gather timer, an end-of-turn flush, or none. */
  #pending: NodeJS.Timeout | NodeJS.Immediate | undefined;
  #pendingNow = false;
  #writes = 0;
  /** The buffer a `write()` on the thread pool is writing, if any. */
  #inFlight: Buffer | undefined;
  #eagainMs = EAGAIN_MS;
  /** Lines queued before reopen() was called: they still go to the old file. */
  #reopenAfter: number | undefined;
  #broken = false;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(options: LogWriterOptions) {
    if ((options.fd === undefined) === (options.path === undefined))
      throw new TypeError('LogWriter: give either fd or path');
    this.#path = options.path;
    this.#ownsFd = options.path !== undefined;
    this.#fd = options.path !== undefined ? openAppend(options.path) : options.fd!;
    this.#max = options.maxBufferBytes ?? DEFAULT_MAX_BUFFER;
    this.#dropNotice =
      options.dropNotice ??
      ((n) => `warning: ${n} log lines dropped: the log output is not keeping up\n`);
    this.#report = options.report ?? ((m) => process.stderr.write(`postern: ${m}\n`));
    const gather = options.gatherMs ?? DEFAULT_GATHER_MS;
    if (!Number.isFinite(gather) || gather < 0)
      throw new RangeError(`LogWriter: gatherMs must be 0 or more milliseconds, got ${gather}`);
    this.#gatherMs = gather;
  }

  /** Writes handed to the thread pool so far (each gathers every line queued before it). */
  get writes(): number {
    return this.#writes;
  }

  /** Lines dropped since the start (the destination fell behind or failed). */
  get dropped(): number {
    return this.#droppedTotal;
  }

  /** Bytes queued and not yet handed to a write. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Queues one line (ending in `\n`); it is written with the others gathered with it. */
  write(line: string): void {
    this.#enqueue(line);
  }

  /**
   * Queues whole lines (each ending in `\n`) given as UTF-8 bytes; they are written as
   * they are, with what is gathered with them. The writer keeps the buffer until it is
   * written: the caller must not change it.
   */
  writeBytes(lines: Buffer): void {
    if (lines.length > 0) this.#enqueue(lines);
  }

  #enqueue(lines: string | Buffer): void {
    if (this.#closed || this.#broken) {
      this.#countDropped(linesIn(lines));
      return;
    }
    this.#queue.push(lines);
    this.#queued += lines.length;
    if (this.#queued > this.#max) this.#dropOldest();
    this.#schedule();
  }

  /** Arranges the next write: after the gather time, or at the end of this turn when much is queued. */
  #schedule(): void {
    if (this.#inFlight !== undefined || this.#queue.length === 0 || this.#pendingNow) return;
    const now = this.#gatherMs === 0 || this.#queued >= WRITE_NOW_BYTES;
    if (!now && this.#pending !== undefined) return;
    this.#cancelPending();
    const run = (): void => {
      this.#pending = undefined;
      this.#pendingNow = false;
      this.#flush();
    };
    if (now) {
      this.#pendingNow = true;
      this.#pending = setImmediate(run);
    } else {
      // Unref'd: a gather never keeps the process alive (exit flushes synchronously).
      this.#pending = setTimeout(run, this.#gatherMs).unref();
    }
  }

  #cancelPending(): void {
    const p = this.#pending;
    if (p === undefined) return;
    if (this.#pendingNow) clearImmediate(p as NodeJS.Immediate);
    else clearTimeout(p as NodeJS.Timeout);
    this.#pending = undefined;
    this.#pendingNow = false;
  }

  /**
   * Opens `path` again (logrotate moved the file): lines queued so far go to the old
   * file, lines written from now on to the new one.
   */
  reopen(): void {
    if (this.#path === undefined || this.#closed) return;
    this.#reopenAfter = this.#queue.length;
    if (this.#inFlight === undefined) this.#flush();
  }

  /**
   * Writes everything queued, synchronously. For a process about to exit at once; a
   * write already on the thread pool is not waited for (prefer `close()`).
   */
  flushSync(): void {
    if (this.#broken || this.#queue.length === 0) return;
    const buf = this.#take();
    let off = 0;
    const giveUp = Date.now() + SYNC_EAGAIN_LIMIT_MS;
    while (off < buf.length) {
      try {
        off += writeSync(this.#fd, buf, off, buf.length - off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > giveUp) {
          this.#fail(err, buf.subarray(off));
          return;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
    }
  }

  /** Writes every queued line, then closes a file the writer opened. Idempotent. */
  async close(): Promise<void> {
    this.#cancelPending();
    this.#flush();
    if (this.#inFlight !== undefined || this.#queue.length > 0)
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsFd) closeQuietly(this.#fd);
  }

  #dropOldest(): void {
    let n = 0;
    while (this.#queued > this.#max && this.#queue.length > 1) {
      const entry = this.#queue.shift()!;
      this.#queued -= entry.length;
      n += linesIn(entry);
      if (this.#reopenAfter) this.#reopenAfter--;
    }
    this.#countDropped(n);
  }

  #countDropped(n: number): void {
    this.#dropped += n;
    this.#droppedTotal += n;
  }

  /** The first `count` queued lines as one buffer, led by the drop notice if lines were dropped. */
  #take(count = this.#queue.length): Buffer {
    const taken = count === this.#queue.length ? this.#queue : this.#queue.slice(0, count);
    this.#queue = count === this.#queue.length ? [] : this.#queue.slice(count);
    if (this.#dropped > 0 && !this.#broken) {
      taken.unshift(this.#dropNotice(this.#dropped));
      this.#dropped = 0;
    }
    this.#queued = this.#queue.reduce((n, l) => n + l.length, 0);
    return joinLines(taken);
  }

  #flush(): void {
    if (this.#inFlight !== undefined) return;
    if (this.#reopenAfter === 0) this.#swapFile();
    if (this.#queue.length === 0 || this.#broken) {
      this.#settleIdle();
      return;
    }
    const buf = this.#take(this.#reopenAfter);
    if (this.#reopenAfter !== undefined) this.#reopenAfter = 0;
    this.#inFlight = buf;
    this.#writes++;
    this.#writeFrom(buf, 0);
  }

  #writeFrom(buf: Buffer, off: number): void {
    write(this.#fd, buf, off, buf.length - off, null, (err, n) => {
      if (err) {
        if (err.code === 'EAGAIN') {
          setTimeout(() => this.#writeFrom(buf, off), this.#eagainMs);
          this.#eagainMs = Math.min(this.#eagainMs * 2, EAGAIN_MAX_MS);
          return;
        }
        this.#inFlight = undefined;
        this.#fail(err, buf.subarray(off));
        this.#settleIdle();
        return;
      }
      this.#eagainMs = EAGAIN_MS;
      if (off + n < buf.length) {
        this.#writeFrom(buf, off + n);
        return;
      }
      this.#inFlight = undefined;
      // What queued meanwhile waits for its own gather, unless someone waits for it all.
      if (this.#idle.length > 0 || this.#reopenAfter === 0) this.#flush();
      else this.#schedule();
    });
  }

  #swapFile(): void {
    this.#reopenAfter = undefined;
    try {
      const fd = openAppend(this.#path!);
      closeQuietly(this.#fd);
      this.#fd = fd;
    } catch (err) {
      // Keep writing to the old file rather than lose lines.
      this.#report(
        `cannot reopen ${this.#path}: ${errorMessage(err)}; still writing to the old file`,
      );
    }
  }

  #fail(err: unknown, unwritten: Buffer): void {
    this.#broken = true;
    let lines = linesIn(unwritten);
    for (const entry of this.#queue) lines += linesIn(entry);
    this.#countDropped(lines);
    this.#queue = [];
    this.#queued = 0;
    const where = this.#path ?? `file descriptor ${this.#fd}`;
    this.#report(
      `cannot write log lines to ${where}: ${errorMessage(err)}; further log lines are dropped`,
    );
  }

  #settleIdle(): void {
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/** The lines in an entry (a worker's holds several); a last line without `\n` counts too. */
function linesIn(entry: string | Buffer): number {
  // Both search for '\n' alike: a string by character, a Buffer by byte.
  const find = (from: number): number => entry.indexOf('\n', from);
  let n = 0;
  for (let at = find(0); at !== -1; at = find(at + 1)) n++;
  const ended = entry.length === 0 || find(entry.length - 1) !== -1;
  return ended ? n : n + 1;
}

/** Queued entries as one buffer: each run of strings joined and encoded once, bytes as they are. */
function joinLines(entries: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  const encodeRun = (to: number): void => {
    if (to > from) parts.push(Buffer.from(entries.slice(from, to).join(''), 'utf8'));
  };
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (typeof entry === 'string') continue;
    encodeRun(i);
    parts.push(entry);
    from = i + 1;
  }
  encodeRun(entries.length);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function openAppend(path: string): number {
  return openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed: nothing left to release.
  }
}
