import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ByteReader } from '../../../src/receive/byte-reader.js';
import { NetstringError, netstring, readNetstring } from '../../../src/receive/netstring.js';

function reader(...chunks: string[]): ByteReader {
  return new ByteReader(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))));
}

describe('netstrings (util/netstring.c rules)', () => {
  it('reads netstrings split across chunks at any point', async () => {
    const whole = '12:hello world!,0:,3:abc,';
    for (let i = 0; i <= whole.length; i++) {
      const r = reader(whole.slice(0, i), whole.slice(i));
      expect((await readNetstring(r, 100, 'x')).toString()).toBe('hello world!');
      expect((await readNetstring(r, 100, 'x')).toString()).toBe('');
      expect((await readNetstring(r, 100, 'x')).toString()).toBe('abc');
    }
  });

  it.each([
    ['a:xyz,', 'format'],
    [':xyz,', 'format'],
    ['-1:x,', 'format'],
    [' 3:abc,', 'format'],
    ['3:abc;', 'format'],
    ['3:ab', 'format'],
    ['5', 'format'],
    ['101:', 'size'],
    ['99999999999999999999:', 'size'],
  ])('refuses %j as a %s error', async (input, kind) => {
    const err = await readNetstring(reader(input), 100, 'sender address').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetstringError);
    expect((err as NetstringError).kind).toBe(kind);
    expect((err as Error).message).toMatch(/while reading sender address$/);
  });

  it('frames by byte length, not character count', () => {
    expect(netstring('Kü').toString('utf8')).toBe('3:Kü,');
  });
});
