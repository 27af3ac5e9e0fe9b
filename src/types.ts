/**
 * Types shared by every layer: addresses, envelope parameters, recipients, queue IDs, outcomes,
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
 * for the null sender `<>`. `address/address.ts` converts to and from the RFC 5321
 * external (quoted) form.
 *
 * @example
 * ```ts
 * const sender: Address = 'john doe@example.com'; // external form: "john doe"@example.com
 * const nullSender: Address = '';
 * ```
 */
export type Address = string;

/**
 * A queue ID: `[A-Za-z0-9]` only, sortable by arrival, unique across restarts and nodes.
 *
 * @example
 * ```ts
 * const id: QueueId = new QueueIdGenerator().next();
 * isQueueId(id); // true
 * ```
 */
export type QueueId = string;

/**
 * A recipient's id, stable for the life of its message (Postfix: the record offset).
 *
 * @example
 * ```ts
 * const id: RecipientId = request.recipients[0]!.id;
 * reporter.recipient(id, { status: 'sent', reply: reply(250, '2.0.0', 'Ok') });
 * ```
 */
export type RecipientId = number;

/**
 * RFC 3461 NOTIFY keywords. `['NEVER']` alone, or any of the other three.
 *
 * @example
 * ```ts
 * const notify: DsnNotifyKeyword[] = ['SUCCESS', 'FAILURE'];
 * ```
 */
export type DsnNotifyKeyword = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/**
 * RFC 3461 RET.
 *
 * @example
 * ```ts
 * tx.setSender('alice@example.com', { ret: 'HDRS' satisfies DsnRet });
 * ```
 */
export type DsnRet = 'FULL' | 'HDRS';

/**
 * RFC 1652 / RFC 3030 body type. BINARYMIME is not accepted (as Postfix).
 *
 * @example
 * ```ts
 * tx.setSender('alice@example.com', { bodyType: '8BITMIME' satisfies BodyType });
 * ```
 */
export type BodyType = '7BIT' | '8BITMIME';

/**
 * DSN fields of one recipient (RFC 3461 section 4).
 *
 * @example
 * ```ts
 * const dsn: RecipientDsn = { notify: ['FAILURE'], orcpt: 'rfc822;bob@example.com' };
 * ```
 */
export interface RecipientDsn {
  /** NOTIFY; undefined means the default (FAILURE and DELAY notices). */
  readonly notify?: readonly DsnNotifyKeyword[];
  /** ORCPT as `addr-type;address`, xtext already decoded (`rfc822;user@example.com`). */
  readonly orcpt?: string;
}

/**
 * A recipient as handed to the Submission port, before it has an id.
 *
 * @example
 * ```ts
 * tx.addRecipient({ address: 'bob@example.com', notify: ['NEVER'] } satisfies NewRecipient);
 * ```
 */
export interface NewRecipient extends RecipientDsn {
  /** The recipient, in internal form (see {@link Address}). */
  readonly address: Address;
  /**
   * The address as the client first gave it, before any rewriting (Postfix's `O`
   * record: X-Original-To and the DSN Original-Recipient when no ORCPT was given).
   * Defaults to `address`.
   */
  readonly originalAddress?: Address;
}

/**
 * An envelope recipient with its stable id.
 *
 * @example
 * ```ts
 * for (const r of request.recipients) console.log(r.id, r.address, r.originalAddress);
 * ```
 */
export interface Recipient extends RecipientDsn {
  /** Stable id, used to report this recipient's outcome. */
  readonly id: RecipientId;
  /** The recipient after rewriting: where the mail goes. */
  readonly address: Address;
  /** The recipient as first received (see NewRecipient). */
  readonly originalAddress: Address;
}

/**
 * Envelope parameters given with the sender (MAIL FROM).
 *
 * @example
 * ```ts
 * tx.setSender('alice@example.com', { envid: 'order-42', ret: 'HDRS', smtputf8: false });
 * ```
 */
export interface SenderParams {
  /** RFC 3461 ENVID, xtext decoded. */
  readonly envid?: string;
  /** RFC 3461 RET: what a bounce returns (full message or headers). */
  readonly ret?: DsnRet;
  /** RFC 1652 BODY=; `7BIT` when not given. */
  readonly bodyType?: BodyType;
  /** RFC 6531: the client asked for SMTPUTF8 handling. */
  readonly smtputf8?: boolean;
  /** SIZE= as declared by the client (a hint; limits are enforced on what arrives). */
  readonly declaredSize?: number;
  /**
   * `sendmail -F`: the sender's full name, used when Cleanup adds a missing From:
   * header (`From: Full Name <sender>`), as Postfix does with its full-name record.
   */
  readonly fullName?: string;
}

/**
 * What a delivery attempt did for one recipient.
 *
 * @example
 * ```ts
 * const status: RecipientStatus = reply.transient ? 'deferred' : 'bounced';
 * ```
 */
