/**
 * The delivery request the queue manager hands to an agent for one job.
 *
 * Postfix counterpart: the DELIVER_REQUEST qmgr_deliver.c sends (deliver_request.h).
 *
 * Its `signal` is made when first read: most agents (discard, error, a delivery that
 * cannot hang) never read it, and an AbortSignal is costly to make. One read after the
 * message was withdrawn or the queue manager began to stop is already aborted. The
 * signal is an own, enumerable accessor with one getter shared by every request, so a
 * request spread into another (`{ ...request, recipients }`) carries it while each
 * request keeps the shape of an ordinary object (a getter in an object literal would
 * make every request a dictionary of over a kilobyte).
 *
 * Does not do: decide what the request holds beyond the message's record and the job.
 *
 * @module
 */

import type { Readable } from 'node:stream';
import type { DeliveryRequest } from '../../deliver/types.js';
import type {
  Address,
  BodyType,
  DsnRet,
  QueueId,
  Recipient,
  SubmissionSource,
} from '../../types.js';
import type { QueueStore } from '../types.js';
import { type ActiveMessage, abortOf, type Job } from './active-message.js';

let signalProperty: PropertyDescriptor;

/** See the module header. */
export class QueuedDeliveryRequest implements DeliveryRequest {
  readonly queueId: QueueId;
  readonly transport: string;
  readonly nexthop: string;
  readonly sender: Address;
  readonly recipients: readonly Recipient[];
  readonly size: number;
  readonly bodyType: BodyType;
  readonly smtputf8: boolean;
  readonly eightBit: boolean;
  declare readonly envid?: string;
  declare readonly ret?: DsnRet;
  readonly arrivalTime: number;
  readonly source: SubmissionSource;
  readonly openContent: () => Readable;
  declare readonly signal: AbortSignal;
  readonly #message: ActiveMessage;

  static {
    signalProperty = {
      get(this: QueuedDeliveryRequest): AbortSignal {
        return abortOf(this.#message).signal;
      },
      enumerable: true,
      configurable: true,
    };
  }

  constructor(store: QueueStore, job: Job) {
    const { message } = job;
    const { record } = message.claimed;
    const queueId = record.queueId;
    this.queueId = queueId;
    this.transport = job.transport;
    this.nexthop = job.nexthop;
    this.sender = record.sender;
    this.recipients = job.recipients;
    this.size = record.size;
    this.bodyType = record.bodyType;
    this.smtputf8 = record.smtputf8;
    this.eightBit = record.eightBit;
    this.arrivalTime = record.arrivalTime;
    this.source = record.source;
    // Own properties, so a spread copy has them too.
    this.openContent = () => store.openContent(queueId);
    this.#message = message;
    Object.defineProperty(this, 'signal', signalProperty);
    if (record.envid !== undefined) (this as { envid?: string }).envid = record.envid;
    if (record.ret !== undefined) (this as { ret?: DsnRet }).ret = record.ret;
  }
}
