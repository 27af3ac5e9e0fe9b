/**
 * Mutable<T>: T with its `readonly` modifiers dropped, for an object built field by field
 * (by assignment, which on hot paths costs less than conditional spreads) before it is
 * handed on as T.
 *
 * @module
 */

/**
 * T, writable.
 *
 * @example
 * ```ts
 * const r: Mutable<Recipient> = { id: 0, address, originalAddress: address };
 * if (orcpt !== undefined) r.orcpt = orcpt;
 * ```
 */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };
