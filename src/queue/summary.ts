/**
 * Message summaries: the few facts about a queued message that the inspection views
 * (`postern queue shape`) and per-destination flushes need, small enough to keep in
 * memory for every message so those answers never read a message file.
 *
 * Postfix counterpart: none directly — qshape(1) reads every queue file and flush(8)
 * keeps per-destination logs; Postern keeps one small summary per message in the
 * store's index instead.
 *
 * @module
 */

import type { Address, QueueId } from '../types.js';
import type { MessageRecord, QueueState, QueueSummary } from './types.js';

/** The stored part of a summary (the index adds ID and state). */
export interface MessageSummary {
  readonly arrivalTime: number;
  readonly size: number;
  readonly sender: Address;
  readonly domains: readonly string[];
  readonly pending: number;
}

/**
 * One copy of each domain string for the summaries of a large queue (2 000 domains
 * across 200 000 messages). Bounded: cleared when it grows past INTERN_LIMIT.
 */
const interned = new Map<string, string>();
const INTERN_LIMIT = 100_000;

function intern(value: string): string {
  const known = interned.get(value);
  if (known !== undefined) return known;
  if (interned.size >= INTERN_LIMIT) interned.clear();
  interned.set(value, value);
  return value;
}

/** The lower-cased domain of an address (`''` when it has none). */
export function domainOf(address: Address): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/** Summarises a record: domains of the recipients still pending, each once. */
export function summarize(record: MessageRecord): MessageSummary {
  const domains = new Set<string>();
  let pending = 0;
  for (const r of record.recipients) {
    if (r.state !== 'pending') continue;
    pending++;
    domains.add(intern(domainOf(r.address)));
  }
  return {
    arrivalTime: record.arrivalTime,
    size: record.size,
    sender: record.sender,
    domains: [...domains],
    pending,
  };
}

/** The public row for a summary. */
export function summaryRow(
  queueId: QueueId,
  state: QueueState,
  summary: MessageSummary,
): QueueSummary {
  return { queueId, state, ...summary };
}
