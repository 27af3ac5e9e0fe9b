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

/**
 * Message states (Postfix's queues).
 *
 * @example
 * ```ts
 * const counts = await store.counts();
 * const states: QueueState[] = ['incoming', 'active', 'deferred', 'hold', 'corrupt'];
 * for (const s of states) console.log(s, counts[s]);
 * ```
 */
export type QueueState = 'incoming' | 'active' | 'deferred' | 'hold' | 'corrupt';

/**
 * The per-recipient state kept in the queue.
 *
 * @example
 * ```ts
 * const pending = record.recipients.filter((r) => r.state === ('pending' satisfies StoredRecipientState));
 * ```
 */
export type StoredRecipientState = 'pending' | 'sent' | 'bounced';

/**
 * A recipient as stored, with its last outcome.
 *
 * @example
 * ```ts
 * for (const r of record.recipients) console.log(r.address, r.state, r.last?.text);
 * ```
 */
export interface StoredRecipient extends Recipient {
  /** Pending until a final outcome (sent or bounced) is recorded. */
  readonly state: StoredRecipientState;
  /** The last reason: the final reply, or the last deferral (Postfix's defer log). */
  readonly last?: StoredOutcome;
}

/**
 * An outcome as stored: data only, so every store can serialise it.
 *
 * @example
 * ```ts
 * const outcome: StoredOutcome = { status: 'deferred', code: 451, enhanced: '4.4.1', text: 'connection refused', time: Date.now() };
 * ```
 */
export interface StoredOutcome {
  /** Sent, deferred or bounced. */
  readonly status: RecipientResult['status'];
  /** The reply code. */
  readonly code: number;
  /** The RFC 3463 enhanced status. */
  readonly enhanced: string;
  /** The reply text. */
  readonly text: string;
  /** `relay=` of the attempt (`mx.example.com[192.0.2.1]:25`). */
  readonly relay?: string;
  /** RFC 3464 Action for a success (`delivered`, `relayed`, `expanded`). */
  readonly action?: RecipientResult['action'];
  /** Remote-MTA for the DSN, when the reply came from one. */
  readonly remoteMta?: string;
  /** When it happened, ms since the epoch. */
  readonly time: number;
  /**
   * For a `bounced` outcome: the non-delivery notice covering it has been committed.
   * Until then the message owes a DSN and is not removed (Postfix keeps the bounce log).
   */
  readonly dsnSent?: boolean;
}

/**
 * Everything a store keeps about a message apart from its content.
 *
 * @example
 * ```ts
 * const [claimed] = await store.claim({ owner: 'node-1', limit: 1, now: Date.now(), leaseMs: 60_000 });
 * const record: MessageRecord | undefined = claimed?.record;
 * console.log(record?.queueId, record?.sender, record?.recipients.length);
 * ```
 */
