/**
 * FileQueueStore: the embedded default QueueStore, in a queue directory owned by one
 * process: small messages in an append-only journal shared by many (group commit),
 * larger ones and those that stay queued in a file each.
 *
 * Postfix counterpart: the queue directories and their handling by cleanup(8) and
 * qmgr(8). A message with a file of its own is in the directory of its state
 * (`incoming/`, `active/`, `deferred/`, `hold/`, `corrupt/`), changed by rename; new
 * files are written in `tmp/` and renamed in once complete; as in Postfix, a deferred
 * file's mtime is its next attempt time, and at start-up everything left in `active/`
 * goes back to `incoming/` (the process owns the directory, so no one else holds those
 * leases). Postern adds `journal/` (journal/journal.ts): segment files holding many
 * messages each, so that one fdatasync makes a whole batch durable.
 *
 * Where a message goes: content up to `journal.inlineLimit` (64 KiB) is journalled at
 * commit; a larger message, or one committed into hold, gets a file of its own. A
 * journalled message that stays queued or pins an old segment moves out to a file
 * (file-store-journal.ts). The index, claims, leases, listings and queue operations see
 * every message wherever it lives.
 *
 * Durability: a commit resolves (and the client gets its 250) only once its message is
 * durable: a journalled one after the fdatasync of the batch that holds it, which it
 * shares with every commit of the same moment; a file after its fdatasync and a
 * directory fsync that started after its rename, shared likewise. `bounced` and
 * `deferred` outcomes are durable before `recordOutcomes` resolves; `sent` marks are
 * held in memory and written with the next update of the message, its release or
 * `close()` (lazy: a crash loses at most those, which means a duplicate delivery). A
 * removal of a journalled message is a lazy frame; of a file, an unsynced unlink.
 * Releases to `hold` or `corrupt` are synced; a release to `deferred` that stays in the
 * journal is not (a crash then retries the message early).
 *
 * Hand-off: a message just committed to the journal keeps its frame in memory (within
 * the journal's byte budget, `journal.handoffBytes`), so the queue manager's claim
 * (the record parsed from it) and the delivery agent's content read touch no file;
 * nothing else is kept per message for it. The queue manager hears of it while the
 * journal's next fdatasync runs (sync-window.ts), not between a client's 250 and its
 * next command.
 *
 * The index of states and due times is kept in memory (rebuilt at open from a scan and
 * the journal's recovery: file-store-open.ts); leases live in memory.
 *
 * SECURITY: queue IDs are checked with isQueueId before any path is built; modes and
 * owners are checked and fixed at open (file-store-scan.ts, queue-modes.ts); files and
 * segments are opened as regular files only (openRegularFile: no links, no waiting on a
 * FIFO), and anything else, or a file or record that does not parse, goes to
 * `corrupt/` with a warning.
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
import { summarizeInto } from '../summary.js';
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
import { AvailableListeners } from './available-listeners.js';
import {
  dropIfIdle,
  type FileData,
  type FileEntry,
  JOURNAL,
  type MessageHome,
  newData,
  queueOutcomes,
} from './file-store-entry.js';
import { QueueFiles, TMP } from './file-store-files.js';
import { JournalHome } from './file-store-journal.js';
import type { QueueDirectoryLock } from './file-store-lock.js';
import { openQueueDirectory } from './file-store-open.js';
import {
  type FileQueueStoreOptions,
  type JournalSettings,
  journalSettings,
} from './file-store-options.js';
import { QueueContentStream } from './file-store-reader.js';
import { listRows, operateOn, SCAN_CONCURRENCY, summarizeMissing } from './file-store-views.js';
import { FileMessageWriter } from './file-store-writer.js';
import type { JournalStats } from './journal/journal.js';
import { JournalMessageWriter, type JournalWriterHost } from './journal/journal-message-writer.js';
import { MessageIndex } from './message-index.js';
import { SyncWindow } from './sync-window.js';

export type { FileQueueJournalOptions, FileQueueStoreOptions } from './file-store-options.js';

/**
 * A durable queue in a directory: small messages in a group-committed journal, others
 * in a file each; durable before the 250. Postfix counterpart: the queue directories
 * under `queue_directory`.
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
  readonly #logger: Logger;
  readonly #log: ComponentLogger;
  readonly #index = new MessageIndex<FileData | undefined>();
  readonly #files: QueueFiles;
  readonly #settings: JournalSettings;
  #journal: JournalHome | undefined;
  #journalHost: JournalWriterHost | undefined;
  readonly #available: AvailableListeners;
  readonly #syncWindow = new SyncWindow();
  readonly #writers = new Set<QueueId>();
  /** Operations in progress, which close() waits for (a count: no set entry each). */
  #inflight = 0;
  /** Wakes close() once none is left. */
  #drained: (() => void) | undefined;
  readonly #settled = (): void => {
    if (--this.#inflight === 0) this.#drained?.();
  };
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
    this.#logger = options.logger ?? silentLogger;
    this.#log = this.#logger.for('queue');
    // Never in a microtask: a commit's listeners (the queue manager's claim pass) would
    // run before the promise chain that carries the commit back to its client, and delay
    // that client's 250 by the claim's work. After a commit into the journal, in the
    // window of its next fdatasync (sync-window.ts); otherwise on the next turn.
    this.#available = new AvailableListeners(setImmediate, this.#log, (call) =>
      this.#journal && this.#settings.enabled
        ? this.#syncWindow.schedule(call)
        : setImmediate(call),
    );
    this.#files = new QueueFiles(this.directory, this.#index, this.#log);
    this.#settings = journalSettings(options.journal);
  }

  /** Directory fsyncs done so far (one is shared by every commit that waited for it). */
  get directorySyncCount(): number {
    return this.#files.directorySyncs;
  }

  /** The journal's counters (batches, syncs, segments, hand-off), while it is open. */
  journalStats(): (JournalStats & { readonly movedOut: number }) | undefined {
    const home = this.#journal;
    return home && { ...home.journal.stats(), movedOut: home.movedOut };
  }

  /**
   * Moves out of the journal the messages that keep its old segments from being
   * deleted, if the dead space they hold is worth it (the store does this on its own
   * every few hundred commits), then deletes what is finished.
   */
  async compactJournal(): Promise<void> {
    this.#assertOpen();
    await this.#journal?.compact();
    await this.#journal?.journal.reclaim();
  }

  #track<R>(p: Promise<R>): Promise<R> {
    this.#inflight++;
    p.then(this.#settled, this.#settled);
    return p;
  }

  /**
   * The entry's working state, made when it has none: an idle message is in the
   * journal if the journal holds it, else in a file in the directory `fileState`.
   */
  #data(entry: FileEntry, fileState: QueueState = entry.state): FileData {
    entry.data ??= newData(this.#journal?.holds(entry.queueId) ? JOURNAL : fileState);
    return entry.data;
  }

  /** Where the message lives now (call inside `serial`). */
  #home(entry: FileEntry): MessageHome {
    return this.#data(entry).location === JOURNAL ? this.#journal! : this.#files;
  }

  /** Runs `fn` after every earlier operation on this message. */
  #serial<R>(entry: FileEntry, fn: () => Promise<R>): Promise<R> {
    const data = this.#data(entry);
    const p = data.chain.then(fn);
    const drop = (): void => dropIfIdle(entry, chain);
    const chain: Promise<void> = p.then(drop, drop);
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
    const settings = this.#settings;
    try {
      const opened = await openQueueDirectory(this.directory, this.#log, {
        ...settings,
        logger: this.#logger,
        clock: this.#clock,
      });
      this.#lock = opened.lock;
      if (opened.journal) {
        opened.journal.syncStarted = () => this.#syncWindow.syncStarted();
        this.#journal = new JournalHome({
          journal: opened.journal,
          files: this.#files,
          index: this.#index,
          log: this.#log,
          clock: this.#clock,
          serial: (entry, fn) => this.#serial(entry, fn),
          moveOutAfterMs: settings.moveOutAfterMs,
          compactAfterBytes: 4 * settings.segmentSize,
        });
        this.#journalHost = this.#newJournalHost(this.#journal);
      }
      for (const m of opened.messages) this.#index.add(m.queueId, m.state, undefined, m.dueAt);
    } catch (err) {
      this.#state = 'new';
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
    if (this.#index.counts().incoming > 0) this.#available.notify();
    this.#journal?.compact();
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') {
      if (this.#state === 'new') this.#state = 'closed';
      return;
    }
    this.#state = 'closing';
    while (this.#inflight > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
    }
    this.#drained = undefined;
    // Lazy sent marks are written (and synced) before the store lets go.
    const pending = this.#index
      .active()
      .filter((e) => e.data !== undefined && (e.data.lazy.length > 0 || e.data.durable.length > 0));
    await eachLimited(pending, SCAN_CONCURRENCY, async (entry) => {
      await this.#serial(entry, () => this.#home(entry).flush(entry, true)).catch(
        (err: unknown) => {
          this.#log.warning(
            entry.queueId,
            `cannot write delivery status at close: ${errorMessage(err)}`,
          );
        },
      );
    });
    for (const entry of this.#index.active()) entry.lease = undefined;
    this.#syncWindow.cancel();
    await this.#journal?.journal.close().catch((err: unknown) => {
      this.#log.warning(undefined, `cannot close the queue journal: ${errorMessage(err)}`);
    });
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
    const host = this.#journalHost;
    if (!host || !this.#settings.enabled) return this.#fileWriter(queueId);
    return new JournalMessageWriter(queueId, host, this.#settings.inlineLimit);
  }

  /** What every journalled message's writer needs from the store (made once, at open). */
  #newJournalHost(journal: JournalHome): JournalWriterHost {
    return {
      journal: journal.journal,
      committed: (_entry, record, hold) => this.#committed(record, hold),
      spill: (id) => this.#fileWriter(id),
      // Mail committed into hold stays queued: a file of its own from the start.
      ownFile: (record) => record.hold === true,
      // Content is kept for the hand-off only while a queue manager listens to take it.
      handoff: () => this.#available.any,
      // A commit in progress is waited for by close().
      track: (commit) => this.#track(commit),
      done: (id) => {
        this.#writers.delete(id);
      },
    };
  }

  /** A writer of a new message's own file. */
  async #fileWriter(queueId: QueueId): Promise<MessageWriter> {
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
    if (state === 'incoming') this.#available.notify();
  }

  /**
   * A message is durable in the journal: indexed, with no working state (the journal
   * keeps its frame for the hand-off while the budget allows; the claim parses it).
   */
  #committed(record: MessageRecord, hold: boolean): void {
    const state: QueueState = hold ? 'hold' : 'incoming';
    const entry = this.#index.add(record.queueId, state, undefined);
    summarizeInto(entry, record);
    if (state === 'incoming') this.#available.notifyCommitted();
    this.#journal?.committed();
  }

  async claim(options: ClaimOptions): Promise<ClaimedMessage[]> {
    this.#assertOpen();
    const out: ClaimedMessage[] = [];
    // Messages that turn out to be corrupt or gone are skipped and others taken instead.
    for (let round = 0; round < 100 && out.length < options.limit; round++) {
      const picked = this.#index.claim(
        out.length === 0 ? options : { ...options, limit: options.limit - out.length },
      );
      if (picked.length === 0) break;
      // An idle message's file is where the state it was claimed from says.
      for (const entry of picked) this.#data(entry, entry.from);
      const activate = (entry: FileEntry) =>
        this.#serial(entry, () => this.#home(entry).activate(entry));
      // Under a steady flow a claim takes one message: no Promise.all for it.
      const results =
        picked.length === 1
          ? [await activate(picked[0]!)]
          : await Promise.all(picked.map(activate));
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
    return this.#index.renewLease(lease, expiresAt, this.#clock.now());
  }

  openContent(queueId: QueueId): Readable {
    const valid = typeof queueId === 'string' && isQueueId(queueId);
    const entry = valid && this.#state === 'open' ? this.#index.get(queueId) : undefined;
    // A journalled message: from memory while the hand-off holds it, else its segment.
    const journal = this.#journal;
    if (entry && (entry.data?.location ?? JOURNAL) === JOURNAL && journal?.holds(queueId))
      return journal.openContent(queueId);
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
    const data = this.#data(entry);
    if (!data.record)
      throw new QueueStoreError('the message is not fully claimed yet', entry.queueId);
    checkOutcomes(data.record, outcomes);
    data.record = applyOutcomes(data.record, outcomes);
    if (!queueOutcomes(data, outcomes)) return;
    const done = new Promise<void>((resolve, reject) => {
      data.waiters = [...data.waiters, { resolve, reject }];
    });
    if (!data.flushQueued) {
      data.flushQueued = true;
      // Outcomes that arrive while an append runs share the next one.
      this.#serial(entry, async () => {
        data.flushQueued = false;
        await this.#home(entry).flush(entry, true);
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
      await this.#serial(entry, () => this.#home(entry).release(entry, target));
    } catch (err) {
      if (entry.state === 'active' && entry.lease === undefined)
        this.#index.setLease(entry, current);
      throw err;
    }
    if (target.state === 'deferred') this.#available.notify();
  }

  async remove(lease: Lease): Promise<void> {
    this.#assertOpen();
    const entry = this.#index.checkLease(lease, this.#clock.now());
    const current = entry.lease!;
    entry.lease = undefined;
    try {
      await this.#serial(entry, () => this.#home(entry).remove(entry, false));
    } catch (err) {
      if (entry.state === 'active' && entry.lease === undefined)
        this.#index.setLease(entry, current);
      throw new QueueStoreError(`cannot remove the message: ${errorMessage(err)}`, entry.queueId, {
        cause: err,
      });
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
    return listRows(this.#index.list(options.states), options.limit, (e) => this.#row(e));
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
  #summarizeMissing(states: readonly QueueState[] | undefined): Promise<void> {
    return summarizeMissing(this.#index, states, (e) => this.#readRecord(e));
  }

  async hold(selection: QueueSelection, reason?: string): Promise<QueueId[]> {
    return this.#operate(selection, ['incoming', 'active', 'deferred'], (entry) =>
      this.#home(entry).release(entry, {
        state: 'hold',
        ...(reason === undefined ? {} : { reason }),
      }),
    );
  }

  async unhold(selection: QueueSelection): Promise<QueueId[]> {
    const moved = await this.#operate(selection, ['hold'], (entry) =>
      this.#home(entry).release(entry, { state: 'deferred', dueAt: this.#clock.now() }),
    );
    if (moved.length > 0) this.#available.notify();
    return moved;
  }

  async delete(selection: QueueSelection): Promise<QueueId[]> {
    return this.#operate(
      selection,
      ['incoming', 'active', 'deferred', 'hold', 'corrupt'],
      (entry) => this.#home(entry).remove(entry, true),
    );
  }

  async requeue(selection: QueueSelection): Promise<QueueId[]> {
    const moved = await this.#operate(selection, ['active', 'deferred'], (entry) =>
      this.#home(entry).requeue(entry),
    );
    if (moved.length > 0) this.#available.notify();
    return moved;
  }

  async expedite(selection: QueueSelection): Promise<QueueId[]> {
    const moved = await this.#operate(selection, ['deferred'], (entry) =>
      this.#home(entry).expedite(entry, this.#clock.now()),
    );
    if (moved.length > 0) this.#available.notify();
    return moved;
  }

  /** Runs a queue operation (see operateOn) on the selected messages in `states`. */
  #operate(
    selection: QueueSelection,
    states: readonly QueueState[],
    fn: (entry: FileEntry) => Promise<void>,
  ): Promise<QueueId[]> {
    this.#assertOpen();
    return operateOn(this.#index, selection, states, this.#log, {
      serial: (entry, act) => this.#serial(entry, act),
      act: fn,
    });
  }

  /** The current record of a message, from memory, the journal or its file; undefined if unreadable. */
  async #readRecord(entry: FileEntry): Promise<MessageRecord | undefined> {
    if (entry.data?.record) return entry.data.record;
    const journal = this.#journal;
    if (journal && (entry.data?.location ?? JOURNAL) === JOURNAL && journal.holds(entry.queueId))
      return journal.readRecord(entry);
    return this.#files.readRecord(entry);
  }

  onAvailable(listener: () => void): () => void {
    return this.#available.add(listener);
  }
}
