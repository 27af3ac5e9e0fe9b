/**
 * Queue layer contracts: the QueueStore interface (pluggable storage), the stored
 * message record, leases and recipient outcomes.
 *
 * Postfix counterpart: the queue directories (incoming, active, deferred, hold,
 * corrupt), the queue file records (rec_type.h) and the rules of mail_stream.c /
 * qmgr(8). A store exposes message states, not directories.
 *
 * Ownership and call order:
 * - Cleanup is the only writer of new messages: `create()` → stream content →
 *   `commit(record)` (durable when it resolves) or `abort()`.
 * - QueueManager is the only reader for delivery: `claim()` gives it messages under a
 *   lease; every later write (`renew`, `recordOutcomes`, `release`, `remove`) carries
 *   the lease and rejects with LeaseLostError once the lease is lost, so a paused
 *   node cannot overwrite a peer's takeover.
 * - Queue operations (`hold`, `unhold`, `delete`, `requeue`, `expedite`) act on
 *   unleased messages directly and on active ones by revoking the lease first (the
 *   holder's next write fails with LeaseLostError; a recipient whose delivery was in
 *   flight may then be delivered again, which at-least-once allows).
 *
 * Durability rules (Postfix's order rather than one fsync each): a `bounced` or
 * `deferred` outcome is durable before `recordOutcomes` resolves; a `sent` outcome may
 * be lazy (a crash then means a duplicate, which at-least-once allows); `remove` is
 * called only when every recipient is final and any DSN owed is committed.
 *
 * @module
 */

import type { Readable, Writable } from 'node:stream';
import type {
  Address,
  BodyType,
  DsnRet,
  QueueId,
  Recipient,
  RecipientId,
  RecipientResult,
  SubmissionSource,
} from '../types.js';

/** Message states (Postfix's queues). */
export type QueueState = 'incoming' | 'active' | 'deferred' | 'hold' | 'corrupt';

/** The per-recipient state kept in the queue. */
export type StoredRecipientState = 'pending' | 'sent' | 'bounced';

/** A recipient as stored, with its last outcome. */
export interface StoredRecipient extends Recipient {
  readonly state: StoredRecipientState;
  /** The last reason: the final reply, or the last deferral (Postfix's defer log). */
  readonly last?: StoredOutcome;
}

/** An outcome as stored: data only, so every store can serialise it. */
export interface StoredOutcome {
  readonly status: RecipientResult['status'];
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
  readonly relay?: string;
  readonly action?: RecipientResult['action'];
  readonly remoteMta?: string;
  /** When it happened, ms since the epoch. */
  readonly time: number;
  /**
   * For a `bounced` outcome: the non-delivery notice covering it has been committed.
   * Until then the message owes a DSN and is not removed (Postfix keeps the bounce log).
   */
  readonly dsnSent?: boolean;
}

/** Everything a store keeps about a message apart from its content. */
export interface MessageRecord {
  /** Stored format version; a store refuses versions it does not know. */
  readonly formatVersion: 1;
  readonly queueId: QueueId;
  readonly sender: Address;
  readonly recipients: readonly StoredRecipient[];
  readonly envid?: string;
  readonly ret?: DsnRet;
  readonly bodyType: BodyType;
  readonly smtputf8: boolean;
  /** The content holds bytes above 0x7F. */
  readonly eightBit: boolean;
  /** Content size in bytes (CRLF, dot-unstuffed). */
  readonly size: number;
  /** Bytes of the header block, including the empty line that ends it. */
  readonly headerSize: number;
  /** Arrival time, ms since the epoch (Postfix's `T` record). */
  readonly arrivalTime: number;
  /** When a delay warning is due (`delayWarningTime`), ms; 0 = none or already sent. */
  readonly warnTime: number;
  /** Where the message came from (logs, pipe macros, DSNs). */
  readonly source: SubmissionSource;
  /** FILTER / content_filter: `transport:nexthop` that overrides routing. */
  readonly filter?: string;
  /** Why the message is on hold, if it is. */
  readonly holdReason?: string;
}

/** What Cleanup hands to `commit()`: the record less what the store derives. */
export type NewMessageRecord = Omit<MessageRecord, 'formatVersion' | 'recipients'> & {
  readonly recipients: readonly Recipient[];
  /** Commit straight into `hold` (HOLD action) instead of `incoming`. */
  readonly hold?: boolean;
};

/**
 * A new message being written. `content` takes the message bytes and honours
 * backpressure; it may emit `error` on an I/O failure, which Cleanup catches.
 */
export interface MessageWriter {
  readonly queueId: QueueId;
  readonly content: Writable;
  /**
   * Ends the content (if not ended), stores the record and makes the message durable.
   * Resolves only when a crash can no longer lose it; the message is then visible to
   * `claim()` in `incoming` (or `hold`).
   */
  commit(record: NewMessageRecord): Promise<void>;
  /** Discards everything written; safe to call twice or after a failed commit. */
  abort(): Promise<void>;
}

/** A lease on a claimed message. Treat as opaque; pass it back on every write. */
export interface Lease {
  readonly queueId: QueueId;
  readonly owner: string;
  readonly token: string;
  /** Expiry, ms since the epoch. */
  readonly expiresAt: number;
}

/** A claimed message: its record (as of the claim) and the lease over it. */
export interface ClaimedMessage {
  readonly lease: Lease;
  readonly record: MessageRecord;
  /** The state it was claimed from. */
  readonly from: 'incoming' | 'deferred';
}

