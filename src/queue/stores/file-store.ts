/**
 * FileQueueStore: the embedded default QueueStore, one file per message in a queue
 * directory owned by one process.
 *
 * Postfix counterpart: the queue directories and their handling by cleanup(8) and
 * qmgr(8). A message's state is the directory its file is in (`incoming/`, `active/`,
 * `deferred/`, `hold/`, `corrupt/`), changed by rename; new files are written in
 * `tmp/` and renamed in once complete. As in Postfix, a deferred file's mtime is its
 * next attempt time, and at start-up everything left in `active/` goes back to
 * `incoming/` (the process owns the directory, so no one else holds those leases).
 *
 * Durability: a commit fdatasyncs its file, renames it and then waits for a directory
 * fsync that started after the rename; concurrent commits share that fsync (group
 * commit). `bounced` and `deferred` outcomes are appended and fdatasync'ed before
 * `recordOutcomes` resolves; `sent` marks are held in memory and written with the
 * next update of the message, its release or `close()` (lazy: a crash loses at most
 * those, which means a duplicate delivery). Releases to `hold` or `corrupt` are synced;
 * a release to `deferred` is not (a crash then retries the message early).
 *
 * The index of states and due times is kept in memory (rebuilt by one directory scan
 * at open), so `claim()` reads only the files it claims. Leases live in memory.
 *
 * SECURITY: queue IDs are checked with isQueueId before any path is built; modes and
 * owners are checked and fixed at open (file-store-scan.ts, queue-modes.ts); files are
 * opened as regular files only (openRegularFile: no links, no waiting on a FIFO), and
 * anything else, or a file that does not parse, goes to `corrupt/` with a warning.
 *
 * Does not do: share a queue directory between processes or hosts (the lock refuses
 * a second process; use PostgresQueueStore for several nodes), compact the update
 * frames of a message deferred many times.
 *
 * @module
 */

import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { systemClock } from '../../clock.js';
import { PosternError, QueueStoreError } from '../../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../../log.js';
import { isQueueId } from '../../queue-id.js';
import type { Clock, QueueId } from '../../types.js';
import { eachLimited } from '../../util/each-limited.js';
import { errorMessage } from '../../util/error-message.js';
import { applyOutcomes, checkOutcomes, queueEntry } from '../lease.js';
import { isSummarized, summarizeInto } from '../summary.js';
import type {
  ClaimedMessage,
  ClaimOptions,
  Lease,
  MessageRecord,
  MessageWriter,
  QueueCounts,
  QueueEntry,
  QueueSelection,
  QueueState,
  QueueStore,
  QueueSummary,
  RecipientOutcome,
  ReleaseTarget,
} from '../types.js';
import { dataOf, dropIfIdle, type FileData, type FileEntry, newData } from './file-store-entry.js';
import { QueueFiles, STATES, TMP } from './file-store-files.js';
import { lockQueueDirectory, type QueueDirectoryLock } from './file-store-lock.js';
import { QueueContentStream } from './file-store-reader.js';
import { prepareQueueDirectories, scanQueueDirectory } from './file-store-scan.js';
import { FileMessageWriter } from './file-store-writer.js';
import { MessageIndex } from './message-index.js';

/**
 * Options of FileQueueStore.
 *
 * @example
 * ```ts
 * const store = new FileQueueStore({ directory: '/var/spool/postern' } satisfies FileQueueStoreOptions);
 * ```
 */
export interface FileQueueStoreOptions {
  /** The queue directory; created (mode 0711, state directories 0700) if missing. */
  readonly directory: string;
  /**
   * Judges lease expiry in `renew`, `recordOutcomes`, `release` and `remove`; pass the
   * QueueManager's clock.
   * @default systemClock
   */
  readonly clock?: Clock;
  /** @default silentLogger */
  readonly logger?: Logger;
}

/** Files read or renamed at once during open() and list(). */
const SCAN_CONCURRENCY = 32;

