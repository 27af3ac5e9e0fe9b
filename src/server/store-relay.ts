/**
 * StoreRelay: the primary's end of one smtpd worker's socket pair. It applies the
 * worker's frames to the real QueueStore — `create()`, content writes, `commit()`,
 * `abort()` — and answers each commit once the store has made the message durable, so
 * commits from every worker share the store's group commit. A worker writing a large
 * message asks for the store's file (DIRECT): the relay hands it over once what came
 * in frames is written, and at commit counts the bytes the worker wrote there
 * (WRITTEN) before the store syncs the file. Worker log lines are handed to the
 * primary's log writer whole, as the bytes the worker encoded, so lines never
 * interleave.
 *
 * Postfix counterpart: cleanup(8) reading smtpd's records and answering with a status;
 * master(8) noticing a child that died.
 *
 * Frames are applied in order. A `create()` in progress or a content stream that asks
 * to wait holds the frames behind it; when more than HIGH_WATER bytes wait, the socket
 * is paused, so a 100 MB message streams with bounded memory in both processes.
 *
 * Does not: survive the worker. When its socket closes every message it had not
 * committed is aborted (its client never got a 250); a commit already handed to the
 * store completes, and that message is delivered (its client may send it again:
 * at-least-once).
 *
 * SECURITY: the worker is the primary's own child, on a socket pair no other process
 * holds; still, frames are bounded (worker-frames.ts) and a malformed one closes the
 * connection rather than the primary.
 *
 * @module
 */

