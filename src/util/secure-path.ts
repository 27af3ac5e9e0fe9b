/**
 * securePath: makes sure a spool directory or file has the owner and mode it must have,
 * fixing what this process may fix and refusing what it may not.
 *
 * Postfix counterpart: `postfix check` / `postfix set-permissions` (postfix-script and
 * postfix-files), which warn about and repair the ownership and modes of the queue
 * directories at start-up.
 *
 * Rules: the path must be what it should be (a directory, a file, a socket), not a
 * symbolic link, and owned by the uid this process runs as. A mode with bits beyond
 * what is allowed (group- or world-writable, readable where it must not be) is fixed
 * with a warning; a mode missing bits that are needed (the maildrop's public write
 * bit) is fixed with a notice. Anything else (wrong type, another owner, a chmod that
 * fails) throws ConfigError with the path, the owner and the mode in the message:
 * the process must not start on a spool it cannot trust.
 *
 * Does not do: check the parents of the path, or anything on Windows (no uids there).
 *
 * SECURITY: checks use lstat, so a symbolic link is never followed; a path owned by
 * another user is refused rather than taken over, because that user may have planted
 * links or files in it. The set-group-id bit of a directory is not insisted on when
 * the kernel will not let this process set it (a group it is not a member of).
 *
 * @module
 */

import { promises as fs, type Stats } from 'node:fs';
import { ConfigError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import { errorMessage } from './error-message.js';
import { notRegularKind } from './safe-open.js';

/** What a path must be. */
export interface PathSpec {
  readonly type: 'directory' | 'file' | 'socket';
  /** The mode it must have, with the special bits (0o1733, 0o700...). */
  readonly mode: number;
  /** Bits it may also have without a warning (e.g. 0o044: readable). @default 0 */
  readonly optional?: number;
  /** Why the mode is what it is, for the messages ("local users drop mail here"). */
  readonly purpose: string;
}

/** Mode as Postfix and ls print it: four octal digits. */
export function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function typeOf(st: Stats): string {
  return `a ${notRegularKind(st) ?? 'regular file'}`;
}

function matches(st: Stats, type: PathSpec['type']): boolean {
  if (type === 'directory') return st.isDirectory() && !st.isSymbolicLink();
  if (type === 'file') return st.isFile();
  return st.isSocket();
}

/**
 * Checks (and where allowed fixes) `path`. With `create`, a missing directory is made
 * with `spec.mode` (parents as needed). Resolves with false when the path is missing
 * and was not created.
 *
 * @throws ConfigError when the path cannot be trusted and this process cannot fix it
 */
export async function securePath(
  path: string,
  spec: PathSpec,
  log: ComponentLogger,
  options: { create?: boolean; key?: string } = {},
): Promise<boolean> {
  const euid = process.geteuid?.();
  const key = options.key ?? 'queueDirectory';
  let st: Stats;
  try {
    st = await fs.lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!options.create || spec.type !== 'directory') return false;
    await fs.mkdir(path, { recursive: true, mode: spec.mode & 0o777 });
    // mkdir's mode passes through the umask and drops the special bits: set it whole.
    await fs.chmod(path, spec.mode);
    st = await fs.lstat(path);
  }
  if (!matches(st, spec.type)) {
    throw new ConfigError(
      `${path} is ${typeOf(st)} (mode ${octal(st.mode)}, owner uid ${st.uid}), not a ${spec.type}: ` +
        `remove it and start again (${spec.purpose})`,
      key,
    );
  }
  if (euid === undefined) return true;
  if (st.uid !== euid) {
    throw new ConfigError(
      `${path} is owned by uid ${st.uid} (mode ${octal(st.mode)}), not by uid ${euid} that runs postern: ` +
        `it cannot be trusted. Check what is in it, then "chown -R ${euid} ${path}" or run postern as uid ${st.uid}`,
      key,
    );
  }
  const have = st.mode & 0o7777;
  const optional = spec.optional ?? 0;
  let want = (have & optional) | spec.mode;
  if (have === want) return true;
  const loose = have & ~(spec.mode | optional);
  try {
    await fs.chmod(path, want);
    if ((want & 0o2000) !== 0 && spec.type === 'directory') {
      // The kernel drops S_ISGID for a group we are not in; accept what it allows.
      const now = (await fs.lstat(path)).mode & 0o7777;
      if ((now | 0o2000) === want) want = now;
      if (have === want) return true;
    }
  } catch (err) {
    throw new ConfigError(
      `${path} has mode ${octal(have)} and must have ${octal(spec.mode)} (${spec.purpose}), ` +
        `but chmod failed: ${errorMessage(err)}`,
      key,
      { cause: err },
    );
  }
  if (loose !== 0) {
    log.warning(
      undefined,
      `${path} had mode ${octal(have)}, looser than ${octal(spec.mode | optional)} (${spec.purpose}): changed to ${octal(want)}`,
    );
  } else {
    log.info(
      undefined,
      `${path} had mode ${octal(have)}: changed to ${octal(want)} (${spec.purpose})`,
    );
  }
  return true;
}
