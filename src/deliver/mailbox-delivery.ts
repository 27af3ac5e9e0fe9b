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
 * @module
 */

import { systemClock } from '../clock.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Address, Clock } from '../types.js';
import type { DotLockOptions } from './dotlock.js';
import { LockBusyError } from './dotlock.js';
import { ContentReadError, contentChunks, copyMessage, deliveryHeaders } from './mail-copy.js';
import { MaildirWriter } from './maildir.js';
import { fromLine, MailboxRefusedError, MboxWriter } from './mbox.js';
import type { DeliveryRequest } from './types.js';

/** Where to write. */
export interface MailboxTarget {
  readonly path: string;
  readonly maildir: boolean;
  /** A Maildir++ folder (maildirfolder marker). */
  readonly folder?: boolean;
  readonly uid?: number;
  readonly gid?: number;
}

/** The headers to prepend. */
export interface MailboxHeaders {
  readonly returnPath: Address;
  readonly originalTo?: Address;
  readonly deliveredTo?: Address;
}

/** A delivery outcome without `relay`. */
export interface MailboxOutcome {
  readonly status: 'sent' | 'deferred' | 'bounced';
  readonly reply: SmtpReply;
}

export interface MailboxDeliveryOptions {
  readonly hostname: string;
  /** Bytes; 0 = none. */
  readonly sizeLimit: number;
  readonly lock?: DotLockOptions;
  readonly clock?: Clock;
  /**
   * Line end of Maildir messages: `'\n'`, as Postfix writes them and mail readers
   * (Dovecot, GNU mailutils, Python) expect; `'\r\n'` keeps the queue's form.
   * @default '\n'
   */
  readonly maildirEol?: '\n' | '\r\n';
}

const MAILBOX_PROBLEMS = new Set(['EACCES', 'EPERM', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EROFS']);

export class MailboxDelivery {
  readonly #maildir: MaildirWriter;
  readonly #mbox: MboxWriter;
  readonly #clock: Clock;
  readonly #sizeLimit: number;
  readonly #maildirEol: '\n' | '\r\n';

  constructor(options: MailboxDeliveryOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#maildir = new MaildirWriter({ hostname: options.hostname, clock: this.#clock });
    this.#mbox = new MboxWriter({
      sizeLimit: options.sizeLimit,
      lock: { ...options.lock, clock: options.lock?.clock ?? this.#clock },
    });
    this.#sizeLimit = options.sizeLimit;
    this.#maildirEol = options.maildirEol ?? '\n';
  }

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
        { signal: request.signal, ...owner },
      );
      return { status: 'sent', reply: new SmtpReply(250, '2.0.0', 'delivered to mailbox') };
    } catch (err) {
      return failure(err, request.signal, target.maildir ? 'maildir' : 'mailbox');
    } finally {
      content?.destroy();
    }
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
