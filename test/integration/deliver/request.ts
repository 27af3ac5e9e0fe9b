/** Builds DeliveryRequests and collects what an agent reports, for client tests. */

import { Readable } from 'node:stream';
import type {
  DeliveryReporter,
  DeliveryRequest,
  DestinationStatus,
} from '../../../src/deliver/types.js';
import type { Recipient, RecipientResult } from '../../../src/types.js';

export interface RequestInput {
  readonly nexthop: string;
  readonly recipients: readonly string[];
  readonly content?: string | Buffer;
  readonly sender?: string;
  readonly transport?: string;
  readonly eightBit?: boolean;
  readonly smtputf8?: boolean;
  readonly size?: number;
  readonly signal?: AbortSignal;
  readonly notify?: Recipient['notify'];
}

export const DEFAULT_CONTENT =
  'From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\r\nHello.\r\n.leading dot\r\n';

export function makeRequest(input: RequestInput): DeliveryRequest {
  const content = Buffer.from(input.content ?? DEFAULT_CONTENT);
  return {
    queueId: 'TESTQID',
    transport: input.transport ?? 'smtp',
    nexthop: input.nexthop,
    sender: input.sender ?? 'sender@example.org',
    recipients: input.recipients.map((address, id) => ({
      id,
      address,
      originalAddress: address,
      ...(input.notify ? { notify: input.notify, orcpt: `rfc822;${address}` } : {}),
    })),
    size: input.size ?? content.length,
    bodyType: input.eightBit ? '8BITMIME' : '7BIT',
    smtputf8: input.smtputf8 ?? false,
    eightBit: input.eightBit ?? false,
    arrivalTime: Date.now(),
    source: { component: 'smtpd', protocol: 'ESMTP' },
    openContent: () => Readable.from([content]),
    signal: input.signal ?? new AbortController().signal,
  };
}

export class Collector implements DeliveryReporter {
  readonly results = new Map<number, RecipientResult>();
  readonly order: number[] = [];
  destinationStatus: DestinationStatus | undefined;
  recipient(id: number, result: RecipientResult): void {
    if (this.results.has(id)) return;
    this.results.set(id, result);
    this.order.push(id);
  }
  destination(status: DestinationStatus): void {
    this.destinationStatus = status;
  }
  status(id: number): string | undefined {
    return this.results.get(id)?.status;
  }
  statuses(): string[] {
    return [...this.results.keys()].sort((a, b) => a - b).map((k) => this.results.get(k)!.status);
  }
}
