/**
 * Direct content: how a writer of a store that keeps a message in a file of its own hands
 * that file over for the rest of the content, so that another thread or process of the
 * same server (an smtpd worker) writes a large message there itself instead of sending
 * every byte to the thread that owns the store. The store still does everything that
 * makes the message durable: it created the file, and at commit it writes the record,
 * syncs the file (fdatasync covers every write to the file, whichever descriptor made
 * it) and moves it into its queue; until then the file is a temp file, which a crash
 * leaves to the store's clean-up at the next start.
 *
 * Postfix counterpart: none as such; smtpd(8) hands cleanup(8) records over a socket,
 * and cleanup writes the queue file.
 *
 * Does not: let the content be written after commit or abort, or by a writer that is
 * not the server's own: the path is handed only over the server's internal channels.
 *
 * SECURITY: the file was created by the store (O_EXCL, mode 0600) in its own temp
 * directory; whoever writes the rest opens that path without creating it.
 *
 * @module
 */

import type { MessageWriter } from '../types.js';

/** Where the rest of a message's content goes. */
export interface DirectTarget {
  /** The message's file (an absolute path), to be opened for writing, never created. */
  readonly path: string;
  /** The file offset of the next content byte. */
  readonly position: number;
  /**
   * Records that `bytes` of content were written to the file from `position` on; called
   * once, after the last of those writes completed and before `commit()`.
   */
  written(bytes: number): void;
}

/** A MessageWriter that can hand its file over. */
export interface DirectContentWriter {
  /**
   * Ends the writer's content stream, writes to the file what the stream had taken and
   * returns where the rest goes. After it the writer takes no more content through its
   * stream; `commit()` and `abort()` work as before.
   */
  openDirect(): Promise<DirectTarget>;
}

/** The writer's direct-content side, if its store has one. */
export function directContent(
  writer: MessageWriter,
): (MessageWriter & DirectContentWriter) | undefined {
  const w = writer as MessageWriter & Partial<DirectContentWriter>;
  return typeof w.openDirect === 'function'
    ? (w as MessageWriter & DirectContentWriter)
    : undefined;
}

/** Checks a byte count a writer reports, so a bad one cannot move the commit's offsets. */
export function checkedBytes(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0)
    throw new RangeError(`content written directly must be a byte count, not ${bytes}`);
  return bytes;
}
