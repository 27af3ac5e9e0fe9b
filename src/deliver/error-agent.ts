/**
 * ErrorDeliveryAgent: fails every recipient on purpose — bounced for the `error`
 * transport, deferred for `retry`.
 *
 * Postfix counterpart: error(8). The nexthop is the reason text (`error:5.1.1 User
 * unknown in virtual alias table`, relocated(5), transport(5) `error:` entries); a
 * leading `D.S.N` status is honoured, the default being 5.0.0 for `error` and 4.0.0 for
 * `retry` (which qmgr uses for dead destinations and which therefore never bounces).
 * In `error` mode a nexthop that starts with a 4.x.x status defers instead.
 *
 * Does not: read the message content, send notices (the QueueManager and Bounce do).
 *
 * STANDARDS: RFC 3463 (enhanced status codes).
 *
 * @module
 */

import { SmtpReply } from '../smtp-reply.js';
import type { DeliveryAgent, DeliveryReporter, DeliveryRequest } from './types.js';

/** Splits `5.1.1 text` into status and text; `fallback` when there is no leading status. */
export function splitNexthopDsn(
  nexthop: string,
  fallback: string,
): { enhanced: string; text: string } {
  // One line: a reason with line breaks must not become a multi-line reply.
  const oneLine = nexthop.replace(/[\r\n]+/g, ' ');
  const m = /^\s*([245]\.\d{1,3}\.\d{1,3})(?:\s+([\s\S]*))?$/.exec(oneLine);
  if (m) return { enhanced: m[1]!, text: (m[2] ?? '').trim() };
  return { enhanced: fallback, text: oneLine.trim() };
}

/**
 * Options for ErrorDeliveryAgent.
 *
 * @example
 * ```ts
 * const retry = new ErrorDeliveryAgent({ mode: 'retry' } satisfies ErrorDeliveryAgentOptions);
 * ```
 */
export interface ErrorDeliveryAgentOptions {
  /** `error` bounces (5.0.0 by default), `retry` defers (4.0.0). @default 'error' */
  readonly mode?: 'error' | 'retry';
}

/**
 * Fails every recipient with the reason in the nexthop (`5.1.1 no such user`): bounces in
 * `error` mode, defers in `retry` mode. Postfix counterpart: error(8) and retry.
 *
 * @example
 * ```ts
 * const mta = new Mta({
 *   agents: { error: new ErrorDeliveryAgent() },
 *   transportMaps: { 'old.example.com': 'error:5.1.2 this domain is gone' },
 * });
 * ```
 */
export class ErrorDeliveryAgent implements DeliveryAgent {
  readonly #mode: 'error' | 'retry';

  constructor(options: ErrorDeliveryAgentOptions = {}) {
    this.#mode = options.mode ?? 'error';
  }

  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    const retry = this.#mode === 'retry';
    const { enhanced, text } = splitNexthopDsn(request.nexthop, retry ? '4.0.0' : '5.0.0');
    const defer = retry || enhanced.startsWith('4');
    const reason =
      text ||
      (defer ? 'delivery temporarily suspended' : 'mail delivery refused by the error transport');
    // The SmtpReply constructor makes the status class agree with the code (retry: 4.x.x).
    const reply = new SmtpReply(defer ? 450 : 550, enhanced, reason);
    for (const r of request.recipients) {
      reporter.recipient(r.id, { status: defer ? 'deferred' : 'bounced', reply, relay: 'none' });
    }
  }
}
