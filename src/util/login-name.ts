/**
 * LoginNames: the login name of a numeric uid, as getpwuid(3) gives it.
 *
 * Postfix counterpart: mypwuid() (mypwd.c), which pickup(8) and sendmail(1) use to name
 * the submitting user. Node has no getpwuid for other users, so this asks
 * `getent passwd UID` (every NSS source: files, LDAP, ...) and, where getent is
 * missing, reads /etc/passwd. Answers are cached for a minute (found or not).
 *
 * Does not do: names to uids, groups, home directories (user-database.ts).
 *
 * @module
 */

import { readFile } from 'node:fs/promises';
import { builtin } from '../builtin.js';
import { parsePasswd } from './user-database.js';

const TTL_MS = 60_000;
const MAX_CACHED = 1000;

/**
 * Looks up login names by uid.
 *
 * @example
 * ```ts
 * const names = new LoginNames();
 * await names.nameOf(0); // 'root'
 * ```
 */
export class LoginNames {
  readonly #cache = new Map<number, { name: string | undefined; until: number }>();

  /** The login name of `uid`, or undefined when no user has it. Never throws. */
  async nameOf(uid: number): Promise<string | undefined> {
    const now = Date.now();
    const hit = this.#cache.get(uid);
    if (hit && hit.until > now) return hit.name;
    const name = await lookup(uid);
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    this.#cache.set(uid, { name, until: now + TTL_MS });
    return name;
  }
}

async function lookup(uid: number): Promise<string | undefined> {
  if (!Number.isSafeInteger(uid) || uid < 0) return undefined;
  const { execFile } = builtin('child_process');
  const viaGetent = await new Promise<string | undefined | null>((resolve) => {
    execFile('getent', ['passwd', String(uid)], { timeout: 5000 }, (err, stdout) => {
      if (!err) return resolve(firstField(stdout));
      // Exit status 2: no such user. Anything else (no getent): try the file.
      resolve((err as { code?: unknown }).code === 2 ? undefined : null);
    });
  });
  if (viaGetent !== null) return viaGetent;
  const text = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const user of parsePasswd(text).values()) if (user.uid === uid) return user.name;
  return undefined;
}

function firstField(line: string): string | undefined {
  const name = line.split('\n')[0]?.split(':')[0];
  return name && /^[^\s:/]{1,256}$/.test(name) ? name : undefined;
}
