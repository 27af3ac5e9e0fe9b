/**
 * PasswdTable: `unix:passwd.byname`, the host's user accounts as a table — a user name
 * finds its passwd(5) entry. Postern's default `localRecipientMaps` names it.
 *
 * Postfix counterpart: dict_unix.c (`unix:passwd.byname`, getpwnam()), usually read
 * through proxymap (`proxy:unix:passwd.byname`, which Postern accepts as the same).
 *
 * The accounts are listed with `getent passwd` (so NSS sources that enumerate, such as
 * LDAP through sssd with enumeration on, are included), or read from `/etc/passwd` where
 * there is no getent. The list is kept in memory: a lookup never waits on the file
 * system or a process, except the very first one. When the list is older than
 * `refreshMs` (`lookupTableCacheTtl`, 60 s) a lookup starts one refresh in the
 * background and is answered from the list it has; a new account is thus seen within
 * that time. Keys are case-folded; only a bare name (no `@`) can match.
 *
 * Does not: call getpwnam() per lookup (Node has no such call, and a process per
 * unknown recipient would let a client make the server fork at will), see accounts of
 * NSS sources that do not enumerate.
 *
 * SECURITY: the listing is bounded (64 MiB of output, 30 s); a failure before any list
 * was read is a TableError `retry` (the RCPT gets a 4xx), and a failed refresh keeps the
 * previous list. Entries live in a Map.
 *
 * @module
 */

import { readFile } from 'node:fs/promises';
import { builtin } from '../builtin.js';
import { TableError } from '../errors.js';
import { errorMessage } from '../util/error-message.js';
import type { LookupTable, TableFlags } from './types.js';

const FLAGS: TableFlags = Object.freeze({ pattern: false, foldCase: true, substitution: false });
const NAME = 'unix:passwd.byname';
const MAX_OUTPUT = 64 * 1024 * 1024;
const LIST_TIMEOUT_MS = 30_000;

/**
 * Options for PasswdTable.
 *
 * @example
 * ```ts
 * const users = new PasswdTable({ getent: false, file: '/srv/chroot/etc/passwd' } satisfies PasswdTableOptions);
 * ```
 */
export interface PasswdTableOptions {
  /** Run `getent passwd` first. @default true */
  readonly getent?: boolean;
  /** The passwd(5) file read when getent is off or fails. @default '/etc/passwd' */
  readonly file?: string;
  /** How old the list may get before a lookup refreshes it, in ms. @default 60000 */
  readonly refreshMs?: number;
  /** Time source in ms. @default Date.now */
  readonly now?: () => number;
}

/** passwd(5) text → entries by lower-cased name (the first entry of a name wins). */
export function parsePasswdEntries(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const entry = line.replace(/\r$/, '');
    const colon = entry.indexOf(':');
    // NIS `+`/`-` lines and comments name no account.
    if (colon <= 0 || /^[#+-]/.test(entry)) continue;
    const name = entry.slice(0, colon).toLowerCase();
    if (!out.has(name)) out.set(name, entry);
  }
  return out;
}

function listWithGetent(): Promise<string> {
  return new Promise((resolve, reject) => {
    builtin('child_process').execFile(
      'getent',
      ['passwd'],
      { maxBuffer: MAX_OUTPUT, timeout: LIST_TIMEOUT_MS, env: { PATH: '/usr/bin:/bin' } },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    );
  });
}

/**
 * The host's accounts: `unix:passwd.byname`.
 *
 * @example
 * ```ts
 * const users = new PasswdTable();
 * await users.lookup('root'); // 'root:x:0:0:root:/root:/bin/bash'
 * await users.lookup('no-such-user'); // undefined
 * ```
 */
export class PasswdTable implements LookupTable {
  readonly name = NAME;
  readonly flags: TableFlags = FLAGS;
  readonly #options: PasswdTableOptions;
  #users: { readonly at: number; readonly entries: Map<string, string> } | undefined;
  #loading: Promise<Map<string, string>> | undefined;

  constructor(options: PasswdTableOptions = {}) {
    this.#options = options;
  }

  async lookup(key: string): Promise<string | undefined> {
    if (key.includes('@') || key === '') return undefined;
    const entries = await this.#current();
    return entries.get(key.toLowerCase());
  }

  async #current(): Promise<Map<string, string>> {
    const now = (this.#options.now ?? Date.now)();
    const users = this.#users;
    if (!users) return this.#load();
    if (now - users.at >= (this.#options.refreshMs ?? 60_000) && !this.#loading) {
      // Answer from the list at hand; a failed refresh keeps it.
      this.#load().catch(() => undefined);
    }
    return users.entries;
  }

  #load(): Promise<Map<string, string>> {
    this.#loading ??= this.#read()
      .then((entries) => {
        this.#users = { at: (this.#options.now ?? Date.now)(), entries };
        return entries;
      })
      .finally(() => {
        this.#loading = undefined;
      });
    return this.#loading;
  }

  async #read(): Promise<Map<string, string>> {
    const file = this.#options.file ?? '/etc/passwd';
    let getentError: unknown;
    if (this.#options.getent ?? true) {
      try {
        return parsePasswdEntries(await listWithGetent());
      } catch (err) {
        getentError = err;
      }
    }
    try {
      return parsePasswdEntries(await readFile(file, 'utf8'));
    } catch (err) {
      const why = [getentError, err]
        .filter((e) => e !== undefined)
        .map((e) => errorMessage(e))
        .join('; ');
      throw new TableError('retry', NAME, `cannot list the user accounts: ${why}`, {
        cause: err,
      });
    }
  }
}
