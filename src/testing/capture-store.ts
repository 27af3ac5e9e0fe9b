/**
 * CapturingQueueStore: the test MTA's queue — a MemoryQueueStore that hands every
 * committed message to a capture callback before the commit returns, so the message is
 * captured by the time the client reads its 250.
 *
 * Postfix counterpart: none; it stands where a `always_bcc` copy to a test mailbox
 * would, but at the queue's commit rather than after delivery. The seam is the store's
 * MessageWriter: Cleanup answers the client only when `commit()` resolves, and every
 * way into the queue (SMTP, QMQP, submit(), Pickup, bounces and notices) ends there,
 * one commit per accepted transaction with all its recipients.
 *
 * Does not: change what is stored or how it is delivered; a message Cleanup discards
 * (DISCARD action) is never committed and so never captured. The capture callback must
 * not throw: the message is durable by then and the client is owed its 250.
 *
 * @module
 */

import { MemoryQueueStore, type MemoryQueueStoreOptions } from '../queue/stores/memory-store.js';
import type { MessageWriter, NewMessageRecord } from '../queue/types.js';
import type { QueueId } from '../types.js';

/** Called with each committed message's record and content; awaited before the commit resolves. */
export type CommitCapture = (record: NewMessageRecord, content: Buffer) => Promise<void>;

/** A MemoryQueueStore whose commits also go to a capture callback. */
export class CapturingQueueStore extends MemoryQueueStore {
  readonly #capture: CommitCapture;

  constructor(capture: CommitCapture, options: MemoryQueueStoreOptions = {}) {
    super(options);
    this.#capture = capture;
  }

  override async create(queueId: QueueId): Promise<MessageWriter> {
    const writer = await super.create(queueId);
    return {
      queueId: writer.queueId,
      content: writer.content,
      abort: () => writer.abort(),
      ...(writer.openWritten ? { openWritten: () => writer.openWritten!() } : {}),
      commit: async (record) => {
        await writer.commit(record);
        // Taken at once: the stream holds the stored chunks even if delivery removes the
        // message before it has been read.
        const stream = this.openContent(queueId);
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(chunk as Buffer);
        await this.#capture(record, Buffer.concat(chunks));
      },
    };
  }
}
