/**
 * PostgresQueueStore writes under a lease: renew, per-recipient outcomes, release,
 * remove, and handing back stray leases. Each is one SQL statement, hence one
 * transaction whose COMMIT is the durability point, and all but renew take a batch:
 * the outcomes, releases or removals of many messages go in one round trip
 * (postgres-store-writes.ts gathers them). Each is fenced: the lease token, the
 * `active` state and (unless told otherwise) an unexpired lease by the store's clock
 * are in the WHERE clause of the statement that changes the message row, so a node
 * whose lease was taken over or revoked changes nothing for that message and gets
 * LeaseLostError for it.
 *
 * Postfix counterpart: qmgr(8) and the delivery agents marking recipients done in the
 * queue file (the `R` → done records), qmgr_active_done() moving the file on.
 *
 * The outcomes written with a release are the `sent` marks the store kept lazily
 * (postgres-store-leases.ts), so a message that goes back to the queue keeps them.
 *
 * Does not do: decide what an outcome does to a recipient beyond the shared rules of
 * lease.ts (a final state is never undone; a later `bounced` + `dsnSent` only marks
 * the notice as committed).
 *
 * @module
 */

import { LeaseLostError, QueueStoreError } from '../../errors.js';
import type { Lease, RecipientOutcome, ReleaseTarget, StoredOutcome } from '../types.js';
import type { QueueDb } from './postgres-store-db.js';

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

/** The SQL that applies effects `e` (queue_id, id, state, last, dsn) to recipients. */
const APPLY = `state = CASE WHEN r.state = 'pending' THEN e.state ELSE r.state END,
  last = CASE
    WHEN r.state = 'pending' THEN e.last
    WHEN r.state = 'bounced' AND e.dsn AND r.last IS NOT NULL
      THEN jsonb_set(r.last, '{dsnSent}', 'true')
    ELSE r.last END`;

/**
 * The CTE `u` that applies the effects in parameters $first.. $first+4 (effectArrays)
 * to the recipients of the messages in CTE `m` (the ones whose lease held).
 */
function applyEffects(s: string, first: number): string {
  const p = (n: number) => `$${first + n}`;
  return `u AS (
    UPDATE ${s}.recipients r SET ${APPLY}
    FROM m, unnest(${p(0)}::text[], ${p(1)}::int[], ${p(2)}::text[], ${p(3)}::jsonb[], ${p(4)}::boolean[])
      AS e(queue_id, id, state, last, dsn)
    WHERE e.queue_id = m.queue_id AND r.queue_id = e.queue_id AND r.id = e.id
    RETURNING r.id)`;
}

/** Outcomes to write durably under a lease (one item of a batch). */
export interface OutcomeWrite {
  readonly lease: Lease;
  readonly outcomes: readonly RecipientOutcome[];
}

/** A release with the outcomes not yet written (one item of a batch). */
export interface ReleaseWrite extends OutcomeWrite {
  readonly target: ReleaseTarget;
}

/**
 * The effects of a batch as arrays (queue_id, id, state, last, dsn), the outcomes of
 * items under the same lease folded together in the order given.
 */
function effectArrays(items: readonly OutcomeWrite[]): unknown[] {
  const byToken = new Map<string, { queueId: string; outcomes: RecipientOutcome[] }>();
  for (const item of items) {
    const seen = byToken.get(item.lease.token);
    if (seen) seen.outcomes.push(...item.outcomes);
    else
      byToken.set(item.lease.token, { queueId: item.lease.queueId, outcomes: [...item.outcomes] });
  }
  const ids: string[] = [];
  const rids: number[] = [];
  const states: string[] = [];
  const lasts: string[] = [];
  const dsns: boolean[] = [];
  for (const { queueId, outcomes } of byToken.values()) {
    for (const e of foldOutcomes(outcomes)) {
      ids.push(queueId);
      rids.push(e.id);
      states.push(e.state);
      lasts.push(JSON.stringify(e.last));
      dsns.push(e.dsnSent);
    }
  }
  return [ids, rids, states, lasts, dsns];
}

/** One result per item: written, or LeaseLostError when its message was not returned. */
function perItem(items: readonly { lease: Lease }[], rows: readonly Record<string, unknown>[]) {
  const done = new Set(rows.map((r) => r.queue_id as string));
  return items.map((i) =>
    done.has(i.lease.queueId) ? undefined : new LeaseLostError(i.lease.queueId),
  );
}

/**
 * Batched writes under leases for one store. Each method is one statement for the
 * whole batch; `now` is the store's clock for the fence, or null to fence by token
 * alone (writes put off during an outage: only a takeover, which changes the token,
 * makes the message someone else's).
 */
export class LeaseWriter {
  readonly #db: QueueDb;
  readonly #s: string;
  readonly #now: () => number;

  constructor(db: QueueDb, schema: string, now: () => number) {
    this.#db = db;
    this.#s = schema;
    this.#now = now;
  }

  async renew(lease: Lease, expiresAt: number): Promise<Lease> {
    const { rows } = await this.#db.unflushed(
      `UPDATE ${this.#s}.messages SET lease_expires = $4 WHERE ${FENCE} RETURNING queue_id`,
      [lease.queueId, lease.token, this.#now(), expiresAt],
    );
    if (rows.length === 0) throw new LeaseLostError(lease.queueId);
    return { ...lease, expiresAt };
  }

