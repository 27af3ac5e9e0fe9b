/**
 * Group commit: frames appended by concurrent callers are gathered into batches, each
 * written with one pwritev and made durable with one fdatasync, and a caller's promise
 * settles only when the batch holding its frame is done.
 *
 * Gathering: one batch is in flight at a time. Whatever arrives while it writes and
 * syncs forms the next batch (this is where the sharing comes from under load: 20
 * writers share one fdatasync in turn). An idle committer starts on the next turn of
 * the event loop (setImmediate), so every frame appended by the I/O callbacks of the
 * same turn goes into one batch. Optionally (`gatherMs` > 0) a batch that starts while
 * more commits are expected (`expected()`, e.g. message writers that are open) waits
 * at most `gatherMs` for them, and no longer once they have all arrived.
 *
 * Durability: a frame marked durable resolves only after an fdatasync that started
 * after its bytes were written has completed. A lazy frame resolves once written; it
 * becomes durable with the next synced batch, when its segment is sealed, or at close.
 * A batch holding only lazy frames is written without an fdatasync.
 *
 * Latency: a batch up to INLINE_WRITE_BYTES is written on the event loop's thread
 * (journal-io.ts), so a lone commit costs one thread-pool round trip, its fdatasync,
 * instead of two; no batch waits for company unless `gatherMs` asks it to. While the
 * fdatasync runs, the event loop is free: `syncStarted` tells the store, which runs
 * work that would otherwise hold up the next client command (delivery) then.
 *
 * Failure: if the write or the fdatasync of a batch fails, every frame of that batch
 * is rejected (none of them may be acknowledged: after a failed fdatasync the kernel
 * may have dropped the dirty pages), the segment is marked broken at the length it had
 * before the batch, and the next batch starts a new segment whose header says so; so
 * the journal stays consistent and recovery ignores the failed bytes. Earlier synced
 * batches stay durable; lazy frames written since the last good sync may be lost, as
 * in a crash (each is checked by its CRC at recovery). While new segments cannot be
 * created (disk full), batches keep failing, and each commit gets an error rather
 * than a false acknowledgement.
 *
 * Postfix counterpart: none — Postfix fsyncs each queue file on its own. This is the
 * group commit of databases (PostgreSQL's WAL writer, commit_delay/commit_siblings).
 *
 * Does not do: encode frames (journal-format.ts), choose segments (segment-set.ts).
 *
 * @module
 */

import { INLINE_WRITE_BYTES, writeFully } from './journal-io.js';
import type { Segment } from './segment-set.js';

/** Where a frame was written. */
export interface Placement {
  readonly segment: Segment;
  /** Offset of the frame in the segment. */
  readonly offset: number;
}

/** Where batches go. */
export interface BatchTarget {
  /** The segment the next batch of `bytes` goes into (rotating when needed). */
  segmentFor(bytes: number): Promise<Segment>;
}

/** Options of GroupCommitter. */
export interface GroupCommitOptions {
  readonly target: BatchTarget;
  /** Most bytes in one batch. */
  readonly maxBatchBytes: number;
  /** Most frames in one batch (one iovec each). */
  readonly maxBatchFrames: number;
  /** Longest wait for expected commits before a batch starts, in ms (0: none). */
  readonly gatherMs: number;
  /** How many more durable commits are expected soon (e.g. open message writers). */
  readonly expected?: () => number;
  /**
   * Called each time a batch's fdatasync has been handed to the thread pool: the event
   * loop waits on the disk until it completes, a window for work that must not delay
   * a client (see sync-window.ts).
   */
  readonly syncStarted?: () => void;
}

/**
 * Counters of the group committer, for benchmarks and tests.
 *
 * @example
 * ```ts
 * const { batches, frames }: GroupCommitStats = store.journalStats()!;
 * ```
 */
export interface GroupCommitStats {
  /** Batches written. */
  batches: number;
  /** fdatasyncs of batches (rotation syncs are counted by the segments). */
  syncs: number;
  /** Frames written. */
  frames: number;
  /** Durable frames acknowledged. */
  durableFrames: number;
  /** Bytes written. */
  bytes: number;
  /** Most frames in one batch. */
  largestBatch: number;
  /** Batches that failed. */
  failedBatches: number;
}

interface Item {
  /** Undefined for a barrier (sync or flush) that writes nothing. */
  readonly frame: Buffer | undefined;
  readonly durable: boolean;
  /** Called as soon as the frame's place is fixed, before it is written. */
  readonly placed: ((placement: Placement) => void) | undefined;
  readonly resolve: (placement: Placement | undefined) => void;
  readonly reject: (err: unknown) => void;
}

