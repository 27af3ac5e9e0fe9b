/**
 * The maildrop directory on the server side: created and checked at start-up, with
 * its `corrupt/` subdirectory.
 *
 * Postfix counterpart: the maildrop entries of postfix-files and what
 * `postfix check` verifies of them (owner, mode 0730 with group postdrop).
 *
 * Postern's maildrop is mode 3733 (see queue-modes.ts) and owned by the uid the server
 * runs as. `prepareMaildrop` makes it so, or refuses to let the server start when it
 * belongs to someone else.
 *
 * SECURITY: `corrupt/` sits inside a directory every local user can write to, so it is
 * made (and its type and owner checked) by the server only, never where a user could
 * have put a symbolic link in its place: once it exists and belongs to the queue owner,
 * the sticky bit keeps users from replacing it.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ComponentLogger } from '../log.js';
import {
  MAILDROP_CORRUPT_SPEC,
  MAILDROP_SPEC,
  QUEUE_DIRECTORY_SPEC,
} from '../queue/queue-modes.js';
import { securePath } from '../util/secure-path.js';

/** The subdirectory of the maildrop for files that cannot be read. */
export const CORRUPT_DIRECTORY = 'corrupt';

/**
 * Checks (with `create`, makes) the queue directory above the maildrop, the maildrop
 * and its `corrupt/`, fixing modes with a warning. Resolves with false when the
 * maildrop does not exist and was not to be made.
 *
 * @throws ConfigError when one of them belongs to another user or is not a directory
 */
export async function prepareMaildrop(
  directory: string,
  log: ComponentLogger,
  options: { create: boolean },
): Promise<boolean> {
  const queue = dirname(directory);
  if (!(await securePath(queue, QUEUE_DIRECTORY_SPEC, log, options))) return false;
  if (!(await securePath(directory, MAILDROP_SPEC, log, options))) return false;
  await securePath(join(directory, CORRUPT_DIRECTORY), MAILDROP_CORRUPT_SPEC, log, {
    create: true,
  });
  return true;
}

/**
 * Makes sure `path` (the maildrop's `corrupt/`) is a directory of this process before
 * anything is moved into it; creates it when missing. Throws otherwise.
 */
export async function ensureCorruptDirectory(path: string): Promise<void> {
  await fs.mkdir(path, { mode: MAILDROP_CORRUPT_SPEC.mode }).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  });
  const st = await fs.lstat(path);
  const euid = process.geteuid?.();
  if (!st.isDirectory() || (euid !== undefined && st.uid !== euid)) {
    throw new Error(
      `${path} is not a directory of uid ${euid ?? '?'} (owner uid ${st.uid}); remove it so the server can make its own`,
    );
  }
}