export interface MessageRecord {
  /** Stored format version; a store refuses versions it does not know. */
  readonly formatVersion: 1;
  /** The message's queue ID. */
  readonly queueId: QueueId;
  /** The envelope sender (`''` for the null sender). */
  readonly sender: Address;
  /** Every recipient with its state. */
  readonly recipients: readonly StoredRecipient[];
  /** RFC 3461 ENVID. */
  readonly envid?: string;
  /** RFC 3461 RET. */
  readonly ret?: DsnRet;
  /** RFC 1652 BODY=. */
  readonly bodyType: BodyType;
  /** The message needs SMTPUTF8 (RFC 6531). */
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

/**
 * What Cleanup hands to `commit()`: the record less what the store derives.
 *
 * @example
 * ```ts
 * const writer = await store.create(new QueueIdGenerator().next());
 * writer.content.end('Subject: hi\r\n\r\nHello\r\n');
 * await writer.commit({
 *   queueId: writer.queueId, sender: 'a@example.com', recipients: [{ id: 0, address: 'b@example.com', originalAddress: 'b@example.com' }],
 *   bodyType: '7BIT', smtputf8: false, eightBit: false, size: 23, headerSize: 15,
 *   arrivalTime: Date.now(), warnTime: 0, source: { component: 'api', protocol: 'local' },
 * } satisfies NewMessageRecord);
 * ```
 */
export type NewMessageRecord = Omit<MessageRecord, 'formatVersion' | 'recipients'> & {
  readonly recipients: readonly Recipient[];
  /** Commit straight into `hold` (HOLD action) instead of `incoming`. */
  readonly hold?: boolean;
};

/**
 * A new message being written. `content` takes the message bytes and honours
 * backpressure; it may emit `error` on an I/O failure, which Cleanup catches.
 *
 * @example
 * ```ts
 * const writer: MessageWriter = await store.create(queueId);
 * writer.content.write(headerBytes);
 * await writer.commit(record); // or: await writer.abort()
 * ```
 */
export interface MessageWriter {
  /** The queue ID the message is written under. */
  readonly queueId: QueueId;
  /** Takes the content (CRLF, dot-unstuffed); honours backpressure. */
  readonly content: Writable;
  /**
   * Ends the content (if not ended), stores the record and makes the message durable.
   * Resolves only when a crash can no longer lose it; the message is then visible to
   * `claim()` in `incoming` (or `hold`).
   */
  commit(record: NewMessageRecord): Promise<void>;
  /** Discards everything written; safe to call twice or after a failed commit. */
  abort(): Promise<void>;
  /**
   * Optional: the content written so far (after `content` has ended) as a fresh stream
   * that stays readable after `abort()`. Cleanup uses it to rewrite a message's headers
   * when a content filter adds some and keeps the body; without it such a verdict defers.
   */
  openWritten?(): Promise<Readable>;
}

/**
 * A lease on a claimed message. Treat as opaque; pass it back on every write.
 *
 * @example
 * ```ts
 * const renewed: Lease = await store.renew(lease, Date.now() + 60_000);
 * ```
 */
export interface Lease {
  /** The leased message. */
  readonly queueId: QueueId;
  /** The node holding the lease. */
  readonly owner: string;
  /** Proves the lease is still this holder's. */
  readonly token: string;
  /** Expiry, ms since the epoch. */
  readonly expiresAt: number;
}

/**
 * A claimed message: its record (as of the claim) and the lease over it.
 *
 * @example
 * ```ts
 * const claimed: ClaimedMessage[] = await store.claim(options);
 * for (const { lease, record } of claimed) {
 *   console.log(record.queueId);
 *   await store.release(lease, { state: 'deferred', dueAt: Date.now() + 300_000 });
 * }
 * ```
 */
export interface ClaimedMessage {
  /** The lease; pass it back on every write. */
  readonly lease: Lease;
  /** The message's record as of the claim. */
  readonly record: MessageRecord;
  /** The state it was claimed from. */
  readonly from: 'incoming' | 'deferred';
}

/**
 * Options for `claim()`.
 *
 * @example
 * ```ts
 * const claimed = await store.claim({ owner: 'node-1', limit: 20, now: clock.now(), leaseMs: 300_000 } satisfies ClaimOptions);
 * ```
 */
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

/**
 * One outcome to record for a recipient.
 *
 * @example
 * ```ts
 * const outcome: RecipientOutcome = {
 *   recipientId: 0,
 *   outcome: { status: 'sent', code: 250, enhanced: '2.0.0', text: 'Ok', time: Date.now() },
 * };
 * await store.recordOutcomes(lease, [outcome]);
 * ```
 */
export interface RecipientOutcome {
  /** The recipient's id in the message. */
  readonly recipientId: RecipientId;
  /** What happened to it. */
  readonly outcome: StoredOutcome;
}

/**
 * Where a released message goes next.
 *
 * @example
 * ```ts
 * await store.release(lease, { state: 'hold', reason: 'manual review' } satisfies ReleaseTarget);
 * ```
 */
export type ReleaseTarget =
  | { readonly state: 'deferred'; readonly dueAt: number; readonly warnTime?: number }
  | { readonly state: 'hold'; readonly reason?: string }
  | { readonly state: 'corrupt'; readonly reason: string };

/**
 * A summary row for listings (mailq, qshape) that needs no content read.
 *
 * @example
 * ```ts
 * const entries: QueueEntry[] = await store.list({ states: ['deferred'], limit: 100 });
 * for (const e of entries) console.log(e.queueId, e.dueAt);
 * ```
 */
export interface QueueEntry {
  /** The message's queue ID. */
  readonly queueId: QueueId;
  /** Which queue it is in. */
  readonly state: QueueState;
  /** The envelope sender. */
  readonly sender: Address;
  /** Content size in bytes. */
  readonly size: number;
  /** Arrival time, ms since the epoch. */
  readonly arrivalTime: number;
  /** For deferred messages: when the next attempt is due. */
  readonly dueAt?: number;
  /** Each recipient with its state and last reason. */
  readonly recipients: readonly {
    readonly address: Address;
    readonly state: StoredRecipientState;
    readonly reason?: string;
  }[];
}

/**
 * Queue sizes by state.
 *
 * @example
 * ```ts
 * const { deferred, hold }: QueueCounts = await store.counts();
 * ```
 */
export type QueueCounts = Record<QueueState, number>;

/**
 * Which messages a queue operation acts on: these queue IDs, or every message.
 *
 * @example
 * ```ts
 * await store.hold(['4Xk9Qz1Ab3kF2'] satisfies QueueSelection, 'suspicious');
 * await store.unhold('ALL');
 * ```
 */
export type QueueSelection = readonly QueueId[] | 'ALL';

/**
 * What a store keeps in memory about each message for the inspection views (qshape)
 * and per-destination flushes, so they never read message files. Domains are those
 * of the recipients still pending, lower-cased, each once.
 *
 * @example
 * ```ts
 * const summaries: QueueSummary[] = await store.summaries({ states: ['deferred'] });
 * console.log(formatShape(queueShape(summaries, Date.now())));
 * ```
 */
export interface QueueSummary {
  /** The message's queue ID. */
  readonly queueId: QueueId;
  /** Which queue it is in. */
  readonly state: QueueState;
  /** Arrival time, ms since the epoch. */
  readonly arrivalTime: number;
  /** Content size in bytes. */
  readonly size: number;
  /** The envelope sender. */
  readonly sender: Address;
  /** The domains of the pending recipients (qshape's rows). */
  readonly domains: readonly string[];
  /** Recipients still pending. */
  readonly pending: number;
}

/**
 * A cluster-wide slot for one delivery to a destination, from
 * `QueueStore.acquireDestinationSlot()`.
 *
 * @example
 * ```ts
 * const slot = await store.acquireDestinationSlot?.('smtp:example.com', 20);
 * try { await deliver(); } finally { await slot?.release(); }
 * ```
 */
export interface DestinationSlot {
  /** Gives the slot back; safe to call twice. */
  release(): Promise<void>;
}

/**
 * A node sharing a queue store (PostgresQueueStore), as `QueueStore.nodes()` reports
 * it: one entry per running store, i.e. per `postern serve` process.
 *
 * @example
 * ```ts
 * for (const n of (await store.nodes?.()) ?? [])
 *   console.log(n.node, n.alive ? 'alive' : 'dead', n.heartbeatAge, n.leasedMessages);
 * ```
 */
export interface QueueNode {
  /** The node's name (`nodeId`), or `pid-N` when its store was opened without one. */
  readonly node: string;
  /** Seconds since its last heartbeat, by the database's clock. */
  readonly heartbeatAge: number;
  /** Its heartbeat is younger than `nodeTimeoutMs`; a dead node's leases are taken over. */
  readonly alive: boolean;
  /** When it started, ms since the epoch. */
  readonly startedAt: number;
  /** Messages it holds under a lease now. */
  readonly leasedMessages: number;
  /** Recipients still pending in those messages. */
  readonly leasedRecipients: number;
}

/**
 * Pluggable queue storage. Implementations: MemoryQueueStore (tests; can be crashed
 * and reopened), FileQueueStore (the embedded default), PostgresQueueStore.
 * One conformance suite (test/unit/queue/stores/store-conformance.ts) runs against each.
 *
 * @example
 * ```ts
 * const store: QueueStore = new FileQueueStore({ directory: './var/queue' });
 * await store.open();
 * console.log(await store.counts());
 * await store.close();
 * const mta = new Mta({ queueStore: store });
 * ```
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

  /**
   * Optional: calls `visit` with the summary of every message in the given states, in
   * no particular order, without building a list — for views of very large queues
   * (qshape). The object passed is valid only during the call; copy what you keep.
   * Stores without it are read through summaries().
   */
  forEachSummary?(
    visit: (summary: QueueSummary) => void,
    options?: { states?: readonly QueueState[] },
  ): Promise<void>;

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
   * Optional, for a store several nodes share: takes one of `limit` cluster-wide slots
   * for `destination` (`transport:nexthop`), or resolves undefined at once when all are
   * taken. The QueueManager holds a slot for each delivery, so N nodes together stay
   * within a destination's concurrency limit. A node that dies gives its slots back.
   */
  acquireDestinationSlot?(destination: string, limit: number): Promise<DestinationSlot | undefined>;

  /**
   * Optional, for a store several nodes share: every node with its heartbeat and what
   * it holds (`postern db status`, the metrics).
   */
  nodes?(): Promise<QueueNode[]>;

  /**
   * Optional: statements sent to the store's database since it was opened (each one
   * network round trip), for the metrics and benchmarks.
   */
  readonly roundTrips?: number;

  /**
   * Calls `listener` when mail may be claimable (a commit, a release to deferred, a
   * requeue). Returns the unsubscribe function. Notifications may be coalesced.
   */
  onAvailable(listener: () => void): () => void;
}
