import { Duplex, PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { SmtpReceiver } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';

// Any byte sequence, fed in any chunking, to a whole session: every reply is well formed,
// the session ends (EOF), nothing throws, and what the server buffers stays bounded.
const tokens = fc.constantFrom(
  'EHLO x\r\n',
  'HELO x\r\n',
  'MAIL FROM:<a@b.example>\r\n',
  'RCPT TO:<postmaster@mx.example.test>\r\n',
  'RCPT TO:<x@far.example> NOTIFY=NEVER\r\n',
  'DATA\r\n',
  'BDAT 5\r\n',
  'BDAT 3 LAST\r\n',
  'BDAT x\r\n',
  'RSET\r\n',
  'NOOP\r\n',
  'QUIT\r\n',
  'STARTTLS\r\n',
  'AUTH PLAIN\r\n',
  'AUTH LOGIN\r\n',
  '*\r\n',
  'XCLIENT ADDR=1.2.3.4\r\n',
  '.\r\n',
  '\n.\n',
  '\r.\r\n',
  'Subject: x\r\n',
  '\0',
  '\xff\xfe',
  'MAIL FROM:<\xc3\xa9@b.example> SMTPUTF8\r\n',
  'A'.repeat(3000),
  '\r\n',
  '\n',
  ' ',
);
const input = fc.array(
  fc.oneof(
    tokens,
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
  ),
  {
    maxLength: 40,
  },
);

describe('SmtpSession fuzz', () => {
  it('answers any input with well-formed replies and ends cleanly', async () => {
    const params = resolveParameters({
      myhostname: 'mx.example.test',
      smtpdErrorSleepTime: 0,
      smtpdTimeout: 2000,
      messageSizeLimit: 100_000,
    });
    const receiver = new SmtpReceiver({
      params,
      submission: new RecordingSubmission(),
      rewriter: new Rewriter({ params }),
    });
    await fc.assert(
      fc.asyncProperty(input, fc.integer({ min: 1, max: 97 }), async (parts, split) => {
        const bytes = Buffer.from(parts.join(''), 'latin1');
        const toServer = new PassThrough();
        const toClient = new PassThrough();
        const socket = Duplex.from({ readable: toServer, writable: toClient });
        let out = '';
        toClient.on('data', (d: Buffer) => {
          out += d.toString('latin1');
        });
        const ended = new Promise<void>((resolve) => toClient.on('end', resolve));
        receiver.handle(socket, { address: '192.0.2.9', port: 1 });
        for (let i = 0; i < bytes.length; i += split) toServer.write(bytes.subarray(i, i + split));
        toServer.end();
        await ended;
        expect(out.endsWith('\r\n')).toBe(true);
        const lines = out.slice(0, -2).split('\r\n');
        for (const line of lines)
          expect(line).toMatch(/^(?:[2-5]\d\d[ -][\x20-\x7e]*|334 [A-Za-z0-9+/=]*)$/);
        expect(lines[0]).toMatch(/^220 /);
        // Bounded: never more reply bytes than a small multiple of the input.
        expect(out.length).toBeLessThan(2000 + bytes.length * 60);
      }),
      { numRuns: 150 },
    );
    await receiver.close();
  });
});
