/**
 * Handing new mail straight to this node's queue manager: a message committed while
 * the local queue manager is listening goes into `active` under a lease made out to
 * it, in the commit statement itself, and the next `claim()` hands it over from
 * memory (record and content as they were written) without a claim statement.
 *
 * Postfix counterpart: cleanup(8) notifying qmgr(8) of a new queue file, which qmgr
 * then moves from incoming to active; here the move is part of the commit.
 *
 * - Who: only while the store has listeners (a queue manager) and has seen a claim,
 *   whose owner and lease length the new leases copy; not for mail committed into
 *   hold; at most `MAX_WAITING` messages (and `MAX_BYTES` of content) waiting.
 * - Not taken: a message the queue manager has not taken within `HANDOFF_MS` (its
 *   window is full, or it stopped) goes back to `incoming` in one statement and the
 *   other nodes are told, so a busy node does not sit on mail its peers could send.
 * - Crash: a handed-off message is leased like any claimed one: a dead node's leases
 *   are taken over after nodeTimeoutMs.
 *
 * Does not do: decide when a claim must still ask the database (the store does: a
 * peer's announcement, a due deferral, a takeover), or I/O of its own.
 *
 * @module
 */

import type { QueueId } from '../../types.js';
import type { ClaimedMessage, Lease, MessageRecord } from '../types.js';
import type { CommitItem } from './postgres-store-commit.js';
import { envelopeOf } from './postgres-store-commit.js';

/** How long a handed-off message waits for the queue manager before it goes back. */
export const HANDOFF_MS = 250;
/** Most messages and content bytes waiting for the queue manager. */
const MAX_WAITING = 1000;
const MAX_BYTES = 16 * 1024 * 1024;

/** A message committed under a lease for the local queue manager, not yet taken. */
export interface Waiting {
  readonly claimed: ClaimedMessage;
  readonly content: Buffer | undefined;
  readonly since: number;
}

/** The handoff of new mail to the local queue manager; see the module header. */
export class Handoff {
  #owner: string | undefined;
  #leaseMs = 0;
  readonly #waiting = new Map<QueueId, Waiting>();
  #bytes = 0;
  #sequence = 0;
  readonly #prefix: string;

  /** `prefix` makes this store's handoff lease tokens unique. */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** Remembers who claims here (the queue manager's owner and lease length). */
  claimer(owner: string, leaseMs: number): void {
    this.#owner = owner;
    this.#leaseMs = leaseMs;
  }

  /** A lease for a message being committed, if it is to go straight to the queue manager. */
  lease(item: Omit<CommitItem, 'lease'>, listening: boolean, now: number): Lease | undefined {
    if (!listening || this.#owner === undefined || item.record.hold) return undefined;
    if (this.#waiting.size >= MAX_WAITING || this.#bytes >= MAX_BYTES) return undefined;
    return {
      queueId: item.queueId,
      owner: this.#owner,
      token: `${this.#prefix}.h${(this.#sequence++).toString(36)}`,
      expiresAt: now + this.#leaseMs,
    };
  }

  /** The message was committed under `lease`: it waits for the next claim. */
  committed(item: CommitItem, lease: Lease, now: number): void {
    const { record } = item;
    const whole = item.chunks <= 1 && item.writerToken === undefined;
    const content = whole ? (item.last?.data ?? Buffer.alloc(0)) : undefined;
    const stored: MessageRecord = {
      ...(envelopeOf(record) as Omit<MessageRecord, 'formatVersion' | 'queueId' | 'recipients'>),
      formatVersion: 1,
      queueId: item.queueId,
      recipients: record.recipients.map((r) => ({ ...r, state: 'pending' as const })),
    };
    this.#waiting.set(item.queueId, {
      claimed: { lease, record: stored, from: 'incoming' },
      content,
      since: now,
    });
    this.#bytes += content?.length ?? 0;
  }

  /** The lease tokens of the messages waiting now. */
  tokens(): string[] {
    return [...this.#waiting.values()].map((w) => w.claimed.lease.token);
  }

  /** Messages waiting now. */
  get size(): number {
    return this.#waiting.size;
  }

  /** Takes up to `limit` waiting messages leased to `owner`, oldest first. */
  take(owner: string, limit: number): Waiting[] {
    if (owner !== this.#owner || limit <= 0) return [];
    const out: Waiting[] = [];
    for (const [id, w] of this.#waiting) {
      if (out.length >= limit) break;
      out.push(w);
      this.#drop(id, w);
    }
    return out;
  }

  /** Takes every message that has waited since before `before` (to give back). */
  stale(before: number): Lease[] {
    const out: Lease[] = [];
    for (const [id, w] of this.#waiting) {
      if (w.since >= before) break;
      out.push(w.claimed.lease);
      this.#drop(id, w);
    }
    return out;
  }

  /** Takes everything waiting (the store closes). */
  drain(): Lease[] {
    return this.stale(Number.POSITIVE_INFINITY);
  }

  #drop(id: QueueId, w: Waiting): void {
    this.#waiting.delete(id);
    this.#bytes -= w.content?.length ?? 0;
  }
}
