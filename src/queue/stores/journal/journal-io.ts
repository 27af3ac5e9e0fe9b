/**
 * The file-system layer the queue journal runs on: the few calls it makes, as an
 * interface, so that tests can count and delay the real calls (a slow or failing
 * fdatasync) and simulate a power cut, and a default that is node:fs itself.
 *
 * A node:fs FileHandle already is a JournalFile, so the default layer adds no wrapper
 * and no cost: every call is one system call (pwritev, pread, fdatasync, ftruncate).
 * It adds one call of its own, `writevSync`: a small batch is copied into the page
 * cache on the calling thread, which takes microseconds, where a trip through the
 * thread pool costs two thread wake-ups (each one a wait for a core on a busy
 * machine) on the path from a message's last byte to its 250. The fdatasync, which
 * can take milliseconds, always goes to the thread pool.
 *
 * Postfix counterpart: none — Postfix calls the file system directly.
 *
 * Does not do: decide anything (group-commit.ts and journal.ts do).
 *
 * @module
 */

import { promises as fs, writevSync } from 'node:fs';
import { fsyncDirectory } from '../../../util/fsync.js';
import { openRegularFile } from '../../../util/safe-open.js';

/** An open journal file: the subset of node:fs's FileHandle the journal uses. */
export interface JournalFile {
  /** Writes `buffers` at `position` (pwritev); may write less than all of them. */
  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }>;
  /**
   * Optional: the same pwritev on the calling thread, returning the bytes written.
   * Used for small batches only (see `writeFully`).
   */
  writevSync?(buffers: Buffer[], position: number): number;
  /** Reads at `position` (pread). */
  read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number }>;
  /** fdatasync: the data and the size are durable when it resolves. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/** The calls the journal makes. */
export interface JournalIo {
  /** Opens a file (`r+`, or `wx` to create one that must not exist, mode 0600). */
  open(path: string, flags: 'r' | 'r+' | 'wx+'): Promise<JournalFile>;
  readdir(path: string): Promise<string[]>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Creates a directory (and its parents) with mode 0700 if missing. */
  mkdir(path: string): Promise<void>;
  /** fsync of a directory: file creations, renames and unlinks in it are durable. */
  syncDirectory(path: string): Promise<void>;
}

/**
 * node:fs, unwrapped. An existing segment is opened as a regular file only (no link is
 * followed, no FIFO waited on: openRegularFile); a new one with O_EXCL, which refuses
 * any name already there, a link included.
 */
export const nodeJournalIo: JournalIo = {
  open: async (path, flags) => {
    const handle =
      flags === 'wx+'
        ? await fs.open(path, flags, 0o600)
        : (await openRegularFile(path, flags)).handle;
    return Object.assign(handle, {
      writevSync: (buffers: Buffer[], position: number) => writevSync(handle.fd, buffers, position),
    });
  },
  readdir: (path) => fs.readdir(path),
  unlink: (path) => fs.unlink(path),
  rename: (from, to) => fs.rename(from, to),
  mkdir: async (path) => {
    await fs.mkdir(path, { recursive: true, mode: 0o700 });
  },
  syncDirectory: fsyncDirectory,
};

/**
 * Writes of at most this many bytes go through `writevSync` when the file has it: a
 * page-cache copy of 256 KiB takes well under a millisecond, less than the thread
 * pool's round trip it saves; larger writes stay off the event loop.
 */
export const INLINE_WRITE_BYTES = 256 * 1024;

/**
 * Writes every byte of `buffers` at `position`, however the kernel splits it; on the
 * calling thread when `inline` and the file can (`writevSync`), through the thread
 * pool otherwise.
 */
export async function writeFully(
  file: JournalFile,
  buffers: readonly Buffer[],
  position: number,
  inline = false,
): Promise<void> {
  let pending = buffers.filter(nonEmpty);
  let at = position;
  const now = inline && file.writevSync !== undefined;
  while (pending.length > 0) {
    const bytesWritten = now
      ? file.writevSync!(pending, at)
      : (await file.writev(pending, at)).bytesWritten;
    if (bytesWritten <= 0) throw new Error('the file system wrote nothing (is the disk full?)');
    at += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < pending.length && skip >= pending[i]!.length) skip -= pending[i++]!.length;
    pending = pending.slice(i);
    if (skip > 0) pending[0] = pending[0]!.subarray(skip);
  }
}

function nonEmpty(b: Buffer): boolean {
  return b.length > 0;
}

/** Bytes of zeros written or compared at a time (preallocation, tail checks). */
export const ZERO_CHUNK = 1024 * 1024;
let zeros: Buffer | undefined;

/** A shared, never written, all-zero buffer of ZERO_CHUNK bytes (allocated on first use). */
export function zeroChunk(): Buffer {
  zeros ??= Buffer.alloc(ZERO_CHUNK);
  return zeros;
}

/** Writes zeros over [from, to) of `file`, one chunk per write, through the thread pool. */
export async function writeZeros(file: JournalFile, from: number, to: number): Promise<void> {
  const chunk = zeroChunk();
  for (let at = from; at < to; at += ZERO_CHUNK) {
    await writeFully(file, [chunk.subarray(0, Math.min(ZERO_CHUNK, to - at))], at);
  }
}

/** Reads exactly `length` bytes at `position` into a new buffer, or fewer at end of file. */
export async function readFully(
  file: JournalFile,
  position: number,
  length: number,
): Promise<Buffer> {
  const b = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(b, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? b : b.subarray(0, done);
}
