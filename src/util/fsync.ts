/**
 * Durable file-system helpers: fsync of a directory, and DirectorySyncer, which lets
 * every rename that finished before a directory fsync share that one fsync (group
 * commit).
 *
 * Postfix counterpart: none — Postfix fsyncs each queue file and relies on the file
 * system for the directory entry. Postern also syncs the directory, because a rename
 * is only durable once its directory is, and shares that cost among concurrent writers.
 *
 * @module
 */

import { promises as fs } from 'node:fs';

/** fsyncs a directory so that renames and creations in it are durable. */
export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await fs.open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Group commit for one directory. `sync()` resolves once a directory fsync that
 * *started after the call* has completed: callers that arrive while an fsync runs
 * share the next one.
 */
export class DirectorySyncer {
  readonly path: string;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(path: string) {
    this.path = path;
  }

  sync(): Promise<void> {
    if (this.#next) return this.#next;
    if (!this.#running) {
      this.#running = this.#run();
      return this.#running;
    }
    const after = this.#running;
    this.#next = after.then(
      () => this.#startNext(),
      () => this.#startNext(),
    );
    return this.#next;
  }

  #startNext(): Promise<void> {
    this.#next = undefined;
    this.#running = this.#run();
    return this.#running;
  }

  async #run(): Promise<void> {
    try {
      await fsyncDirectory(this.path);
    } finally {
      // Only clear if no successor took over.
      queueMicrotask(() => {
        if (!this.#next) this.#running = undefined;
      });
    }
  }
}
