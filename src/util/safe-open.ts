/**
 * openRegularFile: opens a spool file that someone else may have put there, without
 * following a symbolic link and without blocking on a FIFO or a device, and refuses
 * anything that is not a regular file with one link.
 *
 * Postfix counterpart: safe_open(3) and mail_open_ok(3) as pickup(8) and qmgr(8) use
 * them: `O_NOFOLLOW | O_NONBLOCK`, then fstat() of the opened descriptor (not of the
 * name, which may change meanwhile) decides.
 *
 * Does not do: decide what to do with a refused file. Callers move it aside
 * (`corrupt/`) and log why; NotRegularFileError says what it was.
 *
 * SECURITY: the checks are made on the open descriptor, so a name swapped after the
 * open cannot change what is read. O_NONBLOCK makes opening a FIFO return at once
 * (where a plain open waits for a writer forever and ties up a thread-pool thread);
 * it has no effect on a regular file. A file with more than one link may be a hard
 * link to someone else's file, planted to be read with our privileges: refused.
 *
 * @module
 */

import { constants, promises as fs, type Stats } from 'node:fs';
import { PosternError } from '../errors.js';

/** What a refused path turned out to be. */
export type NotRegularKind =
  | 'symbolic link'
  | 'directory'
  | 'FIFO'
  | 'socket'
  | 'character device'
  | 'block device'
  | 'hard link'
  | 'special file';

/**
 * A path that is not a regular file with a single link. `code` is
 * `POSTERN_ERR_NOT_REGULAR`, so callers can tell it from an I/O error.
 */
export class NotRegularFileError extends PosternError {
  readonly kind: NotRegularKind;
  readonly path: string;
  constructor(path: string, kind: NotRegularKind) {
    super(
      'POSTERN_ERR_NOT_REGULAR',
      kind === 'hard link'
        ? `${path} has more than one hard link`
        : `${path} is a ${kind}, not a regular file`,
    );
    this.name = 'NotRegularFileError';
    this.kind = kind;
    this.path = path;
  }
}

/** The kind of a non-regular file from its stat; undefined for a regular file. */
export function notRegularKind(st: Stats): NotRegularKind | undefined {
  if (st.isFile()) return undefined;
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

/** An open regular file and its fstat. */
export interface OpenedFile {
  readonly handle: fs.FileHandle;
  readonly stat: Stats;
}

/**
 * Opens `path` for reading (`r`) or reading and writing (`r+`) if it is a regular file
 * with one link. Throws NotRegularFileError for anything else, and the file system's
 * error (ENOENT, EACCES...) when it cannot be opened at all.
 *
 * @param options.allowLinks - accept a file with several hard links (files the caller
 *   itself links, never files other users can write)
 */
export async function openRegularFile(
  path: string,
  mode: 'r' | 'r+' = 'r',
  options: { allowLinks?: boolean } = {},
): Promise<OpenedFile> {
  const flags =
    (mode === 'r' ? constants.O_RDONLY : constants.O_RDWR) |
    constants.O_NOFOLLOW |
    constants.O_NONBLOCK;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Linux says ELOOP for O_NOFOLLOW on a symlink; some systems say EMLINK or EFTYPE.
    if (code === 'ELOOP' || code === 'EMLINK' || code === 'EFTYPE')
      throw new NotRegularFileError(path, 'symbolic link');
    if (code === 'EISDIR') throw new NotRegularFileError(path, 'directory');
    // ENXIO: a FIFO opened for writing with no reader, or a device without its driver.
    if (code === 'ENXIO') throw new NotRegularFileError(path, 'special file');
    throw err;
  }
  try {
    const stat = await handle.stat();
    const kind = notRegularKind(stat);
    if (kind) throw new NotRegularFileError(path, kind);
    if (stat.nlink > 1 && !options.allowLinks) throw new NotRegularFileError(path, 'hard link');
    return { handle, stat };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/** True for the error openRegularFile throws for a path that is not a regular file. */
export function isNotRegular(err: unknown): err is NotRegularFileError {
  return err instanceof NotRegularFileError;
}
