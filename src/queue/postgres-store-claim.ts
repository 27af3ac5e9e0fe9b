/**
 * PostgresQueueStore claims: picking due messages for a node under a lease with
 * `FOR UPDATE SKIP LOCKED`, and turning rows back into MessageRecords.
 *
 * Postfix counterpart: qmgr(8)'s scans of incoming and deferred (qmgr_scan.c,
 * qmgr_active.c): incoming oldest first, deferred once due, one of each in turn.
 *
 * One claim is one short transaction: messages whose lease has expired (by the
 * caller's clock) or whose holder's node has stopped heartbeating are taken first,
 * then up to `limit` incoming (by arrival order) and up to `limit` due deferred rows
 * are locked with SKIP LOCKED, so concurrent claimers on any node never wait for each
 * other nor pick the same row; the picks alternate between the two lists; every
 * picked row gets a fresh random token, the owner, the expiry and this store's
 * session, and its recipients are read in the same transaction.
 *
 * Does not do: judge lease validity on writes (postgres-store-outcomes.ts).
 *
 * @module
 */

import type { Pool, PoolClient } from 'pg';
import { newLeaseToken } from './lease.js';
import type { ClaimedMessage, ClaimOptions, MessageRecord, StoredRecipient } from './types.js';

/** What a claim needs from the store. */
export interface ClaimContext {
  readonly pool: Pool;
  readonly schema: string;
  /** This store instance's session (the `nodes` row that heartbeats for it). */
  readonly session: string;
  /** A node whose heartbeat is older than this has died; its leases are taken over. */
  readonly nodeTimeoutMs: number;
}

interface Candidate {
  readonly queueId: string;
  readonly kind: 'expired' | 'incoming' | 'deferred';
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
  client: Pool | PoolClient,
  schema: string,
  queueIds: readonly string[],
): Promise<Map<string, StoredRecipient[]>> {
  const out = new Map<string, StoredRecipient[]>();
  if (queueIds.length === 0) return out;
  const { rows } = await client.query(
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

/** Alternates incoming and deferred picks after the expired ones, up to `limit`. */
function interleave(
  expired: readonly string[],
  incoming: readonly string[],
  deferred: readonly string[],
  limit: number,
): Candidate[] {
  const picked: Candidate[] = expired
    .slice(0, limit)
    .map((queueId) => ({ queueId, kind: 'expired' }));
  let i = 0;
  let d = 0;
  let takeIncoming = true;
  while (picked.length < limit && (i < incoming.length || d < deferred.length)) {
    if (i < incoming.length && (takeIncoming || d >= deferred.length)) {
      picked.push({ queueId: incoming[i++]!, kind: 'incoming' });
    } else {
      picked.push({ queueId: deferred[d++]!, kind: 'deferred' });
    }
    takeIncoming = !takeIncoming;
  }
  return picked;
}

/** Claims up to `options.limit` messages; see the module header. */
export async function claimMessages(
  ctx: ClaimContext,
  options: ClaimOptions,
): Promise<ClaimedMessage[]> {
  const { limit, now, owner, leaseMs } = options;
  if (!(limit > 0)) return [];
  const s = ctx.schema;
  const client = await ctx.pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const expired = await client.query(
      `SELECT queue_id FROM ${s}.messages
       WHERE state = 'active' AND (lease_expires <= $1 OR lease_session = ANY(
         SELECT session FROM ${s}.nodes
         WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $3::double precision / 1000)))
       ORDER BY lease_expires LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [now, limit, ctx.nodeTimeoutMs],
    );
    const room = limit - expired.rows.length;
    const incoming =
      room > 0
        ? await client.query(
            `SELECT queue_id FROM ${s}.messages WHERE state = 'incoming'
             ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
            [room],
          )
        : { rows: [] };
    const deferred =
      room > 0
        ? await client.query(
            `SELECT queue_id FROM ${s}.messages
             WHERE state = 'deferred' AND ($2::boolean OR due_at <= $3)
             ORDER BY due_at, queue_id LIMIT $1 FOR UPDATE SKIP LOCKED`,
            [room, options.ignoreDueTime === true, now],
          )
        : { rows: [] };
    const picked = interleave(
      expired.rows.map((r) => r.queue_id as string),
      incoming.rows.map((r) => r.queue_id as string),
      deferred.rows.map((r) => r.queue_id as string),
      limit,
    );
    if (picked.length === 0) {
      await client.query('COMMIT');
      return [];
    }
    const ids = picked.map((p) => p.queueId);
    const tokens = picked.map(() => newLeaseToken());
    const expiresAt = now + leaseMs;
    const { rows } = await client.query(
      `UPDATE ${s}.messages m SET
         claim_from = CASE WHEN m.state = 'active' THEN m.claim_from ELSE m.state END,
         state = 'active', lease_owner = $3, lease_token = u.token, lease_expires = $4,
         lease_session = $5
       FROM unnest($1::text[], $2::text[]) AS u(queue_id, token)
       WHERE m.queue_id = u.queue_id
       RETURNING m.queue_id, m.claim_from, m.record`,
      [ids, tokens, owner, expiresAt, ctx.session],
    );
    const recipients = await recipientsOf(client, s, ids);
    await client.query('COMMIT');
    const byId = new Map(rows.map((r) => [r.queue_id as string, r]));
    const out: ClaimedMessage[] = [];
    for (const [n, queueId] of ids.entries()) {
      const row = byId.get(queueId);
      if (!row) continue;
      out.push({
        lease: { queueId, owner, token: tokens[n]!, expiresAt },
        record: recordOf(
          queueId,
          row.record as Record<string, unknown>,
          recipients.get(queueId) ?? [],
        ),
        from: row.claim_from === 'deferred' ? 'deferred' : 'incoming',
      });
    }
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: unknown) => {
      broken = e as Error;
    });
    throw err;
  } finally {
    // A connection that cannot even roll back is dropped rather than reused.
    client.release(broken);
  }
}
