/**
 * Session start of the SMTP/LMTP client: greeting, EHLO (HELO fallback) or LHLO,
 * STARTTLS by the TLS policy, the EHLO again, and AUTH.
 *
 * Postfix counterpart: smtp_proto.c (smtp_helo), smtp_tls glue, smtp_sasl_proto.c.
 *
 * Outcomes: `ok`; a soft failure (try the next server, else defer: 4xx greeting with
 * `smtp_skip_4xx_greeting`, 5xx greeting with `smtp_skip_5xx_greeting`, TLS required
 * but missing, AUTH failure); or a hard failure that bounces every recipient (a 5xx
 * greeting without skip, EHLO and HELO both refused with 5xx, a mail loop: the server
 * greets us or answers EHLO with our own `myhostname`, 5.4.6).
 *
 * STANDARDS: RFC 5321 sections 3.1, 4.1.1.1 (EHLO, HELO fallback), RFC 3207
 * (STARTTLS: forget everything learnt before TLS and EHLO again), RFC 2033 (LHLO).
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import { SmtpReply } from '../../smtp-reply.js';
import type { LookupTable } from '../../tables/types.js';
import type { ClientSettings } from './client-settings.js';
import type { Endpoint } from './mx-resolver.js';
import { authenticate, authFailure, findCredentials, pickMechanism } from './sasl-client.js';
import { relayName, type SmtpConnection } from './smtp-connection.js';
import {
  certificateMatches,
  type DaneVerifier,
  namesToMatch,
  type TlsPolicy,
  tlsRequired,
  tlsVerifies,
} from './tls-policy.js';

/** How a session start ended. */
export type HandshakeResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reply: SmtpReply;
      /** Bounce every recipient (else: defer, or try the next server). */
      readonly final: boolean;
      /** Opportunistic TLS failed: the same server may be tried again in plaintext. */
      readonly retryPlaintext?: boolean;
      /** The server answered (counts as a session toward smtpMxSessionLimit). */
      readonly greeted: boolean;
    };

export interface HandshakeContext {
  readonly settings: ClientSettings;
  readonly endpoint: Endpoint;
  /** The nexthop as written (`[relay.example.com]:587`), for credentials. */
  readonly nexthopText: string;
  readonly policy: TlsPolicy;
  /** Skip STARTTLS (retrying after a failed opportunistic TLS handshake). */
  readonly plaintextOnly: boolean;
  readonly saslTable: LookupTable | undefined;
  readonly dane: DaneVerifier | undefined;
  /** Trusted CAs for verify/secure (PEM); undefined = Node's bundle. */
  readonly ca: string | undefined;
}

/** Parses EHLO reply lines (after the first) into keyword → argument. */
export function parseEhlo(reply: SmtpReply): Map<string, string> {
  const features = new Map<string, string>();
  for (const line of reply.lines.slice(1)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim());
    if (m) features.set(m[1]!.toUpperCase(), (m[2] ?? '').trim());
  }
  return features;
}

function firstWord(reply: SmtpReply): string {
  return (reply.lines[0] ?? '').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
}

function loop(ctx: HandshakeContext, how: string): HandshakeResult {
  const { endpoint, settings } = ctx;
  return {
    ok: false,
    final: true,
    greeted: true,
    reply: new SmtpReply(
      554,
      '5.4.6',
      `mail for ${endpoint.nexthop} loops back to myself (host ${relayName(endpoint)} ${how} ${settings.myhostname})`,
    ),
  };
}

