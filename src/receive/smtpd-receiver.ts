/**
 * SmtpReceiver: the SMTP server — listens on TCP, or serves any duplex stream, and runs
 * one SmtpSession per connection.
 *
 * Postfix counterpart: smtpd(8) as master(8) runs it: the listener and the process
 * pool are one Node server here, each connection an SmtpSession. Mail leaves only
 * through the Submission port (Postfix: the cleanup(8) service), so the receiver never
 * touches the queue.
 *
 * The receiver owns what sessions share: the compiled restriction lists (with their
 * policy-service connections and tables), the TLS context (certificate and key read
 * from `smtpdTlsCertFile` / `smtpdTlsKeyFile`, or a SecureContext and an SNI callback
 * given in code), the SASL backend, and the anvil table of per-client limits.
 *
 * Does not: reverse DNS for every connection (Postern's client name is `unknown` unless
 * XCLIENT, PROXY or a restriction that needs it looks it up — Postfix's
 * `smtpd_peername_lookup` is not implemented), add headers (Cleanup does). See
 * smtpd-session.ts for the protocol.
 *
 * SECURITY: the restriction lists are checked when the receiver is built, and lists
 * that would make an open relay are refused (ConfigError), as are TLS levels without a
 * certificate and AUTH without a backend. Sockets are half-open aware so that pipelined
 * input followed by a FIN is still answered, and every session is bounded by
 * smtpd_timeout.
 *
 * STANDARDS: RFC 5321, RFC 3207 (STARTTLS), RFC 8314 (implicit TLS on port 465).
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext, TLSSocketOptions } from 'node:tls';
import { builtin } from '../builtin.js';
import { systemClock } from '../clock.js';
import { ConfigError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { DnsResolver } from '../resolver.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import type { ResolveResult } from '../rewrite/types.js';
import { SmtpReply } from '../smtp-reply.js';
import { CidrList } from '../tables/cidr.js';
import type { LookupTable } from '../tables/types.js';
import type { Address, ClientInfo, Clock, Resolver, SubmissionPort } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { Anvil } from './anvil.js';
import { hangUp, SessionLimit } from './session-limit.js';
import type { AuthBackend } from './smtpd-auth.js';
import type { SmtpdParameters } from './smtpd-parameters.js';
import type {
  CommandCheck,
  RestrictionFunction,
  RestrictionStage,
} from './smtpd-restriction-types.js';
import { SmtpdRestrictions } from './smtpd-restrictions.js';
import { buildSessionReplies, type SessionContext, SmtpSession } from './smtpd-session.js';
import { type ListenOptions, TcpListeners } from './tcp-listener.js';

/**
 * TLS material given in code rather than as files.
 *
 * @example
 * ```ts
 * const tls: SmtpTlsOptions = { cert: readFileSync('cert.pem'), key: readFileSync('key.pem') };
 * const receiver = new SmtpReceiver({ params, submission, rewriter, tls });
 * ```
 */
export interface SmtpTlsOptions {
  /** A ready context (certificate, key, ciphers). */
  readonly secureContext?: SecureContext;
  /** PEM certificate chain and key, when no context is given. */
  readonly cert?: string | Buffer;
  /** PEM private key for `cert`. */
  readonly key?: string | Buffer;
  /** SNI: a context for the name the client asked for, or undefined for the default. */
  readonly sni?: (servername: string) => SecureContext | undefined;
}

/**
 * What a receiver needs.
 *
 * @example
 * ```ts
 * const params = resolveParameters({ myhostname: 'mx.example.com' });
 * const options: SmtpReceiverOptions = { params, submission: cleanup, rewriter: new Rewriter({ params }) };
 * ```
 */
