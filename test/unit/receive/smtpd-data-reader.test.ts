import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataReader } from '../../../src/receive/smtpd-data-reader.js';
import type { BareNewlinePolicy } from '../../../src/receive/smtpd-parameters.js';

interface Outcome {
  /** Content emitted (latin1), up to the end of data. */
  content: string;
  /** Offset in the whole input just past the end-of-data line, or -1. */
  end: number;
  sawBareLf: boolean;
  dropped: number;
}

/** Feeds `input` to a DataReader split at the given cut points. */
function run(input: string, policy: BareNewlinePolicy = 'normalize', cuts: number[] = []): Outcome {
  const bytes = Buffer.from(input, 'latin1');
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    // Copy each chunk so that slices can't accidentally alias neighbours.
    chunks.push(Buffer.from(bytes.subarray(prev, p)));
    prev = p;
  }
  const reader = new DataReader(policy);
  const out: Buffer[] = [];
  let offset = 0;
  let end = -1;
  for (const chunk of chunks) {
    const r = reader.feed(chunk, 0, out);
    if (r >= 0) {
      end = offset + r;
      break;
    }
    offset += chunk.length;
  }
  return {
    content: Buffer.concat(out).toString('latin1'),
    end,
    sawBareLf: reader.sawBareLf,
    dropped: reader.droppedDotLines,
  };
}

describe('DataReader: end of data', () => {
  it('ends at CRLF.CRLF and keeps the final CRLF of the content', () => {
    const input = 'Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n';
    const r = run(input);
    expect(r.content).toBe('Subject: x\r\n\r\nbody\r\n');
    expect(input.slice(r.end)).toBe('QUIT\r\n');
    expect(r.sawBareLf).toBe(false);
  });

  it('ends immediately on an empty message', () => {
    const r = run('.\r\nNOOP\r\n');
    expect(r.content).toBe('');
    expect(r.end).toBe(3);
  });

  it('needs more data when there is no end yet', () => {
    const r = run('line one\r\nline two\r\n');
    expect(r.end).toBe(-1);
    expect(r.content).toBe('line one\r\nline two\r\n');
  });

  it('does not end on ". " or ".." lines, and unstuffs them', () => {
    const r = run('a\r\n..\r\n. \r\n...x\r\n.\r\n');
    expect(r.content).toBe('a\r\n.\r\n \r\n..x\r\n');
    expect(r.end).toBeGreaterThan(0);
  });

  it('passes a lone CR through as content', () => {
    const r = run('a\rb\r\n.\r\n');
    expect(r.content).toBe('a\rb\r\n');
  });

  it('refuses feed() after the end', () => {
    const reader = new DataReader();
    reader.feed(Buffer.from('.\r\n'), 0, []);
    expect(reader.done).toBe(true);
    expect(() => reader.feed(Buffer.from('x'), 0, [])).toThrow(/after end of data/);
  });

  it('starts at the given offset', () => {
    const reader = new DataReader();
    const out: Buffer[] = [];
    const buf = Buffer.from('DATA\r\nhello\r\n.\r\n');
    const end = reader.feed(buf, 6, out);
    expect(Buffer.concat(out).toString()).toBe('hello\r\n');
    expect(end).toBe(buf.length);
  });
});

describe('DataReader: smuggling sequences (normalize)', () => {
  const cases: [string, string, string][] = [
    // [name, input, expected content once the real end is reached]
    ['LF.LF', 'a\n.\nb\r\n.\r\n', 'a\r\nb\r\n'],
    ['LF.CRLF', 'a\n.\r\nb\r\n.\r\n', 'a\r\nb\r\n'],
    ['CRLF.LF', 'a\r\n.\nb\r\n.\r\n', 'a\r\nb\r\n'],
    ['CR.CRLF', 'a\r.\r\nb\r\n.\r\n', 'a\r.\r\nb\r\n'],
    ['CRLF.CR', 'a\r\n.\rb\r\n.\r\n', 'a\r\n\rb\r\n'],
    ['CRLF.CRCRLF', 'a\r\n.\r\r\nb\r\n.\r\n', 'a\r\n\r\r\nb\r\n'],
    ['lone CR line', 'a\r\r\n.\r\n', 'a\r\r\n'],
  ];
  for (const [name, input, expected] of cases) {
    it(`${name} is not end-of-data`, () => {
      const r = run(input);
      expect(r.content).toBe(expected);
      expect(r.end).toBe(input.length);
    });
  }

  it('a second message smuggled after a fake end stays inside the first', () => {
    const smuggled =
      'Subject: one\r\n\r\nhello\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: two\r\n\r\nevil\r\n.\r\n';
    const r = run(`${smuggled}QUIT\r\n`);
    expect(r.end).toBe(smuggled.length);
    expect(r.content).toContain('MAIL FROM:<evil@example.com>\r\n');
    expect(r.content).toContain('Subject: two\r\n');
    expect(r.dropped).toBe(1);
  });

  it('a bare LF is stored as CRLF and noted', () => {
    const r = run('a\nb\r\n.\r\n');
    expect(r.content).toBe('a\r\nb\r\n');
    expect(r.sawBareLf).toBe(true);
  });

  it('the same behaviour applies under note and reject', () => {
    for (const policy of ['note', 'reject'] as const) {
      const r = run('a\n.\nb\r\n.\r\n', policy);
      expect(r.content).toBe('a\r\nb\r\n');
      expect(r.sawBareLf).toBe(true);
    }
  });
});

