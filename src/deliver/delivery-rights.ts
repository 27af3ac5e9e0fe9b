/**
 * Delivery rights: whose uid, gid and groups local(8) uses for a mailbox, a file or a
 * command, when Postern runs as root.
 *
 * Postfix counterpart: the USER_ATTR rights of local(8) (local.h SET_USER_ATTR /
 * RESET_USER_ATTR), `default_privs` (local.c), mypwd.c. The rules, as in Postfix:
 * - a mailbox, and files and commands named in a user's .forward, use the user's rights;
 * - files and commands named in an alias use the rights of the aliases file's owner;
 *   a root-owned or in-memory alias table has none of its own;
 * - an :include: file reached without rights of its own (from a root-owned alias) lends
 *   its owner's rights, unless root owns it; reached from a .forward or a user-owned
 *   alias it keeps the rights it was reached with;
 * - a file or command that ends up with no rights, or with root's, runs as
 *   `defaultPrivs` (nobody).
 *
 * Does not: decide where mail goes (alias-expansion.ts) or switch users itself
 * (mailbox-helper.ts does, in a process of its own; command-delivery.ts through
 * spawn's uid and gid).
 *
 * SECURITY: `defaultPrivs` must name an existing user other than root; a user with no
 * group id is refused rather than guessed.
 *
 * @module
 */

import { ConfigError, PosternError } from '../errors.js';
import { type LocalUser, PasswdUsers, passwdUserSync } from '../util/user-database.js';

/**
 * A Unix identity to deliver as.
 *
 * @example
 * ```ts
 * const alice: DeliveryRights = { uid: 1000, gid: 1000, user: 'alice' };
 * ```
 */
export interface DeliveryRights {
  readonly uid: number;
  readonly gid: number;
  /** The login name whose supplementary groups apply (initgroups); none: only `gid`. */
  readonly user?: string;
}

/** True when this process runs as root (per-user rights apply only then). */
export function runsAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The rights named by `defaultPrivs`.
 *
 * @throws ConfigError when the user does not exist or is root (Postfix stops there too).
 */
export function resolveDefaultPrivs(name: string, passwdFile = '/etc/passwd'): DeliveryRights {
  const entry = passwdUserSync(name, passwdFile);
  if (entry?.uid === undefined || entry.gid === undefined) {
    throw new ConfigError(
      `defaultPrivs: there is no user "${name}" in ${passwdFile}; name an unprivileged account such as "nobody"`,
      'defaultPrivs',
    );
  }
  if (entry.uid === 0) {
    throw new ConfigError(
      `defaultPrivs: "${name}" is root; name an unprivileged account such as "nobody"`,
      'defaultPrivs',
    );
  }
  return { uid: entry.uid, gid: entry.gid, user: entry.name };
}

/** Why rights could not be established (the delivery defers: 4.3.5). */
export class RightsError extends PosternError {
  constructor(message: string) {
    super('POSTERN_ERR_RIGHTS', message);
    this.name = 'RightsError';
  }
}

/**
 * Looks up the system accounts rights come from: owners of files by uid, and the
 * supplementary groups of a user.
 *
 * @example
 * ```ts
 * const accounts = new SystemAccounts();
 * const rights = await accounts.rightsOfUid(1000); // { uid: 1000, gid: 1000, user: 'alice' }
 * ```
 */
export class SystemAccounts {
  readonly #passwd: PasswdUsers;

  constructor(passwdFile = '/etc/passwd') {
    this.#passwd = new PasswdUsers(passwdFile);
  }

  /**
   * The rights of the account with `uid`; undefined for root (no rights of its own).
   *
   * @throws RightsError when no account has that uid (Postfix defers: "cannot find
   *   username for uid").
   */
  async rightsOfUid(uid: number): Promise<DeliveryRights | undefined> {
    if (uid === 0) return undefined;
    const entry = await this.#passwd.lookupUid(uid);
    if (entry?.gid === undefined) throw new RightsError(`cannot find a username for uid ${uid}`);
    return { uid, gid: entry.gid, user: entry.name };
  }

  /**
   * The rights of a local user; undefined for root and for a user without a uid (an
   * application's user database that names no Unix account).
   *
   * @throws RightsError when the user has a uid but no gid anywhere.
   */
  async rightsOfUser(user: LocalUser): Promise<DeliveryRights | undefined> {
    if (user.uid === undefined || user.uid === 0) return undefined;
    const account = await this.#passwd.lookupUid(user.uid).catch(() => undefined);
    const gid = user.gid ?? account?.gid;
    if (gid === undefined)
      throw new RightsError(`user ${user.name} has uid ${user.uid} but no group id`);
    return { uid: user.uid, gid, ...(account ? { user: account.name } : {}) };
  }
}

/**
 * uid/gid for a command (spawn drops supplementary groups, as Postfix's commands run
 * without them): `rights`, or `defaults` when there are none; nothing when not root.
 */
export function commandIds(
  rights: DeliveryRights | undefined,
  defaults: DeliveryRights | undefined,
): { uid?: number; gid?: number } {
  if (!runsAsRoot()) return {};
  const r = rights ?? defaults;
  // Never run a command as root for want of a user.
  if (r === undefined) throw new RightsError('no unprivileged user to run the command as');
  return { uid: r.uid, gid: r.gid };
}