/** Runs the session start on a fresh connection. */
export async function handshake(
  conn: SmtpConnection,
  ctx: HandshakeContext,
): Promise<HandshakeResult> {
  const { settings, endpoint } = ctx;
  const t = settings.timeouts;
  const relay = relayName(conn.peer);
  conn.phase = 'receiving the initial server greeting';
  const greeting = await conn.read(t.helo);
  if (!greeting.positive) {
    const skip = greeting.permanent ? settings.skip5xxGreeting : settings.skip4xxGreeting;
    return {
      ok: false,
      final: greeting.permanent && !skip,
      greeted: true,
      reply: greeting.withText(`host ${relay} refused to talk to me: ${greeting.text}`),
    };
  }
  if (firstWord(greeting) === settings.myhostname.toLowerCase()) {
    return loop(ctx, 'greeted me with my own hostname');
  }

  const hello = await sayHello(conn, ctx);
  if (!hello.ok) return hello;

  const level = ctx.policy.level;
  const offered = conn.features.has('STARTTLS');
  const daneUsable = (level === 'dane' || level === 'dane-only') && ctx.dane !== undefined;
  const required = tlsRequired(level) && !(level === 'dane' && !daneUsable);
  if (level !== 'none' && !ctx.plaintextOnly && (offered || required)) {
    if (!offered) {
      return soft(
        new SmtpReply(451, '4.7.4', `TLS is required, but was not offered by host ${relay}`),
      );
    }
    conn.phase = 'sending STARTTLS';
    const r = await conn.command('STARTTLS', t.starttls);
    if (!r.positive) {
      if (!required) return { ok: true };
      return soft(r.withText(`TLS is required, but host ${relay} refused to start TLS: ${r.text}`));
    }
    conn.phase = 'performing the TLS handshake';
    const verify = tlsVerifies(level);
    const options: ConnectionOptions = {
      servername: endpoint.host,
      rejectUnauthorized: false,
      ...(ctx.ca !== undefined ? { ca: ctx.ca } : {}),
      ...(verify ? { checkServerIdentity: () => undefined } : {}),
    };
    let secure: Awaited<ReturnType<SmtpConnection['startTls']>>;
    try {
      secure = await conn.startTls(options, t.starttls);
    } catch {
      // Postfix at `may`: the TLS failure is logged and the server tried again in plaintext.
      return {
        ok: false,
        final: false,
        greeted: true,
        retryPlaintext: !required,
        reply: new SmtpReply(451, '4.7.5', `TLS handshake with ${relay} failed`),
      };
    }
    if (verify) {
      const cert = secure.getPeerCertificate();
      if (!secure.authorized) {
        return soft(
          new SmtpReply(
            451,
            '4.7.5',
            `Server certificate not trusted: ${String(secure.authorizationError ?? 'unknown issuer')} (host ${relay})`,
          ),
        );
      }
      const names = namesToMatch(ctx.policy, endpoint);
      if (!certificateMatches(cert, names)) {
        return soft(
          new SmtpReply(
            451,
            '4.7.5',
            `Server certificate not verified: ${relay} does not match ${names.join(', ')}`,
          ),
        );
      }
    } else if (daneUsable) {
      const chain: PeerCertificate[] = [];
      let c: PeerCertificate | undefined = secure.getPeerCertificate(true);
      const seen = new Set<string>();
      while (c?.fingerprint256 && !seen.has(c.fingerprint256)) {
        seen.add(c.fingerprint256);
        chain.push(c);
        c = (c as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
      }
      const verdict = await ctx.dane!.verify(endpoint, chain);
      if (verdict === 'failed' || (verdict === 'unusable' && level === 'dane-only')) {
        return soft(
          new SmtpReply(451, '4.7.5', `Server certificate not verified by DANE (host ${relay})`),
        );
      }
    }
    const again = await sayHello(conn, ctx);
    if (!again.ok) return again;
  } else if (level === 'dane-only' && !daneUsable) {
    return soft(
      new SmtpReply(451, '4.7.5', 'TLS level dane-only needs a DANE verifier; none is configured'),
    );
  }

  if (settings.saslAuthEnable && ctx.saslTable) {
    const creds = await findCredentials(ctx.saslTable, [
      ctx.nexthopText,
      endpoint.host,
      endpoint.nexthop,
    ]);
    if (creds) {
      const offeredMechs = conn.features.get('AUTH');
      if (offeredMechs === undefined) return { ok: true }; // Postfix: proceed without AUTH.
      const opts = conn.tls ? settings.saslTlsSecurityOptions : settings.saslSecurityOptions;
      const mech = pickMechanism(offeredMechs, opts);
      if (!mech) {
        return soft(
          authFailure(
            relay,
            undefined,
            conn.tls
              ? 'no mechanism in common'
              : 'plaintext AUTH is not allowed without TLS (smtpSaslSecurityOptions)',
          ),
        );
      }
      const r = await authenticate(conn, mech, creds, t.helo);
      if (!r.positive) return soft(authFailure(relay, r));
    }
  }
  return { ok: true };
}

function soft(reply: SmtpReply): HandshakeResult {
  return { ok: false, final: false, greeted: true, reply: reply.toTransient() };
}

async function sayHello(conn: SmtpConnection, ctx: HandshakeContext): Promise<HandshakeResult> {
  const { settings } = ctx;
  const t = settings.timeouts;
  const relay = relayName(conn.peer);
  const lmtp = settings.protocol === 'lmtp';
  conn.phase = `sending ${lmtp ? 'LHLO' : 'EHLO'}`;
  let r = await conn.command(`${lmtp ? 'LHLO' : 'EHLO'} ${settings.heloName}`, t.helo);
  if (r.positive) {
    if (firstWord(r) === settings.myhostname.toLowerCase()) {
      return loop(ctx, 'replied to HELO/EHLO with my own hostname');
    }
    conn.features = parseEhlo(r);
    return { ok: true };
  }
  if (!lmtp) {
    conn.phase = 'sending HELO';
    r = await conn.command(`HELO ${settings.heloName}`, t.helo);
    if (r.positive) {
      if (firstWord(r) === settings.myhostname.toLowerCase()) {
        return loop(ctx, 'replied to HELO/EHLO with my own hostname');
      }
      conn.features = new Map();
      return { ok: true };
    }
  }
  return {
    ok: false,
    final: r.permanent,
    greeted: true,
    reply: r.withText(`host ${relay} refused to talk to me: ${r.text}`),
  };
}

/** Reads a CA file once; errors name the parameter. */
export function loadCa(path: string): string | undefined {
  if (path === '') return undefined;
  return readFileSync(path, 'utf8');
}
