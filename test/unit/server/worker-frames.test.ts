import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  Frame,
  FrameDecoder,
  type FrameType,
  HEADER_BYTES,
  MAX_FRAME,
} from '../../../src/server/worker-frames.js';

interface Decoded {
  readonly type: number;
  readonly id: number;
  readonly payload: string;
}

function decodeAll(chunks: readonly Buffer[]): Decoded[] {
  const out: Decoded[] = [];
  const decoder = new FrameDecoder((type, id, payload) =>
    out.push({ type, id, payload: payload.toString('latin1') }),
  );
  for (const c of chunks) decoder.push(c);
  return out;
}

/** `bytes` cut at the given points. */
function cut(bytes: Buffer, points: readonly number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...at, bytes.length]) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  return chunks;
}

/** Frames of `size` bytes of `fill` each: their payloads, and the byte stream they make. */
function encoded(frames: readonly { type: FrameType; id: number; size: number; fill: number }[]): {
  payloads: Buffer[];
  stream: Buffer;
} {
  const payloads = frames.map((f) => Buffer.alloc(f.size, f.fill));
  const stream = Buffer.concat(frames.map((f, i) => encodeFrame(f.type, f.id, payloads[i])));
  return { payloads, stream };
}

describe('worker frames', () => {
  it('decodes the same frames however the byte stream is cut into chunks', () => {
    const frame = fc.record({
      type: fc.constantFrom(Frame.create, Frame.data, Frame.commit, Frame.abort, Frame.log),
      id: fc.integer({ min: 0, max: 0xffffffff }),
      payload: fc.string({ maxLength: 300 }).map((s) => Buffer.from(s, 'latin1')),
    });
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (frames, points) => {
          const stream = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.id, f.payload)));
          const want = frames.map((f) => ({
            type: f.type,
            id: f.id,
            payload: f.payload.toString('latin1'),
          }));
          expect(decodeAll(cut(stream, points))).toEqual(want);
        },
      ),
    );
  });

  it('gathers large frames cut across many chunks, whatever follows them in the last one', () => {
    const frame = fc.record({
      type: fc.constantFrom(Frame.data, Frame.log),
      id: fc.integer({ min: 0, max: 0xffffffff }),
      size: fc.integer({ min: 0, max: 200_000 }),
      fill: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(
        fc.array(frame, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, points) => {
          const { payloads, stream } = encoded(frames);
          const got: { type: number; id: number; payload: Buffer }[] = [];
          const decoder = new FrameDecoder((type, id, payload) => got.push({ type, id, payload }));
          for (const c of cut(stream, points)) decoder.push(c);
          expect(decoder.heldBytes).toBe(0);
          expect(got.map((g) => [g.type, g.id, g.payload.length])).toEqual(
            frames.map((f) => [f.type, f.id, f.size]),
          );
          expect(got.every((g, i) => g.payload.equals(payloads[i]!))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('carries a UTF-8 string payload byte for byte', () => {
    const [f] = decodeAll([encodeFrame(Frame.log, 0, 'Grüße\n')]);
    expect(f?.payload).toBe(Buffer.from('Grüße\n').toString('latin1'));
  });

  it('refuses a frame longer than MAX_FRAME before reading its payload', () => {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(MAX_FRAME + 1, 0);
    header[4] = Frame.data;
    expect(() => decodeAll([header])).toThrow(/exceeds the limit/);
  });
});

describe('worker frames: content streamed as it is read', () => {
  interface Piece {
    readonly type: number;
    readonly id: number;
    readonly payload: Buffer;
  }

  function streaming(): { decoder: FrameDecoder; got: Piece[] } {
    const got: Piece[] = [];
    const decoder = new FrameDecoder(
      (type, id, payload) => got.push({ type, id, payload }),
      [Frame.data],
    );
    return { decoder, got };
  }

  it('hands each piece of a DATA frame on as its chunk is read, as a view of that chunk', () => {
    const { decoder, got } = streaming();
    const payload = Buffer.alloc(64 * 1024, 0x61);
    const stream = encodeFrame(Frame.data, 7, payload);
    // As the primary reads the socket: 64 KiB at a time, each read a buffer of its own.
    const first = Buffer.from(stream.subarray(0, 64 * 1024));
    const second = Buffer.from(stream.subarray(64 * 1024));
    decoder.push(first);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: Frame.data, id: 7 });
    expect(got[0]!.payload.length).toBe(64 * 1024 - HEADER_BYTES);
    // Not copied: the piece lies in the memory of the chunk read.
    expect(got[0]!.payload.buffer).toBe(first.buffer);
    expect(decoder.heldBytes).toBe(0);
    decoder.push(second);
    expect(got).toHaveLength(2);
    expect(Buffer.concat(got.map((g) => g.payload)).equals(payload)).toBe(true);
  });

  it('copies a small piece of a large chunk, so that a kept piece does not pin the chunk', () => {
    const { decoder, got } = streaming();
    const one = Buffer.alloc(70_000, 0x62);
    const two = Buffer.alloc(100_000, 0x63);
    const stream = Buffer.concat([
      encodeFrame(Frame.data, 1, one),
      encodeFrame(Frame.data, 2, two),
    ]);
    const first = Buffer.from(stream.subarray(0, 69_000));
    // The last 1009 bytes of the first frame and the start of the second.
    const second = Buffer.from(stream.subarray(69_000, 130_000));
    decoder.push(first);
    decoder.push(second);
    expect(got.map((g) => [g.id, g.payload.length])).toEqual([
      [1, 69_000 - HEADER_BYTES],
      [1, 1009],
      [2, 130_000 - 69_000 - 1009 - HEADER_BYTES],
    ]);
    expect(got[1]!.payload.buffer).not.toBe(second.buffer);
    expect(got[2]!.payload.buffer).toBe(second.buffer);
    decoder.push(Buffer.from(stream.subarray(130_000)));
    const of = (id: number) => Buffer.concat(got.filter((g) => g.id === id).map((g) => g.payload));
    expect(of(1).equals(one)).toBe(true);
    expect(of(2).equals(two)).toBe(true);
  });

  it('reads a header cut between chunks, then streams the payload after it', () => {
    const { decoder, got } = streaming();
    const payload = Buffer.from('x'.repeat(100_000));
    const stream = encodeFrame(Frame.data, 9, payload);
    const chunks = cut(stream, [4, 7, 50_000]);
    decoder.push(chunks[0]!);
    decoder.push(chunks[1]!);
    expect(got).toHaveLength(0);
    expect(decoder.heldBytes).toBe(7);
    decoder.push(chunks[2]!);
    expect(got).toHaveLength(1);
    expect(got[0]!.payload.length).toBe(50_000 - HEADER_BYTES);
    expect(decoder.heldBytes).toBe(0);
    decoder.push(chunks[3]!);
    expect(got.every((g) => g.type === Frame.data && g.id === 9)).toBe(true);
    expect(Buffer.concat(got.map((g) => g.payload)).equals(payload)).toBe(true);
  });

  it('streams DATA and gathers the other frames whole, in order, however the stream is cut', () => {
    const frame = fc.record({
      type: fc.constantFrom(Frame.create, Frame.data, Frame.data, Frame.commit, Frame.abort),
      id: fc.integer({ min: 1, max: 5 }),
      size: fc.integer({ min: 0, max: 150_000 }),
      fill: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(
        fc.array(frame, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, points) => {
          const { payloads, stream } = encoded(frames);
          const { decoder, got } = streaming();
          let mostHeld = 0;
          for (const c of cut(stream, points)) {
            decoder.push(c);
            mostHeld = Math.max(mostHeld, decoder.heldBytes);
          }
          expect(decoder.heldBytes).toBe(0);
          // Consecutive pieces of one DATA frame joined again; other frames as they came.
          const joined: { type: number; id: number; payload: Buffer }[] = [];
          let at = 0;
          for (const [i, f] of frames.entries()) {
            if (f.type !== Frame.data) {
              const g = got[at++]!;
              joined.push(g);
              continue;
            }
            const pieces: Buffer[] = [];
            let bytes = 0;
            while (bytes < f.size) {
              const g = got[at++]!;
              expect([g.type, g.id]).toEqual([Frame.data, f.id]);
              pieces.push(g.payload);
              bytes += g.payload.length;
            }
            // An empty DATA frame carries nothing and is not handed on.
            if (f.size > 0) joined.push({ type: f.type, id: f.id, payload: Buffer.concat(pieces) });
            expect(payloads[i]!.length).toBe(bytes);
          }
          expect(at).toBe(got.length);
          const want = frames
            .map((f, i) => ({ type: f.type, id: f.id, payload: payloads[i]! }))
            .filter((f) => f.type !== Frame.data || f.payload.length > 0);
          expect(joined.map((g) => [g.type, g.id, g.payload.length])).toEqual(
            want.map((w) => [w.type, w.id, w.payload.length]),
          );
          expect(joined.every((g, i) => g.payload.equals(want[i]!.payload))).toBe(true);
          // Only frames gathered whole (and a cut header) are ever held.
          const largestGathered = Math.max(
            0,
            ...frames.filter((f) => f.type !== Frame.data).map((f) => f.size),
          );
          expect(mostHeld).toBeLessThanOrEqual(Math.max(largestGathered, HEADER_BYTES - 1));
        },
      ),
      { numRuns: 80 },
    );
  });

  it('refuses a DATA frame longer than MAX_FRAME before handing on any of it, even with its header cut', () => {
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(MAX_FRAME + 1, 0);
    header[4] = Frame.data;
    const whole = streaming();
    expect(() => whole.decoder.push(Buffer.concat([header, Buffer.alloc(1000)]))).toThrow(
      /exceeds the limit/,
    );
    expect(whole.got).toHaveLength(0);
    const split = streaming();
    split.decoder.push(header.subarray(0, 3));
    expect(() => split.decoder.push(Buffer.concat([header.subarray(3), Buffer.alloc(10)]))).toThrow(
      /exceeds the limit/,
    );
    expect(split.got).toHaveLength(0);
  });
});