/** The group-commit writer of one journal. */
export class GroupCommitter {
  readonly #options: GroupCommitOptions;
  #queue: Item[] = [];
  #running = false;
  #closed = false;
  #gather: { readonly target: number; readonly wake: () => void } | undefined;
  readonly stats: GroupCommitStats = {
    batches: 0,
    syncs: 0,
    frames: 0,
    durableFrames: 0,
    bytes: 0,
    largestBatch: 0,
    failedBatches: 0,
  };

  constructor(options: GroupCommitOptions) {
    this.#options = options;
  }

  /** Frames waiting for a batch. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Appends a frame. Resolves with where it was written: for a durable frame once it
   * is durable, for a lazy one once it is written. Rejects if its batch failed.
   * `placed` is called as soon as its place is fixed, before the write (so a caller
   * can count it as present in its segment from then on).
   */
  append(
    frame: Buffer,
    durable: boolean,
    placed?: (placement: Placement) => void,
  ): Promise<Placement> {
    return this.#enqueue(frame, durable, placed) as Promise<Placement>;
  }

  /** Resolves once everything appended before the call is durable. */
  async sync(): Promise<void> {
    await this.#enqueue(undefined, true);
  }

  /** Resolves once everything appended before the call is written (not necessarily synced). */
  async flush(): Promise<void> {
    await this.#enqueue(undefined, false);
  }

  /**
   * Refuses further appends; resolves once everything appended is durable (rejects if
   * the last sync failed).
   */
  async close(): Promise<void> {
    const last = this.sync();
    this.#closed = true;
    await last;
  }

  #enqueue(
    frame: Buffer | undefined,
    durable: boolean,
    placed?: (placement: Placement) => void,
  ): Promise<Placement | undefined> {
    if (this.#closed) return Promise.reject(new Error('the journal is closed'));
    return new Promise<Placement | undefined>((resolve, reject) => {
      this.#queue.push({ frame, durable, placed, resolve, reject });
      const gather = this.#gather;
      if (gather && this.#queue.length >= gather.target) gather.wake();
      if (!this.#running) {
        this.#running = true;
        setImmediate(() => void this.#run());
      }
    });
  }

  async #run(): Promise<void> {
    while (this.#queue.length > 0) {
      await this.#waitForExpected();
      await this.#write(this.#take());
    }
    // Nothing awaited since the check above: an append now starts a new run.
    this.#running = false;
  }

  /** Waits up to `gatherMs` for the commits `expected()` announces. */
  async #waitForExpected(): Promise<void> {
    const { gatherMs, expected } = this.#options;
    if (gatherMs <= 0 || !expected) return;
    const more = expected();
    if (more <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, gatherMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#gather = { target: this.#queue.length + more, wake: done };
    });
    this.#gather = undefined;
  }

  /** Takes the next batch off the queue: at least one item, within the limits. */
  #take(): Item[] {
    const { maxBatchBytes, maxBatchFrames } = this.#options;
    let bytes = 0;
    let frames = 0;
    let n = 0;
    for (const item of this.#queue) {
      const size = item.frame?.length ?? 0;
      if (n > 0 && (bytes + size > maxBatchBytes || frames + 1 > maxBatchFrames)) break;
      bytes += size;
      if (item.frame) frames++;
      n++;
    }
    const batch = this.#queue.slice(0, n);
    this.#queue = this.#queue.slice(n);
    return batch;
  }

  async #write(batch: Item[]): Promise<void> {
    const frames: Buffer[] = [];
    let bytes = 0;
    let durable = false;
    for (const item of batch) {
      if (item.frame) {
        frames.push(item.frame);
        bytes += item.frame.length;
      }
      durable ||= item.durable;
    }
    let segment: Segment | undefined;
    let start = 0;
    const placements: (Placement | undefined)[] = [];
    try {
      segment = await this.#options.target.segmentFor(bytes);
      start = segment.size;
      let at = start;
      for (const item of batch) {
        const placement = item.frame ? { segment, offset: at } : undefined;
        placements.push(placement);
        if (placement) item.placed?.(placement);
        at += item.frame?.length ?? 0;
      }
      if (frames.length > 0) {
        await writeFully(segment.file, frames, start, bytes <= INLINE_WRITE_BYTES);
      }
      segment.size = start + bytes;
      if (durable && segment.syncedSize < segment.size) {
        const syncing = segment.file.datasync();
        this.#options.syncStarted?.();
        await syncing;
        segment.syncedSize = segment.size;
        this.stats.syncs++;
      }
    } catch (err) {
      if (segment) {
        // Abandon the batch's bytes: the next batch goes to a new segment.
        segment.size = start;
        segment.broken = true;
      }
      this.stats.failedBatches++;
      for (const item of batch) item.reject(err);
      return;
    }
    this.stats.batches++;
    this.stats.frames += frames.length;
    this.stats.bytes += bytes;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, frames.length);
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]!;
      if (item.frame && item.durable) this.stats.durableFrames++;
      item.resolve(placements[i]);
    }
  }
}
