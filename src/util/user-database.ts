/**
 * UserDatabase: who the local users are, where their home is, which uid/gid they have.
 *
 * Postfix counterpart: getpwnam() as local(8) uses it (mypwd.c). Postern's default is
 * different on purpose: an embedded MTA's users are the local parts it is configured
 * for, not the host's accounts, so `VirtualUsers` accepts every valid local part, with
 * no home directory (so no .forward) and no uid. `PasswdUsers` reads `/etc/passwd`
 * (`localUserDatabase: "passwd"`), which gives home directories, uids and gids as
 * local(8) has them. An application may pass its own UserDatabase.
 *
 * Does not: NSS (LDAP, NIS...) — only the passwd file; shadow data.
 *
 * SECURITY: passwd lines are parsed defensively (seven fields, numeric ids, absolute
 * home); a malformed line is skipped.
 *
 * @module
 */

import { promises as fs, readFileSync } from 'node:fs';

/**
 * One local user.
 *
 * @example
 * ```ts
 * const alice: LocalUser = { name: 'alice', home: '/home/alice', uid: 1000, gid: 1000 };
 * ```
 */
export interface LocalUser {
  /** The login name. */
  readonly name: string;
  /** Home directory (absolute); undefined when the database has none. */
  readonly home?: string;
  /** Numeric user id, used for deliveries as the user (when Postern runs as root). */
  readonly uid?: number;
  /** Numeric group id. */
  readonly gid?: number;
  /** Login shell, for commands run on the user's behalf. */
  readonly shell?: string;
}

/**
 * Looks up local users by (lower-cased) name.
 *
 * @example
 * ```ts
 * const users: UserDatabase = {
 *   async lookup(name) {
 *     return name === 'alice' ? { name, home: '/srv/mail/alice' } : undefined;
 *   },
 * };
 * const agent = new LocalDeliveryAgent({ params, users });
 * ```
 */
export interface UserDatabase {
  /** The user, undefined if there is none; throws to defer (database unavailable). */
  lookup(name: string): Promise<LocalUser | undefined>;
}

/**
 * Every name is a user (the default): the local parts configured for the MTA.
 *
 * @example
 * ```ts
 * await new VirtualUsers().lookup('anyone'); // { name: 'anyone' }
 * ```
 */
export class VirtualUsers implements UserDatabase {
  async lookup(name: string): Promise<LocalUser | undefined> {
    return { name };
  }
}

/** Parses passwd(5) text into users by name (the first entry of a name wins). */
export function parsePasswd(text: string): Map<string, LocalUser> {
  const users = new Map<string, LocalUser>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-'))
      continue;
    const f = line.split(':');
    if (f.length !== 7) continue;
    const [name, , uid, gid, , home, shell] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid) || !home.startsWith('/') || name === '') continue;
    if (!users.has(name))
      users.set(name, { name, uid: Number(uid), gid: Number(gid), home, shell });
  }
  return users;
}

/**
 * The host's /etc/passwd (re-read when it changes).
 *
 * @example
 * ```ts
 * const root = await new PasswdUsers().lookup('root'); // { name: 'root', uid: 0, home: '/root', ... }
 * ```
 */
export class PasswdUsers implements UserDatabase {
  /** The passwd(5) file read. */
  readonly file: string;
  #cache: { mtimeMs: number; size: number; users: Map<string, LocalUser> } | undefined;

  constructor(file = '/etc/passwd') {
    this.file = file;
  }

  async lookup(name: string): Promise<LocalUser | undefined> {
    return (await this.#users()).get(name);
  }

  /** The first user with numeric id `uid` (getpwuid), undefined if there is none. */
  async lookupUid(uid: number): Promise<LocalUser | undefined> {
    const users = await this.#users();
    for (const user of users.values()) if (user.uid === uid) return user;
    return undefined;
  }

  async #users(): Promise<Map<string, LocalUser>> {
    const st = await fs.stat(this.file);
    if (!this.#cache || this.#cache.mtimeMs !== st.mtimeMs || this.#cache.size !== st.size) {
      this.#cache = {
        mtimeMs: st.mtimeMs,
        size: st.size,
        users: parsePasswd(await fs.readFile(this.file, 'utf8')),
      };
    }
    return this.#cache.users;
  }
}

/** Synchronous passwd lookup for configuration time (pipe `user=`). */
export function passwdUserSync(name: string, file = '/etc/passwd'): LocalUser | undefined {
  try {
    return parsePasswd(readFileSync(file, 'utf8')).get(name);
  } catch {
    return undefined;
  }
}

/**
 * `"virtual"` (default), `"passwd"`, or an application's database.
 *
 * @example
 * ```ts
 * const mta = new Mta({ localUserDatabase: 'passwd' satisfies UserDatabaseSpec });
 * ```
 */
export type UserDatabaseSpec = 'virtual' | 'passwd' | UserDatabase;

export function createUserDatabase(spec: UserDatabaseSpec | undefined): UserDatabase {
  if (spec === undefined || spec === 'virtual') return new VirtualUsers();
  if (spec === 'passwd') return new PasswdUsers();
  return spec;
}