/** Options for `claim()`. */
export interface ClaimOptions {
  /** Lease owner (node id). */
  readonly owner: string;
  /** Most messages to return. */
  readonly limit: number;
  /** Current time (from the QueueManager's Clock). */
  readonly now: number;
  /** Lease length in ms. */
  readonly leaseMs: number;
  /** Take deferred messages even if not yet due (flush). */
  readonly ignoreDueTime?: boolean;
}

/** One outcome to record for a recipient. */
export interface RecipientOutcome {
  readonly recipientId: RecipientId;
  readonly outcome: StoredOutcome;
}

/** Where a released message goes next. */
export type ReleaseTarget =
  | { readonly state: 'deferred'; readonly dueAt: number; readonly warnTime?: number }
  | { readonly state: 'hold'; readonly reason?: string }
  | { readonly state: 'corrupt'; readonly reason: string };

/** A summary row for listings (mailq, qshape) that needs no content read. */
export interface QueueEntry {
  readonly queueId: QueueId;
  readonly state: QueueState;
  readonly sender: Address;
  readonly size: number;
  readonly arrivalTime: number;
  /** For deferred messages: when the next attempt is due. */
  readonly dueAt?: number;
  readonly recipients: readonly {
    readonly address: Address;
    readonly state: StoredRecipientState;
    readonly reason?: string;
  }[];
}

/** Queue sizes by state. */
export type QueueCounts = Record<QueueState, number>;

/** Which messages a queue operation acts on: these queue IDs, or every message. */
export type QueueSelection = readonly QueueId[] | 'ALL';

/**
 * What a store keeps in memory about each message for the inspection views (qshape)
 * and per-destination flushes, so they never read message files. Domains are those
 * of the recipients still pending, lower-cased, each once.
 */
export interface QueueSummary {
  readonly queueId: QueueId;
  readonly state: QueueState;
  readonly arrivalTime: number;
  readonly size: number;
  readonly sender: Address;
  readonly domains: readonly string[];
  /** Recipients still pending. */
  readonly pending: number;
}

/**
 * Pluggable queue storage. Implementations: MemoryQueueStore (tests; can be crashed
 * and reopened), FileQueueStore (the embedded default), PostgresQueueStore.
 * One conformance suite (test/unit/queue/store-conformance.ts) runs against each.
 */
export interface QueueStore {
  /**
   * Opens the store. A store opened exclusively by one process (the file store locks
   * its directory) releases every old lease here, so mail left `active` by a crash is
   * claimable at once.
   */
  open(): Promise<void>;
  /** Flushes lazy writes and closes. Leases still held lapse. */
  close(): Promise<void>;

  /** Starts a new message under a Postern-generated queue ID. */
  create(queueId: QueueId): Promise<MessageWriter>;

  /**
   * Claims up to `limit` due messages (all of `incoming`, and `deferred` whose due
   * time has come), alternating between the two as qmgr does, oldest first.
   */
  claim(options: ClaimOptions): Promise<ClaimedMessage[]>;
  /** Extends a lease. Rejects with LeaseLostError if it was lost. */
  renew(lease: Lease, expiresAt: number): Promise<Lease>;
  /** A fresh stream of the content on every call; errors if the message is gone. */
  openContent(queueId: QueueId): Readable;
  /**
   * Records outcomes (see the durability rules above). An outcome for a recipient that
   * is already final is ignored, except a `bounced` outcome with `dsnSent` for a bounced
   * recipient: that marks its notice as committed (durably).
   */
  recordOutcomes(lease: Lease, outcomes: readonly RecipientOutcome[]): Promise<void>;
  /** Ends the lease and moves the message to its next state. */
  release(lease: Lease, target: ReleaseTarget): Promise<void>;
  /** Deletes a message whose recipients are all final. */
  remove(lease: Lease): Promise<void>;

  /** Message counts by state, without reading every message. */
  counts(): Promise<QueueCounts>;
  /** Lists messages (optionally of some states); `limit` bounds the answer. */
  list(options?: { states?: readonly QueueState[]; limit?: number }): Promise<QueueEntry[]>;
  /** Earliest due time in `deferred`, if any (so the scheduler can sleep until then). */
  nextDueTime(): Promise<number | undefined>;
  /**
   * One summary per message in the given states (all when omitted), from memory where
   * the store has it; a store may read a record it has not yet summarised.
   */
  summaries(options?: { states?: readonly QueueState[] }): Promise<QueueSummary[]>;

  /** postsuper -h: moves messages (not corrupt) to `hold`. Resolves with the IDs moved. */
  hold(selection: QueueSelection, reason?: string): Promise<QueueId[]>;
  /** postsuper -H: moves held messages to `deferred`, due now. */
  unhold(selection: QueueSelection): Promise<QueueId[]>;
  /** postsuper -d: deletes messages in any state, whatever their recipients. */
  delete(selection: QueueSelection): Promise<QueueId[]>;
  /** postsuper -r: moves messages (not hold or corrupt) back to `incoming`, to be routed afresh. */
  requeue(selection: QueueSelection): Promise<QueueId[]>;
  /** postqueue -f / -i: makes `deferred` messages due now. */
  expedite(selection: QueueSelection): Promise<QueueId[]>;

  /**
   * Calls `listener` when mail may be claimable (a commit, a release to deferred, a
   * requeue). Returns the unsubscribe function. Notifications may be coalesced.
   */
  onAvailable(listener: () => void): () => void;
}
