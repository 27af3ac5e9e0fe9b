/**
 * What a PostgresQueueStore remembers about the leases it has handed out, from the
 * claim until the queue manager releases or removes the message: the recipients
 * (to check outcomes without a query), the `sent` marks not yet written, and the
 * content that came with the claim.
 *
 * Postfix counterpart: qmgr(8)'s in-memory active queue entry (qmgr_message.c), which
 * also holds what it read of the queue file while the message is active.
 *
 * - Lazy `sent` marks: an outcome of `sent` is kept here and written only with the
 *   message's next durable write (a bounce or deferral, the release), by the periodic
 *   flush once it is `LAZY_MS` old, or at close; a removal makes it moot. A crash loses
 *   at most those marks, so a recipient delivered in the last moments before a crash
 *   may be delivered again, which at-least-once allows (the QueueStore contract).
 * - Content: a message that came whole with its claim is read from memory by
 *   `openContent()` as often as the delivery agents ask, within `budget` bytes for all
 *   held messages together; past it, messages are read from the database.
 * - Tokens: the tokens of a claim in flight are known before its answer comes, so the
 *   stray-lease sweep after an outage (which hands back this session's leases that no
 *   one here holds) cannot take a message from under a claim.
 *
 * Does not do: any I/O; the store writes.
 *
 * @module
 */

import { LeaseLostError, QueueStoreError } from '../../errors.js';
import type { QueueId, RecipientId } from '../../types.js';
import type { ClaimedMessage, Lease, RecipientOutcome } from '../types.js';

/** How long a `sent` mark may stay unwritten while its message is still active. */
export const LAZY_MS = 1000;

/** One lease this store has handed out and not yet seen released or removed. */
export interface HeldLease {
  lease: Lease;
  readonly recipients: ReadonlySet<RecipientId>;
  /** `sent` outcomes not yet written, in the order recorded. */
  lazy: RecipientOutcome[];
  /** When the oldest of them was recorded (ms, store clock). */
  lazySince: number;
  readonly content: Buffer | undefined;
}

/** The leases of one store; see the module header. */
export class HeldLeases {
  readonly #budget: number;
  readonly #byToken = new Map<string, HeldLease>();
  readonly #content = new Map<QueueId, Buffer>();
  readonly #claiming = new Set<string>();
  #contentBytes = 0;

  constructor(contentBudget: number) {
    this.#budget = contentBudget;
  }

  /** Bytes of content the next claim may bring inline. */
  get inlineRoom(): number {
    return Math.max(0, this.#budget - this.#contentBytes);
  }

  /** Leases held now. */
  get size(): number {
    return this.#byToken.size;
  }

  /** Notes the tokens of a claim about to be sent; `done` forgets them. */
  claiming(tokens: readonly string[]): () => void {
    for (const t of tokens) this.#claiming.add(t);
    return () => {
      for (const t of tokens) this.#claiming.delete(t);
    };
  }

  /** Remembers a claimed message (and its content if it came inline and fits). */
  add(claimed: ClaimedMessage, content: Buffer | undefined): void {
    const { lease, record } = claimed;
    const keep = content !== undefined && this.#contentBytes + content.length <= this.#budget;
    if (keep) {
      this.#content.set(lease.queueId, content);
      this.#contentBytes += content.length;
    }
    this.#byToken.set(lease.token, {
      lease,
      recipients: new Set(record.recipients.map((r) => r.id)),
      lazy: [],
      lazySince: 0,
      content: keep ? content : undefined,
    });
  }

  /** The entry of `lease`, if this store handed it out and it is still held. */
  get(lease: Lease): HeldLease | undefined {
    const held = this.#byToken.get(lease.token);
    return held && held.lease.queueId === lease.queueId ? held : undefined;
  }

  /** Forgets `lease` (released, removed or lost); resolves with what was held. */
  take(lease: Lease): HeldLease | undefined {
    const held = this.get(lease);
    if (!held) return undefined;
    this.#byToken.delete(lease.token);
    if (held.content && this.#content.get(lease.queueId) === held.content) {
      this.#content.delete(lease.queueId);
      this.#contentBytes -= held.content.length;
    }
    return held;
  }

  /**
   * Forgets the content of messages a queue operation took away (deleted, held,
   * requeued): their lease is revoked, and a deleted message's content is gone.
   */
  dropContent(queueIds: readonly QueueId[]): void {
    for (const id of queueIds) {
      const content = this.#content.get(id);
      if (!content) continue;
      this.#content.delete(id);
      this.#contentBytes -= content.length;
    }
  }

  /** The content of a held message, when it came with the claim. */
  content(queueId: QueueId): Buffer | undefined {
    return this.#content.get(queueId);
  }

  /** Every token this store may still write under (held, or in a claim in flight). */
  tokens(): string[] {
    return [...this.#byToken.keys(), ...this.#claiming];
  }

  /** Every held lease. */
  all(): IterableIterator<HeldLease> {
    return this.#byToken.values();
  }

  /** Forgets everything (the store closed). */
  clear(): void {
    this.#byToken.clear();
    this.#content.clear();
    this.#contentBytes = 0;
  }
}

/**
 * The checks a write under `lease` makes before any I/O: the lease has not expired
 * by the store's clock, and every outcome names a recipient of the message.
 */
export function checkOutcomes(
  held: HeldLease,
  outcomes: readonly RecipientOutcome[],
  now: number,
): void {
  if (held.lease.expiresAt <= now) throw new LeaseLostError(held.lease.queueId);
  if (outcomes.some((o) => !held.recipients.has(o.recipientId))) {
    throw new QueueStoreError(
      'an outcome names a recipient the message does not have; outcomes were not recorded',
      held.lease.queueId,
    );
  }
}
