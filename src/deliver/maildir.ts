/**
 * MaildirWriter: delivers one message into a Maildir — write under `tmp/`, fsync,
 * rename into `new/`, fsync `new/`.
 *
 * Postfix counterpart: local/maildir.c (and virtual(8)'s copy): the message is written
 * to `tmp/<secs>.P<pid>Q<counter>.<host>` created with O_EXCL, then moved to
 * `new/<secs>.V<dev>I<ino>M<usec>.<host>`, a name unique on this file system because it
 * carries the device and inode. No locking is needed (that is the point of Maildir).
 * Postern also fsyncs the `new/` directory so the rename itself is durable before the
 * delivery is reported; concurrent deliveries into one directory share that fsync
 * (DirectorySyncer).
 *
 * Maildir++ folders (`.Folder.Sub/` inside a Maildir) are Maildirs of their own with a
 * `maildirfolder` marker file; `deliver(..., { folder: true })` creates the marker.
 *
 * Does not: choose the directory or validate names (the caller builds the path with
 * mailbox-path.ts), quotas, `:2,` flags.
 *
 * SECURITY: files are created 0600 and directories 0700; the temporary name is opened
 * with O_EXCL so an existing file or link is never written through. On any failure the
 * temporary file is removed.
 *
 * STANDARDS: the Maildir format (cr.yp.to/proto/maildir.html): `/` and `:` in the host
 * name are written as `\057` and `\072`.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { systemClock } from '../clock.js';
import type { Clock } from '../types.js';
import { DirectorySyncer } from '../util/fsync.js';

/**
 * Options for MaildirWriter.
 *
 * @example
 * ```ts
 * const writer = new MaildirWriter({ hostname: 'mx.example.com' } satisfies MaildirWriterOptions);
 * ```
 */
export interface MaildirWriterOptions {
  /** The host name in file names (Postfix uses the system's name; Postern `myhostname`). */
  readonly hostname: string;
  /** @default systemClock */
  readonly clock?: Clock;
}

/**
 * Per-delivery options.
 *
 * @example
 * ```ts
 * await writer.deliver('/home/alice/Maildir/', head, body, { uid: 1000, gid: 1000, signal });
 * ```
 */
export interface MaildirDeliveryOptions {
  /** Aborts the write; the temporary file is removed. */
  readonly signal?: AbortSignal;
  /** Owner of created directories and the message file (only effective as root). */
  readonly uid?: number;
  /** Group of created directories and the message file (only effective as root). */
  readonly gid?: number;
  /**
   * `dir` is a Maildir++ folder (`~/Maildir/.Lists.postern/`): a `maildirfolder` marker
   * file is created in it, as Courier and Dovecot expect.
   */
  readonly folder?: boolean;
}

let counter = 0;

/**
 * Writes messages into Maildir folders the safe way: tmp/, fsync, link into new/, sync the
 * directory. Postfix counterpart: local/maildir.c.
 *
 * @example
 * ```ts
 * const writer = new MaildirWriter({ hostname: 'mx.example.com' });
 * async function* body() {
 *   yield Buffer.from('Hello\n');
 * }
 * const file = await writer.deliver('/tmp/Maildir/', Buffer.from('Subject: hi\n\n'), body());
 * ```
 */
export class MaildirWriter {
  readonly #host: string;
  readonly #clock: Clock;
  readonly #syncers = new Map<string, { syncer: DirectorySyncer; users: number }>();

  constructor(options: MaildirWriterOptions) {
    this.#host = options.hostname.replace(/\//g, '\\057').replace(/:/g, '\\072');
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Delivers `head` followed by `body` into the Maildir at `dir` (created with `tmp`,
   * `new` and `cur` as needed). Resolves with the final path once it is durable.
   *
   * @throws the file-system error (with its `code`), ContentReadError when `body`
   *   fails, or whatever `body` throws on purpose (the caller's loop check); the
   *   temporary file is removed in every case.
   */
  async deliver(
    dir: string,
    head: Buffer,
    body: AsyncIterable<Buffer>,
    options: AbortSignal | MaildirDeliveryOptions = {},
  ): Promise<string> {
    const opts: MaildirDeliveryOptions =
      options instanceof AbortSignal ? { signal: options } : options;
    const signal = opts.signal;
    const owner =
      opts.uid !== undefined && process.getuid?.() === 0
        ? { uid: opts.uid, gid: opts.gid ?? -1 }
        : undefined;
    const tmpDir = path.join(dir, 'tmp');
    const newDir = path.join(dir, 'new');
    for (const d of [dir, tmpDir, newDir, path.join(dir, 'cur')]) {
      const made = await fs.mkdir(d, { recursive: true, mode: 0o700 });
      if (made !== undefined && owner) await fs.chown(d, owner.uid, owner.gid);
    }
    if (opts.folder) {
      const marker = await fs.open(path.join(dir, 'maildirfolder'), 'a', 0o600);
      await marker.close();
    }

    const now = this.#clock.now();
    const secs = Math.floor(now / 1000);
    let tmpPath = '';
    let handle: fs.FileHandle | undefined;
    for (let attempt = 0; !handle; attempt++) {
      tmpPath = path.join(tmpDir, `${secs}.P${process.pid}Q${++counter}.${this.#host}`);
      try {
        handle = await fs.open(tmpPath, 'wx', 0o600);
        if (owner) await handle.chown(owner.uid, owner.gid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw err;
      }
    }

    let renamed = false;
    try {
      let closed = false;
      try {
        await handle.write(head);
        for await (const chunk of body) {
          signal?.throwIfAborted();
          await handle.write(chunk);
        }
        signal?.throwIfAborted();
        await handle.sync();
        const st = await handle.stat();
        await handle.close();
        closed = true;
        const usec = (now % 1000) * 1000;
        const finalPath = path.join(
          newDir,
          `${secs}.V${st.dev.toString(16)}I${st.ino.toString(16)}M${usec}.${this.#host}`,
        );
        await fs.rename(tmpPath, finalPath);
        renamed = true;
        await this.#syncDirectory(newDir);
        return finalPath;
      } finally {
        if (!closed) await handle.close().catch(() => undefined);
      }
    } finally {
      if (!renamed) await fs.unlink(tmpPath).catch(() => undefined);
    }
  }

  /** One directory fsync shared by every rename into `dir` that finished before it. */
  async #syncDirectory(dir: string): Promise<void> {
    let entry = this.#syncers.get(dir);
    if (!entry) {
      entry = { syncer: new DirectorySyncer(dir), users: 0 };
      this.#syncers.set(dir, entry);
    }
    entry.users++;
    try {
      await entry.syncer.sync();
    } finally {
      entry.users--;
      if (entry.users === 0) this.#syncers.delete(dir);
    }
  }
}
