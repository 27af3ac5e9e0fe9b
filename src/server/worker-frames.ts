/**
 * The frames between an smtpd worker process and the primary: length-prefixed binary
 * records on one socket pair, so that a 4 KB message crosses as one create, one data
 * and one commit frame, usually in a single write.
 *
 * A frame is a 9-byte header — the payload's length (uint32, big-endian), the type
 * (uint8), the writer id (uint32) — then the payload. Worker to primary: CREATE (the
 * queue ID, ASCII), DATA (content bytes), COMMIT (the NewMessageRecord as JSON), ABORT
 * (empty), LOG (rendered log lines, UTF-8). Primary to worker: COMMITTED (empty),
 * FAILED (`{ message, outage }` as JSON).
 *
 * Postfix counterpart: the record streams between smtpd(8) and cleanup(8) over a UNIX
 * socket (rec_type.h), and the status cleanup sends back.
 *
 * Does not: trust a length blindly — a frame over MAX_FRAME bytes is a protocol error
 * that ends the connection.
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
} as const;

/** One of Frame's values. */
export type FrameType = (typeof Frame)[keyof typeof Frame];

/** Bytes before the payload: length, type, writer id. */
export const HEADER_BYTES = 9;

/**
 * The largest DATA payload: bigger content is sent as several frames, so the primary
 * never holds a huge one.
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
 * @example
 * ```ts
 * const decoder = new FrameDecoder((type, id, payload) => apply(type, id, payload));
 * socket.on('data', (chunk) => decoder.push(chunk));
 * ```
 */
export class FrameDecoder {
  readonly #onFrame: (type: number, id: number, payload: Buffer) => void;
  /** The start of a frame that continues in chunks to come (views of the chunks read). */
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** The length of the held frame's payload, once its header is complete. */
  #heldLength: number | undefined;

  constructor(onFrame: (type: number, id: number, payload: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  /** Bytes of an incomplete frame held for the next chunk. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Takes the next chunk; throws on a frame over MAX_FRAME. */
  push(chunk: Buffer): void {
    const rest = this.#heldBytes > 0 ? this.#complete(chunk) : chunk;
    if (rest !== undefined) this.#frames(rest);
  }

  /** Frames that lie within `buf`; what is left of it is held. */
  #frames(buf: Buffer): void {
    let at = 0;
    while (buf.length - at >= HEADER_BYTES) {
      const length = lengthAt(buf, at);
      const end = at + HEADER_BYTES + length;
      if (end > buf.length) break;
      const view = buf.subarray(at + HEADER_BYTES, end);
      this.#onFrame(
        buf[at + 4]!,
        buf.readUInt32BE(at + 5),
        // Against the memory under `buf`: after a frame that spanned chunks, `buf` is
        // the tail of a chunk, and a view would keep the whole chunk.
        length * 2 < buf.buffer.byteLength ? Buffer.from(view) : view,
      );
      at = end;
    }
    if (at < buf.length) this.#hold(buf.subarray(at));
  }

  #hold(part: Buffer): void {
    this.#held.push(part);
    this.#heldBytes += part.length;
  }

  /**
   * Adds `chunk` to the held start of a frame. Once the frame is complete it goes to
   * `onFrame` and the bytes after it are returned; undefined while it is not.
   */
  #complete(chunk: Buffer): Buffer | undefined {
    this.#hold(chunk);
    if (this.#heldLength === undefined) {
      if (this.#heldBytes < HEADER_BYTES) return undefined;
      // A header cut between chunks: its 9 bytes are gathered (a small copy).
      const first = this.#held[0]!;
      const header = first.length >= HEADER_BYTES ? first : Buffer.concat(this.#held, HEADER_BYTES);
      this.#heldLength = lengthAt(header, 0);
    }
    const end = HEADER_BYTES + this.#heldLength;
    if (this.#heldBytes < end) return undefined;
    const frame = Buffer.allocUnsafe(end);
    let filled = 0;
    const after: Buffer[] = [];
    for (const part of this.#held) {
      const take = Math.min(part.length, end - filled);
      part.copy(frame, filled, 0, take);
      filled += take;
      if (take < part.length) after.push(part.subarray(take));
    }
    this.#held = [];
    this.#heldBytes = 0;
    this.#heldLength = undefined;
    this.#onFrame(frame[4]!, frame.readUInt32BE(5), frame.subarray(HEADER_BYTES));
    return after.length > 1 ? Buffer.concat(after) : after[0];
  }
}

/** The payload length in the header at `at`; throws over MAX_FRAME. */
function lengthAt(buf: Buffer, at: number): number {
  const length = buf.readUInt32BE(at);
  if (length > MAX_FRAME)
    throw new Error(`worker frame of ${length} bytes exceeds the limit of ${MAX_FRAME}`);
  return length;
}
