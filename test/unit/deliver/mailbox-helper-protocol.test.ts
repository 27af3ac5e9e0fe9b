import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeFrame,
  FRAME,
  FrameDecoder,
  jsonFrame,
  ProtocolError,
  parseReady,
  parseRequest,
  parseResult,
} from '../../../src/deliver/mailbox-helper-protocol.js';
import { checkSafeDirectory, UnsafePathError } from '../../../src/deliver/safe-directory.js';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('mailbox helper frames', () => {
  it('decodes the same frames however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })), {
          maxLength: 8,
        }),
        fc.array(fc.nat({ max: 4000 }), { maxLength: 10 }),
        (frames, cuts) => {
          const stream = Buffer.concat(frames.map(([t, p]) => encodeFrame(t, Buffer.from(p))));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort(
            (a, b) => a - b,
          );
          const decoder = new FrameDecoder();
          const got: [number, number[]][] = [];
          let at = 0;
          for (const p of [...points, stream.length]) {
            for (const f of decoder.push(stream.subarray(at, p)))
              got.push([f.type, [...f.payload]]);
            at = p;
          }
          expect(got).toEqual(frames.map(([t, p]) => [t, [...p]]));
          expect(decoder.pending).toBe(false);
        },
      ),
    );
  });

  it('refuses a frame larger than the limit before buffering it', () => {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(4 * 1024 * 1024 + 1, 1);
    expect(() => new FrameDecoder().push(header)).toThrow(ProtocolError);
  });
});

describe('mailbox helper requests and results', () => {
  it('accepts well-formed requests only', () => {
    expect(
      parseRequest(json({ op: 'maildir', path: '/home/a/Maildir', hostname: 'mx', x: 1 })),
    ).toEqual({ op: 'maildir', path: '/home/a/Maildir', hostname: 'mx' });
    const lock = { attempts: 1, delayMs: 1, staleMs: 1 };
    for (const bad of [
      'not json',
      '[]',
      'null',
      JSON.stringify({ op: 'maildir', path: 'relative', hostname: 'h' }),
      JSON.stringify({ op: 'maildir', path: '/a\0b', hostname: 'h' }),
      JSON.stringify({ op: 'maildir', path: '/a', hostname: '' }),
      JSON.stringify({ op: 'mbox', path: '/a', sizeLimit: -1, lock }),
      JSON.stringify({ op: 'mbox', path: '/a', sizeLimit: 0, lock: { ...lock, attempts: 1.5 } }),
      JSON.stringify({ op: 'mbox', path: '/a', sizeLimit: 0 }),
      JSON.stringify({ op: 'read', path: '/a', trustedBase: 'spool' }),
      JSON.stringify({ op: 'exec', path: '/bin/sh' }),
      JSON.stringify({ op: 'read', path: `/${'x'.repeat(5000)}` }),
    ]) {
      expect(() => parseRequest(Buffer.from(bad)), bad.slice(0, 60)).toThrow(ProtocolError);
    }
  });

  it('treats results as untrusted: printable, bounded, matching the request', () => {
    const r = parseResult(
      json({
        ok: false,
        kind: 'errno',
        code: 'EACCES',
        message: `bad\r\nInjected: yes ${'x'.repeat(1000)}`,
        enhanced: '4.0.0',
      }),
      'mbox',
    );
    expect(r).toMatchObject({ ok: false, kind: 'errno', code: 'EACCES' });
    expect(r.ok === false && r.message).toMatch(/^bad\?\?Injected: yes x+\.\.\.$/);
    expect(r.ok === false && r.message.length).toBeLessThan(310);
    expect(r).not.toHaveProperty('enhanced');
    expect(
      parseResult(json({ ok: false, kind: 'refused', enhanced: '5.7.1', message: 'm' }), 'mbox'),
    ).toMatchObject({ enhanced: '5.7.1' });
    for (const [bad, op] of [
      [{ ok: true, op: 'mbox' }, 'maildir'],
      [{ ok: true, op: 'maildir', path: 'rel' }, 'maildir'],
      [{ ok: false, kind: 'pwned', message: '' }, 'mbox'],
      [
        { ok: true, op: 'read', file: { uid: -1, mode: 0, nlink: 1, size: 0, regular: true } },
        'read',
      ],
      [{ ok: 'yes' }, 'mbox'],
    ] as const) {
      expect(() => parseResult(json(bad), op), JSON.stringify(bad)).toThrow(ProtocolError);
    }
    expect(() => parseReady(json({ uid: 1, gid: 1, groups: ['x'] }))).toThrow(ProtocolError);
    expect(jsonFrame(FRAME.READY, {}).readUInt8(0)).toBe(FRAME.READY);
  });
});

describe('checkSafeDirectory', () => {
  let dir: string;
  const uid = process.getuid?.() ?? 0;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-safe-'));
    await fs.chmod(dir, 0o755);
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('accepts owned directories, a sticky one on the way, and paths still to be created', async () => {
    await checkSafeDirectory(path.join(dir, 'not', 'yet'), uid);
    await checkSafeDirectory(dir, uid);
  });

  it('refuses a directory others may write, or the last one sticky', async () => {
    const open = path.join(dir, 'open');
    await fs.mkdir(open);
    await fs.chmod(open, 0o777);
    await expect(checkSafeDirectory(path.join(open, 'inbox'), uid)).rejects.toThrow(
      UnsafePathError,
    );
    await expect(checkSafeDirectory(open, uid)).rejects.toThrow(/writable by group or others/);
    await fs.chmod(open, 0o1777);
    await expect(checkSafeDirectory(open, uid)).rejects.toThrow(UnsafePathError);
    // Below a trusted base (the spool) the base itself is the operator's business.
    const mine = path.join(open, 'mine');
    await fs.mkdir(mine, { mode: 0o700 });
    await checkSafeDirectory(mine, uid);
    await fs.chmod(open, 0o777);
    await expect(checkSafeDirectory(mine, uid)).rejects.toThrow(UnsafePathError);
    await checkSafeDirectory(mine, uid, open);
  });

  it('refuses a directory owned by someone else', async () => {
    if (uid !== 0) return expect(checkSafeDirectory('/', uid)).resolves.toBeUndefined();
    const theirs = path.join(dir, 'theirs');
    await fs.mkdir(theirs, { mode: 0o755 });
    await fs.chown(theirs, 12345, 12345);
    await expect(checkSafeDirectory(theirs, 0)).rejects.toThrow(/owned by uid 12345/);
    await expect(checkSafeDirectory(theirs, 12345)).resolves.toBeUndefined();
  });
});