export interface SmtpReceiverOptions {
  /** Main parameters (`resolveParameters()`). */
  readonly params: SmtpdParameters;
  /** The way into the queue (Cleanup in a full MTA). */
  readonly submission: SubmissionPort;
  /** Address resolution for relay control (trivial-rewrite). */
  readonly rewriter: Rewriter;
  /** Log sink; events carry component `smtpd`. @default a silent logger */
  readonly logger?: Logger;
  /** Time source for timeouts and error delays. @default the system clock */
  readonly clock?: Clock;
  /** DNS for reject_rbl_client and reject_unknown_*. @default a DnsResolver */
  readonly resolver?: Resolver;
  /**
   * STARTTLS / wrapper-mode material; overrides `smtpdTlsCertFile` / `smtpdTlsKeyFile`.
   * Needed when `smtpdTlsSecurityLevel` is `may` or `encrypt` or `smtpdTlsWrappermode` is on.
   */
  readonly tls?: SmtpTlsOptions;
  /**
   * SASL backend for AUTH PLAIN and LOGIN: `(username, password, session) =>
   * Promise<boolean>`, or a LookupTable of username → password. Required when
   * `smtpdSaslAuthEnable` is on.
   */
  readonly authenticator?: AuthBackend;
  /** Restriction lists given in code; each replaces the parameter of its stage. */
  readonly restrictions?: Partial<
    Record<RestrictionStage, readonly (string | RestrictionFunction | LookupTable)[]>
  >;
  /** Postfix `smtpd_sender_login_maps` for reject_sender_login_mismatch. */
  readonly senderLoginMaps?: LookupTable;
  /** Runs before every command; for test doubles' fault injection (see CommandCheck). */
  readonly commandCheck?: CommandCheck;
  /**
   * Most sessions at once (master.cf `maxproc`; 0 = no limit); the connections beyond it
   * wait for a session (session-limit.ts). @default params.defaultProcessLimit
   */
  readonly processLimit?: number;
}

export type { ListenOptions } from './tcp-listener.js';

/**
 * The SMTP server.
 *
 * @example
 * ```ts
 * const receiver = new SmtpReceiver({ params, submission: cleanup, rewriter });
 * const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
 * // ... later
 * await receiver.close();
 * ```
 */
export class SmtpReceiver {
  readonly #ctx: SessionContext;
  readonly #listeners: TcpListeners;
  readonly #sessions = new Set<SmtpSession>();
  readonly #restrictions: SmtpdRestrictions;
  readonly #limit: SessionLimit;
  #closing = false;

