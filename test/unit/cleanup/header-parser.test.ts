import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HeaderEvent, HeaderParser } from '../../../src/cleanup/header-parser.js';

interface Parsed {
  headers: { name: string; raw: string; value: string; truncated: boolean }[];
  end: string | undefined;
  body: string;
}

function parse(input: string, limit = 102400, split: number[] = []): Parsed {
  const parser = new HeaderParser({ headerSizeLimit: limit });
  const buf = Buffer.from(input, 'latin1');
  const events: HeaderEvent[] = [];
  let start = 0;
  for (const at of [...split, buf.length]) {
    events.push(...parser.push(buf.subarray(start, at)));
    start = at;
  }
  events.push(...parser.end());
  const out: Parsed = { headers: [], end: undefined, body: '' };
  for (const e of events) {
    if (e.kind === 'header') {
      out.headers.push({
        name: e.field.name,
        raw: e.field.raw.toString('latin1'),
        value: e.field.value,
        truncated: e.field.truncated,
      });
    } else if (e.kind === 'end') {
      expect(out.end).toBeUndefined();
      out.end = e.reason;
    } else {
      expect(out.end).toBeDefined();
      out.body += e.data.toString('latin1');
    }
  }
  return out;
}

describe('HeaderParser', () => {
  it('keeps the pieces of a header that spans chunks when the writer reuses its buffer', () => {
    const parser = new HeaderParser({ headerSizeLimit: 102400 });
    const buffer = Buffer.alloc(64);
    const headers: { raw: string; value: string }[] = [];
    const feed = (text: string): void => {
      const n = buffer.write(text, 'latin1');
      // What a push completed is used before the writer has its buffer back (as Cleanup
      // hands each header on at once); what is still open must not depend on it.
      for (const e of parser.push(buffer.subarray(0, n))) {
        if (e.kind === 'header')
          headers.push({ raw: e.field.raw.toString('latin1'), value: e.field.value });
      }
      buffer.fill(0x58);
    };
    feed('Subject: one\r\nX-Long: first ');
    feed('part\r\n continued');
    feed('\r\n\r\nbody\r\n');
    expect(headers).toEqual([
      { raw: 'Subject: one\r\n', value: 'one' },
      { raw: 'X-Long: first part\r\n continued\r\n', value: 'first part continued' },
    ]);
  });

  it('splits headers, unfolds values and passes the body through', () => {
    const p = parse('Subject: hello\r\n world\r\nFrom: a@b\r\n\r\nbody\r\nmore\r\n');
    expect(p.headers.map((h) => h.name)).toEqual(['Subject', 'From']);
    expect(p.headers[0]!.raw).toBe('Subject: hello\r\n world\r\n');
    expect(p.headers[0]!.value).toBe('hello world');
    expect(p.end).toBe('empty-line');
    expect(p.body).toBe('body\r\nmore\r\n');
  });

  it('ends the header block at a line that is not a header, keeping the line as body', () => {
    const p = parse('Subject: x\r\nthis is not a header\r\nbody\r\n');
    expect(p.headers).toHaveLength(1);
    expect(p.end).toBe('non-header');
    expect(p.body).toBe('this is not a header\r\nbody\r\n');
  });

  it('treats leading white space with no header before it as body', () => {
    const p = parse(' indented\r\n');
    expect(p.headers).toHaveLength(0);
    expect(p.end).toBe('non-header');
    expect(p.body).toBe(' indented\r\n');
  });

  it('turns a first line "From " into X-Mailbox-Line', () => {
    const p = parse('From sender@example.com Sun Nov 29 12:00:00 2026\r\nSubject: x\r\n\r\n');
    expect(p.headers[0]!.name).toBe('X-Mailbox-Line');
    expect(p.headers[0]!.raw).toBe(
      'X-Mailbox-Line: From sender@example.com Sun Nov 29 12:00:00 2026\r\n',
    );
  });

  it('accepts obsolete "Name : value" syntax', () => {
    const p = parse('Subject : spaced\r\n\r\n');
    expect(p.headers[0]!.name).toBe('Subject');
    expect(p.headers[0]!.value).toBe('spaced');
  });

  it('keeps a header line much longer than the line length limit', () => {
    const long = `X-Long: ${'a'.repeat(10_000)}\r\n`;
    const p = parse(`${long}\r\n`);
    expect(p.headers[0]!.raw).toBe(long);
    expect(p.headers[0]!.truncated).toBe(false);
  });

  it('discards the excess of a header beyond headerSizeLimit, keeping CRLF line ends', () => {
    const p = parse(
      `X-Big: ${'b'.repeat(500)}\r\n ${'c'.repeat(500)}\r\nSubject: kept\r\n\r\nbody\r\n`,
      100,
    );
    const big = p.headers[0]!;
    expect(big.truncated).toBe(true);
    expect(big.raw.length).toBeLessThanOrEqual(102);
    expect(big.raw.endsWith('\r\n')).toBe(true);
    expect(big.raw.slice(0, -2)).not.toContain('\n');
    expect(p.headers[1]!.raw).toBe('Subject: kept\r\n');
    expect(p.body).toBe('body\r\n');
  });

  it('never treats a field name longer than 998 bytes as a header', () => {
    const p = parse(`${'N'.repeat(2000)}: value\r\n`);
    expect(p.headers).toHaveLength(0);
    expect(p.end).toBe('non-header');
    expect(p.body).toBe(`${'N'.repeat(2000)}: value\r\n`);
  });

  it('ends at end of input inside the headers', () => {
    const p = parse('Subject: only headers\r\n');
    expect(p.headers).toHaveLength(1);
    expect(p.end).toBe('eof');
    expect(p.body).toBe('');
  });

  it('gives the same result however the input is chunked', () => {
    const line = fc.oneof(
      fc.constantFrom(
        'Subject: a',
        ' folded',
        '\tmore',
        'X-Y:z',
        'not a header',
        '',
        'From x',
        'Bad Name: v',
      ),
      fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, '')),
    );
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 12 }),
        fc.array(fc.nat({ max: 200 }), { maxLength: 6 }),
        (lines, cuts) => {
          const input = lines.map((l) => `${l}\r\n`).join('');
          const split = [...new Set(cuts.map((c) => Math.min(c, input.length)))].sort(
            (a, b) => a - b,
          );
          const whole = parse(input, 40);
          expect(parse(input, 40, split)).toEqual(whole);
          // Nothing is lost except truncated header bytes.
          if (!whole.headers.some((h) => h.truncated) && !input.startsWith('From ')) {
            const rebuilt =
              whole.headers.map((h) => h.raw).join('') +
              (whole.end === 'empty-line' ? '\r\n' : '') +
              whole.body;
            expect(rebuilt).toBe(input);
          }
        },
      ),
    );
  });
});
