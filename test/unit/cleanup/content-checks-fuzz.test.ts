/**
 * Hostile content through the checked data path (MIME tracking, header and body
 * checks): never throws, always replies, and the stored body does not depend on how
 * the input was chunked.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { harness, incoming, submit } from './harness.js';

const PARAMS = {
  headerChecks: 'regexp:{ {/^Subject: drop/ IGNORE}, {/^X-Big: (.*)/ REPLACE X-Small: $1} }',
  bodyChecks: 'regexp:{ {/^--b$/ PREPEND X}, {/^secret/ REPLACE [x]}, {/^kill/ STRIP} }',
  mimeNestingLimit: 3,
  mimeBoundaryLengthLimit: 5,
  bodyChecksSizeLimit: 64,
  headerSizeLimit: 200,
};

const token = fc.constantFrom(
  'Content-Type: multipart/mixed; boundary=b\r\n',
  'Content-Type: message/rfc822\r\n',
  'Content-Type: multipart/alternative; boundary="bb"\r\n',
  '--b\r\n',
  '--b--\r\n',
  '--bb\r\n',
  '--bbbbbbbbbb\r\n',
  '\r\n',
  'Subject: drop me\r\n',
  'X-Big: value\r\n',
  ' continued\r\n',
  'secret line\r\n',
  'kill this\r\n',
  'plain text\r\n',
  '\n',
  '\r',
  '-',
  '\u00e9\u00fc\r\n',
  'x'.repeat(300),
);

/** Stores `bytes` whole and one byte at a time; returns both stored bodies. */
async function bothWays(bytes: Buffer): Promise<string[]> {
  const bodies: string[] = [];
  for (const size of [bytes.length, 1]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
    const h = await harness(PARAMS);
    await submit(h, { sender: 'a@example.org', recipients: ['b@example.com'], content: chunks });
    const [stored] = await incoming(h.store);
    bodies.push(stored!.content.slice(stored!.record.headerSize));
  }
  return bodies;
}

describe('checked content path under hostile input', () => {
  // Found by the property below: a nested-message line longer than headerSizeLimit that
  // is not a header ended the header block only when it arrived in one piece.
  it('ends a nested header block on a long non-header line however it is chunked', async () => {
    const bytes = Buffer.from(
      `From: a@example.org\r\nContent-Type: message/rfc822\r\n${'x'.repeat(300)} continued\r\nX-Big: value\r\nX-Next: line\r\n`,
    );
    const [whole, bytewise] = await bothWays(bytes);
    expect(bytewise).toBe(whole);
    expect(whole).toContain('X-Big: value');
  });

  it('always replies and stores the same body however the input is chunked', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(token, { maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 8 }),
        async (tokens, cuts) => {
          const bytes = Buffer.from(`From: a@example.org\r\n${tokens.join('')}`);
          const bodies: string[] = [];
          for (const chunking of [[bytes.length], cuts]) {
            const chunks: Buffer[] = [];
            let i = 0;
            let k = 0;
            while (i < bytes.length) {
              const n = chunking[k++ % chunking.length]!;
              chunks.push(bytes.subarray(i, i + n));
              i += n;
            }
            const h = await harness(PARAMS);
            const result = await submit(h, {
              sender: 'a@example.org',
              recipients: ['b@example.com'],
              content: chunks.length > 0 ? chunks : [Buffer.alloc(0)],
            });
            expect(result.reply.code).toBe(250);
            const [stored] = await incoming(h.store);
            bodies.push(stored!.content.slice(stored!.record.headerSize));
          }
          expect(bodies[1]).toBe(bodies[0]);
        },
      ),
      { numRuns: 150 },
    );
  }, 60_000);
});
