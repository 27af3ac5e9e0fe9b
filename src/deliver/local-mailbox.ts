/**
 * Where a local user's mailbox is, and with whose rights it is written.
 *
 * Postfix counterpart: local/mailbox.c (deliver_mailbox, deliver_mailbox_file) and the
 * mailbox part of local/maildir.c. `homeMailbox` under the user's home, else a mailbox
 * in `mailSpoolDirectory` (a Maildir per user when it ends in `/`, else an mbox file).
 *
 * Rights, when Postern runs as root (otherwise the server writes everything, as the
 * user it runs as):
 * - a home mailbox is written with the user's rights (uid, gid, groups), as local(8)
 *   does "to make file quotas work" and so that a link the user plants leads nowhere
 *   the user could not write anyway;
 * - an mbox file in the spool is written by the server with the spool's rules (dotlock,
 *   O_NOFOLLOW, one link, chown of a new file to the user), as local(8) does with a
 *   spool only root can write;
 * - a Maildir in the spool is a directory the user owns: the server creates it (0700,
 *   owned by the user) and the user's rights write inside it;
 * - root's own mailbox, and a user without a uid (an application's user database), are
 *   written by the server.
 *
 * Does not: write (mailbox-delivery.ts), validate paths beyond mailbox-path.ts.
 *
 * SECURITY: a user's spool directory that is a symbolic link, not a directory or owned
 * by someone else defers (like `strict_mailbox_ownership`); it is created with mkdir and
 * given away with lchown, never through a link.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SmtpReply } from '../smtp-reply.js';
import { errorMessage } from '../util/error-message.js';
import type { LocalUser } from '../util/user-database.js';
import { type DeliveryRights, RightsError, type SystemAccounts } from './delivery-rights.js';
import type { MailboxOutcome, MailboxTarget } from './mailbox-delivery.js';
import { localMailboxName, MailboxPathError, resolveMailboxPath } from './mailbox-path.js';

/**
 * What the mailbox decision needs.
 *
 * @example
 * ```ts
 * const target = await localMailboxTarget(user, { homeMailbox: 'Maildir/', mailSpoolDirectory: '/var/mail' });
 * ```
 */
export interface LocalMailboxSettings {
  /** Postfix `home_mailbox`. */
  readonly homeMailbox: string;
  /** Postfix `mail_spool_directory`. */
  readonly mailSpoolDirectory: string;
}

/**
 * The mailbox of `user`, or the outcome that stops delivery to it. `accounts` is given
 * when Postern runs as root (the target then carries the rights to write with).
 */
export async function localMailboxTarget(
  user: LocalUser,
  settings: LocalMailboxSettings,
  accounts?: SystemAccounts,
): Promise<MailboxTarget | { error: MailboxOutcome }> {
  const name = localMailboxName(user.name);
  if (name === undefined) {
    const shown = user.name.slice(0, 64).replace(/[\x00-\x1f\x7f]/g, '?');
    return bounce('5.1.1', `unknown user: "${shown}" is not a valid local mailbox name`);
  }
  const owner = {
    ...(user.uid === undefined ? {} : { uid: user.uid }),
    ...(user.gid === undefined ? {} : { gid: user.gid }),
  };
  let rights: DeliveryRights | undefined;
  try {
    rights = await accounts?.rightsOfUser(user);
  } catch (err) {
    if (!(err instanceof RightsError)) throw err;
    return defer('4.3.5', `mail system configuration error: ${err.message}`);
  }
  if (settings.homeMailbox !== '' && user.home !== undefined) {
    try {
      const where = resolveMailboxPath(user.home, settings.homeMailbox);
      return { path: where.path, maildir: where.maildir, ...owner, ...(rights ? { rights } : {}) };
    } catch (err) {
      if (err instanceof MailboxPathError) return defer('4.3.5', `homeMailbox: ${err.message}`);
      throw err;
    }
  }
  const spool = path.resolve(settings.mailSpoolDirectory);
  const maildir = settings.mailSpoolDirectory.endsWith('/');
  const where = resolveMailboxPath(spool, maildir ? `${name}/` : name);
  if (!maildir || rights === undefined) return { path: where.path, maildir, ...owner };
  const problem = await prepareSpoolMaildir(spool, where.path, rights);
  if (problem) return { error: problem };
  return { path: where.path, maildir: true, ...owner, rights, trustedBase: spool };
}

/** Creates `dir` in the spool for the user, or checks that it is the user's. */
async function prepareSpoolMaildir(
  spool: string,
  dir: string,
  rights: DeliveryRights,
): Promise<MailboxOutcome | undefined> {
  try {
    await fs.mkdir(spool, { recursive: true, mode: 0o755 });
    const st = await fs.stat(spool);
    const searchable =
      (st.mode & 0o001) !== 0 || ((st.mode & 0o010) !== 0 && st.gid === rights.gid);
    if (!searchable) {
      return deferred(
        '4.3.5',
        `mail system configuration error: mailSpoolDirectory ${spool} cannot be searched by the recipient; make it mode 0755`,
      );
    }
    try {
      await fs.mkdir(dir, { mode: 0o700 });
      await fs.lchown(dir, rights.uid, rights.gid);
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const existing = await fs.lstat(dir);
    if (!existing.isDirectory()) return deferred('4.2.0', `destination ${dir} is not a directory`);
    if (existing.uid !== rights.uid)
      return deferred('4.2.0', `destination ${dir} is not owned by the recipient`);
    return undefined;
  } catch (err) {
    return deferred('4.2.0', `maildir delivery failed: ${errorMessage(err)}`);
  }
}

function bounce(enhanced: string, text: string): { error: MailboxOutcome } {
  return { error: { status: 'bounced', reply: new SmtpReply(550, enhanced, text) } };
}

function deferred(enhanced: string, text: string): MailboxOutcome {
  return {
    status: 'deferred',
    reply: new SmtpReply(enhanced === '4.2.0' ? 450 : 451, enhanced, text),
  };
}

function defer(enhanced: string, text: string): { error: MailboxOutcome } {
  return { error: deferred(enhanced, text) };
}