  /**
   * @throws ConfigError when the restriction lists are unusable or would make an open
   *   relay, when TLS is required without a certificate, or AUTH is on without a backend.
   */
  constructor(options: SmtpReceiverOptions) {
    const params = options.params;
    const log = (options.logger ?? silentLogger).for('smtpd');
    this.#listeners = new TcpListeners(log, (socket) => this.#accept(socket));
    const clock = options.clock ?? systemClock;
    const rewriter = options.rewriter;
    const resolver = options.resolver ?? new DnsResolver();
    const restrictions = new SmtpdRestrictions(
      {
        params,
        log,
        resolver,
        isListedRecipient: (_: Address, resolved: ResolveResult) =>
          rewriter.listedRecipientNow(resolved),
        ...(options.senderLoginMaps ? { senderLoginMaps: options.senderLoginMaps } : {}),
        isLocalDomain: (d: string) => rewriter.isLocalDomain(d),
      },
      options.restrictions,
    );
    if (params.smtpdSaslAuthEnable && !options.authenticator) {
      throw new ConfigError(
        'smtpdSaslAuthEnable: AUTH is on but no authenticator was given; pass `authenticator` (a function or a table of users)',
        'smtpdSaslAuthEnable',
      );
    }
    if (
      params.smtpdSaslAuthEnable &&
      params.smtpdSaslMechanisms.includes('CRAM-MD5') &&
      typeof options.authenticator === 'function'
    ) {
      throw new ConfigError(
        'smtpdSaslMechanisms: CRAM-MD5 needs the clear passwords, which an authenticator function does not give; pass `authenticator` as a table of user → password, or remove CRAM-MD5',
        'smtpdSaslMechanisms',
      );
    }
    this.#restrictions = restrictions;
    const limit = options.processLimit ?? params.defaultProcessLimit;
    // Postfix's listen backlog: max(maxproc, default_process_limit) more connections.
    const backlog = Math.max(limit, params.defaultProcessLimit);
    this.#limit = new SessionLimit({ service: 'smtp', limit, backlog, log, clock });
    this.#ctx = {
      params,
      submission: options.submission,
      rewriter: options.rewriter,
      restrictions,
      log,
      clock,
      replies: buildSessionReplies(params),
      tls: buildTlsOptions(params, options.tls),
      auth: options.authenticator,
      anvil: new Anvil(
        {
          connectionCount: params.smtpdClientConnectionCountLimit,
          connectionRate: params.smtpdClientConnectionRateLimit,
          messageRate: params.smtpdClientMessageRateLimit,
          recipientRate: params.smtpdClientRecipientRateLimit,
          authRate: params.smtpdClientAuthRateLimit,
          timeUnitMs: params.anvilRateTimeUnit,
          exceptions: params.smtpdClientEventLimitExceptions,
        },
        clock,
      ),
      xclientHosts: new CidrList(params.smtpdAuthorizedXclientHosts),
      proxyHosts:
        params.smtpdUpstreamProxyHosts.length > 0
          ? new CidrList(params.smtpdUpstreamProxyHosts)
          : undefined,
      bareLfExclusions: new CidrList(params.smtpdForbidBareNewlineExclusions),
      commandCheck: options.commandCheck,
    };
  }

  /** Sessions currently running. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Starts listening; may be called several times for several addresses. Resolves with
   * the bound address (the real port when `port` is 0).
   */
  listen(options: ListenOptions): Promise<{ host: string; port: number }> {
    if (this.#closing) return Promise.reject(new Error('SmtpReceiver.listen() after close()'));
    return this.#listeners.listen(options);
  }

  /** Connections waiting for a session because `processLimit` sessions are running. */
  get waitingCount(): number {
    return this.#limit.waiting;
  }

  /**
   * Serves one connection given as any duplex stream (a socket, an in-memory pair): at
   * once, or when one of the `processLimit` sessions ends.
   */
  handle(socket: Duplex, peer: ClientInfo): void {
    if (this.#closing) {
      hangUp(socket, this.#ctx.replies.shutdown.toWire());
      return;
    }
    this.#limit.enter(
      socket,
      () => this.#serve(socket, peer),
      () => hangUp(socket, R_BUSY.toWire()),
    );
  }

  #serve(socket: Duplex, peer: ClientInfo): void {
    const session = new SmtpSession(this.#ctx, socket, peer);
    this.#sessions.add(session);
    session.done.then(() => {
      this.#sessions.delete(session);
      this.#limit.leave();
    });
    session.start();
  }

  /**
   * Stops accepting connections. `graceful` lets sessions that are receiving or
   * committing a message finish and answer it, and ends idle sessions with
   * `421 4.3.2`; otherwise every connection is dropped at once and open transactions
   * are aborted. Resolves when every session and listener is closed.
   */
  async close(options: { graceful?: boolean } = {}): Promise<void> {
    this.#closing = true;
    const graceful = options.graceful ?? false;
    const closed = this.#listeners.close();
    for (const waiting of this.#limit.drain()) hangUp(waiting, this.#ctx.replies.shutdown.toWire());
    const sessions = [...this.#sessions];
    for (const s of sessions) s.shutdown(graceful);
    await Promise.all(sessions.map((s) => s.done));
    await closed;
    await this.#restrictions.close();
  }

  #accept(socket: net.Socket): void {
    const address = socket.remoteAddress;
    if (address === undefined) {
      // Already gone before we could look at it.
      socket.destroy();
      return;
    }
    this.handle(socket, { address: unmapIPv4(address), port: socket.remotePort, name: 'unknown' });
  }
}

/** postscreen's reply when its queue of waiting clients is full. */
const R_BUSY = new SmtpReply(421, '4.3.2', 'All server ports are busy');

/** `::ffff:192.0.2.1` → `192.0.2.1`, as Postfix logs IPv4 clients on a dual-stack socket. */
function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** The TLS server options from code or from the certificate files; undefined when TLS is off. */
function buildTlsOptions(
  params: SmtpdParameters,
  given: SmtpTlsOptions | undefined,
): TLSSocketOptions | undefined {
  const wanted = params.smtpdTlsSecurityLevel !== 'none' || params.smtpdTlsWrappermode;
  let context = given?.secureContext;
  if (!context && given?.cert !== undefined && given.key !== undefined) {
    context = builtin('tls').createSecureContext({ cert: given.cert, key: given.key });
  }
  if (!context && params.smtpdTlsCertFile !== '') {
    try {
      context = builtin('tls').createSecureContext({
        cert: readFileSync(params.smtpdTlsCertFile),
        key: readFileSync(params.smtpdTlsKeyFile || params.smtpdTlsCertFile),
      });
    } catch (err) {
      throw new ConfigError(
        `smtpdTlsCertFile: cannot load ${params.smtpdTlsCertFile} / ${params.smtpdTlsKeyFile}: ${errorMessage(err)}; give PEM files readable by this process`,
        'smtpdTlsCertFile',
      );
    }
  }
  if (!context) {
    if (wanted) {
      throw new ConfigError(
        'smtpdTlsSecurityLevel / smtpdTlsWrappermode: TLS is on but there is no certificate; set smtpdTlsCertFile and smtpdTlsKeyFile, or pass `tls` with a secureContext',
        'smtpdTlsCertFile',
      );
    }
    return undefined;
  }
  const sni = given?.sni;
  return {
    secureContext: context,
    ...(sni
      ? {
          SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
            try {
              cb(null, sni(name) ?? context);
            } catch (err) {
              cb(err as Error);
            }
          },
        }
      : {}),
  };
}
