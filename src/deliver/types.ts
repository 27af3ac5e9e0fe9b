/**
 * Delivery contracts: DeliveryAgent (pluggable transport), the request it gets, the
 * reporter it answers through, and the `transports` entry that names an agent.
 *
 * Postfix counterpart: deliver_request.h and the delivery agents' status protocol
 * (deliver_completed, bounce_append, defer_append). An agent delivers one request and
 * reports per-recipient outcomes; the QueueManager alone decides what happens next.
 *
 * Ownership and call order:
 * - The QueueManager calls `deliver(request, reporter)` with recipients that share one
 *   transport and nexthop (at most the transport's recipient limit).
 * - The agent calls `reporter.recipient()` once per recipient the moment its outcome is
 *   known, and `reporter.destination()` when it learns whether the destination itself
 *   works (drives concurrency feedback and dead-destination handling).
 * - When `deliver` settles or throws, every recipient not yet reported is deferred
 *   (a thrown error's reply is used when it is an SmtpError, else 4.3.0). An agent
 *   therefore never needs to catch just to defer, and an LMTP connection that drops
 *   after two of three replies never delivers those two again.
 * - `request.openContent()` returns a fresh stream each call (a second MX after a
 *   broken DATA, a 7-bit downgrade, DKIM). `request.signal` aborts on shutdown or lease
 *   loss; the agent should stop promptly.
 * - A reply from a remote server is data: an agent normalises it through SmtpReply and
 *   never crashes on it.
 *
 * @module
 */

import type { Readable } from 'node:stream';
import type { SmtpReply } from '../smtp-reply.js';
import type {
  Address,
  BodyType,
  DsnRet,
  QueueId,
  Recipient,
  RecipientId,
  RecipientResult,
  SubmissionSource,
} from '../types.js';

/**
 * One message for one transport and nexthop.
 *
 * @example
 * ```ts
 * const agent: DeliveryAgent = {
 *   async deliver(request: DeliveryRequest, reporter) {
 *     const body = await text(request.openContent()); // node:stream/consumers
 *     await fetch('https://hooks.example.com/mail', { method: 'POST', body, signal: request.signal });
 *     for (const r of request.recipients)
 *       reporter.recipient(r.id, { status: 'sent', reply: reply(250, '2.0.0', 'posted') });
 *   },
 * };
 * ```
 */
export interface DeliveryRequest {
  /** The message's queue ID, for logs. */
  readonly queueId: QueueId;
  /** Transport name as registered (`smtp`, `local`, `discard`, a name from `transports`). */
  readonly transport: string;
  /** Transport-specific destination: a domain, `[host]:port`, a reason text for `error`. */
  readonly nexthop: string;
  /** The envelope sender (`''` for the null sender). */
  readonly sender: Address;
  /** The recipients for this transport and nexthop; report each one by its `id`. */
  readonly recipients: readonly Recipient[];
  /** Content size in bytes. */
  readonly size: number;
  /** RFC 1652 BODY= of the message. */
  readonly bodyType: BodyType;
  /** The message needs SMTPUTF8 handling (RFC 6531). */
  readonly smtputf8: boolean;
  /** Content has bytes above 0x7F. */
  readonly eightBit: boolean;
  /** RFC 3461 ENVID, to pass on. */
  readonly envid?: string;
  /** RFC 3461 RET, to pass on. */
  readonly ret?: DsnRet;
  /** Arrival time, ms since the epoch (for `delay=` and DSNs). */
  readonly arrivalTime: number;
  /** Where the message came from (pipe macros such as `${client_address}`). */
  readonly source: SubmissionSource;
  /** A fresh content stream on every call: CRLF, dot-unstuffed. */
  openContent(): Readable;
  /** Aborts on shutdown or when the lease on the message is lost. */
  readonly signal: AbortSignal;
}

/**
 * Whether the destination itself works, independent of any one recipient.
 *
 * @example
 * ```ts
 * reporter.destination({ ok: false, reply: reply(421, '4.4.1', 'connection refused') });
 * ```
 */
export type DestinationStatus =
  | { readonly ok: true }
  /** Connection refused, greeting 4xx, TLS failure...: `reply` says what happened. */
  | { readonly ok: false; readonly reply: SmtpReply };

/**
 * How an agent reports. Calls after the first for a recipient are ignored.
 *
 * @example
 * ```ts
 * reporter.recipient(rcpt.id, { status: 'bounced', reply: reply(550, '5.1.1', 'no such user') });
 * reporter.destination({ ok: true });
 * ```
 */
export interface DeliveryReporter {
  /** Reports one recipient's outcome; a recipient never reported is deferred. */
  recipient(id: RecipientId, result: RecipientResult): void;
  /** Reports whether the destination itself works (the queue manager throttles a dead one). */
  destination(status: DestinationStatus): void;
}

/**
 * A transport. Registered by name in the AgentRegistry.
 *
 * @example
 * ```ts
 * class DropAgent implements DeliveryAgent {
 *   async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
 *     for (const r of request.recipients)
 *       reporter.recipient(r.id, { status: 'sent', reply: reply(250, '2.0.0', 'dropped') });
 *   }
 * }
 * const mta = new Mta({ agents: { drop: new DropAgent() }, defaultTransport: 'drop' });
 * ```
 */
export interface DeliveryAgent {
  /**
   * Delivers one request, reporting every recipient through `reporter`; a throw defers them all.
   */
  deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void>;
  /** Closes cached connections and child processes. */
  close?(): Promise<void>;
}

/**
 * Built-in transport types.
 *
 * @example
 * ```ts
 * const type: TransportType = 'lmtp';
 * const mta = new Mta({ transports: { dovecot: { type } } });
 * ```
 */
export type TransportType =
  | 'local'
  | 'discard'
  | 'error'
  | 'retry'
  | 'smtp'
  | 'lmtp'
  | 'virtual'
  | 'pipe';

/**
 * One entry of the `transports` map.
 *
 * @example
 * ```ts
 * const relay: TransportConfig = { type: 'smtp', destinationConcurrencyLimit: 5 };
 * const mta = new Mta({ transports: { relay }, transportMaps: { 'example.net': 'relay:[10.0.0.5]' } });
 * ```
 */
export interface TransportConfig {
  /** Which built-in agent serves the transport. */
  readonly type: TransportType;
  /** Postfix `<transport>_destination_concurrency_limit`. */
  readonly destinationConcurrencyLimit?: number;
  /** Postfix `<transport>_destination_recipient_limit`. */
  readonly destinationRecipientLimit?: number;
  readonly [setting: string]: unknown;
}
