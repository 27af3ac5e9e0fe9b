/**
 * PostgresQueueStore claims: picking due messages for a node under a lease with
 * `FOR UPDATE SKIP LOCKED`, and turning rows back into MessageRecords.
 *
 * Postfix counterpart: qmgr(8)'s scans of incoming and deferred (qmgr_scan.c,
 * qmgr_active.c): incoming oldest first, deferred once due, one of each in turn.
 *
 * One claim is one statement (one round trip, one transaction): messages whose lease
 * has expired (by the caller's clock) or whose holder's node has stopped heartbeating
 * are taken first, then up to `limit` incoming (by arrival order) and up to `limit`
 * due deferred rows are locked with SKIP LOCKED, so concurrent claimers on any node
 * never wait for each other nor pick the same row; the picks alternate between the
 * two lists; every picked row gets a fresh random token (made by the caller), the
 * owner, the expiry and this store's session. The answer carries each message's
 * recipients and, for a message of at most one chunk and `inlineMax` bytes, its
 * content, up to `inlineBudget` bytes for the whole claim: a small message needs no
 * read of its own before delivery. It also brings the earliest due time of the
 * deferred mail left, which the queue manager asks for right after.
 *
 * Does not do: judge lease validity on writes (postgres-store-outcomes.ts).
 *
 * @module
 */

import type { ClaimedMessage, ClaimOptions, MessageRecord, StoredRecipient } from '../types.js';
import type { QueueDb } from './postgres-store-db.js';

/** What a claim needs from the store. */
export interface ClaimContext {
  readonly db: QueueDb;
  readonly schema: string;
  /** This store instance's session (the `nodes` row that heartbeats for it). */
  readonly session: string;
  /** A node whose heartbeat is older than this has died; its leases are taken over. */
  readonly nodeTimeoutMs: number;
  /** Content of one chunk at most this size comes with the claim... */
  readonly inlineMax: number;
  /** ...as long as the claim's inline content stays within this many bytes. */
  readonly inlineBudget: number;
}

/** A claimed message and, when it came inline, its whole content. */
export interface ClaimedRow {
  readonly message: ClaimedMessage;
  readonly content: Buffer | undefined;
}

/** Builds a MessageRecord from a `messages.record` value and its recipient rows. */
export function recordOf(
  queueId: string,
  envelope: Record<string, unknown>,
  recipients: readonly StoredRecipient[],
): MessageRecord {
  return { ...(envelope as object), formatVersion: 1, queueId, recipients } as MessageRecord;
}

/** A stored recipient from its row. */
export function recipientOf(row: Record<string, unknown>): StoredRecipient {
  const data = row.data as Record<string, unknown>;
  const last = row.last as StoredRecipient['last'] | null;
  return {
    ...(data as object),
    state: row.state as StoredRecipient['state'],
    ...(last ? { last } : {}),
  } as StoredRecipient;
}

/** Reads the recipients of `queueIds`, grouped by message, in recipient order. */
export async function recipientsOf(
  client: QueueDb,
  schema: string,
  queueIds: readonly string[],
): Promise<Map<string, StoredRecipient[]>> {
  const out = new Map<string, StoredRecipient[]>();
  if (queueIds.length === 0) return out;
  const { rows } = await client.unflushed(
    `SELECT queue_id, state, data, last FROM ${schema}.recipients
     WHERE queue_id = ANY($1::text[]) ORDER BY queue_id, id`,
    [queueIds],
  );
  for (const row of rows) {
    const id = row.queue_id as string;
    const list = out.get(id);
    if (list) list.push(recipientOf(row));
    else out.set(id, [recipientOf(row)]);
  }
  return out;
}

/**
 * Claims up to `options.limit` messages in one statement; see the module header.
 * `tokens` holds one fresh lease token per possible pick (at least `limit`), made by
 * the caller so it knows them before the answer comes.
 */
