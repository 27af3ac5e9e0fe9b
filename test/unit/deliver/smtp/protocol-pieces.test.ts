import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DotStuffer } from '../../../../src/deliver/smtp/dot-stuffer.js';
import { downgradeMime } from '../../../../src/deliver/smtp/mime-downgrade.js';
import { ReplyParser } from '../../../../src/deliver/smtp/reply-parser.js';
import { parseEhlo } from '../../../../src/deliver/smtp/smtp-handshake.js';
import { parsePolicy } from '../../../../src/deliver/smtp/tls-policy.js';

async function collect(r: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts).toString('latin1');
}

async function stuff(chunks: string[], limit = 998): Promise<string> {
  return collect(
    Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new DotStuffer(limit)),
  );
}

describe('ReplyParser', () => {
  it('joins multi-line replies and takes the enhanced status from the first line', () => {
    const p = new ReplyParser();
    const out = p.push('250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n550 5.1.1 no\r\n');
    expect(out).toHaveLength(2);
    expect(out[0]!.lines).toEqual(['mx.example.com', 'PIPELINING', 'SIZE 1000']);
    expect(out[1]!.toString()).toBe('550 5.1.1 no');
    expect(parseEhlo(out[0]!).get('SIZE')).toBe('1000');
  });

  it('handles replies split anywhere, bare LF, and normalises a wrong class', () => {
    const p = new ReplyParser();
    expect(p.push('45')).toEqual([]);
    const r = p.push('1 5.7.1 grey\n');
    expect(r[0]!.toString()).toBe('451 4.7.1 grey');
  });

  it('refuses garbage and never throws anything else on random input', () => {
    expect(() => new ReplyParser().push('HTTP/1.1 200 OK\r\n')).toThrow(/malformed/);
    expect(() => new ReplyParser().push('250-a\r\n550 b\r\n')).toThrow(/changed/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          new ReplyParser({ maxLineLength: 64, maxLines: 5 }).push(Buffer.from(bytes));
        } catch (e) {
          expect((e as Error).constructor.name).toBe('ReplySyntaxError');
        }
      }),
    );
  });

  it('bounds a long line', () => {
    const r = new ReplyParser({ maxLineLength: 20 }).push(`250 ${'x'.repeat(10_000)}\r\n`);
    expect(r[0]!.text.length).toBeLessThanOrEqual(20);
  });
});

describe('DotStuffer', () => {
  it('doubles leading dots, also across chunk boundaries, and terminates', async () => {
    expect(await stuff(['.a\r\nb\r\n.', '.c\r\n'])).toBe('..a\r\nb\r\n...c\r\n.\r\n');
    expect(await stuff(['x\r', '\n.', 'y\r\n'])).toBe('x\r\n..y\r\n.\r\n');
  });

  it('adds a missing final CRLF and turns bare LF into CRLF', async () => {
    expect(await stuff(['a\nb'])).toBe('a\r\nb\r\n.\r\n');
    expect(await stuff([''])).toBe('.\r\n');
  });

  it('folds long lines with CRLF SPACE at the limit', async () => {
    const out = await stuff([`${'x'.repeat(25)}\r\n`], 10);
    expect(out).toBe('xxxxxxxxxx\r\n xxxxxxxxx\r\n xxxxxx\r\n.\r\n');
    for (const line of out.split('\r\n')) expect(line.length).toBeLessThanOrEqual(10);
  });

  it('round-trips any CRLF text (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.stringMatching(/^[.a-z ]{0,12}$/), { maxLength: 20 }),
        fc.integer({ min: 1, max: 7 }),
        async (lines, cut) => {
          const text = lines.map((l) => `${l}\r\n`).join('');
          const chunks: string[] = [];
          for (let i = 0; i < text.length; i += cut) chunks.push(text.slice(i, i + cut));
          const out = await stuff(chunks.length ? chunks : [''], 0);
          expect(out.endsWith('.\r\n')).toBe(true);
          const stuffed = out.slice(0, -3);
          // Every line that starts with a dot was stuffed; unstuffing gives the input back.
          expect(stuffed.replace(/(^|\n)\./g, '$1')).toBe(text);
        },
      ),
    );
  });
});

describe('MIME downgrade', () => {
  it('re-encodes 8bit text parts as quoted-printable that decodes to the same text', async () => {
    const text = 'Grüße aus Köln — naïve café\r\n';
    const msg = Buffer.from(
      `From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}--b1--\r\n`,
      'utf8',
    );
    const out = await collect(await downgradeMime(() => Readable.from([msg])));
    expect(/[\x80-\xff]/.test(out)).toBe(false);
    expect(out).toMatch(/Content-Transfer-Encoding: quoted-printable/i);
    expect(out).toMatch(/multipart\/mixed[\s\S]*Content-Transfer-Encoding: 7bit/i);
    const qp = out.split(/quoted-printable\r?\n\r?\n/i)[1]!.split('--b1--')[0]!;
    const decoded = Buffer.from(
      qp
        .replace(/=\r?\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
    // The part may gain one trailing line break (the encoder ends the part with a line).
    expect(decoded.trimEnd()).toBe(text.trimEnd());
  });

  it('leaves 7-bit parts alone', async () => {
    const msg = 'Subject: x\r\nContent-Type: text/plain\r\n\r\nplain\r\n';
    expect(await collect(await downgradeMime(() => Readable.from([Buffer.from(msg)])))).toBe(msg);
  });
});

describe('TLS policy values', () => {
  it('parses a level with match names and refuses an unknown level', () => {
    expect(parsePolicy('secure match=.example.com:example.com', 't')).toEqual({
      level: 'secure',
      match: ['.example.com', 'example.com'],
    });
    expect(() => parsePolicy('bogus', 'inline:t')).toThrow(/TLS level/);
  });
});
