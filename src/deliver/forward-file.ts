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
 * When Postern runs as root the files are read with the rights local(8) would use
 * (the recipient's for a .forward file, the expansion's for an :include: file) through
 * a `TargetFileReader` that asks a helper running as that user (mailbox-helper.ts).
 *
 * Does not: decide whose rights apply (alias-expansion.ts, delivery-rights.ts).
 *
 * @module
 */

import { promises as fs, constants as fsConstants } from 'node:fs';
import { PosternError } from '../errors.js';

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
export class TargetFileError extends PosternError {
  constructor(message: string) {
    super('POSTERN_ERR_TARGET_FILE', message);
    this.name = 'TargetFileError';
  }
}

/** Most bytes of a .forward or :include: file that are read. */
export const TARGET_FILE_LIMIT = 1024 * 1024;

/**
 * What reading a .forward or :include: file found: its status, and its text when it is
 * a regular file of at most TARGET_FILE_LIMIT bytes.
 *
 * @example
 * ```ts
 * const found: TargetFile = await readTargetFile('/home/alice/.forward');
 * if (found.regular && found.text !== undefined) console.log(found.text);
 * ```
 */
export interface TargetFile {
  readonly uid: number;
  readonly mode: number;
  readonly nlink: number;
  readonly size: number;
  readonly regular: boolean;
  readonly text?: string;
}

/** Reads a target file: this process's own rights, or a user's through a helper. */
export type TargetFileReader = (file: string) => Promise<TargetFile>;

/**
 * Opens `file` without following a final symbolic link and reads it if it is a regular
 * file of at most TARGET_FILE_LIMIT bytes. O_NONBLOCK: a FIFO planted as a .forward
 * file opens at once (and is then refused) instead of holding a thread forever.
 *
 * @throws the file-system error (ENOENT, ELOOP for a symbolic link, EACCES...).
 */
export async function readTargetFile(file: string): Promise<TargetFile> {
  const handle = await fs.open(
    file,
    fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK,
  );
  try {
    const st = await handle.stat();
    const regular = st.isFile();
    const text =
      regular && st.size <= TARGET_FILE_LIMIT ? await handle.readFile('utf8') : undefined;
    return {
      uid: st.uid,
      mode: st.mode,
      nlink: st.nlink,
      size: st.size,
      regular,
      ...(text === undefined ? {} : { text }),
    };
  } finally {
    await handle.close();
  }
}

/**
 * Reads a .forward file (through `read`, with the recipient's rights when Postern runs
 * as root). Undefined when it does not exist or fails the ownership and permission
 * checks (then `onIgnored` hears why).
 */
export async function readForwardFile(
  file: string,
  ownerUid: number | undefined,
  onIgnored?: (why: string) => void,
  read: TargetFileReader = readTargetFile,
): Promise<string | undefined> {
  let st: TargetFile;
  try {
    st = await read(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') {
      onIgnored?.(`${file} is a symbolic link; ignored`);
      return undefined;
    }
    // dotforward.c: a file the recipient cannot open is warned about and ignored.
    if (code === 'EACCES' || code === 'EPERM') {
      onIgnored?.(`cannot open ${file}: permission denied; ignored`);
      return undefined;
    }
    throw err;
  }
  if (!st.regular) {
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
  if (st.size > TARGET_FILE_LIMIT || st.text === undefined) {
    onIgnored?.(`${file} is larger than 1 MiB; ignored`);
    return undefined;
  }
  return st.text;
}

/**
 * Reads an :include: file (through `read`, with the rights the expansion has reached
 * it with when Postern runs as root).
 *
 * @throws TargetFileError when it is not an absolute path, not a regular file, or
 *   world-writable; the file-system error when it cannot be read.
 */
export async function readIncludeFile(
  file: string,
  read: TargetFileReader = readTargetFile,
): Promise<{ text: string; uid: number }> {
  if (!file.startsWith('/')) throw new TargetFileError(`:include:${file} is not an absolute path`);
  const st = await read(file);
  if (!st.regular) throw new TargetFileError(`:include:${file} is not a regular file`);
  if ((st.mode & 0o002) !== 0) throw new TargetFileError(`:include:${file} is world-writable`);
  if (st.size > TARGET_FILE_LIMIT || st.text === undefined)
    throw new TargetFileError(`:include:${file} is larger than 1 MiB`);
  return { text: st.text, uid: st.uid };
}
