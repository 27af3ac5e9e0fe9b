/**
 * SMTP AUTH: the PLAIN and LOGIN SASL mechanisms, checked by a pluggable async
 * authenticator, and CRAM-MD5 (off by default) against a table of passwords.
 *
 * Postfix counterpart: smtpd_sasl_proto.c (the AUTH command) and smtpd_sasl_glue.c
 * (the exchange with Cyrus or Dovecot SASL). Postern has no SASL daemon: the
 * application gives an `Authenticator` — `(username, password, session) =>
 * Promise<boolean>` — or, for simple setups, a LookupTable of `username → password`
 * (compared in constant time). A thrown error or a table `retry` failure is a temporary
 * failure (`454 4.7.0`), never a success.
 *
 * CRAM-MD5 (RFC 2195) never reveals the password, so it can only be checked against a
 * stored clear password: it needs the backend to be a table, and is offered only when
 * `smtpdSaslMechanisms` lists it.
 *
 * Does not: DIGEST-MD5, SCRAM, XOAUTH2, authorization identities other than the login
 * itself (PLAIN's authzid must be empty or equal the login).
 *
 * SECURITY: the mechanisms send the password in the clear, so the receiver offers AUTH
 * only over TLS unless `smtpdTlsAuthOnly` is off (Postfix's default is the opposite).
 * Failures count as session errors and against `smtpdClientAuthRateLimit`. Passwords
 * never reach a log; user names are made printable.
 *
 * STANDARDS: RFC 4954 (SMTP AUTH), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN),
 * RFC 2195 (CRAM-MD5), RFC 4648 section 4 (base64).
 *
 * @module
 */

import { builtin } from '../builtin.js';
import type { LookupTable } from '../tables/types.js';
import type { ClientInfo, TlsInfo } from '../types.js';

/**
 * What an authenticator knows about the session asking.
 *
 * @example
 * ```ts
 * const auth: Authenticator = (user, password, session: AuthSessionInfo) =>
 *   session.tls !== undefined && checkPassword(user, password);
 * ```
 */
export interface AuthSessionInfo {
  /** The connected client. */
  readonly client: ClientInfo;
  /** The HELO/EHLO argument. */
  readonly helo?: string;
  /** TLS facts, when the session uses TLS. */
  readonly tls?: TlsInfo;
  /** The SASL mechanism (`PLAIN` or `LOGIN`). */
  readonly mechanism: string;
}

/**
 * Checks a login. Resolve true to accept; false to refuse; throw for a temporary failure.
 *
 * @example
 * ```ts
 * const authenticator: Authenticator = async (username, password) => users.get(username) === password;
 * const mta = new Mta({ smtpd: [{ listen: '0.0.0.0:587', smtpdSaslAuthEnable: true, authenticator }] });
 * ```
 */
export type Authenticator = (
  username: string,
  password: string,
  session: AuthSessionInfo,
) => Promise<boolean> | boolean;

/**
 * An authenticator function, or a table of user → clear-text password.
 *
 * @example
 * ```ts
 * const backend: AuthBackend = new InlineTable({ alice: 'secret' }); // or an Authenticator
 * ```
 */
export type AuthBackend = Authenticator | LookupTable;

/** Outcome of checking credentials. */
export type AuthCheck = 'ok' | 'failed' | 'temp';

/** Runs the backend; never throws. */
export async function checkCredentials(
  backend: AuthBackend,
  username: string,
  password: string,
  session: AuthSessionInfo,
): Promise<AuthCheck> {
  try {
    if (typeof backend === 'function')
      return (await backend(username, password, session)) === true ? 'ok' : 'failed';
    const stored = await backend.lookup(username);
    if (stored === undefined) return 'failed';
    const a = Buffer.from(stored, 'utf8');
    const b = Buffer.from(password, 'utf8');
    return a.length === b.length && builtin('crypto').timingSafeEqual(a, b) ? 'ok' : 'failed';
  } catch {
    return 'temp';
  }
}

/** Strict base64 (RFC 4648 section 4): undefined if the text is not base64. */
export function decodeBase64(text: string): Buffer | undefined {
  if (text === '=') return Buffer.alloc(0);
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

/**
 * PLAIN's message: `authzid NUL authcid NUL passwd` (RFC 4616 section 2). Undefined
 * when malformed or when authzid names someone else.
 */
export function parsePlain(message: Buffer): { username: string; password: string } | undefined {
  const first = message.indexOf(0);
  if (first < 0) return undefined;
  const second = message.indexOf(0, first + 1);
  if (second < 0 || message.indexOf(0, second + 1) >= 0) return undefined;
  const authzid = message.subarray(0, first).toString('utf8');
  const username = message.subarray(first + 1, second).toString('utf8');
  const password = message.subarray(second + 1).toString('utf8');
  if (username === '' || (authzid !== '' && authzid !== username)) return undefined;
  return { username, password };
}

/**
 * A CRAM-MD5 challenge (RFC 2195 section 2): a unique msg-id style string.
 *
 * @example
 * ```ts
 * const challenge = cramMd5Challenge('mx.example.com'); // '<1f2e3d4c.1764417600000@mx.example.com>'
 * ```
 */
export function cramMd5Challenge(myhostname: string): string {
  return `<${builtin('crypto').randomBytes(8).toString('hex')}.${Date.now()}@${myhostname}>`;
}

/**
 * Checks a CRAM-MD5 response (`username SP hex(HMAC-MD5(password, challenge))`) against
 * a table of clear passwords. Never throws.
 *
 * @example
 * ```ts
 * const result = await checkCramMd5(new InlineTable({ alice: 'secret' }), challenge, response);
 * ```
 */
export async function checkCramMd5(
  table: LookupTable,
  challenge: string,
  response: Buffer,
): Promise<{ result: AuthCheck; username: string }> {
  const m = /^(\S+) ([0-9a-f]{32})$/i.exec(response.toString('utf8'));
  if (!m) return { result: 'failed', username: '' };
  const username = m[1]!;
  try {
    const stored = await table.lookup(username);
    if (stored === undefined) return { result: 'failed', username };
    const crypto = builtin('crypto');
    const expected = crypto
      .createHmac('md5', Buffer.from(stored, 'utf8'))
      .update(challenge)
      .digest();
    const given = Buffer.from(m[2]!.toLowerCase(), 'hex');
    return { result: crypto.timingSafeEqual(expected, given) ? 'ok' : 'failed', username };
  } catch {
    return { result: 'temp', username };
  }
}
