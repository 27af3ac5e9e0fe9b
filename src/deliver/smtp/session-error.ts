/**
 * SessionError: why an SMTP/LMTP client session ended early — the connection was lost,
 * a phase timed out, the server broke the protocol, or TLS failed.
 *
 * Postfix counterpart: smtp_trouble.c (smtp_sess_fail, smtp_stream_except): a lost
 * connection or timeout in phase X becomes `4.4.2 lost connection with HOST while X`,
 * a TLS failure `4.7.5`, a malformed reply `4.5.0`; all of them transient.
 *
 * @module
 */

import { PosternError, type PosternErrorCode } from '../../errors.js';
import { SmtpReply } from '../../smtp-reply.js';

/** What went wrong with the session as a whole. */
export type SessionErrorKind = 'lost' | 'timeout' | 'protocol' | 'tls' | 'aborted';

const CODES: Readonly<Record<SessionErrorKind, PosternErrorCode>> = {
  lost: 'POSTERN_ERR_SMTP_LOST',
  timeout: 'POSTERN_ERR_SMTP_TIMEOUT',
  protocol: 'POSTERN_ERR_SMTP_PROTOCOL',
  tls: 'POSTERN_ERR_SMTP_TLS',
  aborted: 'POSTERN_ERR_SMTP_ABORTED',
};

/** A session failure; `reply` is what the pending recipients are deferred with. */
export class SessionError extends PosternError {
  readonly kind: SessionErrorKind;
  readonly reply: SmtpReply;

  constructor(kind: SessionErrorKind, reply: SmtpReply, options?: { cause?: unknown }) {
    super(CODES[kind], reply.toString(), options);
    this.kind = kind;
    this.reply = reply;
  }

  /** Lost connection (`4.4.2 lost connection with HOST while PHASE`). */
  static lost(host: string, phase: string, cause?: unknown): SessionError {
    return new SessionError(
      'lost',
      new SmtpReply(451, '4.4.2', `lost connection with ${host} while ${phase}`),
      { cause },
    );
  }

  /** A phase timed out (`4.4.2 conversation with HOST timed out while PHASE`). */
  static timeout(host: string, phase: string): SessionError {
    return new SessionError(
      'timeout',
      new SmtpReply(451, '4.4.2', `conversation with ${host} timed out while ${phase}`),
    );
  }

  /** The server broke the protocol (`4.5.0`). */
  static protocol(host: string, what: string): SessionError {
    return new SessionError(
      'protocol',
      new SmtpReply(451, '4.5.0', `protocol error with ${host}: ${what}`),
    );
  }
}