export async function claimMessages(
  ctx: ClaimContext,
  options: ClaimOptions,
  tokens: readonly string[],
): Promise<{ rows: ClaimedRow[]; nextDue: number | undefined }> {
  const { limit, now, owner, leaseMs } = options;
  if (!(limit > 0)) return { rows: [], nextDue: undefined };
  const s = ctx.schema;
  const expiresAt = now + leaseMs;
  const { rows } = await ctx.db.unflushed(
    `WITH dead AS MATERIALIZED (
       SELECT session FROM ${s}.nodes
       WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $3::double precision / 1000)),
     expired AS MATERIALIZED (
       SELECT queue_id, lease_expires FROM ${s}.messages
       WHERE state = 'active' AND (lease_expires <= $1 OR lease_session IN (SELECT session FROM dead))
       ORDER BY lease_expires LIMIT $2 FOR UPDATE SKIP LOCKED),
     incoming AS MATERIALIZED (
       SELECT queue_id, seq FROM ${s}.messages WHERE state = 'incoming'
       ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED),
     deferred AS MATERIALIZED (
       SELECT queue_id, due_at FROM ${s}.messages
       WHERE state = 'deferred' AND ($4::boolean OR due_at <= $1)
       ORDER BY due_at, queue_id LIMIT $2 FOR UPDATE SKIP LOCKED),
     candidates AS (
       SELECT queue_id, 0 AS k, row_number() OVER (ORDER BY lease_expires) AS n, 0 AS kind FROM expired
       UNION ALL
       SELECT queue_id, 1, row_number() OVER (ORDER BY seq), 0 FROM incoming
       UNION ALL
       SELECT queue_id, 1, row_number() OVER (ORDER BY due_at, queue_id), 1 FROM deferred),
     picked AS (
       SELECT queue_id, ord FROM (
         SELECT queue_id, row_number() OVER (ORDER BY k, n, kind) AS ord FROM candidates) c
       WHERE ord <= $2),
     claimed AS (
       UPDATE ${s}.messages m SET
         claim_from = CASE WHEN m.state = 'active' THEN m.claim_from ELSE m.state END,
         state = 'active', lease_owner = $5, lease_token = ($6::text[])[p.ord::int],
         lease_expires = $7, lease_session = $8
       FROM picked p WHERE m.queue_id = p.queue_id
       RETURNING m.queue_id, m.claim_from, m.record, m.lease_token, m.chunks, m.size, p.ord)
     SELECT d.next_due, x.queue_id, x.claim_from, x.record, x.lease_token,
       (SELECT jsonb_agg(jsonb_build_object('state', r.state, 'data', r.data, 'last', r.last)
          ORDER BY r.id)
        FROM ${s}.recipients r WHERE r.queue_id = x.queue_id) AS recipients,
       CASE WHEN x.fits THEN coalesce(
         (SELECT c.data FROM ${s}.content_chunks c WHERE c.queue_id = x.queue_id AND c.seq = 0),
         '\\x'::bytea) END AS content
     FROM (
       SELECT min(due_at) AS next_due FROM ${s}.messages
       WHERE state = 'deferred' AND queue_id NOT IN (SELECT queue_id FROM picked)) d
     LEFT JOIN (
       SELECT u.*, (u.chunks <= 1 AND u.size <= $9 AND sum(
         CASE WHEN u.chunks <= 1 AND u.size <= $9 THEN u.size ELSE 0 END) OVER (ORDER BY u.ord)
         <= $10) AS fits
       FROM claimed u) x ON true
     ORDER BY x.ord`,
    [
      now,
      limit,
      ctx.nodeTimeoutMs,
      options.ignoreDueTime === true,
      owner,
      tokens,
      expiresAt,
      ctx.session,
      ctx.inlineMax,
      ctx.inlineBudget,
    ],
  );
  const due = rows[0]?.next_due;
  const nextDue = due === null || due === undefined ? undefined : Number(due);
  const claimed = rows.filter((row) => row.queue_id !== null);
  return {
    nextDue,
    rows: claimed.map((row) => {
      const queueId = row.queue_id as string;
      const recipients = ((row.recipients as Record<string, unknown>[] | null) ?? []).map(
        recipientOf,
      );
      return {
        message: {
          lease: { queueId, owner, token: row.lease_token as string, expiresAt },
          record: recordOf(queueId, row.record as Record<string, unknown>, recipients),
          from: row.claim_from === 'deferred' ? 'deferred' : 'incoming',
        },
        content: (row.content as Buffer | null) ?? undefined,
      };
    }),
  };
}
