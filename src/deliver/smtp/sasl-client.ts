/**
 * SASL client of the SMTP/LMTP client: AUTH PLAIN and AUTH LOGIN with credentials
 * looked up per nexthop.
 *
 * Postfix counterpart: smtp_sasl_glue.c (smtp_sasl_passwd_lookup, smtp_sasl_authenticate)
 * and smtp_sasl_proto.c. Keys tried, first hit wins: the nexthop as written
 * (`[relay.example.com]:587`), the server host name, the nexthop domain. Values are
 * `user:password` (the password may contain `:`).
 *
 * Security options follow Postfix: `noplaintext` (the default on a plaintext session)
 * forbids PLAIN and LOGIN, so credentials go out only over TLS unless the operator
 * empties `smtpSaslSecurityOptions`. A failed AUTH defers (Postfix
 * `smtp_sasl_auth_soft_bounce = yes`) and tries the next server.
 *
 * Does not: CRAM-MD5, SCRAM, XOAUTH2 (no SASL library; PLAIN and LOGIN cover relays).
 *
 * STANDARDS: RFC 4954 (SMTP AUTH), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN).
 *
 * @module
 */

import { TableError } from '../../errors.js';
import { SmtpReply } from '../../smtp-reply.js';
import type { LookupTable } from '../../tables/types.js';
import type { SmtpConnection } from './smtp-connection.js';

export interface SaslCredentials {
  readonly user: string;
  readonly password: string;
}

/** Finds credentials for a destination, or undefined. */
export async function findCredentials(
  table: LookupTable,
  keys: readonly string[],
): Promise<SaslCredentials | undefined> {
  for (const key of [...new Set(keys.filter((k) => k !== ''))]) {
    const value = await table.lookup(key);
    if (value === undefined) continue;
    const colon = value.indexOf(':');
    if (colon <= 0) {
      throw new TableError('config', table.name, `value for "${key}" is not "user:password"`);
    }
    return { user: value.slice(0, colon), password: value.slice(colon + 1) };
  }
  return undefined;
}

/** The mechanism to use: PLAIN, else LOGIN, among those offered and allowed. */
export function pickMechanism(
  offered: string,
  securityOptions: readonly string[],
): 'PLAIN' | 'LOGIN' | undefined {
  if (securityOptions.includes('noplaintext')) return undefined;
  const list = offered.toUpperCase().split(/\s+/);
  if (list.includes('PLAIN')) return 'PLAIN';
  if (list.includes('LOGIN')) return 'LOGIN';
  return undefined;
}

/** Runs AUTH; resolves with the final reply (2xx on success). */
export async function authenticate(
  conn: SmtpConnection,
  mechanism: 'PLAIN' | 'LOGIN',
  creds: SaslCredentials,
  timeoutMs: number,
): Promise<SmtpReply> {
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  conn.phase = 'performing the SASL authentication';
  if (mechanism === 'PLAIN') {
    return conn.command(`AUTH PLAIN ${b64(`\0${creds.user}\0${creds.password}`)}`, timeoutMs);
  }
  let r = await conn.command('AUTH LOGIN', timeoutMs);
  if (r.code !== 334) return r;
  r = await conn.command(b64(creds.user), timeoutMs);
  if (r.code !== 334) return r;
  return conn.command(b64(creds.password), timeoutMs);
}

/** The reply recipients are deferred with when AUTH did not work. */
export function authFailure(host: string, reply: SmtpReply | undefined, why?: string): SmtpReply {
  const detail = reply ? reply.toString() : (why ?? 'no usable mechanism');
  return new SmtpReply(451, '4.7.0', `SASL authentication failed; server ${host} said: ${detail}`);
}
