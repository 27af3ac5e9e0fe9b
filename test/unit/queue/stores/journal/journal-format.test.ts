/**
 * The queue journal's frame and segment-header format: round trips, and hostile or
 * damaged bytes (random data, every single-byte change of a frame) that must be
 * refused without a throw or a large allocation, and skipped by the scanner.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkFrameBody,
  decodeSegmentHeader,
  encodeMessageFrame,
  encodeSegmentHeader,
  encodeUpdateFrame,
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_FRAME_BODY,
  parseSegmentName,
  parseStateChange,
  readFrameHead,
  SEGMENT_HEADER_SIZE,
  segmentName,
} from '../../../../../src/queue/stores/journal/journal-format.js';
import { nodeJournalIo } from '../../../../../src/queue/stores/journal/journal-io.js';
import {
  type ScannedFrame,
  scanSegment,
} from '../../../../../src/queue/stores/journal/segment-scan.js';
import { tempDir } from './journal-harness.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

async function scanBytes(
  bytes: Buffer,
): Promise<{ frames: ScannedFrame[]; result: Awaited<ReturnType<typeof scanSegment>> }> {
  const dir = await tempDir();
  dirs.push(dir);
  const path = join(dir, 'x.seg');
  await fs.writeFile(path, bytes);
  const file = await nodeJournalIo.open(path, 'r');
  try {
    const frames: ScannedFrame[] = [];
    const result = await scanSegment(file, 0, bytes.length, (f) =>
      frames.push({ ...f, json: undefined }),
    );
    return { frames, result };
  } finally {
    await file.close();
  }
}

describe('journal format', () => {
  it('round-trips a message frame and finds its parts', () => {
    const record = Buffer.from('{"formatVersion":1}');
    const content = [Buffer.from('Subject: a\r\n'), Buffer.from('\r\nbody\r\n')];
    const { frame, layout } = encodeMessageFrame('AbCdEf123456', record, content, true);
    const head = readFrameHead(frame, 0)!;
    expect(head).toMatchObject({ type: FrameType.message, flags: 1, idLength: 12 });
    expect(FRAME_HEADER_SIZE + head.bodyLength).toBe(frame.length);
    expect(checkFrameBody(frame, 0, head)).toBe('AbCdEf123456');
    expect(frame.subarray(layout.recordOffset, layout.recordOffset + layout.recordLength)).toEqual(
      record,
    );
    expect(frame.subarray(layout.contentOffset).toString()).toBe('Subject: a\r\n\r\nbody\r\n');
  });

  it('refuses every single-byte change of a frame', () => {
    const frame = encodeUpdateFrame(FrameType.state, 'AbCdEf123456', {
      state: 'hold',
      reason: 'x',
    });
    for (let i = 0; i < frame.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(frame);
        bad[i] = bad[i]! ^ flip;
        const head = readFrameHead(bad, 0);
        const ok =
          head !== undefined &&
          FRAME_HEADER_SIZE + head.bodyLength <= bad.length &&
          checkFrameBody(bad, 0, head) !== undefined;
        expect(ok, `byte ${i} ^ ${flip}`).toBe(false);
      }
    }
  });

  it('refuses queue IDs that are not safe and frames over the size limit', () => {
    expect(() => encodeUpdateFrame(FrameType.removed, '../etc/passwd')).toThrow(/invalid queue ID/);
    const b = encodeUpdateFrame(FrameType.removed, 'AbCdEf123456');
    b.writeUInt32LE(MAX_FRAME_BODY + 1, 8);
    expect(readFrameHead(b, 0)).toBeUndefined();
  });

  it('round-trips a segment header and refuses a damaged one', () => {
    const h = encodeSegmentHeader(7, 5, 12345);
    expect(decodeSegmentHeader(h)).toEqual({
      ok: true,
      sequence: 7,
      previous: 5,
      previousLength: 12345,
    });
    expect(h.length).toBe(SEGMENT_HEADER_SIZE);
    for (let i = 0; i < h.length; i++) {
      const bad = Buffer.from(h);
      bad[i] = bad[i]! ^ 0x10;
      expect(decodeSegmentHeader(bad).ok, `byte ${i}`).toBe(false);
    }
    expect(decodeSegmentHeader(h.subarray(0, 20))).toMatchObject({ ok: false });
    expect(parseSegmentName(segmentName(255))).toBe(255);
    expect(parseSegmentName('00000000000000ff.seg.damaged')).toBeUndefined();
    expect(parseSegmentName('0000000000000000.seg')).toBeUndefined();
  });

  it('accepts only well-formed state changes', () => {
    const ok = (v: unknown) => parseStateChange(Buffer.from(JSON.stringify(v)));
    expect(ok({ state: 'deferred', dueAt: 5, warnTime: 6 })).toEqual({
      state: 'deferred',
      dueAt: 5,
      warnTime: 6,
    });
    expect(ok({ state: 'incoming', extra: 1 })).toEqual({ state: 'incoming' });
    expect(ok({ state: 'deferred' })).toBeUndefined();
    expect(ok({ state: 'corrupt' })).toBeUndefined();
    expect(ok({ state: 'active' })).toBeUndefined();
    expect(ok(['deferred'])).toBeUndefined();
    expect(parseStateChange(Buffer.from('{"state":'))).toBeUndefined();
  });

  it('scans random bytes without a throw, and finds real frames hidden among them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.uint8Array({ maxLength: 3000 }),
        async (before, after) => {
          const frame = encodeUpdateFrame(FrameType.outcomes, 'AbCdEf123456', []);
          const bytes = Buffer.concat([Buffer.from(before), frame, Buffer.from(after)]);
          const { frames, result } = await scanBytes(bytes);
          const mine = frames.find((f) => f.offset === before.length);
          expect(mine?.queueId).toBe('AbCdEf123456');
          expect(result.end).toBeLessThanOrEqual(bytes.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('scans a frame larger than its read buffer', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 0x41);
    const { frame } = encodeMessageFrame('AbCdEf123456', Buffer.from('{}'), [big], false);
    const tail = encodeUpdateFrame(FrameType.removed, 'AbCdEf123456');
    const { frames, result } = await scanBytes(Buffer.concat([frame, tail]));
    expect(frames.map((f) => f.type)).toEqual([FrameType.message, FrameType.removed]);
    expect(frames[0]!.end).toBe(frame.length);
    expect(result).toMatchObject({ damaged: [], tail: 0 });
  });
});
