/**
 * PostgresQueueStore's writes under leases, as the queue manager makes them: renew,
 * record outcomes, release, remove. It decides what needs a round trip now, gathers
 * the rest into batches, and keeps the queue consistent across a database outage.
 *
 * Postfix counterpart: qmgr(8) updating the queue file as deliveries end
 * (qmgr_active_done()), with the file system's write-back standing in for the lazy
 * `sent` marks.
 *
 * - Outcomes: `bounced` and `deferred` are durable before `recordOutcomes` resolves
 *   (with any lazy `sent` marks of the message); `sent` alone is kept in memory
 *   (postgres-store-leases.ts) and written within `LAZY_MS` if the message is still
 *   active, with its release, or never if it is removed first. Outcome writes,
 *   releases and removals of many messages go out one statement each per batch
 *   (StatementBatcher): outcomes and releases wait for no more than one round trip
 *   already in flight; a removal, which nobody waits on, gathers others for up to
 *   `REMOVE_GATHER_MS` (a crash in that window only means those messages are
 *   delivered again), and rides along with the next group commit if one goes out
 *   first (`ridingRemovals`).
 * - Outage: a release or removal that fails because the database cannot be reached
 *   is put off, not failed: it is done when the database answers again (fenced by the
 *   lease token alone, since only a takeover can make the message someone else's),
 *   and the call resolves, so the queue manager moves on and logs nothing per
 *   message. Then every message this session holds under a lease nobody here knows of
 *   (a claim whose answer was lost) goes back to the queue. A renewal that cannot
 *   reach the database keeps the lease as it was (still valid until it expires); a
 *   durable outcome that cannot be written fails the call, as it must.
 *
 * Does not do: claim (postgres-store-claim.ts), or judge what an outcome does to a
 * recipient (postgres-store-outcomes.ts and lease.ts).
 *
 * @module
 */

import { LeaseLostError } from '../../errors.js';
import type { ComponentLogger } from '../../log.js';
import { asError } from '../../util/error-message.js';
import type { ClaimedMessage, Lease, RecipientOutcome, ReleaseTarget } from '../types.js';
import { StatementBatcher } from './postgres-store-batch.js';
import type { ClaimedRow } from './postgres-store-claim.js';
import type { RidingRemovals } from './postgres-store-commit.js';
import { isConnectionError, type QueueDb } from './postgres-store-db.js';
import { checkOutcomes, type HeldLease, HeldLeases, LAZY_MS } from './postgres-store-leases.js';
import type { LeaseWriter, OutcomeWrite, ReleaseWrite } from './postgres-store-outcomes.js';

/** What the writes need from the store. */
export interface LeaseWritesOptions {
  readonly db: QueueDb;
  readonly writer: LeaseWriter;
  readonly session: string;
  /** The store's clock. */
  readonly now: () => number;
  readonly log: ComponentLogger;
  /** Bytes of claimed content kept in memory for all held messages. */
  readonly contentBudget: number;
}

/** A write put off until the database answers again. */
type Parked =
  | { readonly kind: 'remove'; readonly lease: Lease }
  | { readonly kind: 'release'; readonly item: ReleaseWrite };

/** Most messages per batched statement. */
const BATCH = 200;
/** How long a removal waits for others to go in the same statement. */
const REMOVE_GATHER_MS = 50;

/** The store's writes under leases; see the module header. */
export class LeaseWrites {
  readonly held: HeldLeases;
  readonly #o: LeaseWritesOptions;
  readonly #outcomes: StatementBatcher<OutcomeWrite, undefined>;
  readonly #releases: StatementBatcher<ReleaseWrite, undefined>;
  readonly #removes: StatementBatcher<Lease, undefined>;
  #parked: Parked[] = [];
  #lazyTimer: NodeJS.Timeout | undefined;

