/**
 * MailboxDelivery: one message into one Maildir or mbox, with local(8)'s headers, and
 * the outcome as a delivery result — shared by local(8) and virtual(8).
 *
 * Postfix counterpart: local/mailbox.c + local/maildir.c, virtual/mailbox.c +
 * virtual/maildir.c (the same code twice there; once here). Maildir content keeps the
 * queue's CRLF line ends (as Postern always has; Dovecot and Python's mailbox read
 * both); mbox content gets a From_ line, LF line ends, `>From ` quoting and a trailing
 * empty line (mail_copy.c).
 *
 * Outcomes: `250 2.0.0 delivered to maildir|mailbox`; a message over the size limit,
 * an executable, linked or non-regular mbox bounces (5.2.2, 5.7.1, 5.2.0); a lock held
 * by someone else (4.2.0), an unreadable queue file, or any other file-system error
 * defers — when in doubt, defer.
 *
 * A target with `rights` is written by a helper process running as that user
 * (mailbox-helper-pool.ts) with the same bytes and the same writers. Its failures map
 * as Postfix's file.c and maildir.c do: what the user's own rights cannot do (permission
 * denied, no such directory, a symbolic link) bounces 5.2.0 with the reason; a directory
 * on the way that others may write defers 4.2.0, like `strict_mailbox_ownership`; a full
 * disk, a busy lock, an interrupted or failed helper defers.
 *
 * @module
 */

import { systemClock } from '../clock.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Address, Clock } from '../types.js';
import type { DeliveryRights } from './delivery-rights.js';
import type { DotLockOptions } from './dotlock.js';
import { LockBusyError } from './dotlock.js';
import { ContentReadError, contentChunks, copyMessage, deliveryHeaders } from './mail-copy.js';
import type { MailboxHelperPool } from './mailbox-helper-pool.js';
import type { HelperResult } from './mailbox-helper-protocol.js';
import { MaildirWriter } from './maildir.js';
import { fromLine, MailboxRefusedError, MboxWriter } from './mbox.js';
import type { DeliveryRequest } from './types.js';

/**
 * Where to write.
 *
 * @example
 * ```ts
 * const target: MailboxTarget = { path: '/var/mail/vhosts/example.com/alice/', maildir: true, uid: 5000, gid: 5000 };
 * ```
 */
export interface MailboxTarget {
  /** The Maildir directory (ending in `/`) or the mbox file. */
  readonly path: string;
  /** True for Maildir, false for mbox. */
  readonly maildir: boolean;
  /** A Maildir++ folder (maildirfolder marker). */
  readonly folder?: boolean;
  /** Owner of what is created (only effective as root). */
  readonly uid?: number;
  /** Group of what is created (only effective as root). */
  readonly gid?: number;
  /**
   * Write with these rights, in a helper process (Postern runs as root and the place
   * is one the recipient controls); without them the server writes itself.
   * @internal LocalDeliveryAgent's, with `helpers`.
   */
  readonly rights?: DeliveryRights;
  /**
   * Directories at or above this one are the operator's (the mail spool): not checked.
   * @internal
   */
  readonly trustedBase?: string;
  /** A `/file` destination: go on without the dotlock when it cannot be created. */
  readonly file?: boolean;
}

/**
 * The headers to prepend.
 *
 * @example
 * ```ts
 * const headers: MailboxHeaders = { returnPath: request.sender, deliveredTo: 'alice@example.com' };
 * ```
 */
export interface MailboxHeaders {
  /** The envelope sender, for `Return-Path:`. */
  readonly returnPath: Address;
  /** The original recipient, for `X-Original-To:`. */
  readonly originalTo?: Address;
  /** The final recipient, for `Delivered-To:` (also the mail-loop check). */
  readonly deliveredTo?: Address;
}

/**
 * A delivery outcome without `relay`.
 *
 * @example
 * ```ts
 * const outcome: MailboxOutcome = await mailboxes.write(request, target, headers);
 * reporter.recipient(rcpt.id, { ...outcome, relay: 'virtual' });
 * ```
 */
export interface MailboxOutcome {
  /** The recipient's status. */
  readonly status: 'sent' | 'deferred' | 'bounced';
  /** The reply that explains it (`delivered to maildir`, `mailbox full`...). */
  readonly reply: SmtpReply;
}

/**
 * Options for MailboxDelivery.
 *
 * @example
 * ```ts
 * const mailboxes = new MailboxDelivery({ hostname: 'mx.example.com', sizeLimit: 51_200_000 });
 * ```
 */
