/**
 * PostgresQueueStore writes under a lease: renew, per-recipient outcomes, release and
 * remove. Each is one SQL statement, hence one transaction whose COMMIT is the
 * durability point, and each is fenced: the lease token, the `active` state and an
 * unexpired lease (by the store's clock) are in the WHERE clause of the statement that
 * changes the message row, so a node whose lease was taken over or revoked changes
 * nothing and gets LeaseLostError.
 *
 * Postfix counterpart: qmgr(8) and the delivery agents marking recipients done in the
 * queue file (the `R` → done records), qmgr_active_done() moving the file on.
 *
 * Every outcome is committed as it happens (also `sent`, which the interface lets a
 * store keep lazily), so a node that takes a message over retries only recipients that
 * were not final.
 *
 * Does not do: decide what an outcome does to a recipient beyond the shared rules of
 * lease.ts (a final state is never undone; a later `bounced` + `dsnSent` only marks
 * the notice as committed).
 *
 * @module
 */

import type { Pool } from 'pg';
import { LeaseLostError, QueueStoreError } from '../errors.js';
import type { Lease, RecipientOutcome, ReleaseTarget, StoredOutcome } from './types.js';

/** The SQL condition that a lease ($1 queue ID, $2 token, $3 now) is still good. */
const FENCE = `queue_id = $1 AND lease_token = $2 AND state = 'active' AND lease_expires > $3`;

/** What applying a recipient's outcomes of one call in order amounts to. */
interface Effect {
  readonly id: number;
  /** For a pending recipient: its new state and last outcome. */
  readonly state: 'pending' | 'sent' | 'bounced';
  readonly last: StoredOutcome;
  /** For a bounced recipient: some outcome marked its notice as committed. */
  readonly dsnSent: boolean;
}

/**
 * Folds the outcomes of one call per recipient, as applyOutcomes would apply them one
 * after the other: for a pending recipient the first final outcome wins (or the last
 * deferral); a bounced recipient only takes a `dsnSent` mark.
 */
export function foldOutcomes(outcomes: readonly RecipientOutcome[]): Effect[] {
  const byId = new Map<number, RecipientOutcome[]>();
  for (const o of outcomes) {
    const list = byId.get(o.recipientId);
    if (list) list.push(o);
    else byId.set(o.recipientId, [o]);
  }
  const effects: Effect[] = [];
  for (const [id, list] of byId) {
    const finalAt = list.findIndex((o) => o.outcome.status !== 'deferred');
    const chosen = finalAt >= 0 ? list[finalAt]!.outcome : list[list.length - 1]!.outcome;
    const marked = (from: number) =>
      list.slice(from).some((o) => o.outcome.status === 'bounced' && o.outcome.dsnSent === true);
    let last = chosen;
    if (chosen.status === 'bounced' && !chosen.dsnSent && marked(finalAt + 1))
      last = { ...chosen, dsnSent: true };
    effects.push({
      id,
      state: chosen.status === 'deferred' ? 'pending' : chosen.status,
      last,
      dsnSent: marked(0),
    });
  }
  return effects;
}

/** Writes under leases for one store. */
export class LeaseWriter {
  readonly #pool: Pool;
  readonly #s: string;
  readonly #now: () => number;

  constructor(pool: Pool, schema: string, now: () => number) {
    this.#pool = pool;
    this.#s = schema;
    this.#now = now;
  }

  async renew(lease: Lease, expiresAt: number): Promise<Lease> {
    const { rows } = await this.#pool.query(
      `UPDATE ${this.#s}.messages SET lease_expires = $4 WHERE ${FENCE} RETURNING queue_id`,
      [lease.queueId, lease.token, this.#now(), expiresAt],
    );
    if (rows.length === 0) throw new LeaseLostError(lease.queueId);
    return { ...lease, expiresAt };
  }

  async recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    const effects = foldOutcomes(outcomes);
    const s = this.#s;
    // One statement: the fence locks the message row; the recipients are updated only
    // if every one named exists, so a caller bug records nothing.
    const { rows } = await this.#pool.query(
      `WITH m AS (
         SELECT queue_id FROM ${s}.messages WHERE ${FENCE} FOR UPDATE),
       known AS (
         SELECT count(*) AS n FROM ${s}.recipients r, m
         WHERE r.queue_id = m.queue_id AND r.id = ANY($4::int[])),
       u AS (
         UPDATE ${s}.recipients r SET
           state = CASE WHEN r.state = 'pending' THEN e.state ELSE r.state END,
           last = CASE
             WHEN r.state = 'pending' THEN e.last
             WHEN r.state = 'bounced' AND e.dsn AND r.last IS NOT NULL
               THEN jsonb_set(r.last, '{dsnSent}', 'true')
             ELSE r.last END
         FROM m, known, unnest($4::int[], $5::text[], $6::jsonb[], $7::boolean[])
           AS e(id, state, last, dsn)
         WHERE r.queue_id = m.queue_id AND r.id = e.id AND known.n = cardinality($4::int[])
         RETURNING r.id)
       SELECT (SELECT count(*) FROM m) AS leased, (SELECT n FROM known) AS known`,
      [
        lease.queueId,
        lease.token,
        this.#now(),
        effects.map((e) => e.id),
        effects.map((e) => e.state),
        effects.map((e) => JSON.stringify(e.last)),
        effects.map((e) => e.dsnSent),
      ],
    );
    const row = rows[0] as { leased: string; known: string | null } | undefined;
    if (!row || Number(row.leased) === 0) throw new LeaseLostError(lease.queueId);
    if (Number(row.known ?? 0) !== effects.length) {
      throw new QueueStoreError(
        'an outcome names a recipient the message does not have; outcomes were not recorded',
        lease.queueId,
      );
    }
  }

  /** Ends the lease and moves the message on; resolves with the state it went to. */
  async release(lease: Lease, target: ReleaseTarget): Promise<void> {
    let remove: string[] = [];
    let patch: Record<string, unknown> = {};
    if (target.state === 'deferred' && target.warnTime !== undefined)
      patch = { warnTime: target.warnTime };
    if (target.state === 'hold') {
      remove = ['holdReason'];
      if (target.reason !== undefined) patch = { holdReason: target.reason };
    }
    const dueAt = target.state === 'deferred' ? target.dueAt : 0;
    const { rows } = await this.#pool.query(
      `UPDATE ${this.#s}.messages SET state = $4, due_at = $5,
         record = (record - $6::text[]) || $7::jsonb,
         lease_owner = NULL, lease_token = NULL, lease_expires = NULL, lease_session = NULL
       WHERE ${FENCE} RETURNING queue_id`,
      [lease.queueId, lease.token, this.#now(), target.state, dueAt, remove, JSON.stringify(patch)],
    );
    if (rows.length === 0) throw new LeaseLostError(lease.queueId);
  }

  async remove(lease: Lease): Promise<void> {
    const { rows } = await this.#pool.query(
      `DELETE FROM ${this.#s}.messages WHERE ${FENCE} RETURNING queue_id`,
      [lease.queueId, lease.token, this.#now()],
    );
    if (rows.length === 0) throw new LeaseLostError(lease.queueId);
  }
}
