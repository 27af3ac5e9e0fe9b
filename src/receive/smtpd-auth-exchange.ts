/**
 * The AUTH command: the SASL exchange of one session (PLAIN, LOGIN, CRAM-MD5), its
 * challenges, and the log lines fail2ban reads.
 *
 * Postfix counterpart: smtpd_sasl_proto.c smtpd_sasl_auth_cmd() and
 * smtpd_sasl_glue.c smtpd_sasl_authenticate(): one AUTH per session, none inside a
 * mail transaction, `334` challenges answered line by line, `*` aborts; a success logs
 * `sasl_method=..., sasl_username=...`, a failure `SASL X authentication failed`.
 *
 * Does not: check credentials (smtpd-auth.ts holds the backends and the mechanism
 * parsers), offer AUTH (the EHLO reply does, from the session's features).
 *
 * SECURITY: the response lines are bounded like every command line; a line with a NUL
 * or over the limit aborts the exchange. The password never reaches a log or the
 * transcript (the transcript keeps SASL responses masked). The anvil auth rate limit
 * (smtpd_client_auth_rate_limit) applies before any backend is asked.
 *
 * STANDARDS: RFC 4954 (AUTH), RFC 4616 (PLAIN), RFC 2195 (CRAM-MD5).
 *
 * @module
 */

import { printable, SmtpReply } from '../smtp-reply.js';
import {
  checkCramMd5,
  checkCredentials,
  cramMd5Challenge,
  decodeBase64,
  parsePlain,
} from './smtpd-auth.js';
import * as R from './smtpd-replies.js';
import { clip } from './smtpd-session-helpers.js';
import type { SmtpdState } from './smtpd-state.js';

/** Whether the session offers AUTH now (smtpd_sasl_auth_enable, smtpd_tls_auth_only). */
export function authOffered(s: SmtpdState): boolean {
  return (
    s.ctx.auth !== undefined &&
    s.params.smtpdSaslAuthEnable &&
    (s.tls !== undefined || !s.params.smtpdTlsAuthOnly)
  );
}

/** AUTH: runs the exchange and returns the final reply. */
export async function authCommand(s: SmtpdState, args: string): Promise<SmtpReply> {
  if (!authOffered(s)) return R.R_AUTH_NOT_ENABLED;
  if (!s.esmtp) return R.R_NEED_HELO;
  if (s.authUser !== undefined) return R.R_AUTH_ALREADY;
  if (s.sender !== undefined) return R.R_IN_TRANSACTION;
  if (s.ctx.anvil.event(s.peerAddress, 'auth')) {
    return new SmtpReply(
      450,
      '4.7.1',
      `Error: too many AUTH commands from ${printable(s.client.address)}`,
    );
  }
  const [mechRaw, initial, extra] = args.split(/[ \t]+/);
  if (!mechRaw || extra !== undefined) return R.R_AUTH_SYNTAX;
  const mech = mechRaw.toUpperCase();
  if (!(s.params.smtpdSaslMechanisms as readonly string[]).includes(mech)) return R.R_AUTH_MECH;
  if (mech === 'CRAM-MD5') return cramMd5(s, initial);
  let username: string;
  let password: string;
  if (mech === 'PLAIN') {
    const resp = initial ?? (await saslChallenge(s, ''));
    if (resp === undefined) return R.R_AUTH_ABORTED;
    const raw = decodeBase64(resp);
    if (!raw) return R.R_AUTH_BAD_B64;
    const plain = parsePlain(raw);
    if (!plain) return authFailed(s, mech, '');
    ({ username, password } = plain);
  } else {
    let u = initial;
    if (u === undefined) u = await saslChallenge(s, 'VXNlcm5hbWU6');
    if (u === undefined) return R.R_AUTH_ABORTED;
    const ub = decodeBase64(u);
    if (!ub) return R.R_AUTH_BAD_B64;
    const pw = await saslChallenge(s, 'UGFzc3dvcmQ6');
    if (pw === undefined) return R.R_AUTH_ABORTED;
    const pb = decodeBase64(pw);
    if (!pb) return R.R_AUTH_BAD_B64;
    username = ub.toString('utf8');
    password = pb.toString('utf8');
  }
  const backend = s.ctx.auth;
  if (!backend) return R.R_AUTH_NOT_ENABLED;
  const result = await checkCredentials(backend, username, password, {
    client: s.client,
    ...(s.helo !== undefined ? { helo: s.helo } : {}),
    ...(s.tls ? { tls: s.tls } : {}),
    mechanism: mech,
  });
  return authResult(s, mech, result, username);
}

/** The outcome of a SASL exchange: log, count and reply. */
function authResult(
  s: SmtpdState,
  mech: string,
  result: 'ok' | 'failed' | 'temp',
  username: string,
): SmtpReply {
  if (result === 'temp') {
    s.ctx.log.warning(undefined, `${s.namaddr}: SASL ${mech} authentication temporarily failed`);
    return R.R_AUTH_TEMP;
  }
  if (result === 'failed') return authFailed(s, mech, username);
  s.authUser = username;
  s.authMethod = mech;
  s.ctx.log.info(undefined, `${s.namaddr}: sasl_method=${mech}, sasl_username=${clip(username)}`);
  return R.R_AUTH_OK;
}

/** CRAM-MD5 (RFC 2195): a challenge, then `user digest` checked against the table. */
async function cramMd5(s: SmtpdState, initial: string | undefined): Promise<SmtpReply> {
  // RFC 4954 section 4: CRAM-MD5 has no initial response.
  if (initial !== undefined) return R.R_AUTH_SYNTAX;
  const backend = s.ctx.auth;
  if (!backend || typeof backend === 'function') return R.R_AUTH_MECH;
  const challenge = cramMd5Challenge(s.params.myhostname);
  const resp = await saslChallenge(s, Buffer.from(challenge, 'utf8').toString('base64'));
  if (resp === undefined) return R.R_AUTH_ABORTED;
  const raw = decodeBase64(resp);
  if (!raw) return R.R_AUTH_BAD_B64;
  const { result, username } = await checkCramMd5(backend, challenge, raw);
  return authResult(s, 'CRAM-MD5', result, username);
}

function authFailed(s: SmtpdState, mech: string, username: string): SmtpReply {
  // Postfix's wording, which fail2ban's postfix filter (mode=auth) matches.
  s.ctx.log.warning(
    undefined,
    `${s.namaddr}: SASL ${mech} authentication failed: authentication failure, sasl_username=${clip(username)}`,
    {
      event: 'sasl_failed',
      client_name: s.client.name,
      client_address: s.client.address,
      sasl_method: mech,
      sasl_username: clip(username),
    },
  );
  return R.R_AUTH_FAILED;
}

/** Sends a 334 challenge and reads the client's line; undefined for `*` or EOF. */
async function saslChallenge(s: SmtpdState, challenge: string): Promise<string | undefined> {
  s.io.queue(`334 ${challenge}\r\n`);
  for (;;) {
    const line = s.io.input.next();
    if (line) {
      if (line.tooLong || line.hasNul) return undefined;
      const t = line.text.trim();
      s.transcript.saslResponse(t);
      return t === '*' ? undefined : t;
    }
    if (s.io.eof) return undefined;
    const why = await s.io.waitInput();
    if (why === 'timeout' || why === 'shutdown') return undefined;
  }
}
