/**
 * The SMTP server's fixed replies, and the ones built once from the parameters (the
 * greeting, the EHLO keyword lists, the limit replies).
 *
 * Postfix counterpart: the reply texts of smtpd.c (helo_cmd's EHLO list in its order,
 * mail_cmd/rcpt_cmd/data_cmd errors, `Error: too many errors`, ...). Keeping them in one
 * table makes the session code read as control flow and keeps the texts Postfix's.
 *
 * Does not: decide when a reply is sent (smtpd-session.ts).
 *
 * STANDARDS: RFC 5321 section 4.2 (replies), RFC 2034/3463 (enhanced status codes on
 * every reply but the greeting and EHLO), RFC 1869 (EHLO keywords).
 *
 * @module
 */

import { SmtpReply } from '../smtp-reply.js';
import type { SmtpdParameters } from './smtpd-parameters.js';

/** Which optional EHLO keywords a session may show now. */
export interface EhloFeatures {
  readonly starttls: boolean;
  readonly auth: boolean;
  readonly xclient: boolean;
}

/** Replies whose text depends only on the parameters. */
export interface SessionReplies {
  readonly greeting: string;
  readonly helo: SmtpReply;
  readonly tooManyErrors: SmtpReply;
  readonly timeout: SmtpReply;
  readonly shutdown: SmtpReply;
  readonly bareLf: SmtpReply;
  /** The EHLO reply for a feature set (built lazily, at most eight variants). */
  ehlo(features: EhloFeatures): SmtpReply;
}

/** Builds the parameter-dependent replies once per receiver. */
export function buildSessionReplies(params: SmtpdParameters): SessionReplies {
  const host = params.myhostname;
  const cache = new Map<number, SmtpReply>();
  return {
    greeting: new SmtpReply(220, '', params.smtpdBanner).toWire(),
    helo: new SmtpReply(250, '', host),
    tooManyErrors: new SmtpReply(421, '4.7.0', `${host} Error: too many errors`),
    timeout: new SmtpReply(421, '4.4.2', `${host} Error: timeout exceeded`),
    shutdown: new SmtpReply(
      421,
      '4.3.2',
      `${host} Service shutting down, closing transmission channel`,
    ),
    bareLf: new SmtpReply(
      params.smtpdForbidBareNewlineRejectCode,
      '5.5.2',
      `${host} Error: bare <LF> received`,
    ),
    ehlo(features: EhloFeatures): SmtpReply {
      const key =
        (features.starttls ? 1 : 0) | (features.auth ? 2 : 0) | (features.xclient ? 4 : 0);
      let r = cache.get(key);
      if (r === undefined) {
        // Postfix helo_cmd() order.
        const lines = [
          host,
          'PIPELINING',
          params.messageSizeLimit > 0 ? `SIZE ${params.messageSizeLimit}` : 'SIZE',
        ];
        if (!params.disableVrfyCommand) lines.push('VRFY');
        if (features.xclient) lines.push('XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN');
        if (features.starttls) lines.push('STARTTLS');
        if (features.auth) lines.push(`AUTH ${params.smtpdSaslMechanisms.join(' ')}`);
        lines.push('ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING');
        r = new SmtpReply(250, '', lines);
        cache.set(key, r);
      }
      return r;
    },
  };
}

