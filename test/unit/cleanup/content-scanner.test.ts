import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContentScanner } from '../../../src/cleanup/content-scanner.js';

function scan(
  input: Buffer | string,
  replaceStrayCr = true,
  split: number[] = [],
): { out: string; scanner: ContentScanner } {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1');
  const scanner = new ContentScanner({ replaceStrayCr });
  const parts: Buffer[] = [];
  let start = 0;
  for (const at of [...split, buf.length]) {
    parts.push(scanner.push(buf.subarray(start, at)));
    start = at;
  }
  parts.push(scanner.end());
  return { out: Buffer.concat(parts).toString('latin1'), scanner };
}

describe('ContentScanner', () => {
  it('passes clean CRLF content through unchanged, without copying', () => {
    const scanner = new ContentScanner({ replaceStrayCr: true });
    const chunk = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    expect(scanner.push(chunk)).toBe(chunk);
    expect(scanner.end().length).toBe(0);
    expect(scanner.inputBytes).toBe(chunk.length);
  });

  it('stores bare-LF lines with CRLF', () => {
    expect(scan('Subject: x\n\nline 1\nline 2\n').out).toBe(
      'Subject: x\r\n\r\nline 1\r\nline 2\r\n',
    );
  });

  it('replaces a stray CR with a space', () => {
    const { out, scanner } = scan('a\rb\r\nc\r\r\n');
    expect(out).toBe('a b\r\nc \r\n');
    expect(scanner.strayCrCount).toBe(2);
  });

  it('keeps a stray CR when replacement is off', () => {
    expect(scan('a\rb\r\n', false).out).toBe('a\rb\r\n');
  });

  it('joins a CRLF split across chunks', () => {
    expect(scan('ab\r\ncd\r\n', true, [3]).out).toBe('ab\r\ncd\r\n');
    expect(scan('ab\rcd\r\n', true, [3]).out).toBe('ab cd\r\n');
  });

  it('terminates an unfinished last line and settles a trailing CR', () => {
    expect(scan('no newline').out).toBe('no newline\r\n');
    expect(scan('cr at end\r').out).toBe('cr at end \r\n');
    expect(scan('').out).toBe('');
  });

  it('notices 8-bit data', () => {
    expect(scan('plain\r\n').scanner.eightBit).toBe(false);
    expect(scan(Buffer.from('caf\u00e9\r\n', 'utf8')).scanner.eightBit).toBe(true);
  });

  it('never leaves a bare LF or stray CR, whatever the input and chunking', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat({ max: 300 }), { maxLength: 5 }),
        (bytes, cuts) => {
          const buf = Buffer.from(bytes);
          const split = [...new Set(cuts.map((c) => Math.min(c, buf.length)))].sort(
            (a, b) => a - b,
          );
          const whole = scan(buf).out;
          expect(scan(buf, true, split).out).toBe(whole);
          const out = Buffer.from(whole, 'latin1');
          for (let i = 0; i < out.length; i++) {
            if (out[i] === 0x0a) expect(out[i - 1]).toBe(0x0d);
            if (out[i] === 0x0d) expect(out[i + 1]).toBe(0x0a);
          }
          // Every input LF is a line end in the output.
          const lfIn = bytes.filter((b) => b === 0x0a).length;
          const lfOut = [...out].filter((b) => b === 0x0a).length;
          expect(lfOut === lfIn || lfOut === lfIn + 1).toBe(true);
        },
      ),
    );
  });
});