export interface MailboxDeliveryOptions {
  /** The host name in Maildir file names (`myhostname`). */
  readonly hostname: string;
  /** Bytes; 0 = none. */
  readonly sizeLimit: number;
  /** Dot-lock tuning for mbox files. */
  readonly lock?: DotLockOptions;
  /** @default systemClock */
  readonly clock?: Clock;
  /**
   * Line end of Maildir messages: `'\n'`, as Postfix writes them and mail readers
   * (Dovecot, GNU mailutils, Python) expect; `'\r\n'` keeps the queue's form.
   * @default '\n'
   */
  readonly maildirEol?: '\n' | '\r\n';
  /** Runs writes for targets with `rights` (required for them). @internal */
  readonly helpers?: MailboxHelperPool;
}

const MAILBOX_PROBLEMS = new Set(['EACCES', 'EPERM', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EROFS']);

/**
 * Writes one message to a Maildir or an mbox file with Postfix's prepended headers and
 * turns every failure into a recipient outcome. Postfix counterpart: the mailbox code
 * shared by local(8) and virtual(8).
 *
 * @example
 * ```ts
 * const mailboxes = new MailboxDelivery({ hostname: 'mx.example.com', sizeLimit: 0 });
 * const outcome = await mailboxes.write(
 *   request,
 *   { path: '/var/mail/alice/', maildir: true },
 *   { returnPath: request.sender, deliveredTo: 'alice@example.com' },
 * );
 * ```
 */
export class MailboxDelivery {
  readonly #maildir: MaildirWriter;
  readonly #mbox: MboxWriter;
  readonly #clock: Clock;
  readonly #sizeLimit: number;
  readonly #maildirEol: '\n' | '\r\n';
  readonly #helpers: MailboxHelperPool | undefined;
  readonly #hostname: string;
  readonly #lock: DotLockOptions;

  constructor(options: MailboxDeliveryOptions) {
    this.#helpers = options.helpers;
    this.#hostname = options.hostname;
    this.#lock = options.lock ?? {};
    this.#clock = options.clock ?? systemClock;
    this.#maildir = new MaildirWriter({ hostname: options.hostname, clock: this.#clock });
    this.#mbox = new MboxWriter({
      sizeLimit: options.sizeLimit,
      lock: { ...options.lock, clock: options.lock?.clock ?? this.#clock },
    });
    this.#sizeLimit = options.sizeLimit;
    this.#maildirEol = options.maildirEol ?? '\n';
  }

  /**
   * Writes the message of `request` to `target`; never throws, the outcome says what happened.
   */
  async write(
    request: DeliveryRequest,
    target: MailboxTarget,
    headers: MailboxHeaders,
  ): Promise<MailboxOutcome> {
    if (this.#sizeLimit > 0 && request.size > this.#sizeLimit) {
      return bounce(
        '5.2.2',
        `mailbox size limit of ${this.#sizeLimit} bytes exceeded by a message of ${request.size} bytes`,
      );
    }
    const owner = {
      ...(target.uid === undefined ? {} : { uid: target.uid }),
      ...(target.gid === undefined ? {} : { gid: target.gid }),
    };
    let content: ReturnType<DeliveryRequest['openContent']> | undefined;
    try {
      try {
        content = request.openContent();
      } catch (err) {
        throw new ContentReadError(err);
      }
      if (target.rights)
        return await this.#writeAs(target.rights, request, target, headers, content);
      if (target.maildir) {
        const eol = this.#maildirEol;
        const head = Buffer.from(deliveryHeaders({ ...headers, eol }), 'utf8');
        const body = eol === '\r\n' ? contentChunks(content) : copyMessage(content, { eol });
        await this.#maildir.deliver(target.path, head, body, {
          signal: request.signal,
          ...owner,
          ...(target.folder ? { folder: true } : {}),
        });
        return { status: 'sent', reply: new SmtpReply(250, '2.0.0', 'delivered to maildir') };
      }
      const head = Buffer.from(
        fromLine(request.sender, this.#clock.now()) + deliveryHeaders({ ...headers, eol: '\n' }),
        'utf8',
      );
      await this.#mbox.deliver(
        target.path,
        copyMessage(content, { head, eol: '\n', quoteFrom: true, blankLine: true }),
        { signal: request.signal, ...owner, ...(target.file ? { lockMayFail: true } : {}) },
      );
      return { status: 'sent', reply: new SmtpReply(250, '2.0.0', 'delivered to mailbox') };
    } catch (err) {
      return failure(err, request.signal, target.maildir ? 'maildir' : 'mailbox');
    } finally {
      content?.destroy();
    }
  }

  /** The same bytes, written by a helper with `rights`. */
  async #writeAs(
    rights: DeliveryRights,
    request: DeliveryRequest,
    target: MailboxTarget,
    headers: MailboxHeaders,
    content: AsyncIterable<unknown>,
  ): Promise<MailboxOutcome> {
    if (!this.#helpers)
      return defer('4.3.5', 'mail system configuration error: no helper to write as the recipient');
    const trusted = target.trustedBase === undefined ? {} : { trustedBase: target.trustedBase };
    if (target.maildir) {
      const eol = this.#maildirEol;
      const head = Buffer.from(deliveryHeaders({ ...headers, eol }), 'utf8');
      const body = eol === '\r\n' ? contentChunks(content) : copyMessage(content, { eol });
      const result = await this.#helpers.write(
        rights,
        {
          op: 'maildir',
          path: target.path,
          hostname: this.#hostname,
          ...(target.folder ? { folder: true } : {}),
          ...trusted,
        },
        prepend(head, body),
        request.signal,
      );
      return helperOutcome(result, 'maildir');
    }
    const head = Buffer.from(
      fromLine(request.sender, this.#clock.now()) + deliveryHeaders({ ...headers, eol: '\n' }),
      'utf8',
    );
    const result = await this.#helpers.write(
      rights,
      {
        op: 'mbox',
        path: target.path,
        sizeLimit: this.#sizeLimit,
        lock: {
          attempts: this.#lock.attempts ?? 20,
          delayMs: this.#lock.delayMs ?? 1000,
          staleMs: this.#lock.staleMs ?? 500_000,
        },
        ...(target.file ? { lockMayFail: true } : {}),
        ...trusted,
      },
      copyMessage(content, { head, eol: '\n', quoteFrom: true, blankLine: true }),
      request.signal,
    );
    return helperOutcome(result, 'mailbox');
  }
}

