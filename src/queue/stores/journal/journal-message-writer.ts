/**
 * JournalMessageWriter: the MessageWriter a journalling store hands to Cleanup. Content
 * up to the inline limit is kept in memory and appended to the journal at commit, as
 * one frame in a group-committed batch; a message that grows past the limit spills,
 * from that byte on, to a writer of the store's own (a per-message file streamed to
 * disk, as today), with what was buffered written to it first.
 *
 * The inline limit (default 64 KiB): below it a message's cost is dominated by the
 * fdatasync, which the journal shares; above it the copy and the disk bandwidth
 * dominate (a 1 MiB write takes about as long as a sync on a common SSD), so sharing
 * gains little while memory per open transaction would grow. 64 KiB covers most mail
 * by count and bounds the buffers of 100 concurrent transactions to 6.4 MiB.
 *
 * Postfix counterpart: cleanup(8) writing the queue file (mail_stream.c), with the
 * difference that small messages are not written at all until commit.
 *
 * Does not do: check the content (Cleanup does), index the message (the host does in
 * `committed`).
 *
 * @module
 */

import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { QueueStoreError } from '../../../errors.js';
import type { QueueId } from '../../../types.js';
import { errorMessage } from '../../../util/error-message.js';
import { storedRecord } from '../../lease.js';
import type { MessageRecord, MessageWriter, NewMessageRecord } from '../../types.js';
import { type DirectContentWriter, type DirectTarget, directContent } from '../direct-content.js';
import type { Journal } from './journal.js';
import type { JournalEntry } from './journal-entry.js';

/** Messages up to this many bytes of content are journalled. */
export const DEFAULT_INLINE_LIMIT = 64 * 1024;

/** What the writer needs from its store. */
export interface JournalWriterHost {
  readonly journal: Journal;
  /** The message is durable in the journal: index it (in `hold` if `hold`). */
  committed(entry: JournalEntry, record: MessageRecord, hold: boolean): void;
  /** A writer for a message past the inline limit (the store's per-message file writer). */
  spill(queueId: QueueId): Promise<MessageWriter>;
  /**
   * Optional: whether a message small enough for the journal is still to have a file
   * of its own (e.g. one committed into hold, which stays queued); it then goes to
   * `spill` at commit.
   */
  ownFile?(record: NewMessageRecord): boolean;
  /**
   * Optional: whether to keep the committed message in memory for the hand-off to
   * delivery (e.g. only while a queue manager listens for new mail). @default true
   */
  handoff?(): boolean;
  /** Optional: a commit has begun; `commit` settles when it has ended. */
  track?(commit: Promise<void>): void;
  /** The writer is finished (committed or aborted). */
  done(queueId: QueueId): void;
}

/** See the module header. */
export class JournalMessageWriter implements MessageWriter, DirectContentWriter {
  readonly queueId: QueueId;
  readonly content: Writable;
  readonly #host: JournalWriterHost;
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #spilled: MessageWriter | undefined;
  #state: 'open' | 'committing' | 'committed' | 'aborted' = 'open';
  /** Counted among the journal's open writers (until commit, spill or abort). */
  #counted = true;

