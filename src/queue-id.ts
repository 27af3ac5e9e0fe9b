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

import { randomBytes } from 'node:crypto';
import type { QueueId } from './types.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TIME_DIGITS = 9;
const NODE_DIGITS = 5;

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
    this.nodeTag = nodeTag ?? base62(BigInt(`0x${randomBytes(5).toString('hex')}`), NODE_DIGITS);
    this.#nowMicros =
      nowMicros ?? (() => BigInt(Date.now()) * 1000n + ((process.hrtime.bigint() / 1000n) % 1000n));
  }

  /** A new queue ID, greater than every one before it from this generator. */
  next(): QueueId {
    let t = this.#nowMicros();
    if (t <= this.#last) t = this.#last + 1n;
    this.#last = t;
    return base62(t, TIME_DIGITS) + this.nodeTag;
  }

  /** The arrival time (ms) encoded in an ID made by any generator. */
  static timeOf(id: QueueId): number {
    let v = 0n;
    for (const ch of id.slice(0, TIME_DIGITS)) v = v * 62n + BigInt(ALPHABET.indexOf(ch));
    return Number(v / 1000n);
  }
}
