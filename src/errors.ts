/**
 * The PosternError tree: every error class Postern defines extends PosternError and has
 * a stable `code` from one closed union, PosternErrorCode (`POSTERN_ERR_*`); its message
 * says what is wrong and what to do, and — where it concerns mail — it carries the
 * SmtpReply a client or a DSN should see, kept apart from the logged reason. Plain
 * Errors remain for a call that breaks an API's rules (starting an Mta twice) and for
 * errors Node.js or a peer library raises, which keep their own `code`.
 *
 * Postfix counterpart: none as such; Postfix folds errors into status bits that map to
 * (code, dsn, text). The rule carried over: when in doubt, defer — an error that is not
 * classified as permanent is `temporary`.
 *
 * @module
 */

import { SmtpReply } from './smtp-reply.js';

const BRAND = Symbol.for('postern.error');

/**
 * Every `code` a PosternError can have.
 *
 * - Configuration and use: `CONFIG` (a wrong or missing setting), `USAGE` (bad command
 *   line arguments), `QUEUE_COMMAND` (a `postern queue` command that cannot be done here).
 * - Mail and protocols: `SMTP` (an SmtpError's reply), `SMTP_LOST`, `SMTP_TIMEOUT`,
 *   `SMTP_PROTOCOL`, `SMTP_TLS`, `SMTP_ABORTED` (an SMTP/LMTP client session that ended
 *   early), `REPLY_SYNTAX` (a server reply that is not SMTP), `NEXTHOP_SYNTAX`,
 *   `MTA_STS`, `QMQP_REFUSED`, `NETSTRING`, `UNEXPECTED_END` (input that ended too soon),
 *   `EXPANSION_LIMIT` (an address mapping that grows without end).
 * - Tables: `TABLE_RETRY` (try again later), `TABLE_CONFIG` (the table is wrong),
 *   `RULE_SYNTAX` (a bad line in a pattern table).
 * - The queue: `QUEUE_STORE` (the store cannot do it, or a queue file is corrupt),
 *   `LEASE_LOST`, `MAILDROP_FILE` (a maildrop file that cannot be read).
 * - Local delivery and files: `NOT_REGULAR`, `UNSAFE_PATH`, `MAILBOX_PATH`,
 *   `MAILBOX_REFUSED`, `LOCK_BUSY`, `TARGET_FILE` (a .forward or :include: file),
 *   `RIGHTS` (the user to deliver as), `CONTENT_READ` (the queued message cannot be
 *   read), `OPTION_LIKE_ARGUMENT` (a command argument that starts with `-`),
 *   `MAILBOX_HELPER` and `HELPER_PROTOCOL` (the mailbox helper process).
 * - `HTTP`: a request the capture server refuses.
 *
 * @example
 * ```ts
 * const temporary: PosternErrorCode[] = ['POSTERN_ERR_TABLE_RETRY', 'POSTERN_ERR_LEASE_LOST'];
 * if (PosternError.is(err) && temporary.includes(err.code)) retryLater();
 * ```
 */
export type PosternErrorCode =
  | 'POSTERN_ERR_CONFIG'
  | 'POSTERN_ERR_USAGE'
  | 'POSTERN_ERR_QUEUE_COMMAND'
  | 'POSTERN_ERR_SMTP'
  | 'POSTERN_ERR_SMTP_LOST'
  | 'POSTERN_ERR_SMTP_TIMEOUT'
  | 'POSTERN_ERR_SMTP_PROTOCOL'
  | 'POSTERN_ERR_SMTP_TLS'
  | 'POSTERN_ERR_SMTP_ABORTED'
  | 'POSTERN_ERR_REPLY_SYNTAX'
  | 'POSTERN_ERR_NEXTHOP_SYNTAX'
  | 'POSTERN_ERR_MTA_STS'
  | 'POSTERN_ERR_QMQP_REFUSED'
  | 'POSTERN_ERR_NETSTRING'
  | 'POSTERN_ERR_UNEXPECTED_END'
  | 'POSTERN_ERR_EXPANSION_LIMIT'
  | 'POSTERN_ERR_TABLE_RETRY'
  | 'POSTERN_ERR_TABLE_CONFIG'
  | 'POSTERN_ERR_RULE_SYNTAX'
  | 'POSTERN_ERR_QUEUE_STORE'
  | 'POSTERN_ERR_LEASE_LOST'
  | 'POSTERN_ERR_MAILDROP_FILE'
  | 'POSTERN_ERR_NOT_REGULAR'
  | 'POSTERN_ERR_UNSAFE_PATH'
  | 'POSTERN_ERR_MAILBOX_PATH'
  | 'POSTERN_ERR_MAILBOX_REFUSED'
  | 'POSTERN_ERR_LOCK_BUSY'
  | 'POSTERN_ERR_TARGET_FILE'
  | 'POSTERN_ERR_RIGHTS'
  | 'POSTERN_ERR_CONTENT_READ'
  | 'POSTERN_ERR_OPTION_LIKE_ARGUMENT'
  | 'POSTERN_ERR_MAILBOX_HELPER'
  | 'POSTERN_ERR_HELPER_PROTOCOL'
  | 'POSTERN_ERR_HTTP';