/**
 * A durable queue in a directory: one file per message, fsync and rename before the 250,
 * one subdirectory per state. Postfix counterpart: the queue directories under
 * `queue_directory`.
 *
 * @example
 * ```ts
 * const mta = new Mta({ queueStore: new FileQueueStore({ directory: '/var/spool/postern' }) });
 * ```
 */
export class FileQueueStore implements QueueStore {
  /** The queue directory. */
  readonly directory: string;
  readonly #clock: Clock;
  readonly #log: ComponentLogger;
  readonly #index = new MessageIndex<FileData | undefined>();
  readonly #files: QueueFiles;
  readonly #listeners = new Set<() => void>();
  readonly #writers = new Set<QueueId>();
  readonly #inflight = new Set<Promise<unknown>>();
  #notifyPending = false;
  #lock: QueueDirectoryLock | undefined;
  #state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';

  constructor(options: FileQueueStoreOptions) {
    if (typeof options?.directory !== 'string' || options.directory === '') {
      throw new QueueStoreError(
        'FileQueueStore needs a queue directory: new FileQueueStore({ directory: "./var/queue" })',
      );
    }
    this.directory = resolve(options.directory);
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).for('queue');
    this.#files = new QueueFiles(this.directory, this.#index, this.#log);
  }

  /** Directory fsyncs done so far (one is shared by every commit that waited for it). */
  get directorySyncCount(): number {
    return this.#files.directorySyncs;
  }

  #track<R>(p: Promise<R>): Promise<R> {
    this.#inflight.add(p);
    const forget = (): void => {
      this.#inflight.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  /** Runs `fn` after every earlier file operation on this message. */
  #serial<R>(entry: FileEntry, fn: () => Promise<R>): Promise<R> {
    const data = dataOf(entry);
    const p = data.chain.then(fn);
    const chain: Promise<void> = p.then(
      () => dropIfIdle(entry, chain),
      () => dropIfIdle(entry, chain),
    );
    data.chain = chain;
    return this.#track(p);
  }

  #assertOpen(): void {
    if (this.#state === 'open') return;
    if (this.#state === 'new' || this.#state === 'opening') {
      throw new QueueStoreError('the queue store is not open; call open() first');
    }
    throw new QueueStoreError('the queue store is closed; open a new one');
  }

  async open(): Promise<void> {
    if (this.#state === 'open') return;
    if (this.#state !== 'new')
      throw new QueueStoreError('a FileQueueStore can be opened once; make a new one');
    this.#state = 'opening';
    try {
      await prepareQueueDirectories(this.directory, [TMP, ...STATES], this.#log);
      this.#lock = await lockQueueDirectory(this.directory);
      await this.#scan();
    } catch (err) {
      this.#state = 'new';
      await this.#lock?.release().catch(() => undefined);
      this.#lock = undefined;
      for (const e of this.#index.list()) this.#index.delete(e);
      if (PosternError.is(err)) throw err; // ConfigError: a directory not to be trusted
      throw new QueueStoreError(
        `cannot open the queue directory ${this.directory}: ${errorMessage(err)}`,
        undefined,
        {
          cause: err,
        },
      );
    }
    this.#state = 'open';
    if (this.#index.counts().incoming > 0) this.#notify();
  }

  /** Builds the index from the directories (everything left active is released). */
  async #scan(): Promise<void> {
    for (const m of await scanQueueDirectory(this.directory, this.#log)) {
      if (!this.#index.has(m.queueId)) this.#index.add(m.queueId, m.state, undefined, m.dueAt);
    }
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') {
      if (this.#state === 'new') this.#state = 'closed';
      return;
    }
    this.#state = 'closing';
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    // Lazy sent marks are written (and synced) before the store lets go.
    const pending = this.#index
      .active()
      .filter((e) => e.data !== undefined && (e.data.lazy.length > 0 || e.data.durable.length > 0));
    await eachLimited(pending, SCAN_CONCURRENCY, async (entry) => {
      await this.#serial(entry, () => this.#files.append(entry, [], true)).catch((err: unknown) => {
        this.#log.warning(
          entry.queueId,
          `cannot write delivery status at close: ${errorMessage(err)}`,
        );
      });
    });
    for (const entry of this.#index.active()) entry.lease = undefined;
    await this.#lock?.release().catch(() => undefined);
    this.#lock = undefined;
    this.#state = 'closed';
  }

  async create(queueId: QueueId): Promise<MessageWriter> {
    this.#assertOpen();
    if (typeof queueId !== 'string' || !isQueueId(queueId)) {
      throw new QueueStoreError(
        `invalid queue ID "${String(queueId).slice(0, 60)}": expected 6-40 characters of [0-9A-Za-z]`,
      );
    }
    if (this.#index.has(queueId) || this.#writers.has(queueId)) {
      throw new QueueStoreError('a message with this queue ID exists', queueId);
    }
    this.#writers.add(queueId);
    try {
      return await FileMessageWriter.create(queueId, this.#files.path(TMP, queueId), {
        publish: (id, record, hold) => this.#track(this.#publish(id, record, hold)),
        done: (id) => {
          this.#writers.delete(id);
        },
      });
    } catch (err) {
      this.#writers.delete(queueId);
      throw new QueueStoreError(`cannot create a queue file: ${errorMessage(err)}`, queueId, {
        cause: err,
      });
    }
  }

  /** Moves a complete temp file into its queue and waits for that to be durable. */
  async #publish(queueId: QueueId, record: MessageRecord, hold: boolean): Promise<void> {
    this.#assertOpen();
    const state = await this.#files.publish(queueId, hold);
    const entry = this.#index.add(queueId, state, undefined);
    summarizeInto(entry, record);
    if (state === 'incoming') this.#notify();
  }

  async claim(options: ClaimOptions): Promise<ClaimedMessage[]> {
    this.#assertOpen();
    const out: ClaimedMessage[] = [];
    // Files that turn out to be corrupt or gone are skipped and others taken instead.
    for (let round = 0; round < 100 && out.length < options.limit; round++) {
      const picked = this.#index.claim({ ...options, limit: options.limit - out.length });
      if (picked.length === 0) break;
      // An idle message's file is where the state it was claimed from says.
      for (const entry of picked) entry.data ??= newData(entry.from);
      const results = await Promise.all(
        picked.map((entry) => this.#serial(entry, () => this.#files.activate(entry))),
      );
      let lost = 0;
      for (let i = 0; i < picked.length; i++) {
        const entry = picked[i]!;
        const record = results[i];
        if (record && entry.lease) out.push({ lease: entry.lease, record, from: entry.from });
        else lost++;
      }
      if (lost === 0) break;
    }
    return out;
  }

  async renew(lease: Lease, expiresAt: number): Promise<Lease> {
    this.#assertOpen();
    const entry = this.#index.checkLease(lease, this.#clock.now());
    const renewed: Lease = { ...entry.lease!, expiresAt };
    this.#index.setLease(entry, renewed);
    return renewed;
  }

  openContent(queueId: QueueId): Readable {
    const valid = typeof queueId === 'string' && isQueueId(queueId);
    const safeId = valid ? queueId : 'invalid';
    return new QueueContentStream(safeId, async () => {
      if (!valid) throw new QueueStoreError(`invalid queue ID "${String(queueId).slice(0, 60)}"`);
      if (this.#state !== 'open') throw new QueueStoreError('the queue store is not open', queueId);
      const entry = this.#index.get(queueId);
      if (!entry) throw new QueueStoreError('no such message in the queue', queueId);
      // The file may move while we look; try where it should be, then everywhere.
      return this.#files.openFile(entry);
    });
  }

  async recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    this.#assertOpen();
    const entry = this.#index.checkLease(lease, this.#clock.now());
    const data = dataOf(entry);
    if (!data.record)
      throw new QueueStoreError('the message is not fully claimed yet', entry.queueId);
    checkOutcomes(data.record, outcomes);
    data.record = applyOutcomes(data.record, outcomes);
    const durable: RecipientOutcome[] = [];
    const lazy: RecipientOutcome[] = [];
    for (const o of outcomes) (o.outcome.status === 'sent' ? lazy : durable).push(o);
    if (lazy.length > 0) data.lazy = [...data.lazy, ...lazy];
    if (durable.length === 0) return;
    data.durable = [...data.durable, ...durable];
    const done = new Promise<void>((resolve, reject) => {
      data.waiters = [...data.waiters, { resolve, reject }];
    });
    if (!data.flushQueued) {
      data.flushQueued = true;
      // Outcomes that arrive while an append runs share the next one.
      this.#serial(entry, async () => {
        data.flushQueued = false;
        await this.#files.append(entry, [], true);
      }).catch(() => undefined);
    }
    await done;
  }

  async release(lease: Lease, target: ReleaseTarget): Promise<void> {
    this.#assertOpen();
    const entry = this.#index.checkLease(lease, this.#clock.now());
    const current = entry.lease!;
    // From here on the old lease is dead and no claim may take the message.
    entry.lease = undefined;
    try {
      await this.#serial(entry, () => this.#files.release(entry, target));
    } catch (err) {
      if (entry.state === 'active' && entry.lease === undefined)
        this.#index.setLease(entry, current);
      throw err;
    }
    if (target.state === 'deferred') this.#notify();
  }

  async remove(lease: Lease): Promise<void> {
    this.#assertOpen();
    const entry = this.#index.checkLease(lease, this.#clock.now());
    const current = entry.lease!;
    entry.lease = undefined;
    try {
      await this.#serial(entry, () => this.#files.remove(entry));
    } catch (err) {
      if (entry.state === 'active' && entry.lease === undefined)
        this.#index.setLease(entry, current);
      throw new QueueStoreError(
        `cannot remove the queue file: ${errorMessage(err)}`,
        entry.queueId,
        { cause: err },
      );
    }
  }

  async counts(): Promise<QueueCounts> {
    this.#assertOpen();
    return this.#index.counts();
  }

  async list(
    options: { states?: readonly QueueState[]; limit?: number } = {},
  ): Promise<QueueEntry[]> {
    this.#assertOpen();
    const limit = Math.max(0, options.limit ?? Number.POSITIVE_INFINITY);
    const entries = this.#index.list(options.states);
    const rows: (QueueEntry | undefined)[] = [];
    let next = 0;
    // Read in batches until `limit` rows are found (unreadable files are skipped).
    while (rows.filter(Boolean).length < limit && next < entries.length) {
      const batch = entries.slice(
        next,
        next + Math.min(SCAN_CONCURRENCY * 4, limit === Number.POSITIVE_INFINITY ? 1024 : limit),
      );
      next += batch.length;
      const got = await Promise.all(batch.map((e) => this.#row(e)));
      rows.push(...got);
    }
    return rows.filter((r): r is QueueEntry => r !== undefined).slice(0, limit);
  }

  async #row(entry: FileEntry): Promise<QueueEntry | undefined> {
    const record = await this.#readRecord(entry);
    return record && queueEntry(record, entry.state, entry.dueAt);
  }

  async nextDueTime(): Promise<number | undefined> {
    this.#assertOpen();
    return this.#index.nextDueTime();
  }

  async summaries(options: { states?: readonly QueueState[] } = {}): Promise<QueueSummary[]> {
    this.#assertOpen();
    await this.#summarizeMissing(options.states);
    return this.#index.summaries(options.states);
  }

  async forEachSummary(
    visit: (summary: QueueSummary) => void,
    options: { states?: readonly QueueState[] } = {},
  ): Promise<void> {
    this.#assertOpen();
    await this.#summarizeMissing(options.states);
    this.#index.eachSummary(options.states, visit);
  }

  /** Reads once the messages not summarised since open (left by an earlier run). */
  async #summarizeMissing(states: readonly QueueState[] | undefined): Promise<void> {
    const missing: FileEntry[] = [];
    this.#index.each(states, (e) => {
      if (!isSummarized(e)) missing.push(e);
    });
    await eachLimited(missing, SCAN_CONCURRENCY, async (entry) => {
      const row = await this.#readRecord(entry);
      if (row && !isSummarized(entry)) summarizeInto(entry, row);
    });
  }

  async hold(selection: QueueSelection, reason?: string): Promise<QueueId[]> {
    return this.#operate(selection, ['incoming', 'active', 'deferred'], (entry) =>
      this.#files.release(entry, {
        state: 'hold',
        ...(reason === undefined ? {} : { reason }),
      }),
    );
  }

  async unhold(selection: QueueSelection): Promise<QueueId[]> {
    const moved = await this.#operate(selection, ['hold'], (entry) =>
      this.#files.release(entry, { state: 'deferred', dueAt: this.#clock.now() }),
    );
    if (moved.length > 0) this.#notify();
    return moved;
  }

  async delete(selection: QueueSelection): Promise<QueueId[]> {
    return this.#operate(
      selection,
      ['incoming', 'active', 'deferred', 'hold', 'corrupt'],
      (entry) => this.#files.remove(entry),
    );
  }

  async requeue(selection: QueueSelection): Promise<QueueId[]> {
    const moved = await this.#operate(selection, ['active', 'deferred'], (entry) =>
      this.#files.requeue(entry),
    );
    if (moved.length > 0) this.#notify();
    return moved;
  }

  async expedite(selection: QueueSelection): Promise<QueueId[]> {
    const moved = await this.#operate(selection, ['deferred'], (entry) =>
      this.#files.expedite(entry, this.#clock.now()),
    );
    if (moved.length > 0) this.#notify();
    return moved;
  }

  /**
   * Runs a queue operation on each selected message that is in one of `states` when
   * its turn comes. An active message's lease is revoked first, so its holder loses
   * every later write. Failures on one message are logged and skip it.
   */
  async #operate(
    selection: QueueSelection,
    states: readonly QueueState[],
    fn: (entry: FileEntry) => Promise<void>,
  ): Promise<QueueId[]> {
    this.#assertOpen();
    const done: QueueId[] = [];
    await eachLimited(this.#index.select(selection), SCAN_CONCURRENCY, async (entry) => {
      if (!states.includes(entry.state)) return;
      if (entry.state === 'active') entry.lease = undefined;
      try {
        const acted = await this.#serial(entry, async () => {
          if (!states.includes(entry.state) || this.#index.get(entry.queueId) !== entry)
            return false;
          await fn(entry);
          return true;
        });
        if (acted) done.push(entry.queueId);
      } catch (err) {
        this.#log.warning(entry.queueId, `queue operation failed: ${errorMessage(err)}`);
      }
    });
    return done.sort();
  }

  /** The current record of a message, from memory or its file; undefined if unreadable. */
  async #readRecord(entry: FileEntry): Promise<MessageRecord | undefined> {
    if (entry.data?.record) return entry.data.record;
    return this.#files.readRecord(entry);
  }

  onAvailable(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Tells listeners once per turn of the event loop, however many events came. */
  #notify(): void {
    if (this.#notifyPending) return;
    this.#notifyPending = true;
    queueMicrotask(() => {
      this.#notifyPending = false;
      for (const listener of [...this.#listeners]) {
        try {
          listener();
        } catch (err) {
          this.#log.warning(undefined, `onAvailable listener failed: ${errorMessage(err)}`);
        }
      }
    });
  }
}