  /**
   * Writes outcomes under a lease this store did not hand out (so it cannot check the
   * recipients from memory): the recipients are updated only if every one named
   * exists, so a caller bug records nothing.
   */
  async recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void> {
    const effects = foldOutcomes(outcomes);
    const s = this.#s;
    const { rows } = await this.#db.query(
      `WITH m AS (
         SELECT queue_id FROM ${s}.messages WHERE ${FENCE} FOR UPDATE),
       known AS (
         SELECT count(*) AS n FROM ${s}.recipients r, m
         WHERE r.queue_id = m.queue_id AND r.id = ANY($4::int[])),
       u AS (
         UPDATE ${s}.recipients r SET ${APPLY}
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

  /** Writes the outcomes of many messages under their leases, one statement. */
  async writeOutcomes(
    items: readonly OutcomeWrite[],
    now: number | null,
  ): Promise<(undefined | Error)[]> {
    const s = this.#s;
    const { rows } = await this.#db.query(
      `WITH l AS (SELECT * FROM unnest($1::text[], $2::text[]) AS l(queue_id, token)),
       m AS (
         SELECT m.queue_id FROM ${s}.messages m
         JOIN l ON m.queue_id = l.queue_id AND m.lease_token = l.token
         WHERE m.state = 'active' AND ($3::bigint IS NULL OR m.lease_expires > $3)
         FOR UPDATE OF m),
       ${applyEffects(s, 4)}
       SELECT queue_id FROM m`,
      [
        items.map((i) => i.lease.queueId),
        items.map((i) => i.lease.token),
        now,
        ...effectArrays(items),
      ],
    );
    return perItem(items, rows);
  }

  /** Ends the leases of many messages and moves each on with its outcomes, one statement. */
  async release(
    items: readonly ReleaseWrite[],
    now: number | null,
  ): Promise<(undefined | Error)[]> {
    const s = this.#s;
    const { rows } = await this.#db.query(
      `WITH x AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::boolean[],
           $6::jsonb[]) AS x(queue_id, token, state, due_at, drop_hold, patch)),
       m AS (
         UPDATE ${s}.messages m SET state = x.state, due_at = x.due_at,
           record = (CASE WHEN x.drop_hold THEN m.record - 'holdReason' ELSE m.record END)
             || x.patch,
           lease_owner = NULL, lease_token = NULL, lease_expires = NULL, lease_session = NULL
         FROM x
         WHERE m.queue_id = x.queue_id AND m.lease_token = x.token AND m.state = 'active'
           AND ($7::bigint IS NULL OR m.lease_expires > $7)
         RETURNING m.queue_id),
       ${applyEffects(s, 8)}
       SELECT queue_id FROM m`,
      [
        items.map((i) => i.lease.queueId),
        items.map((i) => i.lease.token),
        items.map((i) => i.target.state),
        items.map((i) => (i.target.state === 'deferred' ? i.target.dueAt : 0)),
        items.map((i) => i.target.state === 'hold'),
        items.map((i) => JSON.stringify(releasePatch(i.target))),
        now,
        ...effectArrays(items),
      ],
    );
    return perItem(items, rows);
  }

  /** Deletes many messages under their leases (with their rows), one statement. */
  async remove(leases: readonly Lease[], now: number | null): Promise<(undefined | Error)[]> {
    // Unflushed: a removal undone by a database crash means a duplicate, as a lost
    // success mark would (at-least-once).
    const { rows } = await this.#db.unflushed(
      `DELETE FROM ${this.#s}.messages m
       USING unnest($1::text[], $2::text[]) AS l(queue_id, token)
       WHERE m.queue_id = l.queue_id AND m.lease_token = l.token AND m.state = 'active'
         AND ($3::bigint IS NULL OR m.lease_expires > $3)
       RETURNING m.queue_id`,
      [leases.map((l) => l.queueId), leases.map((l) => l.token), now],
    );
    return perItem(
      leases.map((lease) => ({ lease })),
      rows,
    );
  }

  /** Gives leased messages back to `incoming`, for any node to claim (one statement). */
  async unlease(leases: readonly Lease[]): Promise<void> {
    await this.#db.unflushed(
      `UPDATE ${this.#s}.messages m SET state = 'incoming', lease_owner = NULL,
         lease_token = NULL, lease_expires = NULL, lease_session = NULL
       FROM unnest($1::text[], $2::text[]) AS l(queue_id, token)
       WHERE m.queue_id = l.queue_id AND m.lease_token = l.token AND m.state = 'active'`,
      [leases.map((l) => l.queueId), leases.map((l) => l.token)],
    );
  }

  /**
   * Hands back to the queue (the state each was claimed from) every message this
   * session holds under a lease not in `keep`: claims whose answer was lost with the
   * connection. Resolves with how many.
   */
  async returnStrays(session: string, keep: readonly string[]): Promise<number> {
    const { rows } = await this.#db.unflushed(
      `UPDATE ${this.#s}.messages SET state = claim_from, lease_owner = NULL, lease_token = NULL,
         lease_expires = NULL, lease_session = NULL
       WHERE state = 'active' AND lease_session = $1 AND lease_token <> ALL($2::text[])
       RETURNING queue_id`,
      [session, keep],
    );
    return rows.length;
  }
}

/** The record changes a release makes (warning time, hold reason). */
function releasePatch(target: ReleaseTarget): Record<string, unknown> {
  if (target.state === 'deferred' && target.warnTime !== undefined)
    return { warnTime: target.warnTime };
  if (target.state === 'hold' && target.reason !== undefined) return { holdReason: target.reason };
  return {};
}
