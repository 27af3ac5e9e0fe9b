/**
 * The frames between an smtpd worker process and the primary: length-prefixed binary
 * records on one socket pair, so that a 4 KB message crosses as one create, one data
 * and one commit frame, usually in a single write.
 *
 * A frame is a 9-byte header — the payload's length (uint32, big-endian), the type
 * (uint8), the writer id (uint32) — then the payload. Worker to primary: CREATE (the
 * queue ID, ASCII), DATA (content bytes), COMMIT (the NewMessageRecord as JSON), ABORT
 * (empty), LOG (rendered log lines, UTF-8), DIRECT (empty: where can the rest of this
 * large message be written?), WRITTEN (the bytes written there, decimal ASCII, before
 * COMMIT). Primary to worker: COMMITTED (empty), FAILED (`{ message, outage }` as JSON),
 * FILE (`{ path, position }` as JSON: the store's file for the rest of the content) or
 * NO_FILE (empty: the rest goes in DATA frames).
 *
 * Postfix counterpart: the record streams between smtpd(8) and cleanup(8) over a UNIX
 * socket (rec_type.h), and the status cleanup sends back.
 *
 * The reader may take DATA frames as a stream: their pieces as they are read, never
 * gathered, so content crosses into the primary's store without a copy in user space.
 *
 * Does not: trust a length blindly — a frame over MAX_FRAME bytes is a protocol error
 * that ends the connection, whether its payload would be gathered or streamed.
 *
 * @module
 */

/** Frame types. */
export const Frame = {
  create: 1,
  data: 2,
  commit: 3,
  abort: 4,
  log: 5,
  committed: 6,
  failed: 7,
  direct: 8,
  written: 9,
  file: 10,
  noFile: 11,
} as const;

/** One of Frame's values. */
export type FrameType = (typeof Frame)[keyof typeof Frame];

/** Bytes before the payload: length, type, writer id. */
export const HEADER_BYTES = 9;

/**
 * The largest DATA payload: bigger content is sent as several frames, so that even a
 * reader that gathers DATA frames whole never holds a huge one.
 */
export const MAX_DATA = 64 * 1024;

/** The largest payload accepted (a commit record with thousands of recipients fits). */
export const MAX_FRAME = 64 * 1024 * 1024;

/** A frame's header and payload as one buffer. */
export function encodeFrame(type: FrameType, id: number, payload?: Buffer | string): Buffer {
  const body = payload === undefined ? 0 : Buffer.byteLength(payload);
  const out = writeHeader(Buffer.allocUnsafe(HEADER_BYTES + body), type, id, body);
  if (typeof payload === 'string') out.write(payload, HEADER_BYTES, 'utf8');
  else if (payload) payload.copy(out, HEADER_BYTES);
  return out;
}

/** Just the header of a frame whose payload is written after it (no copy of the payload). */
export function frameHeader(type: FrameType, id: number, length: number): Buffer {
  return writeHeader(Buffer.allocUnsafe(HEADER_BYTES), type, id, length);
}

function writeHeader(out: Buffer, type: FrameType, id: number, length: number): Buffer {
  out.writeUInt32BE(length, 0);
  out[4] = type;
  out.writeUInt32BE(id, 5);
  return out;
}

/**
 * Cuts a byte stream into frames. `push` each chunk read; `onFrame` is called once per
 * complete frame, in order. A payload that lies inside one chunk is a view of it, copied
 * only when it is much smaller than the memory under the chunk (so a kept payload does
 * not pin it); one that spans chunks is gathered into a buffer of its own, each byte
 * copied once.
 *
 * Frames of the `streamed` types (content, a byte stream whose frame boundaries mean
 * nothing) are not gathered: each piece of such a frame goes to `onFrame` as soon as it
 * is read, as a view of the chunk it lies in, so content is never copied here however
 * the reads cut it. Their concatenation is the payload; a frame within one chunk is one
 * call, an empty one none.
 *
 * Frames of the `transient` types are read once, when applied, and not kept after (a
 * queue ID, a record to parse): theirs is a view of the chunk, however small.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder((type, id, payload) => apply(type, id, payload), [
 *   Frame.data,
 * ]);
 * socket.on('data', (chunk) => decoder.push(chunk));
 * ```
 */
