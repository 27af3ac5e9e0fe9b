/**
 * DATA and BDAT without an accepted recipient answer as Postfix's smtpd: `554 5.5.1
 * Error: no valid recipients` inside a mail transaction (no RCPT sent, or every RCPT of
 * a pipelined group refused), `503 5.5.1` only when there is no MAIL; and an unknown
 * BODY value is `555 5.5.4 Unsupported option: BODY=...`.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { type ReceiverFixture, startReceiver, TEST_HOST } from '../../helpers/receiver-fixture.js';

let fx: ReceiverFixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const LOCAL = `postmaster@${TEST_HOST}`;

describe('DATA with no valid recipients', () => {
  it('is 554 after MAIL with no RCPT at all, and 503 without MAIL', async () => {
    fx = await startReceiver();
    const c = await fx.ehlo();
    expect((await c.command('DATA')).raw).toBe('503 5.5.1 Error: need RCPT command\r\n');
    expect((await c.command('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.command('DATA')).raw).toBe('554 5.5.1 Error: no valid recipients\r\n');
    // The transaction is still open: a recipient and DATA go through.
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
  });

  it('is 554 when every RCPT of a pipelined group was refused, and the session stays in sync', async () => {
    fx = await startReceiver();
    const c = await fx.ehlo();
    c.send(
      'MAIL FROM:<a@example.org>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<y@elsewhere.example>\r\nDATA\r\n',
    );
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).raw).toMatch(
      /^454 4\.7\.1 <x@elsewhere\.example>: Relay access denied/,
    );
    expect((await c.reply()).raw).toMatch(
      /^454 4\.7\.1 <y@elsewhere\.example>: Relay access denied/,
    );
    expect((await c.reply()).raw).toBe('554 5.5.1 Error: no valid recipients\r\n');
    expect((await c.command('NOOP')).raw).toBe('250 2.0.0 Ok\r\n');
  });

  it('is 503 when the pipelined MAIL itself was refused', async () => {
    fx = await startReceiver();
    const c = await fx.ehlo();
    c.send(`MAIL FROM:<a b@example.org>\r\nRCPT TO:<${LOCAL}>\r\nDATA\r\n`);
    expect((await c.reply()).raw).toBe('501 5.1.7 Bad sender address syntax\r\n');
    expect((await c.reply()).raw).toBe('503 5.5.1 Error: need MAIL command\r\n');
    expect((await c.reply()).raw).toBe('503 5.5.1 Error: need RCPT command\r\n');
  });

  it('is 554 for BDAT after MAIL with no accepted RCPT; the chunk is consumed', async () => {
    fx = await startReceiver();
    const c = await fx.ehlo();
    c.send('MAIL FROM:<a@example.org>\r\nRCPT TO:<x@elsewhere.example>\r\nBDAT 5 LAST\r\nhello');
    expect((await c.reply()).code).toBe(250);
    expect((await c.reply()).code).toBe(454);
    expect((await c.reply()).raw).toBe('554 5.5.1 Error: no valid recipients\r\n');
    expect((await c.command('NOOP')).raw).toBe('250 2.0.0 Ok\r\n');
    expect(fx.submission.committed).toHaveLength(0);
  });
});

describe('MAIL FROM BODY=', () => {
  it.each([
    ['BODY=9BIT', '555 5.5.4 Unsupported option: BODY=9BIT'],
    ['BODY=BINARYMIME', '555 5.5.4 Unsupported option: BODY=BINARYMIME'],
    ['BODY', '555 5.5.4 Unsupported option: BODY'],
    ['BODY=8BITMIME', '250 2.1.0 Ok'],
  ])('%s → %s', async (param, reply) => {
    fx = await startReceiver();
    const c = await fx.ehlo();
    expect((await c.command(`MAIL FROM:<a@example.org> ${param}`)).raw).toBe(`${reply}\r\n`);
  });
});
