/**
 * Types shared by every layer: addresses, envelopes, recipients, queue IDs, outcomes,
 * the Submission port (the one way into the queue), and the injected Clock, Resolver
 * and Connector.
 *
 * Postfix counterpart: the records of a queue file (rec_type.h) and the
 * cleanup(8) client protocol (cleanup_user.h, mail_stream.c). Plain data only: no
 * module imports a component to talk to another; `Mta` wires implementations of the
 * interfaces declared here.
 *
 * STANDARDS: RFC 5321 (envelope), RFC 3461 (DSN parameters), RFC 6531 (SMTPUTF8),
 * RFC 3463 (enhanced status, carried by SmtpReply).
 *
 * @module
 */

import type { Duplex, Writable } from 'node:stream';
import type { SmtpReply } from './smtp-reply.js';

/**
 * An envelope address in Postfix's internal form: the local part unquoted
 * (`"john doe"@example.com` is `john doe@example.com`), the domain as given, and `''`
 * for the null sender `<>`. `rewrite/address.ts` converts to and from the RFC 5321
 * external (quoted) form.
 */
export type Address = string;

/** A queue ID: `[A-Za-z0-9]` only, sortable by arrival, unique across restarts and nodes. */
export type QueueId = string;

/** A recipient's id, stable for the life of its message (Postfix: the record offset). */
export type RecipientId = number;

/** RFC 3461 NOTIFY keywords. `['NEVER']` alone, or any of the other three. */
export type DsnNotifyKeyword = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** RFC 3461 RET. */
export type DsnRet = 'FULL' | 'HDRS';

/** RFC 1652 / RFC 3030 body type. BINARYMIME is not accepted (as Postfix). */
export type BodyType = '7BIT' | '8BITMIME';

/** DSN fields of one recipient (RFC 3461 section 4). */
export interface RecipientDsn {
  /** NOTIFY; undefined means the default (FAILURE and DELAY notices). */
  readonly notify?: readonly DsnNotifyKeyword[];
  /** ORCPT as `addr-type;address`, xtext already decoded (`rfc822;user@example.com`). */
  readonly orcpt?: string;
}

/** A recipient as handed to the Submission port, before it has an id. */
export interface NewRecipient extends RecipientDsn {
  readonly address: Address;
  /**
   * The address as the client first gave it, before any rewriting (Postfix's `O`
   * record: X-Original-To and the DSN Original-Recipient when no ORCPT was given).
   * Defaults to `address`.
   */
  readonly originalAddress?: Address;
}

/** An envelope recipient with its stable id. */
export interface Recipient extends RecipientDsn {
  readonly id: RecipientId;
  /** The recipient after rewriting: where the mail goes. */
  readonly address: Address;
  /** The recipient as first received (see NewRecipient). */
  readonly originalAddress: Address;
}

/** Envelope parameters given with the sender (MAIL FROM). */
export interface SenderParams {
  /** RFC 3461 ENVID, xtext decoded. */
  readonly envid?: string;
  readonly ret?: DsnRet;
  readonly bodyType?: BodyType;
  /** RFC 6531: the client asked for SMTPUTF8 handling. */
  readonly smtputf8?: boolean;
  /** SIZE= as declared by the client (a hint; limits are enforced on what arrives). */
  readonly declaredSize?: number;
}

/** A message's envelope. */
export interface Envelope {
  readonly sender: Address;
  readonly recipients: readonly Recipient[];
  readonly envid?: string;
  readonly ret?: DsnRet;
  readonly bodyType: BodyType;
  readonly smtputf8: boolean;
}

/** What a delivery attempt did for one recipient. */
export type RecipientStatus = 'sent' | 'deferred' | 'bounced';

/**
 * One recipient's outcome. `reply` carries the code and enhanced status (the remote
 * server's, or one the agent made); `relay` is Postfix's `relay=` log field.
 */
export interface RecipientResult {
  readonly status: RecipientStatus;
  readonly reply: SmtpReply;
  /** `relay=` in the log: `mx.example.com[192.0.2.1]:25`, `local`, `none`. */
  readonly relay?: string;
  /**
   * RFC 3464 Action for a success: `delivered` (final delivery), `relayed` (handed to a
   * system that does not do DSN), `expanded` (alias or list). Default `delivered`.
   */
  readonly action?: 'delivered' | 'relayed' | 'expanded';
  /** Remote-MTA for the DSN (`dns; mx.example.com`), when the reply came from one. */
  readonly remoteMta?: string;
}

/** The network peer of a receiver. */
export interface ClientInfo {
  /** Numeric address (`192.0.2.1`, `2001:db8::1`), or '' for none (local submission). */
  readonly address: string;
  readonly port?: number;
  /** Verified reverse name, or `unknown` (Postfix's client name). */
  readonly name?: string;
}

/** TLS facts of a session, for Received headers and policy. */
export interface TlsInfo {
  readonly protocol: string;
  readonly cipher: string;
  readonly bits?: number;
}

