/**
 * The PosternError tree: every error Postern throws has a stable `code`
 * (`POSTERN_ERR_*`), says what is wrong and what to do, and — where it concerns mail —
 * carries the SmtpReply a client or a DSN should see, kept apart from the logged reason.
 *
 * Postfix counterpart: none as such; Postfix folds errors into status bits that map to
 * (code, dsn, text). The rule carried over: when in doubt, defer — an error that is not
 * classified as permanent is `temporary`.
 *
 * @module
 */

import { SmtpReply } from './smtp-reply.js';

const BRAND = Symbol.for('postern.error');

export interface PosternErrorOptions {
  cause?: unknown;
}

/** Base class. `PosternError.is(x)` works across copies of the package. */
export class PosternError extends Error {
  readonly code: string;
  readonly [BRAND] = true;

  constructor(code: string, message: string, options: PosternErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }

  static is(value: unknown): value is PosternError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [BRAND]?: boolean })[BRAND] === true
    );
  }
}

/** A configuration value is missing or wrong. The message names the key and the fix. */
export class ConfigError extends PosternError {
  readonly key: string | undefined;
  constructor(message: string, key?: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_CONFIG', message, options);
    this.key = key;
  }
}

/**
 * An error that concerns one message or recipient and has a reply for the client.
 * `reason` is for the log; `reply` is what the peer sees.
 */
export class SmtpError extends PosternError {
  readonly reply: SmtpReply;
  readonly reason: string;
  constructor(
    reply: SmtpReply,
    reason?: string,
    options?: PosternErrorOptions & { code?: string },
  ) {
    super(options?.code ?? 'POSTERN_ERR_SMTP', reason ?? reply.toString(), options);
    this.reply = reply;
    this.reason = reason ?? reply.text;
  }

  get temporary(): boolean {
    return !this.reply.permanent;
  }
}

/** Kinds of lookup failure: `retry` defers the mail, `config` is an operator error. */
export type TableErrorKind = 'retry' | 'config';

/** A LookupTable could not answer. Never cached. */
export class TableError extends PosternError {
  readonly kind: TableErrorKind;
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

/** A queue write was attempted under a lease that has expired or was taken over. */
export class LeaseLostError extends PosternError {
  readonly queueId: string;
  constructor(
    queueId: string,
    message = 'the lease on this message was lost; another owner has it',
  ) {
    super('POSTERN_ERR_LEASE_LOST', `${queueId}: ${message}`);
    this.queueId = queueId;
  }
}

/** The queue store cannot do what was asked (I/O error, corrupt file, closed store). */
export class QueueStoreError extends PosternError {
  readonly queueId: string | undefined;
  constructor(message: string, queueId?: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_QUEUE_STORE', queueId ? `${queueId}: ${message}` : message, options);
    this.queueId = queueId;
  }
}

/** A queued message file or row is damaged and was moved aside. */
export class CorruptMessageError extends QueueStoreError {
  constructor(queueId: string, message: string, options?: PosternErrorOptions) {
    super(`corrupt queue file: ${message}`, queueId, options);
  }
}

/** Turns anything thrown into a reply: an SmtpError keeps its own, all else defers. */
export function replyFor(error: unknown, fallback = 'internal error, try again later'): SmtpReply {
  if (error instanceof SmtpError) return error.reply;
  return new SmtpReply(451, '4.3.0', fallback);
}
