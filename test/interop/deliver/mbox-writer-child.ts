/**
 * Child process for the mailbox-readers interop test: delivers `count` messages
 * concurrently into one mbox through MailboxDelivery (dotlock), so that several
 * processes contend for the same lock file. argv: MBOX COUNT TAG.
 */

import { Readable } from 'node:stream';
import { MailboxDelivery } from '../../../src/deliver/mailbox-delivery.js';
import type { DeliveryRequest } from '../../../src/deliver/types.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';

const [file = '', countText = '0', tag = 'child'] = process.argv.slice(2);
const params = resolveParameters({ myhostname: 'mx.example.com' });
const writer = new MailboxDelivery({
  hostname: params.myhostname,
  sizeLimit: 0,
  lock: { attempts: 2000, delayMs: 5, staleMs: 500_000 },
});

function request(i: number): DeliveryRequest {
  const body = Buffer.from(
    `Subject: ${tag} ${i}\r\n\r\n${`${tag} line ${i}\r\n`.repeat(200)}From the end\r\n`,
  );
  return {
    queueId: `${tag}${i}`,
    transport: 'local',
    nexthop: 'x',
    sender: `${tag}@example.org`,
    recipients: [],
    size: body.length,
    bodyType: '7BIT',
    smtputf8: false,
    eightBit: false,
    arrivalTime: 0,
    source: { component: 'test', protocol: 'local' },
    // Small chunks make each append take many writes, so interleaving would show.
    openContent: () =>
      Readable.from(
        Array.from({ length: Math.ceil(body.length / 97) }, (_, k) =>
          body.subarray(k * 97, k * 97 + 97),
        ),
      ),
    signal: new AbortController().signal,
  };
}

const results = await Promise.all(
  Array.from({ length: Number(countText) }, (_, i) =>
    writer.write(request(i), { path: file, maildir: false }, { returnPath: `${tag}@example.org` }),
  ),
);
const failed = results.filter((r) => r.status !== 'sent');
process.stdout.write(
  JSON.stringify({ sent: results.length - failed.length, failed: failed.map((f) => f.reply.text) }),
);