/**
 * Options every PosternError takes.
 *
 * @example
 * ```ts
 * throw new QueueStoreError('cannot read the queue file', queueId, { cause: err });
 * ```
 */
export interface PosternErrorOptions {
  /** The underlying error, kept as `error.cause`. */
  cause?: unknown;
}

/**
 * Base class. `PosternError.is(x)` works across copies of the package.
 *
 * @example
 * ```ts
 * try {
 *   resolveMtaConfig(JSON.parse(text));
 * } catch (err) {
 *   if (PosternError.is(err)) console.error(`${err.code}: ${err.message}`);
 * }
 * ```
 */
export class PosternError extends Error {
  /** Stable machine-readable code: `POSTERN_ERR_CONFIG`, `POSTERN_ERR_SMTP`, ... */
  readonly code: PosternErrorCode;
  /** Marks Postern errors for `PosternError.is` across package copies. @internal */
  readonly [BRAND] = true;

  constructor(code: PosternErrorCode, message: string, options: PosternErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }

  /** True when `value` is a PosternError, also one made by another copy of the package. */
  static is(value: unknown): value is PosternError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [BRAND]?: boolean })[BRAND] === true
    );
  }
}

/**
 * A configuration value is missing or wrong. The message names the key and the fix.
 *
 * @example
 * ```ts
 * throw new ConfigError('mynetworks: "10.0.0.0/33" is not a network; write 10.0.0.0/8', 'mynetworks');
 * ```
 */
export class ConfigError extends PosternError {
  /** The configuration key that is wrong, when there is one. */
  readonly key: string | undefined;
  /**
   * Every problem found when a whole configuration was checked, each with its own key;
   * `[this]` for an error that stands alone.
   */
  readonly problems: readonly ConfigError[];
  constructor(
    message: string,
    key?: string,
    options?: PosternErrorOptions & { readonly problems?: readonly ConfigError[] },
  ) {
    super('POSTERN_ERR_CONFIG', message, options);
    this.key = key;
    this.problems = options?.problems?.length ? options.problems : [this];
  }

  /**
   * One error for all the problems of a configuration: the problem itself when there is
   * one, else an error that lists them (its `key` is the first problem's).
   *
   * @example
   * ```ts
   * const problems = [new ConfigError('a: wrong', 'a'), new ConfigError('b: wrong', 'b')];
   * throw ConfigError.of(problems); // "2 problems in the configuration: ..."
   * ```
   */
  static of(problems: readonly ConfigError[]): ConfigError {
    const [first] = problems;
    if (first === undefined) throw new RangeError('ConfigError.of(): no problems given');
    if (problems.length === 1) return first;
    return new ConfigError(
      `${problems.length} problems in the configuration:\n${problems.map((p) => `  ${p.message}`).join('\n')}`,
      first.key,
      { problems },
    );
  }
}

/**
 * An error that concerns one message or recipient and has a reply for the client.
 * `reason` is for the log; `reply` is what the peer sees.
 *
 * @example
 * ```ts
 * throw new SmtpError(reply(550, '5.1.1', 'no such user'), 'alice: not in the user database');
 * ```
 */
export class SmtpError extends PosternError {
  /** The reply a client or a DSN sees. */
  readonly reply: SmtpReply;
  /** The reason for the log, which may say more than the reply. */
  readonly reason: string;
  constructor(
    reply: SmtpReply,
    reason?: string,
    options?: PosternErrorOptions & { code?: PosternErrorCode },
  ) {
    super(options?.code ?? 'POSTERN_ERR_SMTP', reason ?? reply.toString(), options);
    this.reply = reply;
    this.reason = reason ?? reply.text;
  }

  /** True unless the reply is a permanent (5xx) one: when in doubt, defer. */
  get temporary(): boolean {
    return !this.reply.permanent;
  }
}

/**
 * Kinds of lookup failure: `retry` defers the mail, `config` is an operator error.
 *
 * @example
 * ```ts
 * if (err instanceof TableError && (err.kind satisfies TableErrorKind) === 'retry') defer();
 * ```
 */
export type TableErrorKind = 'retry' | 'config';

/**
 * A LookupTable could not answer. Never cached.
 *
 * @example
 * ```ts
 * throw new TableError('retry', 'pgsql:users', 'the database is not reachable; try again');
 * ```
 */
export class TableError extends PosternError {
  /** `retry`: try the lookup again later; `config`: the table is wrong and needs fixing. */
  readonly kind: TableErrorKind;
  /** The table's name (`hash:/etc/postern/aliases`). */
  readonly table: string;
  constructor(kind: TableErrorKind, table: string, message: string, options?: PosternErrorOptions) {
    super(
      kind === 'retry' ? 'POSTERN_ERR_TABLE_RETRY' : 'POSTERN_ERR_TABLE_CONFIG',
      `${table}: ${message}`,
      options,
    );
    this.kind = kind;
    this.table = table;
  }
}

/**
 * A queue write was attempted under a lease that has expired or was taken over.
 *
 * @example
 * ```ts
 * throw new LeaseLostError(lease.queueId);
 * ```
 */
export class LeaseLostError extends PosternError {
  /** The message whose lease was lost. */
  readonly queueId: string;
  constructor(
    queueId: string,
    message = 'the lease on this message was lost; another owner has it',
  ) {
    super('POSTERN_ERR_LEASE_LOST', `${queueId}: ${message}`);
    this.queueId = queueId;
  }
}

/**
 * The queue store cannot do what was asked (I/O error, corrupt file, closed store).
 *
 * @example
 * ```ts
 * throw new QueueStoreError('the queue directory is not writable', undefined, { cause: err });
 * ```
 */
export class QueueStoreError extends PosternError {
  /** The message concerned, when there is one. */
  readonly queueId: string | undefined;
  /**
   * The store cannot be written at all for now (its database is unreachable) and has
   * logged that once; callers need not log it again for every message it refuses.
   */
  readonly outage: boolean;
  constructor(
    message: string,
    queueId?: string,
    options?: PosternErrorOptions & { outage?: boolean },
  ) {
    super('POSTERN_ERR_QUEUE_STORE', queueId ? `${queueId}: ${message}` : message, options);
    this.queueId = queueId;
    this.outage = options?.outage === true;
  }
}

/**
 * A queued message file or row is damaged and was moved aside.
 *
 * @example
 * ```ts
 * throw new CorruptMessageError(queueId, 'record checksum mismatch');
 * ```
 */
export class CorruptMessageError extends QueueStoreError {
  constructor(queueId: string, message: string, options?: PosternErrorOptions) {
    super(`corrupt queue file: ${message}`, queueId, options);
  }
}

/**
 * Turns anything thrown into a reply: an SmtpError keeps its own, all else defers.
 *
 * @example
 * ```ts
 * replyFor(new SmtpError(reply(554, '5.7.1', 'rejected'))).toString(); // '554 5.7.1 rejected'
 * replyFor(new Error('disk full')).toString(); // '451 4.3.0 internal error, try again later'
 * ```
 */
export function replyFor(error: unknown, fallback = 'internal error, try again later'): SmtpReply {
  if (error instanceof SmtpError) return error.reply;
  return new SmtpReply(451, '4.3.0', fallback);
}
