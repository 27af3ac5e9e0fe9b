/**
 * WorkerChannel: an smtpd worker's end of the socket pair to the primary. Frames are
 * queued and written together once per turn of the event loop (one system call for
 * every session's frames of that turn); commits wait for the primary's answer. Content
 * a message writes in several pieces in a row (Cleanup writes each header apart) goes
 * as one DATA frame of up to MAX_DATA bytes, so the primary writes it to its store once.
 * Small frames of a turn are joined into one buffer; large content is written as it
 * is, in the same gathered write (writev), never copied here. A large message asks for
 * the file of the primary's store (`requestFile`) and writes the rest there itself.
 *
 * Postfix counterpart: smtpd(8)'s cleanup client connection (mail_stream.c), which
 * sends queue file records and waits for cleanup's status.
 *
 * Does not: retry. When the socket closes (the primary died) every commit in flight
 * rejects and `onClose` tells the worker, which exits: a 250 is never sent for mail the
 * primary did not make durable.
 *
 * @module
 */

import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { QueueStoreError } from '../errors.js';
import type { DirectTarget } from '../queue/stores/direct-content.js';
import {
  encodeFrame,
  Frame,
  FrameDecoder,
  type FrameType,
  frameHeader,
  HEADER_BYTES,
  MAX_DATA,
} from './worker-frames.js';

/** Bytes queued or in the socket's buffer above which senders of content wait for `drain`. */
const HIGH_WATER = 1024 * 1024;

/**
 * Content and log lines wait for a commit (or this many bytes) to go with it, so a small
 * message crosses in one write and wakes the primary once; what waits goes after LAZY_MS
 * at the latest.
 */
const FLUSH_BYTES = 64 * 1024;
const LAZY_MS = 20;

/**
 * Buffers below this size are joined into one before a write (a copy cheaper than an
 * entry of its own in the gathered write); larger ones are written as they are.
 */
const COPY_BELOW = 16 * 1024;

interface PendingCommit {
  resolve(): void;
  reject(err: Error): void;
}

/** Where the primary's store takes the rest of a message's content (worker-frames FILE). */
export type ContentFile = Pick<DirectTarget, 'path' | 'position'>;

interface PendingFile {
  resolve(file: ContentFile | undefined): void;
  reject(err: Error): void;
}

/**
 * The worker's side of the channel.
 *
 * @example
 * ```ts
 * const channel = new WorkerChannel(new Socket({ fd: 4, readable: true, writable: true }));
 * const id = channel.open(queueId);
 * channel.send(Frame.data, id, chunk);
 * await channel.commit(id, record);
 * ```
 */
export class WorkerChannel extends EventEmitter {
  readonly #socket: Duplex;
  #queue: Buffer[] = [];
  #queued = 0;
  /** The DATA frame last queued, while nothing was queued after it: more content joins it. */
  #lastData: { id: number; header: Buffer; length: number } | undefined;
  /** Log lines of this turn, sent as one frame ahead of the others. */
  #logText = '';
  #immediate = false;
  #timer: NodeJS.Timeout | undefined;
  #nextId = 1;
  #closed: Error | undefined;
  readonly #commits = new Map<number, PendingCommit>();
  readonly #files = new Map<number, PendingFile>();

