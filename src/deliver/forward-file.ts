/**
 * .forward and :include: files: finding, checking and reading them, and local(8)'s
 * `$name` expansion for `forward_path` and `luser_relay`.
 *
 * Postfix counterpart: local/dotforward.c, local/include.c, local/local_expand.c.
 * `forwardPath` entries expand `$user`, `$home`, `$shell`, `$recipient`,
 * `$extension`, `$domain`, `$local` and `$recipient_delimiter` (`${name}` too, and
 * `${name?text}` / `${name:text}` when the name is / is not set); each expanded value
 * has every character outside `forwardExpansionFilter` replaced by `_`. An entry that
 * needs a value that is not set (no `$home` for a user without one) is skipped.
 * `$recipient_delimiter` is set only when the recipient has an extension.
 *
 * A .forward file must be a regular file, owned by root or by the recipient (when the
 * user database gives a uid), and not writable by group or others; otherwise it is
 * ignored (Postfix warns and ignores). An :include: file that is world-writable or not
 * a regular file is refused (the recipient bounces, 5.7.1).
 *
 * Does not: open files with the user's privileges (Node cannot switch users per call;
 * the ownership checks stand in for it).
 *
 * @module
 */

import { promises as fs, constants as fsConstants } from 'node:fs';

/** Values for local_expand. Undefined means "not set". */
export type LocalExpandValues = Readonly<Record<string, string | undefined>>;

const EXPAND = /\$(?:\{([A-Za-z_]+)(?:([?:])([^}]*))?\}|([A-Za-z_]+))/g;

/**
 * Expands `template`; undefined when it refers (unconditionally) to a name that is not
 * set. Values are filtered through `filter` (characters outside it become `_`).
 */
export function localExpand(
  template: string,
  values: LocalExpandValues,
  filter: string,
): string | undefined {
  const allowed = new Set(filter);
  let missing = false;
  const clean = (v: string): string => {
    let out = '';
    for (const ch of v) out += allowed.has(ch) ? ch : '_';
    return out;
  };
  const text = template.replace(
    EXPAND,
    (
      _m,
      braced: string | undefined,
      op: string | undefined,
      alt: string | undefined,
      bare: string | undefined,
    ) => {
      const name = (braced ?? bare ?? '').toLowerCase();
      const value = values[name];
      const set = value !== undefined && value !== '';
      if (op === '?') return set ? (alt ?? '') : '';
      if (op === ':') return set ? '' : (alt ?? '');
      if (value === undefined) {
        // Optional parts of the default path: empty rather than "missing".
        if (name === 'extension' || name === 'recipient_delimiter') return '';
        missing = true;
        return '';
      }
      return clean(value);
    },
  );
  return missing ? undefined : text;
}

/** Why a target file was refused. */
export class TargetFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetFileError';
  }
}

/**
 * Reads a .forward file. Undefined when it does not exist or fails the ownership and
 * permission checks (then `onIgnored` hears why).
 */
export async function readForwardFile(
  file: string,
  ownerUid: number | undefined,
  onIgnored?: (why: string) => void,
): Promise<string | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') {
      onIgnored?.(`${file} is a symbolic link; ignored`);
      return undefined;
    }
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      onIgnored?.(`${file} is not a regular file; ignored`);
      return undefined;
    }
    if ((st.mode & 0o022) !== 0) {
      onIgnored?.(`${file} is writable by group or others; ignored`);
      return undefined;
    }
    if (ownerUid !== undefined && st.uid !== 0 && st.uid !== ownerUid) {
      onIgnored?.(`${file} is owned by uid ${st.uid}, not by the recipient or root; ignored`);
      return undefined;
    }
    if (st.size > 1024 * 1024) {
      onIgnored?.(`${file} is larger than 1 MiB; ignored`);
      return undefined;
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Reads an :include: file.
 *
 * @throws TargetFileError when it is not an absolute path, not a regular file, or
 *   world-writable; the file-system error when it cannot be read.
 */
export async function readIncludeFile(file: string): Promise<{ text: string; uid: number }> {
  if (!file.startsWith('/')) throw new TargetFileError(`:include:${file} is not an absolute path`);
  const handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new TargetFileError(`:include:${file} is not a regular file`);
    if ((st.mode & 0o002) !== 0) throw new TargetFileError(`:include:${file} is world-writable`);
    if (st.size > 1024 * 1024) throw new TargetFileError(`:include:${file} is larger than 1 MiB`);
    return { text: await handle.readFile('utf8'), uid: st.uid };
  } finally {
    await handle.close();
  }
}