export class FrameDecoder {
  readonly #onFrame: (type: number, id: number, payload: Buffer) => void;
  readonly #streamed: readonly number[];
  readonly #transient: readonly number[];
  /** The start of a header cut between chunks (fewer than HEADER_BYTES bytes, copied). */
  #head: Buffer | undefined;
  /** The frame whose header has been read and whose payload continues in chunks to come. */
  #type = 0;
  #id = 0;
  /** Bytes of that frame's payload still to come; 0 when no frame is in progress. */
  #remaining = 0;
  /** The payload read so far of a gathered frame in progress (views of the chunks). */
  #parts: Buffer[] = [];
  #partsBytes = 0;

  constructor(
    onFrame: (type: number, id: number, payload: Buffer) => void,
    streamed: readonly FrameType[] = [],
    transient: readonly FrameType[] = [],
  ) {
    this.#onFrame = onFrame;
    this.#streamed = streamed;
    this.#transient = transient;
  }

  /** Bytes of an incomplete frame held for the next chunk (none of a streamed frame). */
  get heldBytes(): number {
    return (this.#head?.length ?? 0) + this.#partsBytes;
  }

  /** Takes the next chunk; throws on a frame over MAX_FRAME. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#remaining > 0) at = this.#continue(chunk, at);
      else if (this.#head !== undefined || chunk.length - at < HEADER_BYTES)
        at = this.#gatherHead(chunk, at);
      else at = this.#frame(chunk, at);
    }
  }

  /** The frame whose header starts at `at`; returns where the next one starts. */
  #frame(buf: Buffer, at: number): number {
    const length = lengthAt(buf, at);
    const type = buf[at + 4]!;
    const id = buf.readUInt32BE(at + 5);
    const start = at + HEADER_BYTES;
    const end = start + length;
    if (end <= buf.length) {
      const view = buf.subarray(start, end);
      // Against the memory under `buf`: a small payload kept as a view would keep the
      // whole chunk (one read during the call keeps nothing).
      if (length > 0 || !this.#streamed.includes(type))
        this.#onFrame(
          type,
          id,
          length * 2 < buf.buffer.byteLength && !this.#transient.includes(type)
            ? Buffer.from(view)
            : view,
        );
      return end;
    }
    this.#begin(type, id, length);
    return start;
  }

  /** Adds the bytes at `at` to a header cut between chunks; reads it once complete. */
  #gatherHead(buf: Buffer, at: number): number {
    const have = this.#head?.length ?? 0;
    const take = Math.min(HEADER_BYTES - have, buf.length - at);
    const head = Buffer.allocUnsafe(have + take);
    this.#head?.copy(head, 0);
    buf.copy(head, have, at, at + take);
    if (head.length < HEADER_BYTES) {
      this.#head = head;
      return at + take;
    }
    this.#head = undefined;
    const length = lengthAt(head, 0);
    const type = head[4]!;
    const id = head.readUInt32BE(5);
    if (length > 0) this.#begin(type, id, length);
    else if (!this.#streamed.includes(type)) this.#onFrame(type, id, Buffer.alloc(0));
    return at + take;
  }

  #begin(type: number, id: number, length: number): void {
    this.#type = type;
    this.#id = id;
    this.#remaining = length;
  }

  /** The next bytes of the frame in progress, from `at`; returns where they end. */
  #continue(buf: Buffer, at: number): number {
    const take = Math.min(this.#remaining, buf.length - at);
    const piece = buf.subarray(at, at + take);
    this.#remaining -= take;
    if (this.#streamed.includes(this.#type)) {
      // Only a small piece of a large chunk is copied, so that it does not pin the chunk.
      this.#onFrame(
        this.#type,
        this.#id,
        take * PIN_RATIO < buf.buffer.byteLength ? Buffer.from(piece) : piece,
      );
      return at + take;
    }
    this.#parts.push(piece);
    this.#partsBytes += take;
    if (this.#remaining === 0) {
      const payload = Buffer.concat(this.#parts, this.#partsBytes);
      this.#parts = [];
      this.#partsBytes = 0;
      this.#onFrame(this.#type, this.#id, payload);
    }
    return at + take;
  }
}

/**
 * A streamed piece this many times smaller than the memory under its chunk is copied:
 * a piece kept as a view pins at most this many times its size, while the pieces copied
 * are a few percent of the content.
 */
const PIN_RATIO = 8;

/** The payload length in the header at `at`; throws over MAX_FRAME. */
function lengthAt(buf: Buffer, at: number): number {
  const length = buf.readUInt32BE(at);
  if (length > MAX_FRAME)
    throw new Error(`worker frame of ${length} bytes exceeds the limit of ${MAX_FRAME}`);
  return length;
}
