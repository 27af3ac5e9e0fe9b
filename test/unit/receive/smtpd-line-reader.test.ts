import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CommandLine, LineReader } from '../../../src/receive/smtpd-line-reader.js';

function readAll(chunks: (string | Buffer)[], limit = 64): CommandLine[] {
  const r = new LineReader(limit);
  const lines: CommandLine[] = [];
  for (const c of chunks) {
    r.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
    for (let l = r.next(); l; l = r.next()) lines.push(l);
  }
  return lines;
}

function split(input: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < input.length))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const p of [...points, input.length]) {
    out.push(input.slice(prev, p));
    prev = p;
  }
  return out;
}

describe('LineReader', () => {
  it('returns CRLF lines without their terminator', () => {
    const lines = readAll(['EHLO a\r\nMAIL FROM:<x@y>\r\n']);
    expect(lines.map((l) => l.text)).toEqual(['EHLO a', 'MAIL FROM:<x@y>']);
    expect(lines.every((l) => !l.bareLf && !l.tooLong && !l.hasNul && !l.badUtf8)).toBe(true);
  });

  it('holds an unfinished line until its end arrives', () => {
    const r = new LineReader(64);
    r.push(Buffer.from('NO'));
    expect(r.next()).toBeUndefined();
    expect(r.buffered).toBe(2);
    r.push(Buffer.from('OP\r'));
    expect(r.next()).toBeUndefined();
    r.push(Buffer.from('\nQU'));
    expect(r.next()).toMatchObject({ text: 'NOOP', bareLf: false });
    expect(r.next()).toBeUndefined();
    expect(r.buffered).toBe(2);
  });

  it('reports a bare LF', () => {
    const [a, b] = readAll(['NOOP\nRSET\r\n']);
    expect(a).toMatchObject({ text: 'NOOP', bareLf: true });
    expect(b).toMatchObject({ text: 'RSET', bareLf: false });
  });

  it('keeps a CR that is not before the LF', () => {
    const [a] = readAll(['NO\rOP\r\n']);
    expect(a?.text).toBe('NO\rOP');
  });

  it('reports NUL bytes and invalid UTF-8', () => {
    const [a, b, c] = readAll([
      Buffer.from('MAIL\0FROM\r\nRCPT \xff\xfe\r\nEHLO \u00e9\r\n', 'latin1'),
    ]);
    expect(a?.hasNul).toBe(true);
    expect(b?.badUtf8).toBe(true);
    // latin1 é (one byte 0xE9) is not UTF-8 either.
    expect(c?.badUtf8).toBe(true);
    const [d] = readAll([Buffer.from('EHLO \u00e9\r\n', 'utf8')]);
    expect(d).toMatchObject({ text: 'EHLO \u00e9', badUtf8: false });
  });

  it('accepts a line of exactly the limit', () => {
    const [a] = readAll([`${'x'.repeat(16)}\r\n`], 16);
    expect(a).toMatchObject({ tooLong: false, text: 'x'.repeat(16) });
  });

  it('marks an over-long line, keeps only its head and goes on with the next line', () => {
    const lines = readAll([`${'x'.repeat(40)}\r\nNOOP\r\n`], 16);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ tooLong: true, text: 'x'.repeat(16) });
    expect(lines[1]).toMatchObject({ tooLong: false, text: 'NOOP' });
  });

  it('skips an endless line in bounded memory', () => {
    const r = new LineReader(2048);
    const junk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 160; i++) {
      // 10 MB without a line end.
      r.push(junk);
      expect(r.next()).toBeUndefined();
      expect(r.buffered).toBeLessThanOrEqual(junk.length);
    }
    expect(r.skipping).toBe(true);
    r.push(Buffer.from('\r\nQUIT\r\n'));
    expect(r.next()).toMatchObject({ tooLong: true, bareLf: false });
    expect(r.next()).toMatchObject({ text: 'QUIT', tooLong: false });
  });

  it('sees a CRLF split across chunks while skipping', () => {
    const lines = readAll(['x'.repeat(40), '\r', '\nNOOP\r\n'], 16);
    expect(lines[0]).toMatchObject({ tooLong: true, bareLf: false });
    expect(lines[1]?.text).toBe('NOOP');
  });

  it('hands buffered bytes to DATA chunk by chunk and takes back what follows', () => {
    const r = new LineReader(64);
    r.push(Buffer.from('DATA\r\nhello'));
    r.push(Buffer.from(' world'));
    expect(r.next()?.text).toBe('DATA');
    expect(r.takeChunk()?.toString()).toBe('hello');
    expect(r.takeChunk()?.toString()).toBe(' world');
    expect(r.takeChunk()).toBeUndefined();
    r.push(Buffer.from('QUIT\r\n'));
    r.unshift(Buffer.from('RSET\r\n'));
    expect(r.next()?.text).toBe('RSET');
    expect(r.next()?.text).toBe('QUIT');
    expect(r.buffered).toBe(0);
  });

  // Found by the property below: a line of exactly the limit whose CR arrived in one
  // chunk and LF in the next was called too long.
  it('keeps a line of exactly the limit when its CRLF is split across chunks', () => {
    const input = `\n\r\r\r\rlong-word-\r\r\r\n`;
    expect(readAll([input.slice(0, 18), input.slice(18)], 16)).toEqual(readAll([input], 16));
    expect(readAll(['0123456789abcdef\r', '\n'], 16)[0]).toMatchObject({
      text: '0123456789abcdef',
      tooLong: false,
    });
  });

  it('chunking never changes the lines (property)', () => {
    const alphabet = fc.constantFrom(
      '\r',
      '\n',
      '\r\n',
      'a',
      'b',
      ' ',
      '\0',
      'long-word-',
      '\u00ff',
    );
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 60 }).map((p) => p.join('')),
        fc.array(fc.nat({ max: 400 }), { maxLength: 10 }),
        (input, cuts) => {
          const whole = readAll([input], 16);
          const pieces = readAll(split(input, cuts), 16);
          expect(pieces).toEqual(whole);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('rejects a nonsensical limit', () => {
    expect(() => new LineReader(0)).toThrow(RangeError);
  });
});
