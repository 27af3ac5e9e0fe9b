import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  Frame,
  FrameDecoder,
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
          const payloads = frames.map((f) => Buffer.alloc(f.size, f.fill));
          const stream = Buffer.concat(
            frames.map((f, i) => encodeFrame(f.type, f.id, payloads[i])),
          );
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