async function* prepend(head: Buffer, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield head;
  yield* body;
}

/** Errors written with the recipient's rights that bounce, as in Postfix (5.2.0). */
const BOUNCE_AS_USER = new Set([
  'EACCES',
  'EPERM',
  'ENOENT',
  'ENOTDIR',
  'EISDIR',
  'ELOOP',
  'ENAMETOOLONG',
]);

/**
 * A helper's result as an outcome, after Postfix's file.c, maildir.c and mbox_open():
 * what the recipient's own rights cannot do bounces 5.2.0, a full disk, a busy lock or
 * anything unclear defers.
 */
function helperOutcome(result: HelperResult, what: 'maildir' | 'mailbox'): MailboxOutcome {
  if (result.ok)
    return { status: 'sent', reply: new SmtpReply(250, '2.0.0', `delivered to ${what}`) };
  const text = `${what} delivery failed: ${result.message}`;
  switch (result.kind) {
    case 'refused':
      return bounce(result.enhanced ?? '5.2.0', result.message);
    case 'busy':
      return defer('4.2.0', result.message);
    case 'unsafe':
      // Like strict_mailbox_ownership: wait for the owner to repair it.
      return defer('4.2.0', `${what} delivery refused: ${result.message}`);
    case 'aborted':
      return defer('4.3.0', 'delivery interrupted; will retry');
    case 'errno':
      if (result.code === 'EDQUOT' || result.code === 'EFBIG') return bounce('5.2.2', text);
      if (result.code === 'EAGAIN' || result.code === 'ESTALE') return defer('4.2.0', text);
      return BOUNCE_AS_USER.has(result.code ?? '') ? bounce('5.2.0', text) : defer('4.3.0', text);
    case 'error':
      return defer('4.3.0', text);
  }
}

function bounce(enhanced: string, text: string): MailboxOutcome {
  return {
    status: 'bounced',
    reply: new SmtpReply(enhanced === '5.2.2' ? 552 : 550, enhanced, text),
  };
}

function defer(enhanced: string, text: string): MailboxOutcome {
  return {
    status: 'deferred',
    reply: new SmtpReply(enhanced === '4.2.0' ? 450 : 451, enhanced, text),
  };
}

function failure(err: unknown, signal: AbortSignal, what: string): MailboxOutcome {
  if (err instanceof MailboxRefusedError) return bounce(err.enhanced, err.message);
  if (signal.aborted) return defer('4.3.0', 'delivery interrupted; will retry');
  if (err instanceof ContentReadError) return defer('4.3.0', err.message);
  if (err instanceof LockBusyError) return defer('4.2.0', err.message);
  const e = err as NodeJS.ErrnoException;
  const text = `${what} delivery failed: ${e?.message ?? String(err)}`;
  if (e?.code === 'EDQUOT' || e?.code === 'EFBIG') return bounce('5.2.2', text);
  return MAILBOX_PROBLEMS.has(e?.code ?? '') ? defer('4.2.0', text) : defer('4.3.0', text);
}
