/**
 * PostgresQueueStore content: the MessageWriter that streams a new message into
 * `content_chunks` and commits it, and the Readable that streams it back out.
 *
 * Postfix counterpart: cleanup(8) writing the queue file and qmgr(8)/the delivery
 * agents reading it (mail_stream.c, the queue file reader).
 *
 * Writing: bytes collect in memory until a chunk (256 KB by default) is full; each full
 * chunk is inserted in a short transaction of its own (autocommit), and the write
 * callback waits for it, so a fast client is held back by the database (backpressure)
 * and a slow client holds no pooled connection and no open transaction while it
 * dawdles. The first such insert also creates the message row in state `writing`,
 * which nothing else sees. `commit()` hands the record and the last partial chunk to
 * the store's group commit (postgres-store-commit.ts): one statement inserts or
 * promotes the message row, inserts the recipients and that chunk, for this message
 * and the others committing at the same moment; the message is durable and claimable
 * when that COMMIT returns. A message smaller than one chunk therefore costs no round
 * trip of its own: a share of one. `abort()` waits for a chunk insert in flight, then
 * deletes the row, and with it (ON DELETE CASCADE) every chunk written so far; rows
 * left `writing` by a node that died are swept at open after a day.
 *
 * Reading: one chunk per query, fetched only when the consumer asks for more, so
 * neither memory nor a connection is held while a slow remote server reads.
 *
 * Does not do: hold a whole message in memory, or keep a connection across chunks.
 *
 * @module
 */

import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { builtin } from '../../builtin.js';
import { QueueStoreError } from '../../errors.js';
import { isQueueId } from '../../queue-id.js';
import type { QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import type { MessageWriter, NewMessageRecord } from '../types.js';
import type { CommitItem } from './postgres-store-commit.js';
import type { QueueDb } from './postgres-store-db.js';

/** The default chunk size: large enough for few rows, small enough for TOAST and memory. */
export const DEFAULT_CHUNK_SIZE = 256 * 1024;

/** What the content code needs from the store. */
export interface ContentContext {
  readonly pool: QueueDb;
  /** The quoted schema name. */
  readonly schema: string;
  readonly chunkSize: number;
  /** Called after a commit into `incoming` (local listeners, then NOTIFY). */
  readonly announce: () => void;
  /** Commits a message with others in one statement (postgres-store-commit.ts). */
  readonly commit: (item: CommitItem) => Promise<void>;
  /** Throws unless the store is open. */
  readonly assertOpen: () => void;
  /** +1 when a message is created, -1 when it goes to its commit or aborts. */
  readonly writing?: (delta: 1 | -1) => void;
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string }).code === '23505';
}

/** Writes one new message; see the module header. */
export class PgMessageWriter implements MessageWriter {
  readonly queueId: QueueId;
  readonly content: Writable;
  readonly #ctx: ContentContext;
  readonly #token = builtin('crypto').randomUUID();
  #parts: Buffer[] = [];
  #bytes = 0;
  /** Chunks inserted so far (the next chunk's number). */
  #chunks = 0;
  /** The `writing` row exists. */
  #started = false;
  #done = false;
  #committing = false;
  /** The chunk inserts in flight, which abort() waits for before it deletes. */
  #flushing: Promise<void> | undefined;
  /** Counted among the messages on their way to a commit. */
  #counted = false;