import type { Duplex } from 'node:stream';
import { QueueStoreError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import { type DirectTarget, directContent } from '../queue/stores/direct-content.js';
import type { MessageWriter, NewMessageRecord, QueueStore } from '../queue/types.js';
import { asError, errorMessage } from '../util/error-message.js';
import { encodeFrame, Frame, FrameDecoder } from './worker-frames.js';

/** Bytes of frames waiting to be applied above which the socket is paused. */
const HIGH_WATER = 1024 * 1024;

interface OpenWriter {
  /** Undefined while `create()` is in progress. */
  writer: MessageWriter | undefined;
  /** Why the message cannot be committed (create failed, a write failed). */
  failed: Error | undefined;
  /** The store's file, once handed to the worker for the rest of the content. */
  direct?: DirectTarget;
}

interface Pending {
  readonly type: number;
  readonly id: number;
  readonly payload: Buffer;
}

/**
 * Serves one worker's socket.
 *
 * @example
 * ```ts
 * const relay = new StoreRelay(socket, store, log, (lines) => writer.writeBytes(lines));
 * relay.closed.then(() => log.info(undefined, 'worker gone'));
 * // with a fifth argument, (record) => ..., called for each message made durable
 * ```
 */
export class StoreRelay {
  readonly #socket: Duplex;
  readonly #store: QueueStore;
  readonly #log: ComponentLogger;
  readonly #logLines: (lines: Buffer) => void;
  readonly #onCommitted: ((record: NewMessageRecord) => void) | undefined;
  readonly #writers = new Map<number, OpenWriter>();
  #pending: Pending[] = [];
  #pendingAt = 0;
  #pendingBytes = 0;
  #busy = false;
  #out: Buffer[] = [];
  #outScheduled = false;
  #ended = false;
  /** Resolves when the socket has closed and every open writer was aborted. */
  readonly closed: Promise<void>;

  constructor(
    socket: Duplex,
    store: QueueStore,
    log: ComponentLogger,
    logLines: (lines: Buffer) => void,
    onCommitted?: (record: NewMessageRecord) => void,
  ) {
    this.#socket = socket;
    this.#store = store;
    this.#log = log;
    this.#logLines = logLines;
    this.#onCommitted = onCommitted;
    // Content goes to the store in the pieces the socket was read in: never gathered.
    // A queue ID, a record or a count is read from its frame at once: never copied.
    const decoder = new FrameDecoder(
      (type, id, payload) => this.#take(type, id, payload),
      [Frame.data],
      [Frame.create, Frame.commit, Frame.written],
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        this.#log.error(undefined, `smtpd worker channel: ${errorMessage(err)}`);
        socket.destroy();
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.#ended = true;
        this.#pending = [];
        this.#pendingBytes = 0;
        void this.#abortAll().then(resolve);
      });
    });
  }

  /** Messages started and not yet committed or aborted. */
  get openWriters(): number {
    return this.#writers.size;
  }

  #take(type: number, id: number, payload: Buffer): void {
    if (type === Frame.log) {
      // Whole lines, rendered and encoded by the worker: written as they came, with no
      // ordering against the messages needed.
      this.#logLines(payload);
      return;
    }
    if (!this.#busy) {
      // Nothing waits: applied at once, with no entry in the queue.
      const wait = this.#apply(type, id, payload);
      if (wait) {
        this.#busy = true;
        void wait.then(() => this.#run());
      }
      return;
    }
    this.#pending.push({ type, id, payload });
    this.#pendingBytes += payload.length;
    if (this.#pendingBytes >= HIGH_WATER) this.#socket.pause();
  }

  /** Applies waiting frames in order until one has to wait. */
  #run(): void {
    this.#busy = true;
    while (this.#pendingAt < this.#pending.length) {
      const f = this.#pending[this.#pendingAt++]!;
      this.#pendingBytes -= f.payload.length;
      const wait = this.#apply(f.type, f.id, f.payload);
      if (wait) {
        void wait.then(() => this.#run());
        return;
      }
    }
    this.#pending.length = 0;
    this.#pendingAt = 0;
    this.#busy = false;
    if (!this.#ended && this.#socket.isPaused()) this.#socket.resume();
  }

  /** Applies one frame; returns a promise when the next frame must wait for it. */
  #apply(type: number, id: number, payload: Buffer): Promise<void> | undefined {
    switch (type) {
      case Frame.create:
        return this.#create(id, payload.toString('latin1'));
      case Frame.data:
        return this.#data(id, payload);
      case Frame.commit:
        this.#commit(id, payload);
        return undefined;
      case Frame.abort:
        this.#abort(id);
        return undefined;
      case Frame.direct:
        return this.#direct(id);
      case Frame.written:
        this.#written(id, payload);
        return undefined;
      default:
        this.#log.error(undefined, `smtpd worker channel: unknown frame type ${type}`);
        this.#socket.destroy();
        return undefined;
    }
  }

  #create(id: number, queueId: string): Promise<void> {
    const open: OpenWriter = { writer: undefined, failed: undefined };
    this.#writers.set(id, open);
    return this.#store.create(queueId).then(
      (writer) => {
        open.writer = writer;
        // A failed write shows up as a failed commit, as in a single process.
        writer.content.on('error', (err: Error) => (open.failed ??= err));
        // The worker went away while create() was in progress.
        if (this.#ended) this.#dropWriter(id, open);
      },
      (err: unknown) => {
        open.failed = asError(err);
      },
    );
  }

  #data(id: number, payload: Buffer): Promise<void> | undefined {
    const open = this.#writers.get(id);
    if (!open?.writer || open.failed) return undefined;
    if (open.direct) {
      open.failed = new Error('content sent after the file was handed over');
      return undefined;
    }
    const content = open.writer.content;
    if (content.write(payload)) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        content.off('drain', done);
        content.off('close', done);
        resolve();
      };
      content.on('drain', done);
      content.on('close', done);
    });
  }

  /**
   * The worker asks for the store's file to write the rest of message `id` into: every
   * frame before this one is applied, so what the stream took lands in the file first.
   * Answers FILE, or NO_FILE when the store keeps no such file (or the message failed).
   */
  async #direct(id: number): Promise<void> {
    const open = this.#writers.get(id);
    const writer = open?.writer && !open.failed ? directContent(open.writer) : undefined;
    if (!open || !writer || open.direct) {
      this.#answer(Frame.noFile, id);
      return;
    }
    try {
      const target = await writer.openDirect();
      open.direct = target;
      this.#answer(
        Frame.file,
        id,
        JSON.stringify({ path: target.path, position: target.position }),
      );
    } catch (err) {
      open.failed ??= asError(err);
      this.#answer(Frame.noFile, id);
    }
  }

  /** The worker wrote the rest of message `id` to the store's file: so many bytes. */
  #written(id: number, payload: Buffer): void {
    const open = this.#writers.get(id);
    if (!open || open.failed) return;
    try {
      if (!open.direct) throw new Error('content written to a file that was not handed over');
      open.direct.written(Number(payload.toString('latin1')));
    } catch (err) {
      open.failed = asError(err);
    }
  }

  #commit(id: number, payload: Buffer): void {
    const open = this.#writers.get(id);
    this.#writers.delete(id);
    if (!open) {
      this.#refuse(id, undefined, new Error('unknown message'));
      return;
    }
    const writer = open.writer;
    if (open.failed || !writer) {
      this.#refuse(id, writer, open.failed ?? new Error('the message was never started'));
      return;
    }
    let record: NewMessageRecord;
    try {
      record = JSON.parse(payload.toString('utf8')) as NewMessageRecord;
    } catch (err) {
      this.#refuse(id, writer, err);
      return;
    }
    writer.commit(record).then(
      () => {
        this.#answer(Frame.committed, id);
        this.#onCommitted?.(record);
      },
      (err: unknown) => this.#refuse(id, writer, err),
    );
  }

  /** The commit of `id` failed: its message is discarded and the worker told why. */
  #refuse(id: number, writer: MessageWriter | undefined, err: unknown): void {
    void writer?.abort().catch(() => undefined);
    this.#answer(Frame.failed, id, failure(err));
  }

  #abort(id: number): void {
    const open = this.#writers.get(id);
    if (open) this.#dropWriter(id, open);
  }

  #dropWriter(id: number, open: OpenWriter): void {
    this.#writers.delete(id);
    void open.writer
      ?.abort()
      .catch((err: unknown) =>
        this.#log.warning(
          open.writer?.queueId,
          `cannot discard the queue file: ${errorMessage(err)}`,
        ),
      );
  }

  async #abortAll(): Promise<void> {
    const open = [...this.#writers.values()];
    this.#writers.clear();
    await Promise.all(open.map((o) => o.writer?.abort().catch(() => undefined)));
  }

  /** Replies of one turn of the event loop go out in one write. */
  #answer(
    type: typeof Frame.committed | typeof Frame.failed | typeof Frame.file | typeof Frame.noFile,
    id: number,
    body?: string,
  ): void {
    if (this.#ended) return;
    this.#out.push(encodeFrame(type, id, body));
    if (this.#outScheduled) return;
    this.#outScheduled = true;
    setImmediate(() => {
      this.#outScheduled = false;
      const out = this.#out;
      this.#out = [];
      if (!this.#ended) this.#socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
    });
  }
}

function failure(err: unknown): string {
  return JSON.stringify({
    message: errorMessage(err),
    outage: err instanceof QueueStoreError && err.outage,
  });
}