  constructor(options: LeaseWritesOptions) {
    this.#o = options;
    this.held = new HeldLeases(options.contentBudget);
    const w = options.writer;
    const now = () => options.now();
    this.#outcomes = new StatementBatcher({
      run: (items) => w.writeOutcomes(items, now()),
      maxItems: BATCH,
    });
    this.#releases = new StatementBatcher({
      run: (items) => w.release(items, now()),
      maxItems: BATCH,
    });
    this.#removes = new StatementBatcher({
      run: (items) => w.remove(items, now()),
      maxItems: BATCH,
      // The mail is delivered: a removal can wait a moment for others to share its statement.
      gatherMs: REMOVE_GATHER_MS,
    });
  }

  /** Remembers what a claim brought and hands the messages to the caller. */
  claimed(rows: readonly ClaimedRow[]): ClaimedMessage[] {
    return rows.map((row) => {
      this.held.add(row.message, row.content);
      return row.message;
    });
  }

  async renew(lease: Lease, expiresAt: number): Promise<Lease> {
    const held = this.held.get(lease);
    try {
      const renewed = await this.#o.writer.renew(lease, expiresAt);
      if (held) held.lease = renewed;
      return renewed;
    } catch (err) {
      // Unreachable is not lost: the lease stands until it expires; the next sweep retries.
      if (isConnectionError(err) && lease.expiresAt > this.#o.now()) return lease;
      throw err;
    }
  }

  async recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    const held = this.held.get(lease);
    if (!held) {
      await this.#o.writer.recordOutcomes(lease, outcomes);
      return;
    }
    checkOutcomes(held, outcomes, this.#o.now());
    if (outcomes.every((o) => o.outcome.status === 'sent')) {
      if (held.lazy.length === 0) held.lazySince = this.#o.now();
      held.lazy.push(...outcomes);
      this.#startLazyTimer();
      return;
    }
    await this.#writeDurably(held, outcomes);
  }

  /** Writes `outcomes` and the lazy marks of `held` in the next outcome batch. */
  async #writeDurably(held: HeldLease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    const lazy = held.lazy;
    held.lazy = [];
    try {
      await this.#outcomes.submit({ lease: held.lease, outcomes: [...lazy, ...outcomes] });
    } catch (err) {
      // Not written: the lazy marks stay lazy (outcomes recorded since come after them).
      held.lazy = [...lazy, ...held.lazy];
      throw err;
    }
  }

  async release(lease: Lease, target: ReleaseTarget): Promise<void> {
    const held = this.held.take(lease);
    if (held && held.lease.expiresAt <= this.#o.now()) throw new LeaseLostError(lease.queueId);
    const item: ReleaseWrite = { lease, target, outcomes: held?.lazy ?? [] };
    try {
      await this.#releases.submit(item);
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      this.#parked.push({ kind: 'release', item });
    }
  }

  async remove(lease: Lease): Promise<void> {
    const held = this.held.take(lease);
    if (held && held.lease.expiresAt <= this.#o.now()) throw new LeaseLostError(lease.queueId);
    try {
      await this.#removes.submit(lease);
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      this.#parked.push({ kind: 'remove', lease });
    }
  }

  /**
   * Removals waiting for their statement, for the next group commit to carry
   * (postgres-store-commit.ts); undefined when none wait.
   */
  ridingRemovals(): RidingRemovals | undefined {
    const taken = this.#removes.takeWaiting(BATCH);
    if (!taken) return undefined;
    const now = this.#o.now();
    const leases = taken.items;
    return {
      leases,
      now,
      settle: taken.settle,
      alone: () => {
        this.#o.writer.remove(leases, now).then(taken.settle, (err: unknown) => {
          taken.settle(asError(err));
        });
      },
    };
  }

  /** Writes put off during an outage, waiting for the database. */
  get parked(): number {
    return this.#parked.length;
  }

  /**
   * After an outage: does the writes put off, then hands back the messages this
   * session holds under leases nobody here knows of. Resolves with how many messages
   * went back to the queue; a failure leaves the rest for the next recovery.
   */
  async recover(
    session: string,
    alsoKeep: readonly string[] = [],
  ): Promise<{ done: number; returned: number }> {
    const done = await this.#runParked();
    const returned = await this.#o.writer.returnStrays(session, [
      ...this.held.tokens(),
      ...alsoKeep,
    ]);
    return { done, returned };
  }

  async #runParked(): Promise<number> {
    const parked = this.#parked;
    this.#parked = [];
    const removes = parked.flatMap((p) => (p.kind === 'remove' ? [p.lease] : []));
    const releases = parked.flatMap((p) => (p.kind === 'release' ? [p.item] : []));
    try {
      for (let i = 0; i < removes.length; i += BATCH)
        await this.#o.writer.remove(removes.slice(i, i + BATCH), null);
      for (let i = 0; i < releases.length; i += BATCH)
        await this.#o.writer.release(releases.slice(i, i + BATCH), null);
    } catch (err) {
      // Down again: keep them all (a write done twice changes nothing the second time).
      this.#parked = [...parked, ...this.#parked];
      throw err;
    }
    return parked.length;
  }

  #startLazyTimer(): void {
    if (this.#lazyTimer) return;
    this.#lazyTimer = setTimeout(() => {
      this.#lazyTimer = undefined;
      void this.#flushLazy(false);
    }, LAZY_MS);
    this.#lazyTimer.unref();
  }

  /** Writes the lazy marks older than LAZY_MS (all of them when `all`), in batches. */
  async #flushLazy(all: boolean): Promise<void> {
    const due = this.#o.now() - LAZY_MS;
    const writes: Promise<void>[] = [];
    let waiting = false;
    for (const held of this.held.all()) {
      if (held.lazy.length === 0) continue;
      if (!all && held.lazySince > due) {
        waiting = true;
        continue;
      }
      writes.push(
        this.#writeDurably(held, []).catch((err: unknown) => {
          // Lost lease: the marks are moot. Otherwise they wait for the next flush.
          if (err instanceof LeaseLostError) held.lazy = [];
        }),
      );
    }
    await Promise.all(writes);
    if (waiting || (!all && [...this.held.all()].some((h) => h.lazy.length > 0)))
      this.#startLazyTimer();
  }

  /** At close: writes every lazy mark and every write put off. */
  async flush(): Promise<void> {
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = undefined;
    await this.#flushLazy(true);
    if (this.#parked.length > 0) await this.#runParked().catch(() => undefined);
  }

  /** Forgets every lease (the store closed). */
  close(): void {
    if (this.#lazyTimer) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = undefined;
    this.held.clear();
  }
}
