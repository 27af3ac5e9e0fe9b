/**
 * Mailpit's Chaos triggers (`GET`/`PUT /api/v1/chaos`) on top of the test MTA's fault
 * plan: `Sender` fails MAIL FROM, `Recipient` fails RCPT TO and `Authentication` fails
 * AUTH, each with an SMTP code (400–599) and a probability in percent, until changed.
 *
 * Postfix counterpart: none. As in Mailpit, a PUT replaces all three triggers: one left
 * out is reset to its default code (451, 451, 535) with a 0 % probability (off).
 *
 * @module
 */

import { defaultEnhanced } from '../smtp-reply.js';
import type { FaultPlan, FaultStage } from './faults.js';

/**
 * One trigger, as Mailpit's API writes it.
 *
 * @example
 * ```ts
 * const trigger: ChaosTrigger = { ErrorCode: 451, Probability: 50 };
 * ```
 */
export interface ChaosTrigger {
  /** SMTP code to answer, 400–599. */
  readonly ErrorCode: number;
  /** Chance of answering it, 0–100 (%). */
  readonly Probability: number;
}

/**
 * The three triggers.
 *
 * @example
 * ```ts
 * const triggers: ChaosTriggers = {
 *   Sender: { ErrorCode: 451, Probability: 0 },
 *   Recipient: { ErrorCode: 550, Probability: 100 },
 *   Authentication: { ErrorCode: 535, Probability: 0 },
 * };
 * ```
 */
export interface ChaosTriggers {
  /** Fails MAIL FROM. */
  readonly Sender: ChaosTrigger;
  /** Fails RCPT TO. */
  readonly Recipient: ChaosTrigger;
  /** Fails AUTH. */
  readonly Authentication: ChaosTrigger;
}

const TRIGGERS = [
  ['Sender', 'MAIL', 451, 'sender'],
  ['Recipient', 'RCPT', 451, 'recipient'],
  ['Authentication', 'AUTH', 535, 'authentication'],
] as const satisfies readonly (readonly [keyof ChaosTriggers, FaultStage, number, string])[];

const TAG = 'chaos';

/** The chaos triggers of one capture server, applied to its fault plan. */
export class Chaos {
  readonly #faults: FaultPlan;
  #triggers: ChaosTriggers = {
    Sender: { ErrorCode: 451, Probability: 0 },
    Recipient: { ErrorCode: 451, Probability: 0 },
    Authentication: { ErrorCode: 535, Probability: 0 },
  };

  constructor(faults: FaultPlan) {
    this.#faults = faults;
  }

  get triggers(): ChaosTriggers {
    return this.#triggers;
  }

  /** Replaces the triggers from a PUT body; throws a RangeError naming a bad value. */
  set(body: unknown): ChaosTriggers {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new RangeError(
        'the body must be a JSON object such as {"Sender":{"ErrorCode":451,"Probability":50}}',
      );
    const input = body as Record<string, unknown>;
    const next: Record<string, ChaosTrigger> = {};
    for (const [key, , code] of TRIGGERS) {
      const given = (input[key] ?? {}) as Record<string, unknown>;
      const errorCode =
        given.ErrorCode === undefined || given.ErrorCode === 0 ? code : given.ErrorCode;
      const probability = given.Probability ?? 0;
      if (
        typeof errorCode !== 'number' ||
        !Number.isInteger(errorCode) ||
        errorCode < 400 ||
        errorCode > 599
      )
        throw new RangeError(`${key}: error code must be between 400 and 599`);
      if (
        typeof probability !== 'number' ||
        !Number.isInteger(probability) ||
        probability < 0 ||
        probability > 100
      )
        throw new RangeError(`${key}: probability must be between 0 and 100`);
      next[key] = { ErrorCode: errorCode, Probability: probability };
    }
    this.#triggers = next as unknown as ChaosTriggers;
    this.#faults.clear(TAG);
    for (const [key, stage, , what] of TRIGGERS) {
      const t = this.#triggers[key];
      if (t.Probability === 0) continue;
      this.#faults.add(
        stage,
        {
          kind: 'reply',
          reply: `${t.ErrorCode} ${defaultEnhanced(t.ErrorCode)} Chaos: ${what} failure injected by the capture server`,
        },
        { times: Number.POSITIVE_INFINITY, probability: t.Probability / 100 },
        TAG,
      );
    }
    return this.#triggers;
  }
}