describe('DataReader: legacy policy "no"', () => {
  it('ends at LF.LF', () => {
    const r = run('a\n.\nMAIL FROM:<x>\r\n', 'no');
    expect(r.content).toBe('a\r\n');
    expect(r.end).toBe(4);
  });

  it('ends at LF.CRLF', () => {
    const r = run('a\n.\r\nrest', 'no');
    expect(r.content).toBe('a\r\n');
    expect(r.end).toBe(5);
  });
});

/**
 * A line-at-a-time model of Postfix's rules, written independently of the streaming
 * state machine: split at LF, note whether a CR preceded it, then decide per line.
 */
function reference(input: string, policy: BareNewlinePolicy): { content: string; end: number } {
  let pos = 0;
  let prevBare = false;
  let content = '';
  for (;;) {
    const lf = input.indexOf('\n', pos);
    if (lf < 0) return { content, end: -1 };
    let line = input.slice(pos, lf);
    const bare = !line.endsWith('\r');
    if (!bare) line = line.slice(0, -1);
    pos = lf + 1;
    if (line === '.') {
      if (policy === 'no' || (!bare && !prevBare)) return { content, end: pos };
    } else {
      content += `${line.startsWith('.') ? line.slice(1) : line}\r\n`;
    }
    prevBare = bare;
  }
}

// Inputs built from the characters that matter, so that every tricky sequence occurs.
const alphabet = fc.constantFrom(
  '\r',
  '\n',
  '.',
  'a',
  ' ',
  '\r\n',
  '\r\n.',
  '\n.',
  '.\r\n',
  '\r\n.\r\n',
);
const inputArb = fc.array(alphabet, { maxLength: 40 }).map((parts) => parts.join(''));

describe('DataReader: chunking never changes the result', () => {
  for (const policy of ['normalize', 'reject', 'no'] as const) {
    it(`random inputs and random cuts (${policy})`, () => {
      fc.assert(
        fc.property(inputArb, fc.array(fc.nat({ max: 200 }), { maxLength: 12 }), (input, cuts) => {
          const whole = run(input, policy);
          const split = run(input, policy, cuts);
          expect(split).toEqual(whole);
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('agrees with a line-at-a-time model of the rules', () => {
    for (const policy of ['normalize', 'no'] as const) {
      fc.assert(
        fc.property(inputArb, fc.array(fc.nat({ max: 200 }), { maxLength: 6 }), (input, cuts) => {
          const full = `${input}\r\n.\r\n`;
          const expected = reference(full, policy);
          const got = run(full, policy, cuts);
          expect(got.end).toBe(expected.end);
          expect(got.content).toBe(expected.content);
        }),
        { numRuns: 2000 },
      );
    }
  });

  it('every single-byte split of every smuggling sequence', () => {
    const inputs = [
      'x\n.\ny\r\n.\r\nQUIT\r\n',
      'x\n.\r\ny\r\n.\r\nQUIT\r\n',
      'x\r\n.\ny\r\n.\r\nQUIT\r\n',
      'x\r.\r\ny\r\n.\r\nQUIT\r\n',
      'x\r\n.\ry\r\n.\r\nQUIT\r\n',
      'x\ry\r\n..\r\n.\r\nQUIT\r\n',
    ];
    for (const input of inputs) {
      const whole = run(input);
      expect(whole.end).toBe(input.length - 'QUIT\r\n'.length);
      for (let cut = 1; cut < input.length; cut++) {
        expect(run(input, 'normalize', [cut])).toEqual(whole);
      }
      // And byte by byte.
      const all = Array.from({ length: input.length }, (_, i) => i);
      expect(run(input, 'normalize', all)).toEqual(whole);
    }
  });

  it('output is always CRLF-terminated lines with no bare LF (safe policies)', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const r = run(`${input}\r\n.\r\n`);
        expect(r.end).toBeGreaterThan(0);
        // Every LF in the stored content is preceded by CR.
        expect(/(^|[^\r])\n/.test(r.content)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('end of data is exactly the first CRLF.CRLF not preceded by a bare-LF line', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const r = run(input);
        if (r.end < 0) return;
        // What was consumed ends with "\r\n.\r\n" (or is exactly ".\r\n").
        const consumed = input.slice(0, r.end);
        expect(consumed === '.\r\n' || consumed.endsWith('\r\n.\r\n')).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
