/**
 * Dotlock: exclusive access to an mbox file through `FILE.lock`, created with O_EXCL.
 *
 * Postfix counterpart: util/dot_lockfile.c and global/deliver_flock.c
 * (`deliver_lock_attempts` 20, `deliver_lock_delay` 1s, `stale_lock_time` 500s). Node
 * has no fcntl() or flock(), so the dotlock is the lock every mbox reader and writer on
 * the system understands (mutt, mailx, procmail, Dovecot all honour it).
 *
 * A lock file older than `staleLockTime` is taken to belong to a crashed writer and is
 * removed. Within one process the writers of one mailbox are also queued in memory, so
 * they do not spin on each other's lock files.
 *
 * Does not: lock with fcntl/flock, or lock through NFS-safe link() tricks.
 *
 * SECURITY: the lock file is created with O_EXCL|O_NOFOLLOW and mode 0600 and holds
 * nothing; a stale lock is removed only if it is still the same file (inode) that was
 * judged stale.
 *
 * @module
 */

import { promises as fs, constants as fsConstants } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../clock.js';
import { PosternError } from '../errors.js';
import type { Clock } from '../types.js';

/**
 * Lock tuning (Postfix's parameters).
 *
 * @example
 * ```ts
 * const release = await acquireDotLock('/var/mail/alice', { attempts: 5, delayMs: 200 } satisfies DotLockOptions);
 * ```
 */
export interface DotLockOptions {
  /** Postfix `deliver_lock_attempts`. @default 20 */
  readonly attempts?: number;
  /** Postfix `deliver_lock_delay`, ms. @default 1000 */
  readonly delayMs?: number;
  /** Postfix `stale_lock_time`, ms. @default 500000 */
  readonly staleMs?: number;
  /** Judges lock-file age (its mtime is wall-clock time). @default systemClock */
  readonly clock?: Clock;
}

/**
 * The mailbox stayed locked by someone else for all attempts.
 *
 * @example
 * ```ts
 * try {
 *   await acquireDotLock('/var/mail/alice');
 * } catch (err) {
 *   if (err instanceof LockBusyError) return defer('mailbox is locked');
 *   throw err;
 * }
 * ```
 */
export class LockBusyError extends PosternError {
  constructor(file: string, attempts: number) {
    super(
      'POSTERN_ERR_LOCK_BUSY',
      `unable to lock ${file} for exclusive access after ${attempts} attempts: lock file exists`,
    );
    this.name = 'LockBusyError';
  }
}

/**
 * Releases a lock.
 *
 * @example
 * ```ts
 * const release: ReleaseLock = await acquireDotLock('/var/mail/alice');
 * try {
 *   await appendMessage();
 * } finally {
 *   await release();
 * }
 * ```
 */
export type ReleaseLock = () => Promise<void>;

const waiters = new Map<string, Promise<void>>();

/**
 * Takes `${file}.lock`. Resolves with the release function.
 *
 * @throws LockBusyError after `attempts` tries; the file-system error when the lock
 *   cannot be created for another reason (EACCES on the directory...).
 *
 * @example
 * ```ts
 * const release = await acquireDotLock('/var/mail/alice');
 * await release();
 * ```
 */
export async function acquireDotLock(
  file: string,
  options: DotLockOptions = {},
  signal?: AbortSignal,
): Promise<ReleaseLock> {
  // In-process queue first: one writer of this process at a time per mailbox.
  const previous = waiters.get(file) ?? Promise.resolve();
  let releaseTurn!: () => void;
  const turn = new Promise<void>((r) => {
    releaseTurn = r;
  });
  const mine = previous.then(() => turn);
  waiters.set(file, mine);
  await previous;
  const done = (): void => {
    releaseTurn();
    if (waiters.get(file) === mine) waiters.delete(file);
  };
  try {
    const release = await takeLockFile(file, options, signal);
    return async () => {
      try {
        await release();
      } finally {
        done();
      }
    };
  } catch (err) {
    done();
    throw err;
  }
}

async function takeLockFile(
  file: string,
  options: DotLockOptions,
  signal?: AbortSignal,
): Promise<ReleaseLock> {
  const attempts = options.attempts ?? 20;
  const delayMs = options.delayMs ?? 1000;
  const staleMs = options.staleMs ?? 500_000;
  const clock = options.clock ?? systemClock;
  const lockPath = `${file}.lock`;
  const flags =
    fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      const handle = await fs.open(lockPath, flags, 0o600);
      const st = await handle.stat();
      await handle.close();
      return async () => {
        // Remove only our own lock file.
        const now = await fs.lstat(lockPath).catch(() => undefined);
        if (now && now.ino === st.ino && now.dev === st.dev)
          await fs.unlink(lockPath).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = await fs.lstat(lockPath).catch(() => undefined);
    if (st && clock.now() - st.mtimeMs > staleMs) {
      const again = await fs.lstat(lockPath).catch(() => undefined);
      if (again && again.ino === st.ino && again.dev === st.dev) {
        await fs.unlink(lockPath).catch(() => undefined);
        if (attempt < attempts) continue;
      }
    }
    if (attempt >= attempts) throw new LockBusyError(file, attempts);
    // A referenced timer: a delivery waiting for a lock keeps the process alive.
    await sleep(delayMs, undefined, signal ? { signal } : {});
  }
}
