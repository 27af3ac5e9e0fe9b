/**
 * The session-level SMTP commands that only read and change the session's state: the
 * EHLO feature list, XCLIENT and VRFY. Each answers at once, without a promise.
 *
 * Postfix counterpart: smtpd.c ehlo_cmd()'s feature list, xclient_cmd() and
 * vrfy_cmd() (with `disable_vrfy_command`).
 *
 * Does not: HELO/EHLO themselves, STARTTLS or AUTH (smtpd-session.ts,
 * smtpd-auth-exchange.ts), which may wait for restrictions or a handshake.
 *
 * SECURITY: XCLIENT is honoured only from `smtpdAuthorizedXclientHosts`, and never
 * inside a mail transaction.
 *
 * STANDARDS: RFC 5321 section 3.5.3 (VRFY's 252).
 *
 * @module
 */
import { formatAddress, parseMailArgument } from '../address/address.js';
import { replyFor } from '../errors.js';
import { SmtpReply } from '../smtp-reply.js';
import { authOffered } from './smtpd-auth-exchange.js';
import * as R from './smtpd-replies.js';
import type { SmtpdState } from './smtpd-state.js';
import { applyXclient } from './smtpd-xclient.js';

/** What EHLO offers in this session. */
export function ehloFeatures(s: SmtpdState): R.EhloFeatures {
  return {
    starttls:
      s.ctx.tls !== undefined && s.tls === undefined && s.params.smtpdTlsSecurityLevel !== 'none',
    auth: authOffered(s),
    xclient: s.ctx.xclientHosts.matches(s.peerAddress),
  };
}

/** XCLIENT: 'done' when the session now speaks for the client it names (greet it again). */
export function xclientCommand(s: SmtpdState, args: string): SmtpReply | 'done' {
  if (!s.ctx.xclientHosts.matches(s.peerAddress)) return R.R_XCLIENT_DENIED;
  if (s.sender !== undefined) return R.R_IN_TRANSACTION;
  const r = applyXclient(args, s.client, s.helo);
  if (r instanceof SmtpReply) return r;
  s.setClient(r.client);
  s.resetTransaction();
  s.helo = r.helo;
  s.esmtp = r.helo !== undefined && r.protocol === 'ESMTP';
  if (r.login !== undefined) {
    s.authUser = r.login;
    s.authMethod = 'XCLIENT';
  }
  return 'done';
}

/** VRFY: 252 for a well-formed address (cannot verify, will accept and try). */
export function vrfyCommand(s: SmtpdState, args: string): SmtpReply {
  if (s.params.disableVrfyCommand) return R.R_VRFY_DISABLED;
  if (args === '') return R.R_SYNTAX_VRFY;
  try {
    const parsed = parseMailArgument(args, 'recipient');
    return new SmtpReply(252, '2.0.0', `<${formatAddress(parsed.address)}>`);
  } catch (err) {
    return replyFor(err);
  }
}
