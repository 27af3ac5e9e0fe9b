/**
 * PostgresQueueStore group commit: the one statement that makes a batch of new
 * messages durable and claimable — their `messages` rows, every recipient row and each
 * message's last content chunk — in a single round trip and a single COMMIT.
 *
 * Postfix counterpart: cleanup(8) closing the queue file (fsync, then the rename that
 * makes it visible to qmgr); here a whole batch shares the COMMIT's WAL flush.
 *
 * A message smaller than one chunk has no row until now: it is inserted. A larger one
 * already has a `writing` row with its full chunks (postgres-store-content.ts): that
 * row is promoted, but only if it is still this writer's (its token), so a message
 * aborted or swept meanwhile is not resurrected. Each message succeeds or fails on its
 * own: a queue ID that already exists (ON CONFLICT DO NOTHING) or a promoted row that
 * has gone fails that message alone. If the statement itself fails for a reason other
 * than the connection (bad data in one message), each message of the batch is retried
 * on its own, so one bad message cannot turn its neighbours away.
 *
 * A message this node's queue manager will take at once is committed straight into
 * `active` under a lease for it (postgres-store-handoff.ts), which spares the claim
 * that would follow.
 *
 * Removals of delivered mail waiting for their own statement ride along (a `DELETE`
 * in the same statement, fenced by lease token, state and expiry as on their own):
 * while mail comes in, a delivered message costs no round trip and no transaction of
 * its own. If the statement fails for a bad message, the removals go out on their own
 * once the messages have been retried one by one.
 *
 * Does not do: announce the new mail (the store does, after the COMMIT), or retry
 * after a connection failure (the sender gets 451 and retries; a COMMIT whose answer
 * was lost may then mean one duplicate, never a loss).
 *
 * @module
 */

import { LeaseLostError, QueueStoreError } from '../../errors.js';
import type { QueueId } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { domainOf } from '../summary.js';
import type { Lease, NewMessageRecord } from '../types.js';
import { isConnectionError, type QueueDb } from './postgres-store-db.js';

/** One message to commit. */
export interface CommitItem {
  readonly queueId: QueueId;
  readonly record: NewMessageRecord;
  /** The writer's token when its `writing` row exists (content over one chunk). */
  readonly writerToken: string | undefined;
  /** Chunks the message has in all, the last included. */
  readonly chunks: number;
  /** The last, partial chunk (undefined when the content ended on a chunk boundary). */
  readonly last: { readonly seq: number; readonly data: Buffer } | undefined;
  /**
   * A lease for this node's queue manager: the message goes straight to `active`
   * under it (postgres-store-handoff.ts) instead of to `incoming`.
   */
  readonly lease?: Lease;
}

/** Splits a record into the envelope jsonb (no recipients, no hold flag, no queue ID). */
export function envelopeOf(record: NewMessageRecord): Record<string, unknown> {
  const { hold: _hold, recipients: _recipients, queueId: _queueId, ...rest } = record;
  return rest;
}

/** Removals of delivered mail that ride along with a group commit. */
export interface RidingRemovals {
  readonly leases: readonly Lease[];
  /** The store's clock, for the lease fence. */
  readonly now: number;
  /** Settles each removal: undefined (done) or an Error, in order; or one Error for all. */
  readonly settle: (out: readonly (undefined | Error)[] | Error) => void;
  /** Sends them in a statement of their own (the commit statement failed for its data). */
  readonly alone: () => void;
}