  constructor(socket: Duplex) {
    super();
    this.#socket = socket;
    const decoder = new FrameDecoder((type, id, payload) => this.#answer(type, id, payload));
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('drain', () => {
      if (!this.#blocked) this.emit('drain');
    });
    const close = (err?: Error) => this.#close(err);
    socket.on('error', close);
    socket.on('close', () => close());
  }

  /** Why the channel is closed, once it is. */
  get closed(): Error | undefined {
    return this.#closed;
  }

  /** A new writer id, announced to the primary with the queue ID it writes. */
  open(queueId: string): number {
    const id = this.#nextId;
    this.#nextId = id === 0xffffffff ? 1 : id + 1;
    this.send(Frame.create, id, queueId);
    return id;
  }

  /**
   * Queues a frame; false when the caller should wait for `drain` before sending more
   * content (the socket and the queue hold HIGH_WATER bytes or more).
   */
  send(type: FrameType, id: number, payload?: Buffer | string): boolean {
    if (this.#closed) return true;
    const last = this.#lastData;
    this.#lastData = undefined;
    if (
      type === Frame.data &&
      last?.id === id &&
      Buffer.isBuffer(payload) &&
      last.length + payload.length <= MAX_DATA
    ) {
      // The same message's next piece: the frame queued last grows by it.
      last.length += payload.length;
      last.header.writeUInt32BE(last.length, 0);
      this.#queue.push(payload);
      this.#queued += payload.length;
      this.#lastData = last;
    } else if (Buffer.isBuffer(payload) && payload.length > 0) {
      // Held until the flush, as a socket write would hold it: the caller does not
      // change a chunk it has written.
      const header = frameHeader(type, id, payload.length);
      this.#queue.push(header, payload);
      this.#queued += HEADER_BYTES + payload.length;
      if (type === Frame.data) this.#lastData = { id, header, length: payload.length };
    } else {
      const frame = encodeFrame(type, id, payload);
      this.#queue.push(frame);
      this.#queued += frame.length;
    }
    // A commit or a file request waits for its answer, an abort frees the primary's
    // writer: they go now.
    this.#schedule(type === Frame.commit || type === Frame.abort || type === Frame.direct);
    return !this.#blocked;
  }

  /** Queues whole log lines; those of one turn of the event loop go as one frame. */
  log(text: string): void {
    if (this.#closed) return;
    this.#logText += text;
    this.#schedule(false);
  }

  /** Sends the commit and resolves when the primary's store has made the message durable. */
  commit(id: number, record: unknown): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      this.#commits.set(id, { resolve, reject });
      this.send(Frame.commit, id, JSON.stringify(record));
    });
  }

  /**
   * Asks the primary for the file its store keeps message `id` in, once every frame
   * sent for it so far is applied: resolves with its path and the offset of the next
   * content byte, or undefined when the store has no such file (the content goes on
   * in DATA frames).
   */
  requestFile(id: number): Promise<ContentFile | undefined> {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      this.#files.set(id, { resolve, reject });
      this.send(Frame.direct, id);
    });
  }

  /** Writes what is queued now (before an exit). */
  flush(): void {
    this.#flush();
  }

  /** Ends the socket once what is queued is written. */
  end(): Promise<void> {
    this.#flush();
    return new Promise((resolve) => {
      if (this.#closed) return resolve();
      this.#socket.end(resolve);
    });
  }

  get #blocked(): boolean {
    return this.#queued + this.#socket.writableLength >= HIGH_WATER;
  }

  #schedule(urgent: boolean): void {
    if (this.#immediate) return;
    if (urgent || this.#queued >= FLUSH_BYTES) {
      this.#immediate = true;
      setImmediate(() => this.#flush());
    } else this.#timer ??= setTimeout(() => this.#flush(), LAZY_MS);
  }

  #flush(): void {
    this.#immediate = false;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#closed) return;
    if (this.#logText) {
      this.#queue.unshift(encodeFrame(Frame.log, 0, this.#logText));
      this.#logText = '';
    }
    if (this.#queue.length === 0) return;
    const frames = this.#queue;
    this.#queue = [];
    this.#queued = 0;
    this.#lastData = undefined;
    this.#write(frames);
    if (!this.#blocked) this.emit('drain');
  }

  /**
   * One system call for `frames`. Runs of small buffers (headers, records, small
   * messages) are joined, so a small message is one buffer as before; a large piece of
   * content is not copied but handed to the same gathered write (writev) as it is.
   */
  #write(frames: Buffer[]): void {
    if (frames.length === 1) {
      this.#socket.write(frames[0]!);
      return;
    }
    const out: Buffer[] = [];
    let from = 0;
    let bytes = 0;
    const join = (to: number) => {
      if (to - from === 1) out.push(frames[from]!);
      else if (to > from)
        out.push(
          Buffer.concat(to - from === frames.length ? frames : frames.slice(from, to), bytes),
        );
    };
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!;
      if (frame.length < COPY_BELOW) {
        bytes += frame.length;
        continue;
      }
      join(i);
      out.push(frame);
      from = i + 1;
      bytes = 0;
    }
    join(frames.length);
    if (out.length === 1) {
      this.#socket.write(out[0]!);
      return;
    }
    this.#socket.cork();
    for (const b of out) this.#socket.write(b);
    this.#socket.uncork();
  }

  #answer(type: number, id: number, payload: Buffer): void {
    if (type === Frame.file || type === Frame.noFile) {
      const asked = this.#files.get(id);
      this.#files.delete(id);
      asked?.resolve(type === Frame.file ? contentFile(payload) : undefined);
      return;
    }
    const pending = this.#commits.get(id);
    if (!pending) return;
    this.#commits.delete(id);
    if (type === Frame.committed) pending.resolve();
    else {
      const { message, outage } = JSON.parse(payload.toString('utf8')) as {
        message: string;
        outage?: boolean;
      };
      pending.reject(new QueueStoreError(message, undefined, { outage: outage === true }));
    }
  }

  #close(err?: Error): void {
    if (this.#closed) return;
    this.#closed = new QueueStoreError(
      `the connection to the primary process is closed${err ? `: ${err.message}` : ''}`,
    );
    for (const p of this.#commits.values()) p.reject(this.#closed);
    this.#commits.clear();
    for (const f of this.#files.values()) f.reject(this.#closed);
    this.#files.clear();
    this.#queue = [];
    this.#queued = 0;
    this.#lastData = undefined;
    this.emit('drain');
    this.emit('close');
  }
}

/** A FILE answer's payload; a malformed one is refused like a missing file. */
function contentFile(payload: Buffer): ContentFile | undefined {
  try {
    const { path, position } = JSON.parse(payload.toString('utf8')) as Partial<ContentFile>;
    if (typeof path === 'string' && path.length > 0 && Number.isSafeInteger(position))
      return { path, position: position! };
  } catch {}
  return undefined;
}