  constructor(queueId: QueueId, host: JournalWriterHost, inlineLimit = DEFAULT_INLINE_LIMIT) {
    this.queueId = queueId;
    this.#host = host;
    this.#limit = inlineLimit;
    host.journal.writerOpened();
    this.content = new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        if (!this.#spilled && this.#size + chunk.length <= this.#limit) {
          // The common case: kept in memory, no promise per chunk.
          this.#size += chunk.length;
          this.#chunks.push(chunk);
          callback();
          return;
        }
        this.#take(chunk).then(
          () => callback(),
          (err: Error) => callback(this.#state === 'aborted' ? null : err),
        );
      },
    });
  }

  /** Bytes of content so far. */
  get size(): number {
    return this.#size;
  }

  /** Whether the message went past the inline limit to the store's own writer. */
  get spilled(): boolean {
    return this.#spilled !== undefined;
  }

  #uncount(): void {
    if (this.#counted) {
      this.#counted = false;
      this.#host.journal.writerClosed();
    }
  }

  async #take(chunk: Buffer): Promise<void> {
    this.#size += chunk.length;
    if (this.#spilled) return this.#forward(chunk);
    if (this.#size <= this.#limit) {
      this.#chunks.push(chunk);
      return;
    }
    // Past the limit: from here on the message streams to a file of its own.
    await this.#spill();
    await this.#forward(chunk);
  }

  /** Moves the message to the store's own writer, what was buffered first. */
  async #spill(): Promise<void> {
    const target = await this.#host.spill(this.queueId);
    if (this.#state === 'aborted') {
      await target.abort();
      throw new QueueStoreError('the message was aborted', this.queueId);
    }
    this.#spilled = target;
    this.#uncount();
    const buffered = this.#chunks;
    this.#chunks = [];
    for (const c of buffered) await this.#forward(c);
  }

  async #forward(chunk: Buffer): Promise<void> {
    const target = this.#spilled!.content;
    // once() rejects if the target errors while we wait.
    if (!target.write(chunk)) await once(target, 'drain');
  }

  async openWritten(): Promise<Readable> {
    if (this.#state !== 'open') {
      throw new QueueStoreError('the message is not being written any more', this.queueId);
    }
    if (this.content.writableEnded) await finished(this.content);
    if (this.#spilled) {
      if (!this.#spilled.openWritten) {
        throw new QueueStoreError(
          'this store cannot re-read a message being written',
          this.queueId,
        );
      }
      return this.#spilled.openWritten();
    }
    return Readable.from([...this.#chunks]);
  }

  /**
   * Hands the file of the store's own writer over for the rest of the content
   * (direct-content.ts): a message still in memory spills to it first.
   */
  async openDirect(): Promise<DirectTarget> {
    if (this.#state !== 'open' || this.content.destroyed) {
      throw new QueueStoreError('the message is not being written any more', this.queueId);
    }
    if (!this.content.writableEnded) this.content.end();
    await finished(this.content);
    if (!this.#spilled) await this.#spill();
    const target = directContent(this.#spilled!);
    if (!target) {
      throw new QueueStoreError('the store cannot take content written directly', this.queueId);
    }
    return target.openDirect();
  }

  commit(record: NewMessageRecord): Promise<void> {
    const commit = this.#commit(record);
    this.#host.track?.(commit);
    return commit;
  }

  async #commit(record: NewMessageRecord): Promise<void> {
    if (this.#state !== 'open') {
      throw new QueueStoreError(
        `the message was already ${this.#state === 'aborted' ? 'aborted' : 'committed'}`,
        this.queueId,
      );
    }
    if (record.queueId !== this.queueId) {
      throw new QueueStoreError(
        `the record names queue ID ${record.queueId}, the writer ${this.queueId}`,
        this.queueId,
      );
    }
    this.#state = 'committing';
    try {
      await ended(this.content);
      if (!this.#spilled && this.#host.ownFile?.(record)) await this.#spill();
      if (this.#spilled) {
        await this.#spilled.commit(record);
      } else {
        const stored = storedRecord(record);
        const hold = record.hold === true;
        this.#uncount();
        const entry = await this.#host.journal.appendMessage(stored, this.#chunks, {
          hold,
          handoff: this.#host.handoff?.() ?? true,
        });
        this.#chunks = [];
        this.#host.committed(entry, stored, hold);
      }
      this.#state = 'committed';
    } catch (err) {
      this.#state = 'aborted';
      this.#chunks = [];
      this.#uncount();
      await this.#spilled?.abort().catch(() => undefined);
      if (err instanceof QueueStoreError) throw err;
      throw new QueueStoreError(`cannot queue the message: ${errorMessage(err)}`, this.queueId, {
        cause: err,
      });
    } finally {
      if (this.#state !== 'committing') this.#host.done(this.queueId);
    }
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    this.#chunks = [];
    this.#uncount();
    if (!this.content.destroyed) this.content.destroy();
    await this.#spilled?.abort().catch(() => undefined);
    this.#host.done(this.queueId);
  }
}

/**
 * Ends `content` (if not yet) and resolves once everything written has been taken, or
 * rejects with the stream's error: the stream's own list of end callbacks, not the
 * dozen listeners `finished()` adds, for the one wait every commit makes.
 */
function ended(content: Writable): Promise<void> {
  if (content.writableFinished) return Promise.resolve();
  return new Promise((resolve, reject) => {
    content.end((err?: Error | null) => (err ? reject(err) : resolve()));
  });
}
