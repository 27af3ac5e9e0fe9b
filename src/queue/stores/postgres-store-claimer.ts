/**
 * How a PostgresQueueStore answers `claim()`: new mail handed off to this node's
 * queue manager comes from memory (postgres-store-handoff.ts); the database is asked
 * (postgres-store-claim.ts) when there is no such mail, or when something else may be
 * claimable — a peer announced mail, a heartbeat found a lease to take over, a
 * deferral came due, a queue operation, the database came back.
 *
 * Postfix counterpart: qmgr(8) scanning the incoming queue when cleanup(8) triggers it,
 * and the deferred queue when its timer says so.
 *
 * It also remembers the earliest deferred due time the last database claim (or query)
 * saw, which the queue manager asks for after every claim pass, so that costs a round
 * trip at most once a second; and it gives back to the queue the
 * handed-off mail the queue manager did not take in time.
 *
 * Does not do: write under leases (postgres-store-writes.ts).
 *
 * @module
 */

import { newLeaseToken } from '../lease.js';
import type { ClaimedMessage, ClaimOptions, Lease } from '../types.js';
import { claimMessages } from './postgres-store-claim.js';
import type { CommitItem } from './postgres-store-commit.js';
import type { QueueDb } from './postgres-store-db.js';
import { HANDOFF_MS, Handoff } from './postgres-store-handoff.js';
import type { Announcer } from './postgres-store-notify.js';
import type { LeaseWriter } from './postgres-store-outcomes.js';
import type { LeaseWrites } from './postgres-store-writes.js';

/** A message of one chunk up to this size comes with its claim. */
const INLINE_MAX = 64 * 1024;
/** How long the earliest due time learnt with a claim stands in for a query. */
const DUE_FRESH_MS = 1000;

/** What claiming needs from the store. */
export interface ClaimerOptions {
  readonly db: QueueDb;
  readonly schema: string;
  readonly session: string;
  readonly nodeTimeoutMs: number;
  readonly writes: LeaseWrites;
  readonly writer: LeaseWriter;
  readonly announcer: Announcer;
  /** The store's clock. */
  readonly now: () => number;
  /** Calls this node's onAvailable listeners. */
  readonly wake: () => void;
}

/** The store's claims; see the module header. */
export class Claimer {
  readonly #o: ClaimerOptions;
  readonly #handoff = new Handoff(newLeaseToken());
  #dbWanted = true;
  #nextDue: { at: number | undefined; seen: number } | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ClaimerOptions) {
    this.#o = options;
  }

  /** Mail other than this node's handed-off mail may be claimable: ask the database next. */
  wanted(): void {
    this.#dbWanted = true;
  }

  /** Tokens of handed-off leases nobody has taken yet (they are this node's). */
  waitingTokens(): string[] {
    return this.#handoff.tokens();
  }

  /** The commit of `item`, under a lease for the local queue manager when it listens. */
  prepare(item: CommitItem, listening: boolean): CommitItem {
    const lease = this.#handoff.lease(item, listening, this.#o.now());
    return lease ? { ...item, lease } : item;
  }

  /** `item` is committed: handed-off mail waits for the next claim. Says whether it was. */
  committed(item: CommitItem): boolean {
    if (!item.lease) {
      if (!item.record.hold) this.#dbWanted = true;
      return false;
    }
    this.#handoff.committed(item, item.lease, this.#o.now());
    this.#startTimer();
    return true;
  }

  async claim(options: ClaimOptions): Promise<ClaimedMessage[]> {
    const { writes } = this.#o;
    this.#handoff.claimer(options.owner, options.leaseMs);
    const handed = writes.claimed(
      this.#handoff
        .take(options.owner, options.limit)
        .map((w) => ({ message: w.claimed, content: w.content })),
    );
    const room = options.limit - handed.length;
    const due = this.#nextDue?.at !== undefined && this.#nextDue.at <= options.now;
    if (room <= 0) return handed;
    if (handed.length > 0 && !this.#dbWanted && !due && !options.ignoreDueTime) return handed;
    this.#dbWanted = false;
    // One random prefix per claim: unique tokens without a random draw per message.
    const prefix = newLeaseToken();
    const tokens = Array.from({ length: room }, (_, i) => `${prefix}.${i.toString(36)}`);
    const forget = writes.held.claiming(tokens);
    try {
      const { rows, nextDue } = await claimMessages(
        {
          db: this.#o.db,
          schema: this.#o.schema,
          session: this.#o.session,
          nodeTimeoutMs: this.#o.nodeTimeoutMs,
          inlineMax: INLINE_MAX,
          inlineBudget: writes.held.inlineRoom,
        },
        { ...options, limit: room },
        tokens,
      );
      this.#nextDue = { at: nextDue, seen: Date.now() };
      const claimed = writes.claimed(rows);
      this.#o.announcer.claimed(claimed.map((c) => c.record.queueId));
      return [...handed, ...claimed];
    } catch (err) {
      this.#dbWanted = true;
      throw err;
    } finally {
      forget();
    }
  }

  /**
   * The earliest deferred due time as the last claim saw it (lowered by this node's
   * releases since), or undefined when that is too old to stand in for a query.
   */
  nextDue(): { at: number | undefined } | undefined {
    const next = this.#nextDue;
    return next && Date.now() - next.seen < DUE_FRESH_MS ? next : undefined;
  }

  /** The earliest due time from a query: it stands in for the next DUE_FRESH_MS. */
  learnt(at: number | undefined): void {
    this.#nextDue = { at, seen: Date.now() };
  }

  /** A message went back to `deferred` due at `dueAt`, or mail was made due now (undefined). */
  deferred(dueAt: number | undefined): void {
    if (dueAt === undefined) {
      this.#nextDue = undefined;
      this.#dbWanted = true;
      return;
    }
    const next = this.#nextDue;
    if (next && (next.at === undefined || dueAt < next.at)) next.at = dueAt;
    if (dueAt <= this.#o.now()) this.#dbWanted = true;
  }

  #startTimer(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#giveBack();
    }, HANDOFF_MS);
    this.#timer.unref();
  }

  /** Handed-off mail the queue manager did not take goes back to the queue, for anyone. */
  async #giveBack(): Promise<void> {
    const stale = this.#handoff.stale(this.#o.now() - HANDOFF_MS + 1);
    if (this.#handoff.size > 0) this.#startTimer();
    if (stale.length === 0) return;
    // If this fails, the leases are this session's and nobody's: the recovery after the
    // outage, or a takeover, hands them back.
    await this.#o.writer.unlease(stale).catch(() => undefined);
    this.#dbWanted = true;
    this.#o.wake();
    this.#o.announcer.announce();
  }

  /** Stops; resolves with the handed-off leases nobody took (the store gives them back). */
  close(): Lease[] {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#handoff.drain();
  }
}
