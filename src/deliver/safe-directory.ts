/**
 * Safe directories: before a delivery writes below a directory with a user's rights,
 * every directory on the way there must be one that only that user or root can change.
 *
 * Postfix counterpart: none as such — local(8) relies on running with the recipient's
 * rights alone. Postern adds this check so that another local user cannot steer one
 * user's deliveries (a symbolic link planted in a shared directory that a .forward file
 * destination passes through) into that user's own files.
 *
 * The path is resolved (symbolic links the user owns are followed, as the user's rights
 * allow), then each directory from `/` down to the deepest one that exists must be owned
 * by root or the user and not be writable by group or others. A sticky directory (such
 * as /tmp) is accepted on the way when the next directory is owned by root or the user,
 * since nobody else can rename or remove it there; the last directory, where files are
 * created, is never accepted writable by others, sticky or not. Directories at or above
 * a trusted base (the mail spool, which the operator set up) are not checked.
 *
 * Does not: open the final file (the writers do, with O_NOFOLLOW or O_EXCL), or check
 * directories that do not exist yet (the user creates them, below a safe one).
 *
 * The file-system calls are synchronous: the helper serves one request at a time, and
 * a handful of lstat() calls cost less than as many trips through libuv's thread pool.
 *
 * SECURITY: runs inside the helper after it has switched to the user, so a directory
 * the user cannot search fails with EACCES rather than being checked as root.
 *
 * @module
 */

import { lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { PosternError } from '../errors.js';

/**
 * A directory on the way to a destination can be changed by someone else.
 *
 * @example
 * ```ts
 * try {
 *   await checkSafeDirectory('/tmp/shared/inbox', 1000);
 * } catch (err) {
 *   if (err instanceof UnsafePathError) console.error(err.message);
 * }
 * ```
 */
export class UnsafePathError extends PosternError {
  constructor(message: string) {
    super('POSTERN_ERR_UNSAFE_PATH', message);
    this.name = 'UnsafePathError';
  }
}

/**
 * Checks that `dir` (which may not exist yet) can only be changed by `uid` or root.
 *
 * @throws UnsafePathError naming the directory at fault; a file-system error (EACCES
 *   when the user cannot search a directory on the way).
 */
export async function checkSafeDirectory(
  dir: string,
  uid: number,
  trustedBase?: string,
): Promise<void> {
  const deepest = deepestExisting(path.resolve(dir));
  const trusted = trustedBase === undefined ? undefined : realOrResolved(trustedBase);
  const parts = deepest.split('/').filter((p) => p !== '');
  for (let i = 0; i <= parts.length; i++) {
    const current = `/${parts.slice(0, i).join('/')}`;
    if (trusted !== undefined && (trusted === current || trusted.startsWith(`${current}/`)))
      continue;
    const st = lstatSync(current);
    if (!st.isDirectory()) throw new UnsafePathError(`${current} is not a directory`);
    if (st.uid !== 0 && st.uid !== uid)
      throw new UnsafePathError(
        `${current} is owned by uid ${st.uid}, not by the recipient or root`,
      );
    if ((st.mode & 0o022) === 0) continue;
    const last = i === parts.length;
    if (!last && (st.mode & 0o1000) !== 0) continue;
    throw new UnsafePathError(`${current} is writable by group or others`);
  }
}

function realOrResolved(dir: string): string {
  try {
    return realpathSync.native(dir);
  } catch {
    return path.resolve(dir);
  }
}

/** The real path of `dir`, or of its deepest ancestor that exists. */
function deepestExisting(dir: string): string {
  let current = dir;
  for (;;) {
    try {
      return realpathSync.native(current);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || current === '/') throw err;
      current = path.dirname(current);
    }
  }
}
