import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DotStuffer } from '../../../../src/deliver/smtp/dot-stuffer.js';

/** The chunks the stuffer pushes, one 'data' event each, for `chunks` written to it. */
function run(chunks: readonly Buffer[], limit: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const stuffer = Readable.from(chunks).pipe(new DotStuffer(limit));
  stuffer.on('data', (c: Buffer) => out.push(c));
  return new Promise((resolve, reject) => {
    stuffer.once('end', () => resolve(out));
    stuffer.once('error', reject);
  });
}

/** What DATA must carry for `text`, worked out on the whole text at once. */
function expected(text: string, limit: number): string {
  const max = limit > 0 ? Math.max(2, limit) : Number.POSITIVE_INFINITY;
  const parts = text.split('\n');
  const last = parts.pop() ?? '';
  const lines = last === '' ? parts : [...parts, last];
  const sent = lines.map((raw) => {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.startsWith('.')) line = `.${line}`;
    const pieces = [line.slice(0, max)];
    for (let i = max; i < line.length; i += max - 1) pieces.push(` ${line.slice(i, i + max - 1)}`);
    return `${pieces.join('\r\n')}\r\n`;
  });
  return `${sent.join('')}.\r\n`;
}

describe('DotStuffer', () => {
  it('gives the same output however the content is cut into chunks (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('.', '\r', '\n', '\r\n', 'a', 'b', ' ', '.\r\n'), {
          maxLength: 80,
        }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 20 }),
        fc.constantFrom(0, 1, 2, 3, 5, 8),
        async (pieces, cuts, limit) => {
          const text = pieces.join('');
          const bytes = Buffer.from(text, 'latin1');
          const chunks: Buffer[] = [];
          for (let i = 0, k = 0; i < bytes.length; k++) {
            const len = cuts[k % cuts.length]!;
            chunks.push(bytes.subarray(i, i + len));
            i += len;
          }
          const out = Buffer.concat(await run(chunks, limit)).toString('latin1');
          expect(out).toBe(expected(text, limit));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('passes a chunk that needs no change on as the same buffer, not a copy', async () => {
    const body = Buffer.from('Subject: x\r\n\r\nline one\r\nline two\r\n');
    const out = await run([body], 998);
    expect(out[0]).toBe(body);
    expect(Buffer.concat(out).toString()).toBe(`${body.toString()}.\r\n`);
  });

  it('copies only around the bytes it changes', async () => {
    const out = await run([Buffer.from('a\r\n.b\r\nc\nd\r\n')], 998);
    expect(Buffer.concat(out).toString()).toBe('a\r\n..b\r\nc\r\nd\r\n.\r\n');
  });

  it('folds at a limit of 1 as at 2 instead of looping', async () => {
    const out = await run([Buffer.from('abcd\r\n')], 1);
    expect(Buffer.concat(out).toString()).toBe('ab\r\n c\r\n d\r\n.\r\n');
  });
});