/** The statement (one of four texts) and its values for `items`. */
function statement(
  schema: string,
  session: string,
  items: readonly CommitItem[],
  removals: RidingRemovals | undefined,
): [string, unknown[]] {
  const s = schema;
  // The last chunks travel as one binary parameter cut by offset and length: a
  // bytea[] would go as text, every byte spelt in hex on both sides.
  const chunks = items.flatMap((i) => (i.last ? [i.last.data] : []));
  const offsets: number[] = [];
  let offset = 1;
  for (const c of chunks) {
    offsets.push(offset);
    offset += c.length;
  }
  const values: unknown[] = [
    items.map((i) => i.queueId),
    items.map((i) => (i.record.hold ? 'hold' : i.lease ? 'active' : 'incoming')),
    items.map((i) => i.chunks),
    items.map((i) => i.record.sender),
    items.map((i) => i.record.size),
    items.map((i) => i.record.arrivalTime),
    items.map((i) => JSON.stringify(envelopeOf(i.record))),
    items.map((i) => i.writerToken ?? null),
    items.map((_, n) => n),
    items.flatMap((i) => i.record.recipients.map(() => i.queueId)),
    items.flatMap((i) => i.record.recipients.map((r) => r.id)),
    items.flatMap((i) => i.record.recipients.map((r) => r.address)),
    items.flatMap((i) => i.record.recipients.map((r) => domainOf(r.address))),
    items.flatMap((i) => i.record.recipients.map((r) => JSON.stringify(r))),
    items.flatMap((i) => (i.last ? [i.queueId] : [])),
    items.flatMap((i) => (i.last ? [i.last.seq] : [])),
    Buffer.concat(chunks),
    items.map((i) => i.lease?.owner ?? null),
    items.map((i) => i.lease?.token ?? null),
    items.map((i) => i.lease?.expiresAt ?? null),
    session,
    offsets,
    chunks.map((c) => c.length),
  ];
  // Parts a batch does not need are left out (a text of its own, prepared once each):
  // the promotion of `writing` rows for messages of one chunk or less, the removals
  // when none ride along. Each part costs its plan nodes on every execution.
  const promoting = items.some((i) => i.writerToken !== undefined);
  const removing = removals !== undefined && removals.leases.length > 0;
  if (removing)
    values.push(
      removals.leases.map((l) => l.queueId),
      removals.leases.map((l) => l.token),
      removals.now,
    );
  const promoted = promoting
    ? `promoted AS (
      UPDATE ${s}.messages m SET state = u.state, chunks = u.chunks, sender = u.sender,
        size = u.size, arrival_time = u.arrival_time, record = u.record,
        seq = nextval('${s}.message_seq'), writer_token = NULL, created_at = now(),
        lease_owner = u.lease_owner, lease_token = u.lease_token,
        lease_expires = u.lease_expires, lease_session = u.lease_session
      FROM u
      WHERE u.writer_token IS NOT NULL AND m.queue_id = u.queue_id AND m.state = 'writing'
        AND m.writer_token = u.writer_token
      RETURNING m.queue_id),`
    : '';
  const removed = removing
    ? `,
    d AS (
      DELETE FROM ${s}.messages x
      USING unnest($24::text[], $25::text[]) AS l(queue_id, token)
      WHERE x.queue_id = l.queue_id AND x.lease_token = l.token AND x.state = 'active'
        AND x.lease_expires > $26
      RETURNING x.queue_id)
    SELECT queue_id, false AS removed FROM m
    UNION ALL SELECT queue_id, true FROM d`
    : `
    SELECT queue_id, false AS removed FROM m`;
  const text = `WITH u AS (
      SELECT *, CASE WHEN lease_token IS NULL THEN NULL ELSE $21::text END AS lease_session
      FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[],
        $6::bigint[], $7::jsonb[], $8::text[], $9::int[], $18::text[], $19::text[], $20::bigint[])
        AS u(queue_id, state, chunks, sender, size, arrival_time, record, writer_token, ord,
          lease_owner, lease_token, lease_expires)),
    ${promoted}
    inserted AS (
      INSERT INTO ${s}.messages (queue_id, state, chunks, sender, size, arrival_time, record,
        lease_owner, lease_token, lease_expires, lease_session)
      SELECT queue_id, state, chunks, sender, size, arrival_time, record,
        lease_owner, lease_token, lease_expires, lease_session FROM u
      WHERE writer_token IS NULL ORDER BY ord
      ON CONFLICT (queue_id) DO NOTHING
      RETURNING queue_id),
    m AS (${promoting ? 'SELECT queue_id FROM promoted UNION ALL ' : ''}SELECT queue_id FROM inserted),
    r AS (
      INSERT INTO ${s}.recipients (queue_id, id, address, domain, state, data)
      SELECT x.queue_id, x.id, x.address, x.domain, 'pending', x.data
      FROM unnest($10::text[], $11::int[], $12::text[], $13::text[], $14::jsonb[])
        AS x(queue_id, id, address, domain, data)
      WHERE x.queue_id IN (SELECT queue_id FROM m)),
    c AS (
      INSERT INTO ${s}.content_chunks (queue_id, seq, data)
      SELECT x.queue_id, x.seq, x.data
      FROM (
        SELECT x.queue_id, x.seq, substring($17::bytea FROM x.start FOR x.len) AS data
        FROM unnest($15::text[], $16::int[], $22::int[], $23::int[]) AS x(queue_id, seq, start, len)) x
      WHERE x.queue_id IN (SELECT queue_id FROM m))${removed}`;
  return [text, values];
}

/** Why a message the statement did not return was not committed. */
function notCommitted(item: CommitItem): QueueStoreError {
  return item.writerToken === undefined
    ? new QueueStoreError('a message with this queue ID exists', item.queueId)
    : new QueueStoreError(
        'the message being written was removed (aborted, or swept as abandoned)',
        item.queueId,
      );
}

function failure(item: CommitItem, err: unknown): QueueStoreError {
  return new QueueStoreError(`cannot commit the message: ${errorMessage(err)}`, item.queueId, {
    cause: err,
    // The database connection logs an outage once; each refused message need not.
    outage: isConnectionError(err),
  });
}

/**
 * Commits `items` in one statement, with `removals` riding along; one `undefined`
 * (committed) or Error per item. See the module header.
 */
export async function commitBatch(
  db: QueueDb,
  schema: string,
  session: string,
  items: readonly CommitItem[],
  removals?: RidingRemovals,
): Promise<(undefined | Error)[]> {
  const [text, values] = statement(schema, session, items, removals);
  let rows: Record<string, unknown>[];
  try {
    rows = (await db.query(text, values)).rows;
  } catch (err) {
    if (items.length === 1 || isConnectionError(err)) {
      // Unreachable: the removals wait for the database like any other (LeaseWrites).
      if (isConnectionError(err)) removals?.settle(err as Error);
      else removals?.alone();
      return items.map((i) => failure(i, err));
    }
    // One message's data broke the statement: find it by committing each alone.
    const out: (undefined | Error)[] = [];
    for (const item of items) out.push(...(await commitBatch(db, schema, session, [item])));
    removals?.alone();
    return out;
  }
  const done = new Set<string>();
  const removed = new Set<string>();
  for (const r of rows) (r.removed === true ? removed : done).add(r.queue_id as string);
  removals?.settle(
    removals.leases.map((l) =>
      removed.has(l.queueId) ? undefined : new LeaseLostError(l.queueId),
    ),
  );
  return items.map((i) => (done.has(i.queueId) ? undefined : notCommitted(i)));
}
