/**
 * PostgresQueueStore queue operations and views: hold, unhold, delete, requeue,
 * expedite, counts, list, summaries and the next due time, each one statement over the
 * shared tables, so they act on the whole cluster whichever node runs them.
 *
 * Postfix counterpart: postsuper(1) -h/-H/-d/-r, postqueue(1) -f/-i, mailq and
 * qshape(1).
 *
 * An operation on an active message revokes its lease by clearing the token in the
 * same UPDATE; the holder (on any node) then fails its next write with LeaseLostError
 * (the fence in postgres-store-outcomes.ts), and its durable outcomes stay. Messages
 * being written (`writing`) are invisible to all of this.
 *
 * Does not do: notify (the store announces after the operations that make mail due).
 *
 * @module
 */

import type { QueueId } from '../../types.js';
import { queueEntry } from '../lease.js';
import type {
  QueueCounts,
  QueueEntry,
  QueueNode,
  QueueSelection,
  QueueState,
  QueueSummary,
} from '../types.js';
import { recipientsOf, recordOf } from './postgres-store-claim.js';
import type { QueueDb } from './postgres-store-db.js';
import { nodeStatus } from './postgres-store-nodes.js';

const STATES: readonly QueueState[] = ['incoming', 'active', 'deferred', 'hold', 'corrupt'];

/** Clears the lease columns (revokes any lease). */
const NO_LEASE =
  'lease_owner = NULL, lease_token = NULL, lease_expires = NULL, lease_session = NULL';

/** Selection as ($1 all, $2 ids). */
function selectionParams(selection: QueueSelection): [boolean, string[]] {
  return selection === 'ALL' ? [true, []] : [false, [...new Set(selection)]];
}

/**
 * The condition on a selection's ($1 all, $2 ids). Queue IDs get a text of their own,
 * in which `queue_id = ANY($2)` finds them by the primary key: statements run on
 * their generic plan (postgres-store-open.ts), which could not use it under an OR.
 */
function selectionWhere(all: boolean): string {
  return all
    ? '($1::boolean OR queue_id = ANY($2::text[]))'
    : 'queue_id = ANY($2::text[]) AND NOT $1::boolean';
}

function sorted(rows: readonly Record<string, unknown>[]): QueueId[] {
  return rows.map((r) => r.queue_id as string).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Queue operations and views for one store. */
export class QueueOperations {
  readonly #pool: QueueDb;
  readonly #s: string;

  constructor(pool: QueueDb, schema: string) {
    this.#pool = pool;
    this.#s = schema;
  }

  /** Runs `UPDATE messages SET <set> WHERE state IN <states> AND <selection>`. */
  async #update(
    selection: QueueSelection,
    states: readonly QueueState[],
    set: string,
    extra: unknown[] = [],
  ): Promise<QueueId[]> {
    const [all, ids] = selectionParams(selection);
    const { rows } = await this.#pool.query(
      `UPDATE ${this.#s}.messages SET ${set}
       WHERE state = ANY($3::text[]) AND ${selectionWhere(all)}
       RETURNING queue_id`,
      [all, ids, states, ...extra],
    );
    return sorted(rows);
  }

  hold(selection: QueueSelection, reason: string | undefined): Promise<QueueId[]> {
    return this.#update(
      selection,
      ['incoming', 'active', 'deferred'],
      `state = 'hold', due_at = 0, ${NO_LEASE},
       record = (record - 'holdReason') || $4::jsonb`,
      [JSON.stringify(reason === undefined ? {} : { holdReason: reason })],
    );
  }

  unhold(selection: QueueSelection, now: number): Promise<QueueId[]> {
    return this.#update(
      selection,
      ['hold'],
      `state = 'deferred', due_at = $4, claim_from = 'deferred', record = record - 'holdReason'`,
      [now],
    );
  }

  async delete(selection: QueueSelection): Promise<QueueId[]> {
    const [all, ids] = selectionParams(selection);
    const { rows } = await this.#pool.query(
      `DELETE FROM ${this.#s}.messages
       WHERE state <> 'writing' AND ${selectionWhere(all)}
       RETURNING queue_id`,
      [all, ids],
    );
    return sorted(rows);
  }

  requeue(selection: QueueSelection): Promise<QueueId[]> {
    return this.#update(
      selection,
      ['active', 'deferred'],
      `state = 'incoming', due_at = 0, claim_from = 'incoming', ${NO_LEASE},
       seq = nextval('${this.#s}.message_seq')`,
    );
  }

  expedite(selection: QueueSelection, now: number): Promise<QueueId[]> {
    return this.#update(selection, ['deferred'], 'due_at = $4', [now]);
  }

  async counts(): Promise<QueueCounts> {
    const counts: QueueCounts = { incoming: 0, active: 0, deferred: 0, hold: 0, corrupt: 0 };
    const { rows } = await this.#pool.unflushed(
      `SELECT state, count(*) AS n FROM ${this.#s}.messages WHERE state <> 'writing' GROUP BY state`,
    );
    for (const row of rows) counts[row.state as QueueState] = Number(row.n);
    return counts;
  }

  async nextDueTime(): Promise<number | undefined> {
    const { rows } = await this.#pool.unflushed(
      `SELECT min(due_at) AS due FROM ${this.#s}.messages WHERE state = 'deferred'`,
    );
    const due = rows[0]?.due;
    return due === null || due === undefined ? undefined : Number(due);
  }

  async list(options: { states?: readonly QueueState[]; limit?: number }): Promise<QueueEntry[]> {
    const limit = options.limit ?? null;
    const { rows } = await this.#pool.unflushed(
      `SELECT queue_id, state, due_at, record FROM ${this.#s}.messages
       WHERE state = ANY($1::text[]) ORDER BY queue_id LIMIT $2`,
      [options.states ?? STATES, limit],
    );
    const recipients = await recipientsOf(
      this.#pool,
      this.#s,
      rows.map((r) => r.queue_id as string),
    );
    return rows.map((row) => {
      const id = row.queue_id as string;
      const record = recordOf(id, row.record as Record<string, unknown>, recipients.get(id) ?? []);
      return queueEntry(record, row.state as QueueState, Number(row.due_at));
    });
  }

  /** Every node with its heartbeat age and the mail it holds under leases. */
  nodes(nodeTimeoutMs: number): Promise<QueueNode[]> {
    return nodeStatus(
      { query: (text, values) => this.#pool.unflushed(text, values) },
      this.#s,
      nodeTimeoutMs,
    );
  }

  async summaries(options: { states?: readonly QueueState[] }): Promise<QueueSummary[]> {
    const { rows } = await this.#pool.unflushed(
      `SELECT m.queue_id, m.state, m.arrival_time, m.size, m.sender,
         array_agg(r.domain ORDER BY r.id) FILTER (WHERE r.state = 'pending') AS domains
       FROM ${this.#s}.messages m LEFT JOIN ${this.#s}.recipients r ON r.queue_id = m.queue_id
       WHERE m.state = ANY($1::text[])
       GROUP BY m.queue_id ORDER BY m.queue_id`,
      [options.states ?? STATES],
    );
    return rows.map((row) => {
      const domains = (row.domains as string[] | null) ?? [];
      return {
        queueId: row.queue_id as string,
        state: row.state as QueueState,
        arrivalTime: Number(row.arrival_time),
        size: Number(row.size),
        sender: row.sender as string,
        domains: [...new Set(domains)],
        pending: domains.length,
      };
    });
  }
}