/** Where a submission comes from: drives Received, header fixing and checks. */
export interface SubmissionSource {
  /** The receiving component, as in logs: `smtpd`, `qmqpd`, `pickup`, `bounce`, `local`, `api`. */
  readonly component: string;
  /** Received `with` protocol: `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPSA`, `UTF8SMTPS`, `QMQP`, `local`... */
  readonly protocol: string;
  readonly client?: ClientInfo;
  /** HELO/EHLO argument as given by the client. */
  readonly helo?: string;
  readonly tls?: TlsInfo;
  /** The authenticated SASL user name, if any. */
  readonly authUser?: string;
  /** The local user who submitted (pickup, sendmail), for `Received: by HOST (Postern, from userid N)`. */
  readonly localUser?: string;
  /**
   * Mail Postern makes itself (bounces, notices): content checks are skipped unless
   * `internalMailFilterClasses` says otherwise, and no headers are added.
   */
  readonly internal?: boolean;
}

/** Actions a receiver or a check may attach to a message before commit (access(5), header_checks(5)). */
export type SubmissionAction =
  | { readonly type: 'hold'; readonly reason?: string }
  | { readonly type: 'discard'; readonly reason?: string }
  | { readonly type: 'redirect'; readonly address: Address }
  | { readonly type: 'bcc'; readonly address: Address }
  /** `transport:nexthop`, Postfix's FILTER and content_filter. */
  | { readonly type: 'filter'; readonly nexthop: string }
  /** A header line without CRLF (`X-Checked: yes`), prepended as received. */
  | { readonly type: 'prepend'; readonly header: string }
  /**
   * `sendmail -t`: also take recipients from the To, Cc and Bcc headers (the Resent-
   * ones when present). Must be applied before the content's header block ends.
   */
  | { readonly type: 'extractRecipients' };

/**
 * The outcome of a commit. A positive reply means the message is durable (or was
 * deliberately discarded); anything else is the reply to give the client — the
 * transaction is then gone and nothing of it remains in the queue.
 */
export interface SubmissionResult {
  readonly reply: SmtpReply;
  /** Set when the message was queued. */
  readonly queueId?: QueueId;
}

/**
 * One message on its way into the queue (Postfix: a cleanup(8) session).
 *
 * Call order: `setSender`, `addRecipient` and `apply` may come at any time before
 * `commit()`, before, during or after the content (QMQP sends the content first).
 * `content` takes the message (headers and body) with CRLF line ends, dot-unstuffed;
 * it honours backpressure (`write()` returning false means wait for `drain`) and
 * never emits `error`: every failure — size, hops, a content check, a store write —
 * is held and reported by `commit()`, so a receiver simply streams to the end and
 * then replies. `commit()` ends `content` if the caller did not. `abort()` leaves
 * nothing behind and may be called at any time, also after a failed commit.
 * An open transaction holds no database transaction or pooled connection.
 */
export interface SubmissionTransaction {
  readonly queueId: QueueId;
  setSender(sender: Address, params?: SenderParams): void;
  addRecipient(recipient: NewRecipient): void;
  apply(action: SubmissionAction): void;
  readonly content: Writable;
  commit(): Promise<SubmissionResult>;
  abort(): Promise<void>;
}

/**
 * The Submission port: the one way into the queue. Cleanup implements it; receivers,
 * Pickup, Bounce, forwarding and the public `submit()` use it.
 */
export interface SubmissionPort {
  /** Opens a transaction; resolves when it has a queue ID. */
  open(source: SubmissionSource): Promise<SubmissionTransaction>;
}

/** A cancellable timer from a Clock. */
export interface TimerHandle {
  cancel(): void;
}

/** Time, injected so tests can run a queue's five days in milliseconds. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once after `ms`; the timer never keeps the process alive. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/** An MX record. */
export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

/**
 * DNS, injected. Failures reject with an Error whose `code` is a `node:dns` code
 * (`ENOTFOUND`, `ENODATA` = no such record, `ESERVFAIL`/`ETIMEOUT` = try again).
 * The default uses `dns.promises.Resolver` — never `dns.lookup`, which shares libuv's
 * thread pool with every fsync.
 */
export interface Resolver {
  resolveMx(name: string): Promise<MxRecord[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  reverse(address: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
}

/** Where to connect. */
export type ConnectTarget =
  | { readonly host: string; readonly port: number; readonly localAddress?: string }
  | { readonly path: string };

/** Opens connections, injected (TCP, UNIX sockets, or in-memory pairs in tests). */
export interface Connector {
  connect(
    target: ConnectTarget,
    options: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<Duplex>;
}

/** Severity of a log event. */
export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

/**
 * One structured log event. `text` is what follows `QUEUEID: ` in Postfix's log line
 * (`to=<u@example.com>, relay=local, delay=0.02, dsn=2.0.0, status=sent (delivered)`);
 * `fields` holds the same facts as data.
 */
export interface LogEvent {
  readonly time: number;
  readonly level: LogLevel;
  /** Postfix program name: `smtpd`, `cleanup`, `qmgr`, `local`, `smtp`, `bounce`, `master`... */
  readonly component: string;
  readonly queueId?: QueueId;
  readonly text: string;
  readonly fields?: Readonly<Record<string, string | number | boolean | undefined>>;
}

/** Receives log events. */
export type LogSink = (event: LogEvent) => void;
