/**
 * Mailbox path validation: the only way a user name or a table value becomes a path.
 *
 * Postfix counterpart: none as such — local(8) trusts passwd names and virtual(8)
 * trusts `virtual_mailbox_maps`. Postern validates both, because its users are local
 * parts chosen by whoever sends mail, and tables may be filled by applications.
 *
 * - `localMailboxName(user)`: a user name that is safe as one path component:
 *   1..64 characters of `[a-z0-9._+=-]`, not starting with `.` or `-`, no `..`.
 * - `resolveMailboxPath(base, value)`: a mailbox path from a table, relative to
 *   `virtualMailboxBase`; a trailing `/` means Maildir. Refused: empty, absolute, NUL
 *   or control characters, `.` or `..` segments, segments over 255 bytes, paths over
 *   4096 bytes, and anything that resolves outside the base.
 *
 * Does not: follow symbolic links inside the base (an operator who links a mailbox
 * elsewhere means it); the writers refuse a symlinked mbox file.
 *
 * SECURITY: every check happens before the file system is touched.
 *
 * @module
 */

import path from 'node:path';
import { PosternError } from '../errors.js';

/** A local mailbox name that is safe as one path component. */
const USER_NAME = /^[a-z0-9_+=][a-z0-9._+=-]{0,63}$/;

/** `user` if it is safe as one mailbox path component, else undefined. */
export function localMailboxName(user: string): string | undefined {
  if (!USER_NAME.test(user) || user.includes('..')) return undefined;
  return user;
}

/**
 * A validated mailbox location.
 *
 * @example
 * ```ts
 * const { path, maildir }: MailboxPath = resolveMailboxPath('/var/mail/vhosts', 'example.com/alice/');
 * ```
 */
export interface MailboxPath {
  /** Absolute path (a directory for Maildir, a file for mbox). */
  readonly path: string;
  /** True when the value ended in `/` (Maildir), false for an mbox file. */
  readonly maildir: boolean;
}

/**
 * Why a mailbox path was refused.
 *
 * @example
 * ```ts
 * try {
 *   resolveMailboxPath('/var/mail/vhosts', '../etc/passwd');
 * } catch (err) {
 *   if (err instanceof MailboxPathError) console.error(err.message);
 * }
 * ```
 */
export class MailboxPathError extends PosternError {
  constructor(message: string) {
    super('POSTERN_ERR_MAILBOX_PATH', message);
    this.name = 'MailboxPathError';
  }
}

/**
 * Validates `value` (from `virtualMailboxMaps` or similar) as a path below `base`.
 *
 * @throws MailboxPathError naming what is wrong.
 *
 * @example
 * ```ts
 * resolveMailboxPath('/var/mail/vhosts', 'example.com/alice/');
 * // { path: '/var/mail/vhosts/example.com/alice/', maildir: true }
 * ```
 */
export function resolveMailboxPath(base: string, value: string): MailboxPath {
  if (value === '') throw new MailboxPathError('the mailbox path is empty');
  if (Buffer.byteLength(value) > 4096) throw new MailboxPathError('the mailbox path is too long');
  if (/[\x00-\x1f\x7f]/.test(value))
    throw new MailboxPathError('the mailbox path contains control characters');
  if (value.startsWith('/') || path.isAbsolute(value))
    throw new MailboxPathError(
      'the mailbox path is absolute; it must be relative to the mailbox base',
    );
  const maildir = value.endsWith('/');
  const segments = value.split('/');
  if (maildir) segments.pop();
  if (segments.length === 0) throw new MailboxPathError('the mailbox path names no mailbox');
  for (const segment of segments) {
    if (segment === '') throw new MailboxPathError('the mailbox path has an empty segment ("//")');
    if (segment === '.' || segment === '..')
      throw new MailboxPathError(`the mailbox path has a "${segment}" segment`);
    if (Buffer.byteLength(segment) > 255)
      throw new MailboxPathError('a segment of the mailbox path is longer than 255 bytes');
  }
  const root = path.resolve(base);
  const full = path.resolve(root, ...segments);
  if (!full.startsWith(root + path.sep)) {
    throw new MailboxPathError('the mailbox path leaves the mailbox base');
  }
  return { path: full, maildir };
}