  constructor(ctx: ContentContext, queueId: QueueId) {
    this.#ctx = ctx;
    this.queueId = queueId;
    this.#counted = true;
    ctx.writing?.(1);
    this.content = new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        this.#parts.push(chunk);
        this.#bytes += chunk.length;
        if (this.#bytes < ctx.chunkSize) {
          callback();
          return;
        }
        const flushing = this.#flushFull();
        this.#flushing = flushing;
        flushing.then(
          () => callback(),
          (err: Error) => callback(err),
        );
      },
    });
  }

  /** No longer counted among the messages on their way to a commit. */
  #uncount(): void {
    if (!this.#counted) return;
    this.#counted = false;
    this.#ctx.writing?.(-1);
  }

  /** Takes exactly `n` buffered bytes. */
  #take(n: number): Buffer {
    const all = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#parts = rest.length > 0 ? [Buffer.from(rest)] : [];
    this.#bytes = rest.length;
    return head;
  }

  /** Inserts every full chunk buffered, each in its own short transaction. */
  async #flushFull(): Promise<void> {
    const s = this.#ctx.schema;
    while (this.#bytes >= this.#ctx.chunkSize) {
      if (this.#done) throw new QueueStoreError('the message was aborted', this.queueId);
      const data = this.#take(this.#ctx.chunkSize);
      const seq = this.#chunks;
      if (!this.#started) {
        try {
          await this.#ctx.pool.query(
            `WITH m AS (
               INSERT INTO ${s}.messages (queue_id, state, writer_token) VALUES ($1, 'writing', $2)
               RETURNING queue_id)
             INSERT INTO ${s}.content_chunks (queue_id, seq, data) SELECT queue_id, $3, $4 FROM m`,
            [this.queueId, this.#token, seq, data],
          );
        } catch (err) {
          if (isUniqueViolation(err))
            throw new QueueStoreError('a message with this queue ID exists', this.queueId);
          throw err;
        }
        this.#started = true;
      } else {
        await this.#ctx.pool.query(
          `INSERT INTO ${s}.content_chunks (queue_id, seq, data) VALUES ($1, $2, $3)`,
          [this.queueId, seq, data],
        );
      }
      this.#chunks = seq + 1;
    }
  }

  async commit(record: NewMessageRecord): Promise<void> {
    if (this.#done || this.#committing)
      throw new QueueStoreError('the message was already committed or aborted', this.queueId);
    if (record.queueId !== this.queueId) {
      throw new QueueStoreError(
        `the record names queue ID ${record.queueId}, the writer ${this.queueId}`,
        this.queueId,
      );
    }
    this.#committing = true;
    try {
      if (!this.content.writableEnded) this.content.end();
      await finished(this.content);
      this.#ctx.assertOpen();
      if (this.#done) throw new QueueStoreError('the message was aborted', this.queueId);
      const rows = this.#commitRows(record);
      this.#uncount();
      await rows;
      this.#done = true;
    } finally {
      this.#uncount();
      this.#committing = false;
    }
    if (!record.hold) this.#ctx.announce();
  }

  async #commitRows(record: NewMessageRecord): Promise<void> {
    const last = this.#bytes > 0 ? this.#take(this.#bytes) : undefined;
    await this.#ctx.commit({
      queueId: this.queueId,
      record,
      writerToken: this.#started ? this.#token : undefined,
      chunks: this.#chunks + (last ? 1 : 0),
      last: last ? { seq: this.#chunks, data: last } : undefined,
    });
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#uncount();
    this.#parts = [];
    this.#bytes = 0;
    if (!this.content.destroyed) this.content.destroy();
    // An insert in flight may create the `writing` row after this point: wait for it,
    // so the row it made (and its chunks) is deleted below rather than left behind.
    await this.#flushing?.catch(() => undefined);
    if (this.#started) {
      await this.#ctx.pool
        .query(
          `DELETE FROM ${this.#ctx.schema}.messages
           WHERE queue_id = $1 AND state = 'writing' AND writer_token = $2`,
          [this.queueId, this.#token],
        )
        .catch(() => undefined);
    }
  }
}

/** Checks a queue ID before create(). */
export function checkNewQueueId(queueId: QueueId): void {
  if (!isQueueId(queueId)) throw new QueueStoreError(`invalid queue ID "${queueId.slice(0, 60)}"`);
}

/** A Readable of a message's content, one chunk per query; errors if it is gone. */
export function contentStream(
  pool: QueueDb,
  schema: string,
  queueId: QueueId,
  isOpen: () => boolean,
): Readable {
  let next = 0;
  let total = -1;
  return new Readable({
    highWaterMark: 64 * 1024,
    read() {
      const fail = (message: string, cause?: unknown) =>
        this.destroy(
          new QueueStoreError(
            message,
            isQueueId(queueId) ? queueId : undefined,
            cause ? { cause } : {},
          ),
        );
      if (!isOpen()) return fail('the queue store is not open');
      if (!isQueueId(queueId)) return fail('no such message in the queue');
      const first = total < 0;
      const query = first
        ? pool.unflushed(
            `SELECT m.chunks, c.data FROM ${schema}.messages m
             LEFT JOIN ${schema}.content_chunks c ON c.queue_id = m.queue_id AND c.seq = 0
             WHERE m.queue_id = $1 AND m.state <> 'writing'`,
            [queueId],
          )
        : pool.unflushed(
            `SELECT data FROM ${schema}.content_chunks WHERE queue_id = $1 AND seq = $2`,
            [queueId, next],
          );
      query.then(
        ({ rows }) => {
          const row = rows[0] as { chunks?: number; data: Buffer | null } | undefined;
          if (first) {
            if (!row) return fail('no such message in the queue');
            total = Number(row.chunks);
          }
          if (next >= total) {
            this.push(null);
            return;
          }
          if (!row?.data)
            return fail('the message was removed from the queue while it was being read');
          next++;
          this.push(row.data);
          if (next >= total) this.push(null);
        },
        (err: unknown) => fail(`cannot read the message: ${errorMessage(err)}`, err),
      );
    },
  });
}
