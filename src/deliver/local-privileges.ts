/**
 * The delivery rights local(8)'s delivery switch consults when Postern runs as root:
 * owners of alias files and of accounts by uid, and reading .forward and :include:
 * files with a user's rights.
 *
 * Postfix counterpart: dict_owner() in local/alias.c, mypwuid() in local/include.c,
 * open_as() and stat_as() in local/dotforward.c and local/include.c.
 *
 * Only an aliases(5) source file (`AliasTable` with a file) has an owner; every other
 * table (inline objects, functions, other file types) counts as the operator's, that
 * is root's, so its files and commands run as `defaultPrivs`.
 *
 * Does not: decide when which rights apply (alias-expansion.ts), write (the helpers do).
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { AliasTable } from '../tables/alias-table.js';
import type { ExpansionPrivileges } from './alias-expansion.js';
import { RightsError, type SystemAccounts } from './delivery-rights.js';
import { readTargetFile } from './forward-file.js';
import type { MailboxHelperPool } from './mailbox-helper-pool.js';

/** ExpansionPrivileges backed by the system's accounts and the helper pool. */
export function localPrivileges(
  accounts: SystemAccounts,
  helpers: MailboxHelperPool,
): ExpansionPrivileges {
  return {
    async tableOwner(table) {
      if (!(table instanceof AliasTable) || table.file === undefined) return undefined;
      const st = await fs.stat(table.file).catch((err: Error) => {
        throw new RightsError(`cannot find the owner of ${table.file}: ${err.message}`);
      });
      return accounts.rightsOfUid(st.uid);
    },
    rightsOfUid: (uid) => accounts.rightsOfUid(uid),
    rightsOfUser: (user) => accounts.rightsOfUser(user),
    reader: (rights) =>
      rights === undefined ? readTargetFile : (file) => helpers.read(rights, file),
  };
}
