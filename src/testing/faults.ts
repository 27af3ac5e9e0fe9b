/**
 * Fault injection for the test MTA: make an SMTP stage answer a chosen reply, wait, or
 * hang up — for the next N times, for one recipient, or with a probability.
 *
 * Built on the receiver's own extension point: one restriction function per stage
 * (client, helo, sender, recipient, data, end-of-data) with `smtpdDelayReject` off, so
 * each stage answers at its own command, exactly as a Postfix access table would.
 *
 * @module
 */

import type {
  RestrictionFunction,
  RestrictionRequest,
  RestrictionStage,
} from '../receive/restriction-types.js';
import { SmtpReply } from '../smtp-reply.js';

/**
 * SMTP stages a fault can hit. `DATA-END` is the reply after the final dot.
 *
 * @example
 * ```ts
 * mta.failNext('DATA-END' satisfies FaultStage, '452 4.3.1 Insufficient system storage');
 * ```
 */
export type FaultStage = 'CONNECT' | 'HELO' | 'MAIL' | 'RCPT' | 'DATA' | 'DATA-END';

/**
 * Which occurrences a fault applies to.
 *
 * @example
 * ```ts
 * mta.failNext('RCPT', '450 4.2.0 try later', { recipient: 'flaky@example.com', times: 3, probability: 0.5 } satisfies FaultOptions);
 * ```
 */
export interface FaultOptions {
  /** How many times it fires. @default 1 */
  readonly times?: number;
  /** Only for this recipient (RCPT stage). */
  readonly recipient?: string;
  /** Fires with this probability (0..1) each time it could. @default 1 */
  readonly probability?: number;
}

type Effect =
  | { readonly kind: 'reply'; readonly reply: string }
  | { readonly kind: 'delay'; readonly ms: number };

interface Fault {
  readonly stage: FaultStage;
  readonly effect: Effect;
  readonly recipient: string | undefined;
  readonly probability: number;
  left: number;
}

export const STAGE_OF: Readonly<Record<FaultStage, RestrictionStage>> = {
  CONNECT: 'client',
  HELO: 'helo',
  MAIL: 'sender',
  RCPT: 'recipient',
  DATA: 'data',
  'DATA-END': 'end-of-data',
};

export class FaultPlan {
  readonly #faults: Fault[] = [];
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  add(stage: FaultStage, effect: Effect, options: FaultOptions = {}): void {
    if (!(stage in STAGE_OF)) {
      throw new RangeError(
        `unknown SMTP stage "${stage}"; use one of ${Object.keys(STAGE_OF).join(', ')}`,
      );
    }
    if (effect.kind === 'reply' && !/^[45]\d\d(\s|$)/.test(effect.reply)) {
      throw new RangeError(
        `a fault reply must start with a 4xx or 5xx code, e.g. "550 5.1.1 no such user"; got "${effect.reply}"`,
      );
    }
    this.#faults.push({
      stage,
      effect,
      recipient: options.recipient?.toLowerCase(),
      probability: options.probability ?? 1,
      left: options.times ?? 1,
    });
  }

  clear(): void {
    this.#faults.length = 0;
  }

  /** The restriction function for one stage. */
  hook(stage: FaultStage): RestrictionFunction {
    return async (request: RestrictionRequest) => {
      for (const fault of this.#faults) {
        if (fault.stage !== stage || fault.left <= 0) continue;
        if (fault.recipient !== undefined && request.recipient?.toLowerCase() !== fault.recipient)
          continue;
        if (this.#random() >= fault.probability) continue;
        fault.left--;
        if (fault.effect.kind === 'delay') {
          await new Promise((r) =>
            setTimeout(r, fault.effect.kind === 'delay' ? fault.effect.ms : 0),
          );
          return undefined;
        }
        // A reply object is sent as it is, without access(5)'s "<addr>: ... rejected:" prefix.
        return SmtpReply.parse(fault.effect.reply);
      }
      return undefined;
    };
  }
}
