/**
 * Queue IDs: `[0-9A-Za-z]` only, sortable by arrival, unique across restarts and nodes.
 *
 * Layout: 9 base-62 digits of the arrival time in microseconds (strictly increasing
 * within a generator), then 5 base-62 digits naming the generator (random per process
 * unless a node id is given). The alphabet is in ASCII order, so IDs sort as strings.
 *
 * Postfix counterpart: long queue IDs (mail_queue.h, `enable_long_queue_ids`), which are
 * also time + uniqueness; Postern's come from Postern, not the store, so every store
 * gets the same IDs and a message keeps its ID when it moves.
 *
 * @module
 */

import { builtin } from './builtin.js';
import type { QueueId } from './types.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TIME_DIGITS = 9;
const NODE_DIGITS = 5;
const ALPHABET_CODES: readonly number[] = Array.from(ALPHABET, (c) => c.charCodeAt(0));

function base62(value: bigint, width: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(v % 62n)]! + out;
    v /= 62n;
  }
  return out;
}

/**
 * Whether a string has the shape of a Postern queue ID (safe as a file name).
 *
 * @example
 * ```ts
 * isQueueId('0Qx3c9Z1Ab3kF2'); // true
 * isQueueId('../etc'); // false
 * ```
 */
export function isQueueId(value: string): boolean {
  return /^[0-9A-Za-z]{6,40}$/.test(value);
}

/**
 * Makes queue IDs: sortable by arrival, unique across restarts and nodes, safe as file
 * names. Postfix counterpart: the long queue IDs of `enable_long_queue_ids`.
 *
 * @example
 * ```ts
 * const ids = new QueueIdGenerator();
 * const id = ids.next(); // '0Qx3c9Z1Ab3kF2'-style
 * ```
 */
export class QueueIdGenerator {
  /** The 5 characters naming this node in every ID. */
  readonly nodeTag: string;
  #last = 0n;
  readonly #nowMicros: () => bigint;
  /** The system clock is used: IDs are made with numbers (the last time in #lastNumber). */
  #numeric: boolean;
  #lastNumber = 0;
  /** Character codes of the next ID: the time digits, then the node tag's. */
  readonly #codes: number[];

  /**
   * @param nodeTag - 5 characters of `[0-9A-Za-z]` naming this node; random by default
   * @param nowMicros - clock in microseconds (tests pass their own)
   */
  constructor(nodeTag?: string, nowMicros?: () => bigint) {
    if (nodeTag !== undefined && !/^[0-9A-Za-z]{5}$/.test(nodeTag)) {
      throw new RangeError(
        `queue ID node tag "${nodeTag}" must be exactly 5 characters of [0-9A-Za-z]`,
      );
    }
    this.nodeTag =
      nodeTag ??
      base62(BigInt(`0x${builtin('crypto').randomBytes(5).toString('hex')}`), NODE_DIGITS);
    this.#numeric = nowMicros === undefined;
    this.#nowMicros =
      nowMicros ?? (() => BigInt(Date.now()) * 1000n + ((process.hrtime.bigint() / 1000n) % 1000n));
    this.#codes = new Array<number>(TIME_DIGITS).fill(0);
    for (let i = 0; i < this.nodeTag.length; i++) this.#codes.push(this.nodeTag.charCodeAt(i));
  }

  /** A new queue ID, greater than every one before it from this generator. */
  next(): QueueId {
    if (this.#numeric) {
      // The system clock in microseconds fits a double exactly (until the year 2255):
      // no BigInt arithmetic and one string per ID.
      let t = Date.now() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
      if (t <= this.#lastNumber) t = this.#lastNumber + 1;
      if (Number.isSafeInteger(t)) {
        this.#lastNumber = t;
        return this.#idOf(t);
      }
      this.#numeric = false;
      this.#last = BigInt(this.#lastNumber);
    }
    let t = this.#nowMicros();
    if (t <= this.#last) t = this.#last + 1n;
    this.#last = t;
    return base62(t, TIME_DIGITS) + this.nodeTag;
  }

  /** The ID for time `t`: its digits and the node tag as one string. */
  #idOf(t: number): QueueId {
    const codes = this.#codes;
    let v = t;
    for (let i = TIME_DIGITS - 1; i >= 0; i--) {
      const digit = v % 62;
      codes[i] = ALPHABET_CODES[digit]!;
      v = (v - digit) / 62;
    }
    return String.fromCharCode.apply(null, codes);
  }

  /** The arrival time (ms) encoded in an ID made by any generator. */
  static timeOf(id: QueueId): number {
    let v = 0n;
    for (const ch of id.slice(0, TIME_DIGITS)) v = v * 62n + BigInt(ALPHABET.indexOf(ch));
    return Number(v / 1000n);
  }
}