// Fixed replies (Postfix smtpd.c texts).
export const R_OK = new SmtpReply(250, '2.0.0', 'Ok');
export const R_MAIL_OK = new SmtpReply(250, '2.1.0', 'Ok');
export const R_RCPT_OK = new SmtpReply(250, '2.1.5', 'Ok');
export const R_DATA = new SmtpReply(354, '', 'End data with <CR><LF>.<CR><LF>').toWire();
export const R_BYE = new SmtpReply(221, '2.0.0', 'Bye');
export const R_BREAK_RULES = new SmtpReply(221, '2.7.0', 'Error: I can break rules, too. Goodbye.');
export const R_HELP = new SmtpReply(
  214,
  '2.0.0',
  'Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP STARTTLS AUTH',
);
export const R_UNKNOWN = new SmtpReply(500, '5.5.2', 'Error: command not recognized');
export const R_TOO_LONG = new SmtpReply(500, '5.5.2', 'Error: command too long');
export const R_BAD_SYNTAX = new SmtpReply(500, '5.5.2', 'Error: bad syntax');
export const R_BAD_UTF8 = new SmtpReply(500, '5.5.2', 'Error: bad UTF-8 syntax');
export const R_VRFY_DISABLED = new SmtpReply(502, '5.5.1', 'VRFY command is disabled');
export const R_NEED_HELO = new SmtpReply(503, '5.5.1', 'Error: send HELO/EHLO first');
export const R_NEED_MAIL = new SmtpReply(503, '5.5.1', 'Error: need MAIL command');
export const R_NESTED_MAIL = new SmtpReply(503, '5.5.1', 'Error: nested MAIL command');
export const R_NEED_RCPT = new SmtpReply(503, '5.5.1', 'Error: need RCPT command');
export const R_IN_TRANSACTION = new SmtpReply(503, '5.5.1', 'Error: MAIL transaction in progress');
export const R_NO_VALID_RCPT = new SmtpReply(554, '5.5.1', 'Error: no valid recipients');
export const R_TOO_MANY_RCPT = new SmtpReply(452, '4.5.3', 'Error: too many recipients');
export const R_SIZE_EXCEEDS = new SmtpReply(552, '5.3.4', 'Message size exceeds fixed limit');
export const R_FILE_TOO_BIG = new SmtpReply(552, '5.3.4', 'Error: message file too big');
export const R_NEED_SMTPUTF8 = new SmtpReply(
  553,
  '5.6.7',
  'Must declare SMTPUTF8 to send unicode address',
);
export const R_SYNTAX_HELO = new SmtpReply(501, '5.5.4', 'Syntax: HELO hostname');
export const R_SYNTAX_EHLO = new SmtpReply(501, '5.5.4', 'Syntax: EHLO hostname');
export const R_SYNTAX_MAIL = new SmtpReply(501, '5.5.4', 'Syntax: MAIL FROM:<address>');
export const R_SYNTAX_RCPT = new SmtpReply(501, '5.5.4', 'Syntax: RCPT TO:<address>');
export const R_SYNTAX_DATA = new SmtpReply(501, '5.5.4', 'Syntax: DATA');
export const R_SYNTAX_BDAT = new SmtpReply(501, '5.5.4', 'Syntax: BDAT count [LAST]');
export const R_SYNTAX_RSET = new SmtpReply(501, '5.5.4', 'Syntax: RSET');
export const R_SYNTAX_VRFY = new SmtpReply(501, '5.5.4', 'Syntax: VRFY address');
export const R_SYNTAX_STARTTLS = new SmtpReply(501, '5.5.4', 'Syntax: STARTTLS');
export const R_DATA_AFTER_BDAT = new SmtpReply(
  503,
  '5.5.1',
  'Error: DATA after BDAT is not allowed',
);
export const R_SYNC = new SmtpReply(554, '5.5.0', 'Error: SMTP protocol synchronization');
export const R_STARTTLS_READY = new SmtpReply(220, '2.0.0', 'Ready to start TLS');
export const R_TLS_ALREADY = new SmtpReply(554, '5.5.1', 'Error: TLS already active');
export const R_TLS_NOT_OFFERED = new SmtpReply(502, '5.5.1', 'Error: command not implemented');
export const R_TLS_REQUIRED = new SmtpReply(530, '5.7.0', 'Must issue a STARTTLS command first');
export const R_AUTH_NOT_ENABLED = new SmtpReply(503, '5.5.1', 'Error: authentication not enabled');
export const R_AUTH_ALREADY = new SmtpReply(503, '5.5.1', 'Error: already authenticated');
export const R_AUTH_OK = new SmtpReply(235, '2.7.0', 'Authentication successful');
export const R_AUTH_FAILED = new SmtpReply(535, '5.7.8', 'Error: authentication failed');
export const R_AUTH_ABORTED = new SmtpReply(501, '5.7.0', 'Authentication aborted');
export const R_AUTH_BAD_B64 = new SmtpReply(501, '5.5.2', 'Cannot decode response');
export const R_AUTH_MECH = new SmtpReply(504, '5.5.4', 'Unsupported authentication mechanism');
export const R_AUTH_SYNTAX = new SmtpReply(501, '5.5.4', 'Syntax: AUTH mechanism');
export const R_AUTH_TEMP = new SmtpReply(454, '4.7.0', 'Temporary authentication failure');
export const R_XCLIENT_DENIED = new SmtpReply(550, '5.7.0', 'Error: insufficient authorization');
