/**
 * CaptureAgent: a DeliveryAgent that keeps what it is given instead of delivering it,
 * for tests. Every recipient is reported sent (`relay=capture`) once the message has
 * been read and parsed; listeners hear of each arrival.
 *
 * @module
 */

import type { DeliveryAgent, DeliveryReporter, DeliveryRequest } from '../deliver/types.js';
import { SmtpReply } from '../smtp-reply.js';
import { type CapturedMessage, parseCapturedMessage } from './captured-message.js';

/** Largest message a test capture holds in memory. */
const CAPTURE_LIMIT = 64 * 1024 * 1024;

/**
 * A delivery agent that keeps every message as a CapturedMessage instead of delivering it;
 * the transport behind createTestMta().
 *
 * @example
 * ```ts
 * const capture = new CaptureAgent();
 * capture.onMessage((m) => console.log(m.subject));
 * const mta = new Mta({ agents: { capture }, defaultTransport: 'capture', localTransport: 'capture' });
 * ```
 */
export class CaptureAgent implements DeliveryAgent {
  readonly #listeners = new Set<(m: CapturedMessage) => void>();

  /** Calls `listener` for every captured message; returns the unsubscribe function. */
  onMessage(listener: (m: CapturedMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request.openContent()) {
      size += (chunk as Buffer).length;
      if (size > CAPTURE_LIMIT)
        throw new Error(`message larger than the ${CAPTURE_LIMIT}-byte capture limit`);
      chunks.push(chunk as Buffer);
    }
    const raw = Buffer.concat(chunks);
    const message = await parseCapturedMessage(raw, {
      queueId: request.queueId,
      sender: request.sender,
      recipients: request.recipients.map((r) => r.address),
      deliveredAt: new Date(),
    });
    const reply = new SmtpReply(250, '2.0.0', 'captured');
    for (const r of request.recipients)
      reporter.recipient(r.id, { status: 'sent', reply, relay: 'capture' });
    for (const listener of this.#listeners) listener(message);
  }
}
