/**
 * Fault injection for the test MTA: make an SMTP stage answer a chosen reply, wait, or
 * hang up — for the next N times, for one recipient, or with a probability.
 *
 * Built on the receiver's own extension points: one restriction function per stage
 * (client, helo, sender, recipient, data, end-of-data) with `smtpdDelayReject` off, so
 * each stage answers at its own command, exactly as a Postfix access table would; and
 * the receiver's CommandCheck for STARTTLS and AUTH, which no restriction list covers.
 *
 * A probability is drawn from Math.random, or from a small seeded generator
 * (mulberry32) when the test gives a seed, so a flaky-network test can be replayed.
 *
 * @module
 */

import type {
  CommandCheck,
  RestrictionFunction,
  RestrictionRequest,
  RestrictionStage,
} from '../receive/smtpd-restriction-types.js';
import { SmtpReply } from '../smtp-reply.js';

/**
 * SMTP stages a fault can hit. `DATA-END` is the reply after the final dot; `STARTTLS`
 * and `AUTH` answer those commands (whether or not the server offers them).
 *
 * @example
 * ```ts
 * mta.failNext('DATA-END' satisfies FaultStage, '452 4.3.1 Insufficient system storage');
 * mta.failNext('STARTTLS', '454 4.7.0 TLS not available due to local problem');
 * ```
 */
export type FaultStage =
  | 'CONNECT'
  | 'HELO'
  | 'STARTTLS'
  | 'AUTH'
  | 'MAIL'
  | 'RCPT'
  | 'DATA'
  | 'DATA-END';

/**
 * Which occurrences a fault applies to.
 *
 * @example
 * ```ts
 * mta.failNext('RCPT', '450 4.2.0 try later', { recipient: 'flaky@example.com', times: 3, probability: 0.5 } satisfies FaultOptions);
 * ```
 */
export interface FaultOptions {
  /** How many times it fires (`Infinity`: until clearFaults()). @default 1 */
  readonly times?: number;
  /** Only for this recipient (RCPT stage). */
  readonly recipient?: string;
  /** Fires with this probability (0..1) each time it could. @default 1 */
  readonly probability?: number;
}

export type Effect =
  | { readonly kind: 'reply'; readonly reply: string }
  | { readonly kind: 'delay'; readonly ms: number };

interface Fault {
  readonly stage: FaultStage;
  readonly effect: Effect;
  readonly recipient: string | undefined;
  readonly probability: number;
  /** Set for faults another component owns (the capture server's chaos triggers). */
  readonly tag: string | undefined;
  left: number;
}

/** The restriction stage behind each fault stage; STARTTLS and AUTH use the CommandCheck. */
export const STAGE_OF: Readonly<Partial<Record<FaultStage, RestrictionStage>>> = {
  CONNECT: 'client',
  HELO: 'helo',
  MAIL: 'sender',
  RCPT: 'recipient',
  DATA: 'data',
  'DATA-END': 'end-of-data',
};

/** The commands whose faults the CommandCheck applies. */
const COMMAND_STAGES: ReadonlySet<string> = new Set<FaultStage>(['STARTTLS', 'AUTH']);

const STAGES: readonly FaultStage[] = [
  'CONNECT',
  'HELO',
  'STARTTLS',
  'AUTH',
  'MAIL',
  'RCPT',
  'DATA',
  'DATA-END',
];

/** mulberry32: a small, fast generator of numbers in [0, 1) from a 32-bit seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultPlan {
  readonly #faults: Fault[] = [];
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  add(stage: FaultStage, effect: Effect, options: FaultOptions = {}, tag?: string): void {
    if (!STAGES.includes(stage)) {
      throw new RangeError(`unknown SMTP stage "${stage}"; use one of ${STAGES.join(', ')}`);
    }
    const times = options.times ?? 1;
    if (!(times >= 1) || (times !== Infinity && !Number.isInteger(times)))
      throw new RangeError(`times must be a whole number of at least 1 or Infinity; got ${times}`);
    const probability = options.probability ?? 1;
    if (!(probability >= 0 && probability <= 1))
      throw new RangeError(`probability must be between 0 and 1; got ${probability}`);
    if (effect.kind === 'delay' && !(effect.ms >= 0 && Number.isFinite(effect.ms)))
      throw new RangeError(`a delay must be a number of milliseconds; got ${effect.ms}`);
    if (effect.kind === 'reply' && !/^[45]\d\d(\s|$)/.test(effect.reply)) {
      throw new RangeError(
        `a fault reply must start with a 4xx or 5xx code, e.g. "550 5.1.1 no such user"; got "${effect.reply}"`,
      );
    }
    this.#faults.push({
      stage,
      effect,
      recipient: options.recipient?.toLowerCase(),
      probability,
      tag,
      left: times,
    });
  }

  /** Removes every fault not yet used, or only those added with `tag`. */
  clear(tag?: string): void {
    for (let i = this.#faults.length - 1; i >= 0; i--)
      if (tag === undefined || this.#faults[i]!.tag === tag) this.#faults.splice(i, 1);
  }

  /** The restriction function for one stage. */
  hook(stage: FaultStage): RestrictionFunction {
    return (request: RestrictionRequest) => this.#fire(stage, request.recipient);
  }

  /** The receiver's CommandCheck: the STARTTLS and AUTH stages. */
  readonly commandCheck: CommandCheck = (command) =>
    COMMAND_STAGES.has(command.verb) ? this.#fire(command.verb as FaultStage) : undefined;

  async #fire(stage: FaultStage, recipient?: string): Promise<SmtpReply | undefined> {
    for (const fault of this.#faults) {
      if (fault.stage !== stage || fault.left <= 0) continue;
      if (fault.recipient !== undefined && recipient?.toLowerCase() !== fault.recipient) continue;
      if (this.#random() >= fault.probability) continue;
      fault.left--;
      const effect = fault.effect;
      if (effect.kind === 'delay') {
        await new Promise((r) => setTimeout(r, effect.ms));
        return undefined;
      }
      // A reply object is sent as it is, without access(5)'s "<addr>: ... rejected:" prefix.
      return SmtpReply.parse(effect.reply);
    }
    return undefined;
  }
}
