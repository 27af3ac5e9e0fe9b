/**
 * Lease bookkeeping for stores that keep leases in memory (MemoryQueueStore,
 * FileQueueStore): lease tokens and the lease check every write makes. The index the
 * leases live in is message-index.ts.
 *
 * Postfix counterpart: none — qmgr(8) owns the active queue alone; Postern's leases let
 * several queue managers share a store safely.
 *
 * A lease is lost when its token is no longer the current one (another owner took
 * over after expiry, or the message was released) or when it has expired by the
 * store's clock. Recovery is lease expiry: an `active` message whose lease has expired
 * is claimable again.
 *
 * It also holds the record rules both stores share: how a new record is stored, how
 * an outcome changes a stored recipient (a final state is never undone), and the
 * listing row of a message.
 *
 * Does not do: any I/O. The stores persist state; this module only decides.
 *
 * @module
 */

import { builtin } from '../builtin.js';
import { LeaseLostError, QueueStoreError } from '../errors.js';
import type { QueueId, RecipientId } from '../types.js';
import type {
  Lease,
  MessageRecord,
  NewMessageRecord,
  QueueEntry,
  QueueState,
  RecipientOutcome,
  StoredRecipient,
} from './types.js';

/** Random bytes drawn at once for lease tokens: one system call per 256 tokens. */
const POOL_BYTES = 4096;
const TOKEN_BYTES = 16;
const pool = Buffer.alloc(POOL_BYTES);
let poolAt = POOL_BYTES;

/**
 * A new random lease token (128 random bits). Hex from bytes, not randomUUID(): V8
 * builds a UUID string from a dozen concatenated pieces and keeps them all, which
 * costs hundreds of bytes per lease across a 20 000-message active window. The bytes
 * come from a pool refilled from the system's CSPRNG, so a claim costs no system call
 * and no Buffer of its own; each byte of the pool is used once.
 */
export function newLeaseToken(): string {
  if (poolAt + TOKEN_BYTES > POOL_BYTES) {
    builtin('crypto').randomFillSync(pool);
    poolAt = 0;
  }
  const token = pool.toString('hex', poolAt, poolAt + TOKEN_BYTES);
  poolAt += TOKEN_BYTES;
  return token;
}

/** A new lease for `queueId` owned by `owner`, valid for `leaseMs` from `now`. */
export function makeLease(queueId: QueueId, owner: string, now: number, leaseMs: number): Lease {
  return { queueId, owner, token: newLeaseToken(), expiresAt: now + leaseMs };
}

/**
 * Throws LeaseLostError unless `given` is the current lease and has not expired at
 * `now`. `current` is the lease the store holds for the message (undefined when none).
 */
export function assertLease(current: Lease | undefined, given: Lease, now: number): void {
  if (!current || current.token !== given.token || current.queueId !== given.queueId) {
    throw new LeaseLostError(given.queueId);
  }
  if (current.expiresAt <= now) {
    throw new LeaseLostError(
      given.queueId,
      'the lease on this message expired; it may be claimed again',
    );
  }
}

/** The record a store keeps for a new message: every recipient `pending`. */
export function storedRecord(record: NewMessageRecord): MessageRecord {
  // Copied key by key in the record's order (as a rest pattern and a spread would, and
  // so the same JSON), without the dictionary object a rest pattern makes on the way.
  const stored: Record<string, unknown> = {};
  for (const key in record) {
    if (key !== 'hold' && key !== 'recipients' && Object.hasOwn(record, key))
      stored[key] = record[key as keyof NewMessageRecord];
  }
  stored.formatVersion = 1;
  stored.recipients = record.recipients.map((r): StoredRecipient => ({ ...r, state: 'pending' }));
  return stored as unknown as MessageRecord;
}

/**
 * Where recipient `id` is in `recipients` (-1 when absent). IDs are 1..n in order as a
 * rule, so the guess is right without a scan or a map per call.
 */
export function recipientPosition(recipients: readonly StoredRecipient[], id: RecipientId): number {
  const guess = id - 1;
  if (recipients[guess]?.id === id) return guess;
  return recipients.findIndex((r) => r.id === id);
}

/**
 * Throws QueueStoreError if an outcome names a recipient the record does not have
 * (a caller bug; nothing is recorded then).
 */
export function checkOutcomes(record: MessageRecord, outcomes: readonly RecipientOutcome[]): void {
  for (const { recipientId } of outcomes) {
    if (recipientPosition(record.recipients, recipientId) < 0) {
      throw new QueueStoreError(
        `no recipient with id ${recipientId}; outcomes were not recorded`,
        record.queueId,
      );
    }
  }
}

/**
 * The record with outcomes applied: `sent` and `bounced` are final, `deferred` keeps
 * the recipient pending; each sets `last`. A recipient already final keeps its state
 * and reason; a `bounced` outcome with `dsnSent` for a bounced recipient only marks its
 * notice as committed.
 */
export function applyOutcomes(
  record: MessageRecord,
  outcomes: readonly RecipientOutcome[],
): MessageRecord {
  if (outcomes.length === 0) return record;
  return { ...record, recipients: outcomesApplied(record.recipients, outcomes) };
}

/** The recipient list with outcomes applied (applyOutcomes' rules); never changed in place. */
export function outcomesApplied(
  list: readonly StoredRecipient[],
  outcomes: readonly RecipientOutcome[],
): readonly StoredRecipient[] {
  if (outcomes.length === 0) return list;
  const recipients = list.slice();
  // Many outcomes for a list not in ID order: one map rather than a scan for each.
  let position: Map<RecipientId, number> | undefined;
  for (const { recipientId, outcome } of outcomes) {
    let i = recipientId - 1;
    if (recipients[i]?.id !== recipientId) {
      if (outcomes.length > 16) {
        position ??= new Map(recipients.map((r, at) => [r.id, at]));
        i = position.get(recipientId) ?? -1;
      } else i = recipients.findIndex((r) => r.id === recipientId);
    }
    const r = recipients[i];
    if (!r) continue;
    if (r.state !== 'pending') {
      // A final recipient only takes the mark that its non-delivery notice was committed.
      if (r.state === 'bounced' && outcome.status === 'bounced' && outcome.dsnSent && r.last) {
        recipients[i] = { ...r, last: { ...r.last, dsnSent: true } };
      }
      continue;
    }
    const state = outcome.status === 'deferred' ? 'pending' : outcome.status;
    recipients[i] = { ...r, state, last: outcome };
  }
  return recipients;
}

/** The listing row of a message. */
export function queueEntry(record: MessageRecord, state: QueueState, dueAt: number): QueueEntry {
  return {
    queueId: record.queueId,
    state,
    sender: record.sender,
    size: record.size,
    arrivalTime: record.arrivalTime,
    ...(state === 'deferred' ? { dueAt } : {}),
    recipients: record.recipients.map((r) => ({
      address: r.address,
      state: r.state,
      ...(r.last ? { reason: r.last.text } : {}),
    })),
  };
}
