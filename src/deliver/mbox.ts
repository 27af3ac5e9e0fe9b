/**
 * MboxWriter: appends one message to a UNIX mbox file, all or nothing, under a dotlock.
 *
 * Postfix counterpart: local/mailbox.c and global/mail_copy.c with MAIL_COPY_MBOX: a
 * `From sender date` line, the prepended headers, the message with `>From ` quoting
 * and LF line ends, and an empty line after it. The file is opened append-only; when
 * anything fails the file is truncated back to the size it had, so a reader never sees
 * half a message (mail_copy.c "truncate back to original size").
 *
 * Checks, in Postfix's spirit: the mailbox must be a regular file with one link, not a
 * symbolic link (O_NOFOLLOW), and have no execute bit (bounce 5.7.1 "file is
 * executable"); `mailboxSizeLimit` bounds the file after the append (bounce 5.2.2).
 *
 * Does not: fcntl/flock locking (Node has neither; dotlock.ts), biff, mailbox ownership
 * checks beyond what chown on creation gives.
 *
 * SECURITY: created 0600; never written through a link; errors truncate back.
 *
 * STANDARDS: RFC 4155 (application/mbox: the From_ line), mboxo quoting.
 *
 * @module
 */

import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { PosternError } from '../errors.js';
import { ctimeDate } from '../util/mail-date.js';
import { acquireDotLock, type DotLockOptions, type ReleaseLock } from './dotlock.js';

/** Lock-file errors a file destination may go on without the lock after. */
const LOCK_MAY_FAIL = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * A mailbox refusal that bounces (the others defer).
 *
 * @example
 * ```ts
 * if (err instanceof MailboxRefusedError) return bounce(err.enhanced, err.message);
 * ```
 */
export class MailboxRefusedError extends PosternError {
  /** The RFC 3463 status to bounce with (`5.2.2` for a full mailbox). */
  readonly enhanced: string;
  constructor(enhanced: string, message: string) {
    super('POSTERN_ERR_MAILBOX_REFUSED', message);
    this.name = 'MailboxRefusedError';
    this.enhanced = enhanced;
  }
}

/**
 * Options for MboxWriter.
 *
 * @example
 * ```ts
 * const writer = new MboxWriter({ sizeLimit: 0, lock: { attempts: 5 } } satisfies MboxWriterOptions);
 * ```
 */
export interface MboxWriterOptions {
  /** Postfix `mailbox_size_limit` in bytes; 0 = none. @default 51200000 */
  readonly sizeLimit?: number;
  /** Dot-lock tuning. */
  readonly lock?: DotLockOptions;
}

/**
 * Per-delivery options.
 *
 * @example
 * ```ts
 * await new MboxWriter().deliver('/var/mail/alice', data, { uid: 1000, gid: 1000 } satisfies MboxDeliveryOptions);
 * ```
 */
export interface MboxDeliveryOptions {
  /** Aborts waiting for the lock or the write; the mailbox is truncated back. */
  readonly signal?: AbortSignal;
  /** Owner for a newly created mailbox (only as root). */
  readonly uid?: number;
  /** Group for a newly created mailbox (only as root). */
  readonly gid?: number;
  /**
   * Go on without the dotlock when its file cannot be created for want of permission
   * (a file destination in a directory the writer may not create files in; Postfix's
   * MBOX_DOT_LOCK_MAY_FAIL). A lock held by someone else still waits.
   */
  readonly lockMayFail?: boolean;
}

/**
 * The From_ line (with LF): `From sender date`; the null sender is MAILER-DAEMON.
 * The sender is written without white space or control characters so the line stays
 * one separator.
 */
export function fromLine(sender: string, ms: number): string {
  const who = sender === '' ? 'MAILER-DAEMON' : sender.replace(/[\s\x00-\x1f\x7f]/g, '_');
  return `From ${who}  ${ctimeDate(ms)}\n`;
}

/**
 * Appends messages to mbox files under a dot-lock and truncates back on any failure.
 * Postfix counterpart: local/mailbox.c with `deliver_lock`.
 *
 * @example
 * ```ts
 * async function* data() {
 *   yield Buffer.from('From alice@example.com  Thu Nov 29 12:00:00 2026\nSubject: hi\n\nHello\n\n');
 * }
 * await new MboxWriter().deliver('/var/mail/bob', data());
 * ```
 */
export class MboxWriter {
  readonly #sizeLimit: number;
  readonly #lock: DotLockOptions;

  constructor(options: MboxWriterOptions = {}) {
    this.#sizeLimit = options.sizeLimit ?? 51_200_000;
    this.#lock = options.lock ?? {};
  }

  /**
   * Appends `data` (already in mbox form: From_ line first, LF line ends, trailing
   * empty line — see mail-copy.ts) to `file`, creating it 0600 if needed.
   *
   * @throws MailboxRefusedError (bounce), LockBusyError or a file-system error
   *   (defer), or whatever `data` throws; the mailbox is back at its old size in every
   *   case.
   */
  async deliver(
    file: string,
    data: AsyncIterable<Buffer>,
    options: MboxDeliveryOptions = {},
  ): Promise<void> {
    let release: ReleaseLock | undefined;
    try {
      release = await acquireDotLock(file, this.#lock, options.signal);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!options.lockMayFail || !LOCK_MAY_FAIL.has(code ?? '')) throw err;
    }
    try {
      await this.#append(file, data, options);
    } finally {
      await release?.();
    }
  }

  async #append(
    file: string,
    data: AsyncIterable<Buffer>,
    options: MboxDeliveryOptions,
  ): Promise<void> {
    const flags =
      fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW;
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, flags, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
        throw new MailboxRefusedError(
          '5.7.1',
          `mailbox ${file} is a symbolic link; refusing to write through it`,
        );
      }
      throw err;
    }
    let original = -1;
    try {
      const st = await handle.stat();
      if (!st.isFile())
        throw new MailboxRefusedError('5.2.0', `mailbox ${file} is not a regular file`);
      if (st.nlink > 1)
        throw new MailboxRefusedError('5.7.1', `mailbox ${file} has more than one hard link`);
      if ((st.mode & 0o111) !== 0)
        throw new MailboxRefusedError('5.7.1', `mailbox ${file} is executable`);
      if (
        st.size === 0 &&
        options.uid !== undefined &&
        process.getuid?.() === 0 &&
        st.uid !== options.uid
      ) {
        await handle.chown(options.uid, options.gid ?? -1);
      }
      original = st.size;
      let size = original;
      for await (const chunk of data) {
        options.signal?.throwIfAborted();
        size += chunk.length;
        if (this.#sizeLimit > 0 && size > this.#sizeLimit) {
          throw new MailboxRefusedError(
            '5.2.2',
            `cannot update mailbox ${path.basename(file)}: mailbox size limit of ${this.#sizeLimit} bytes exceeded`,
          );
        }
        await handle.write(chunk);
      }
      options.signal?.throwIfAborted();
      await handle.sync();
      original = -1;
    } finally {
      if (original >= 0) {
        await handle.truncate(original).catch(() => undefined);
        await handle.sync().catch(() => undefined);
      }
      await handle.close().catch(() => undefined);
    }
  }
}
