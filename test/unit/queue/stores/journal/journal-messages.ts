/**
 * Test messages for the queue journal: a deterministic content per queue ID and its
 * stored record. No test-runner imports, so the kill -9 child process can use it too.
 */

import { createHash } from 'node:crypto';
import { storedRecord } from '../../../../../src/queue/lease.js';
import type { MessageRecord } from '../../../../../src/queue/types.js';

/** A deterministic content of `size` bytes for a queue ID (CRLF lines). */
export function contentFor(queueId: string, size = 4096): Buffer {
  const head = `Subject: ${queueId}\r\n\r\n`;
  const out = Buffer.alloc(size, 0x2e);
  out.write(head, 0, 'latin1');
  const seed = createHash('sha256').update(queueId).digest('hex');
  for (let at = head.length; at + 66 <= size; at += 66) out.write(`${seed}\r\n`, at, 'latin1');
  return out;
}

/** The stored record of a test message with one recipient. */
export function storedFor(queueId: string, size = 4096): MessageRecord {
  return storedRecord({
    queueId,
    sender: 'sender@example.org',
    recipients: [{ id: 1, address: 'rcpt1@example.com', originalAddress: 'rcpt1@example.com' }],
    bodyType: '8BITMIME',
    smtputf8: false,
    eightBit: false,
    size,
    headerSize: 20,
    arrivalTime: 1_700_000_000_000,
    warnTime: 0,
    source: { component: 'smtpd', protocol: 'ESMTP', client: { address: '192.0.2.1' } },
  });
}
