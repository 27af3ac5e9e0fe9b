/**
 * Message summaries: the few facts about a queued message that the inspection views
 * (`postern queue shape`) and per-destination flushes need, kept on every index entry
 * so those answers never read a message file.
 *
 * Postfix counterpart: none directly — qshape(1) reads every queue file and flush(8)
 * keeps per-destination logs; Postern keeps the facts in the store's index instead.
 *
 * Memory: with hundreds of thousands of queued messages each byte per message counts.
 * The facts live in the entry itself (no object of their own), and equal domain lists
 * and senders are shared: a message to one domain points at that domain's one-element
 * list, which every other message to it shares.
 *
 * @module
 */

import type { Address, QueueId } from '../types.js';
import type { MessageRecord, QueueState, QueueStore, QueueSummary } from './types.js';

/** The summary facts an index entry carries; `arrivalTime` < 0 until known. */
export interface MessageFacts {
  arrivalTime: number;
  size: number;
  sender: Address;
  /** Domains of the pending recipients, each once (shared; never mutated). */
  domains: readonly string[];
  pending: number;
}

/** Facts of an entry whose record has not been read yet. */
export const UNKNOWN_FACTS: Readonly<MessageFacts> = Object.freeze({
  arrivalTime: -1,
  size: 0,
  sender: '',
  domains: Object.freeze([]) as readonly string[],
  pending: 0,
});

/**
 * A bounded table of shared values: cleared when it grows past `limit`, which costs
 * only sharing, never correctness.
 */
class Interned<V> {
  readonly #map = new Map<string, V>();
  constructor(
    readonly limit: number,
    readonly make: (key: string) => V,
  ) {}

  get(key: string): V {
    const known = this.#map.get(key);
    if (known !== undefined) return known;
    if (this.#map.size >= this.limit) this.#map.clear();
    const value = this.make(key);
    this.#map.set(key, value);
    return value;
  }
}

const singleDomain = new Interned<readonly string[]>(100_000, (d) => Object.freeze([d]));
const domainName = new Interned<string>(100_000, (d) => d);
const senders = new Interned<string>(50_000, (s) => s);

/** The lower-cased domain of an address (`''` when it has none). */
export function domainOf(address: Address): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/** Whether the entry's facts have been taken from its record. */
export function isSummarized(facts: MessageFacts): boolean {
  return facts.arrivalTime >= 0;
}

/** Sets an entry's facts from a record: domains of the recipients still pending. */
export function summarizeInto(facts: MessageFacts, record: MessageRecord): void {
  let first: string | undefined;
  let many: Set<string> | undefined;
  let pending = 0;
  for (const r of record.recipients) {
    if (r.state !== 'pending') continue;
    pending++;
    const domain = domainOf(r.address);
    if (first === undefined) first = domain;
    else if (domain !== first) {
      many ??= new Set([first]);
      many.add(domain);
    }
  }
  facts.arrivalTime = record.arrivalTime;
  facts.size = record.size;
  facts.sender = senders.get(record.sender);
  facts.domains = many
    ? Object.freeze([...many].map((d) => domainName.get(d)))
    : first === undefined
      ? UNKNOWN_FACTS.domains
      : singleDomain.get(first);
  facts.pending = pending;
}

/**
 * Visits the summaries of the messages in `states` through the store's forEachSummary
 * when it has one (no list of every message built), else through summaries().
 */
export async function visitSummaries(
  store: QueueStore,
  visit: (summary: QueueSummary) => void,
  options: { states?: readonly QueueState[] } = {},
): Promise<void> {
  if (store.forEachSummary) return store.forEachSummary(visit, options);
  for (const row of await store.summaries(options)) visit(row);
}

/** The queue IDs of the deferred messages with a pending recipient at `domain`. */
export async function deferredFor(store: QueueStore, domain: string): Promise<QueueId[]> {
  const ids: QueueId[] = [];
  await visitSummaries(
    store,
    (s) => {
      if (s.domains.includes(domain)) ids.push(s.queueId);
    },
    { states: ['deferred'] },
  );
  return ids;
}

/** The public row for an entry's facts. */
export function summaryRow(queueId: QueueId, state: QueueState, facts: MessageFacts): QueueSummary {
  return {
    queueId,
    state,
    arrivalTime: facts.arrivalTime,
    size: facts.size,
    sender: facts.sender,
    domains: facts.domains,
    pending: facts.pending,
  };
}
