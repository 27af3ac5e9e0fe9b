/**
 * The queue directory lock of FileQueueStore: one process at a time owns a queue
 * directory, so the store may keep leases in memory and release every old lease
 * when it opens.
 *
 * The lock is a file created with O_EXCL holding the owner's pid. A lock whose pid is
 * no longer alive was left by a crash and is taken over.
 *
 * Postfix counterpart: master(8)'s pid file lock (`$queue_directory/pid/master.pid`),
 * which keeps a second master off the same queue.
 *
 * Does not do: lock across hosts (a queue directory on a network file system shared
 * by several machines needs PostgresQueueStore instead).
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { QueueStoreError } from '../../errors.js';
import { errorMessage } from '../../util/error-message.js';

export const LOCK_FILE = 'queue.lock';

/** A held lock. */
export interface QueueDirectoryLock {
  readonly path: string;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock of `directory` or throws QueueStoreError naming the process that
 * holds it and how to proceed.
 */
export async function lockQueueDirectory(directory: string): Promise<QueueDirectoryLock> {
  const path = join(directory, LOCK_FILE);
  const mine = `${process.pid}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(path, 'wx', 0o600);
      try {
        await handle.writeFile(mine);
      } finally {
        await handle.close();
      }
      return {
        path,
        async release() {
          const now = await fs.readFile(path, 'utf8').catch(() => '');
          if (now === mine) await fs.unlink(path).catch(() => undefined);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new QueueStoreError(
          `cannot create the lock file ${path}: ${errorMessage(err)}; check that the directory is writable`,
          undefined,
          { cause: err },
        );
      }
    }
    const text = await fs.readFile(path, 'utf8').catch(() => '');
    const pid = /^\d{1,10}\n?$/.test(text) ? Number.parseInt(text, 10) : Number.NaN;
    if (pid === process.pid) {
      throw new QueueStoreError(
        `this process already has the queue directory ${directory} open; close that FileQueueStore first or use another directory`,
      );
    }
    if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) {
      throw new QueueStoreError(
        `another process (pid ${pid}) uses the queue directory ${directory}; stop it or use another directory. ` +
          `If that pid is not a Postern process, delete ${path} and start again`,
      );
    }
    // Left by a process that is gone (or unreadable): take it over.
    await fs.unlink(path).catch(() => undefined);
  }
  throw new QueueStoreError(
    `cannot take the lock file ${path}: another process keeps creating it; stop it and start again`,
  );
}