export type RecipientStatus = 'sent' | 'deferred' | 'bounced';

/**
 * One recipient's outcome. `reply` carries the code and enhanced status (the remote
 * server's, or one the agent made); `relay` is Postfix's `relay=` log field.
 *
 * @example
 * ```ts
 * const result: RecipientResult = {
 *   status: 'sent',
 *   reply: reply(250, '2.0.0', 'delivered to maildir'),
 *   relay: 'local',
 * };
 * ```
 */
export interface RecipientResult {
  /** Whether the recipient was delivered, deferred or bounced. */
  readonly status: RecipientStatus;
  /** The reply that explains the status (logged as `dsn=` and the text in parentheses). */
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

/**
 * The network peer of a receiver.
 *
 * @example
 * ```ts
 * const client: ClientInfo = { address: '192.0.2.1', port: 50123, name: 'unknown' };
 * ```
 */
export interface ClientInfo {
  /** Numeric address (`192.0.2.1`, `2001:db8::1`), or '' for none (local submission). */
  readonly address: string;
  /** The client's TCP port. */
  readonly port?: number;
  /** Verified reverse name, or `unknown` (Postfix's client name). */
  readonly name?: string;
}

/**
 * TLS facts of a session, for Received headers and policy.
 *
 * @example
 * ```ts
 * const tls: TlsInfo = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256 };
 * ```
 */
export interface TlsInfo {
  /** The TLS version (`TLSv1.3`). */
  readonly protocol: string;
  /** The cipher suite name. */
  readonly cipher: string;
  /** The cipher's key size in bits. */
  readonly bits?: number;
}

/**
 * Where a submission comes from: drives Received, header fixing and checks.
 *
 * @example
 * ```ts
 * const source: SubmissionSource = { component: 'api', protocol: 'local', localUser: 'www-data' };
 * const tx = await cleanup.open(source);
 * ```
 */
export interface SubmissionSource {
  /** The receiving component, as in logs: `smtpd`, `qmqpd`, `pickup`, `bounce`, `local`, `api`. */
  readonly component: string;
  /** Received `with` protocol: `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPSA`, `UTF8SMTPS`, `QMQP`, `local`... */
  readonly protocol: string;
  /** The network peer, for `Received:` and client checks. */
  readonly client?: ClientInfo;
  /** HELO/EHLO argument as given by the client. */
  readonly helo?: string;
  /** TLS facts of the session, when it used TLS. */
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

/**
 * Actions a receiver or a check may attach to a message before commit (access(5), header_checks(5)).
 *
 * @example
 * ```ts
 * tx.apply({ type: 'prepend', header: 'X-Checked: yes' });
 * tx.apply({ type: 'hold', reason: 'manual review' });
 * ```
 */
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
 *
 * @example
 * ```ts
 * const result: SubmissionResult = await tx.commit();
 * if (result.reply.positive) console.log('queued as', result.queueId);
 * ```
 */
export interface SubmissionResult {
  /** The reply to give the client: 250 when the message is durable. */
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
 *
 * @example
 * ```ts
 * const tx = await port.open({ component: 'api', protocol: 'local' });
 * try {
 *   tx.setSender('alice@example.com');
 *   tx.addRecipient({ address: 'bob@example.com' });
 *   tx.content.end('Subject: hi\r\n\r\nHello\r\n');
 *   console.log((await tx.commit()).reply.toString());
 * } catch (err) {
 *   await tx.abort();
 *   throw err;
 * }
 * ```
 */
export interface SubmissionTransaction {
  /** The queue ID the message will have. */
  readonly queueId: QueueId;
  /** Sets the envelope sender (MAIL FROM) and its parameters. */
  setSender(sender: Address, params?: SenderParams): void;
  /** Adds an envelope recipient (RCPT TO). */
  addRecipient(recipient: NewRecipient): void;
  /** Attaches an action (hold, discard, redirect, ...) to the message. */
  apply(action: SubmissionAction): void;
  /** Takes the message content: headers and body, CRLF line ends, dot-unstuffed. */
  readonly content: Writable;
  /**
   * Ends the content if needed and makes the message durable; resolves with the reply to give.
   */
  commit(): Promise<SubmissionResult>;
  /** Drops the transaction and everything written so far. */
  abort(): Promise<void>;
}

/**
 * The Submission port: the one way into the queue. Cleanup implements it; receivers,
 * Pickup, Bounce, forwarding and the public `submit()` use it.
 *
 * @example
 * ```ts
 * async function submit(port: SubmissionPort, text: string): Promise<SubmissionResult> {
 *   const tx = await port.open({ component: 'api', protocol: 'local' });
 *   tx.setSender('');
 *   tx.addRecipient({ address: 'postmaster@example.com' });
 *   tx.content.end(text);
 *   return tx.commit();
 * }
 * ```
 */
export interface SubmissionPort {
  /** Opens a transaction; resolves when it has a queue ID. */
  open(source: SubmissionSource): Promise<SubmissionTransaction>;
}

/**
 * A cancellable timer from a Clock.
 *
 * @example
 * ```ts
 * const timer: TimerHandle = clock.setTimeout(() => console.log('tick'), 1000);
 * timer.cancel();
 * ```
 */
export interface TimerHandle {
  /** Stops the timer; does nothing when it already ran. */
  cancel(): void;
}

/**
 * Time, injected so tests can run a queue's five days in milliseconds.
 *
 * @example
 * ```ts
 * const clock: Clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
 * const mta = new Mta({}, { clock });
 * ```
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once after `ms`; the timer never keeps the process alive. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

/**
 * An MX record.
 *
 * @example
 * ```ts
 * const records: MxRecord[] = await new DnsResolver().resolveMx('example.com');
 * ```
 */
export interface MxRecord {
  /** The mail exchanger's host name. */
  readonly exchange: string;
  /** The MX preference: lower is tried first. */
  readonly priority: number;
}

/**
 * DNS, injected. Failures reject with an Error whose `code` is a `node:dns` code
 * (`ENOTFOUND`, `ENODATA` = no such record, `ESERVFAIL`/`ETIMEOUT` = try again).
 * The default uses `dns.promises.Resolver` — never `dns.lookup`, which shares libuv's
 * thread pool with every fsync.
 *
 * @example
 * ```ts
 * const resolver: Resolver = {
 *   resolveMx: async () => [{ exchange: 'mx.test', priority: 10 }],
 *   resolve4: async () => ['127.0.0.1'],
 *   resolve6: async () => [],
 *   reverse: async () => [],
 *   resolveTxt: async () => [],
 * };
 * const mta = new Mta({}, { resolver });
 * ```
 */
export interface Resolver {
  /** MX records of `name`. */
  resolveMx(name: string): Promise<MxRecord[]>;
  /** IPv4 addresses of `name`. */
  resolve4(name: string): Promise<string[]>;
  /** IPv6 addresses of `name`. */
  resolve6(name: string): Promise<string[]>;
  /** PTR names of an IP address. */
  reverse(address: string): Promise<string[]>;
  /** TXT records of `name`, each as its character strings. */
  resolveTxt(name: string): Promise<string[][]>;
}

/**
 * Where to connect.
 *
 * @example
 * ```ts
 * const tcp: ConnectTarget = { host: '127.0.0.1', port: 25 };
 * const unix: ConnectTarget = { path: '/var/run/lmtp.sock' };
 * ```
 */
export type ConnectTarget =
  | { readonly host: string; readonly port: number; readonly localAddress?: string }
  | { readonly path: string };

/**
 * Opens connections, injected (TCP, UNIX sockets, or in-memory pairs in tests).
 *
 * @example
 * ```ts
 * const socket = await new NetConnector().connect({ host: '127.0.0.1', port: 25 }, { timeoutMs: 30_000 });
 * ```
 */
export interface Connector {
  /** Opens a connection to `target`; rejects on timeout or when `signal` aborts. */
  connect(
    target: ConnectTarget,
    options: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<Duplex>;
}

/**
 * Severity of a log event.
 *
 * @example
 * ```ts
 * const level: LogLevel = 'warning';
 * ```
 */
export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

/**
 * One structured log event. `text` is what follows `QUEUEID: ` in Postfix's log line
 * (`to=<u@example.com>, relay=local, delay=0.02, dsn=2.0.0, status=sent (delivered)`);
 * `fields` holds the same facts as data.
 *
 * @example
 * ```ts
 * const sink: LogSink = (event: LogEvent) => {
 *   if (event.level === 'error') console.error(event.component, event.queueId, event.text);
 * };
 * ```
 */
export interface LogEvent {
  /** When it happened, in milliseconds since the epoch. */
  readonly time: number;
  /** The severity. */
  readonly level: LogLevel;
  /** Postfix program name: `smtpd`, `cleanup`, `qmgr`, `local`, `smtp`, `bounce`, `master`... */
  readonly component: string;
  /** The message the event is about, if any. */
  readonly queueId?: QueueId;
  /** The log text, as in Postfix's log line after `QUEUEID: `. */
  readonly text: string;
  /** The same facts as data (`to`, `relay`, `dsn`, `status`...). */
  readonly fields?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Postfix `syslog_name` of the logger that logged it, when not the main one (`postern/submission`). */
  readonly syslogName?: string;
}

/**
 * Receives log events.
 *
 * @example
 * ```ts
 * const logger = new Logger([(event) => console.log(formatLogLine(event))]);
 * ```
 */
export type LogSink = (event: LogEvent) => void;
