import { afterEach, describe, expect, it } from 'vitest';
import { Mta } from '../../../src/mta/mta.js';
import type { MtaConfig } from '../../../src/mta/mta-config.js';
import { SmtpReply } from '../../../src/smtp-reply.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';

/** The content filter given in the config object itself, as an `.mjs` config would. */
describe('contentFilter in the Mta config', () => {
  let mta: Mta | undefined;
  afterEach(async () => {
    await mta?.stop();
    mta = undefined;
  });

  it('is called for each message and its verdict is the reply', async () => {
    const seen: string[] = [];
    mta = new Mta({
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueStore: { type: 'memory' },
      defaultTransport: 'discard',
      contentFilter: async (envelope, message) => {
        let text = '';
        for await (const chunk of message) text += (chunk as Buffer).toString('latin1');
        seen.push(envelope.sender ?? '');
        return /EICAR/.test(text)
          ? { action: 'reject', reply: new SmtpReply(554, '5.7.1', 'virus found') }
          : { action: 'accept', headers: ['X-Scanned: clean'] };
      },
    });
    await mta.start();
    const send = async (body: string) => {
      const c = await SmtpDialogue.open(mta!.listeners[0]!.port);
      try {
        await c.read();
        await c.expect('EHLO client.example', 250);
        await c.expect('MAIL FROM:<a@example.org>', 250);
        await c.expect('RCPT TO:<b@remote.example>', 250);
        await c.expect('DATA', 354);
        return await c.command(`Subject: t\r\n\r\n${body}\r\n.`);
      } finally {
        c.close();
      }
    };
    expect((await send('EICAR test string')).code).toBe(554);
    expect((await send('harmless')).code).toBe(250);
    expect(seen).toEqual(['a@example.org', 'a@example.org']);
    expect(() => new Mta({ contentFilter: 'not a function' } as unknown as MtaConfig)).toThrow(
      /contentFilter: expected a function/,
    );
  });
});
