/**
 * SmtpClient: the delivery engine shared by SmtpDeliveryAgent and LmtpDeliveryAgent —
 * from one delivery request to sessions with servers, in turn, until every recipient
 * has an outcome.
 *
 * Postfix counterpart: smtp(8)'s smtp_connect.c (smtp_connect_remote: walk the server
 * list, honour smtp_mx_session_limit, reuse cached sessions) together with the protocol
 * pieces in this folder.
 *
 * Order of work: a cached session to the same nexthop (probed with RSET) first; then the
 * servers found for the nexthop list (mx-resolver.ts), each connected through the
 * Connector, greeted (smtp-handshake.ts) and given the transaction
 * (smtp-transaction.ts). A server that fails softly before the body went out hands the
 * still-pending recipients to the next one; at most `smtpMxSessionLimit` servers that
 * answered are used. Recipients with no final outcome at the end are deferred with their
 * own last reply or the last session-level one (`4.4.1` connect failure, `4.4.2` lost
 * connection or timeout). A session after a clean transaction goes to the
 * ConnectionCache.
 *
 * The destination status goes to the reporter: ok once any server greeted us, a failure
 * (with the reason) when none could be reached — the QueueManager's dead-destination and
 * concurrency feedback use it.
 *
 * MTA-STS (RFC 8461, `smtpMtaStsEnable`; mta-sts-enforcement.ts decides when it applies):
 * an enforced policy limits the MX hosts and requires verified TLS, failures defer, and
 * its sessions are cached apart from others.
 *
 * Does not: SRV look-ups, BDAT/CHUNKING (BINARYMIME is never accepted, so never needed),
 * MTA-STS for relayhost or `[host]` nexthops, TLS reporting (RFC 8460), XFORWARD/XCLIENT.
 *
 * @module
 */

import { isIP } from 'node:net';
import { NetConnector } from '../../connector.js';
import { type ComponentLogger, silentLogger } from '../../log.js';
import { DnsResolver } from '../../resolver.js';
import { SmtpReply } from '../../smtp-reply.js';
import { createTable } from '../../tables/create-table.js';
import type { LookupTable } from '../../tables/types.js';
import type { Connector, Resolver } from '../../types.js';
import type { DeliveryAgent, DeliveryReporter, DeliveryRequest } from '../types.js';
import { type ClientSettings, clientSettings } from './client-settings.js';
import { ConnectionCache } from './connection-cache.js';
import type { MtaStsResolver } from './mta-sts-cache.js';
import { type MtaStsDecision, MtaStsEnforcement } from './mta-sts-enforcement.js';
import { type Endpoint, findEndpoints } from './mx-resolver.js';
import { type Nexthop, NexthopSyntaxError, parseNexthopList } from './nexthop.js';
import { RecipientTracker } from './recipient-tracker.js';
import { SessionError } from './session-error.js';
import { relayName, SmtpConnection } from './smtp-connection.js';
import { handshake, loadCa } from './smtp-handshake.js';
import type { SmtpClientParameters } from './smtp-parameters.js';
import { runTransaction, type TransactionState } from './smtp-transaction.js';
import { type DaneVerifier, findPolicy, type TlsPolicy } from './tls-policy.js';

/**
 * What SmtpDeliveryAgent and LmtpDeliveryAgent take.
 *
 * @example
 * ```ts
 * const smtp = new SmtpDeliveryAgent({
 *   params: resolveParameters({ relayhost: '[smtp.example.net]:587', smtpTlsSecurityLevel: 'encrypt' }),
 *   resolver: new DnsResolver({ servers: ['127.0.0.53'] }),
 * } satisfies SmtpClientOptions);
 * ```
 */
export interface SmtpClientOptions {
  /** The `smtp*` (or `lmtp*`) parameters, `relayhost` and TLS/SASL tables. */
  readonly params: SmtpClientParameters;
  /** DNS; default: DnsResolver (c-ares, never getaddrinfo). */
  readonly resolver?: Resolver;
  /** Opens connections; default: NetConnector (node:net). */
  readonly connector?: Connector;
  /** Logs under component `smtp` or `lmtp`. @default silentLogger */
  readonly logger?: { for(component: string): ComponentLogger };
  /** DANE TLSA checks for the `dane`/`dane-only` levels. */
  readonly dane?: DaneVerifier;
  /** Other names of this machine an MX record may use (loop detection). */
  readonly ownNames?: readonly string[];
  /** Random source for MX shuffling (tests). */
  readonly random?: () => number;
  /** MTA-STS policy cache (`smtpMtaStsEnable`), shareable; default: mtaStsResolverFor(). */
  readonly mtaSts?: MtaStsResolver;
}

/**
 * Counters of a client, for benchmarks and monitoring.
 *
 * @example
 * ```ts
 * const { opened, reused }: SmtpClientStats = smtp.stats;
 * console.log(`connection reuse: ${reused}/${opened + reused}`);
 * ```
 */
export interface SmtpClientStats {
  /** Sessions opened. */
  readonly opened: number;
  /** Deliveries that used a cached session. */
  readonly reused: number;
}

type Outcome = 'done' | 'next';

export class SmtpClient implements DeliveryAgent {
  /** The client's parameters, resolved once when it was built. */
  readonly settings: ClientSettings;
  readonly #resolver: Resolver;
  readonly #connector: Connector;
  readonly #log: ComponentLogger;
  readonly #cache: ConnectionCache;
  readonly #tlsTable: LookupTable | undefined;
  readonly #saslTable: LookupTable | undefined;
  readonly #ca: string | undefined;
  readonly #options: SmtpClientOptions;
  readonly #mtaSts: MtaStsEnforcement | undefined;

  constructor(options: SmtpClientOptions, protocol: 'smtp' | 'lmtp') {
    this.#options = options;
    this.settings = clientSettings(options.params, protocol);
    const s = this.settings;
    this.#resolver = options.resolver ?? new DnsResolver();
    this.#connector = options.connector ?? new NetConnector();
    this.#log = (options.logger ?? silentLogger).for(s.component);
    this.#tlsTable =
      s.tlsPolicyMaps === undefined ? undefined : createTable(s.tlsPolicyMaps, 'smtpTlsPolicyMaps');
    this.#saslTable =
      s.saslPasswordMaps === undefined
        ? undefined
        : createTable(s.saslPasswordMaps, 'smtpSaslPasswordMaps');
    this.#ca = loadCa(s.tlsCAfile);
    this.#mtaSts = !s.mtaStsEnable
      ? undefined
      : new MtaStsEnforcement({
          settings: s,
          resolver: this.#resolver,
          policies: options.mtaSts,
          tlsTable: this.#tlsTable,
          ca: this.#ca,
          logger: this.#log,
        });
    this.#cache = new ConnectionCache({
      idleMs: s.cacheTimeLimit,
      reuseTimeMs: s.reuseTimeLimit,
      reuseCount: s.reuseCountLimit,
      close: (conn) => void conn.quit(!s.skipQuitResponse, s.timeouts.quit),
    });
  }

  /** Session counters since the client was built. */
  get stats(): SmtpClientStats {
    return { opened: this.#cache.opened, reused: this.#cache.reused };
  }

  async close(): Promise<void> {
    this.#cache.closeAll();
  }

  /**
   * Delivers one request: finds the servers (MX or nexthop), tries them in order, and reports each recipient.
   */
  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    const s = this.settings;
    const tracker = new RecipientTracker(request.recipients, reporter);
    const nexthopText = request.nexthop.trim() || domainOf(request.recipients[0]?.address ?? '');
    let nexthops: Nexthop[];
    try {
      nexthops = parseNexthopList(nexthopText, s.defaultPort, s.protocol === 'smtp');
    } catch (err) {
      const why = err instanceof NexthopSyntaxError ? err.message : String(err);
      tracker.finish(
        new SmtpReply(451, '4.3.5', `mail transport configuration error: ${why}`),
        'none',
      );
      return;
    }
    const sts = await this.#mtaSts?.decide(nexthops, nexthopText, request);
    const run: RunState = {
      request,
      tracker,
      nexthopText,
      // Sessions made under an enforced MTA-STS policy are never mixed with others.
      cacheKey: `${request.transport}\u0000${nexthopText}${sts?.enforced ? '\u0000mta-sts' : ''}`,
      sts,
      lastReply: undefined,
      lastRelay: undefined,
      greeted: false,
      sessions: 0,
    };

    // A cached session first: the cheapest way to the same place.
    const cached = this.#cache.take(run.cacheKey);
    if (cached) {
      const outcome = await this.#reuse(cached, run);
      if (outcome === 'done' || tracker.done) {
        tracker.finish(run.lastReply ?? noServer(nexthopText), run.lastRelay);
        reporter.destination({ ok: true });
        return;
      }
    }

    const endpoints = await this.#endpoints(nexthops, run);
    if (!endpoints.ok) {
      const reply = endpoints.reply;
      if (reply.permanent) tracker.bounceAll(reply, 'none');
      else tracker.finish(reply, 'none');
      if (!run.greeted) reporter.destination({ ok: false, reply });
      return;
    }
    for (const ep of endpoints.list) {
      if (tracker.done || request.signal.aborted) break;
      if (s.mxSessionLimit > 0 && run.sessions >= s.mxSessionLimit) break;
      let outcome = await this.#session(ep, run, false);
      if (outcome === 'retry-plaintext') outcome = await this.#session(ep, run, true);
      if (outcome === 'done') break;
    }
    tracker.finish(run.lastReply ?? noServer(nexthopText), run.lastRelay);
    reporter.destination(
      run.greeted ? { ok: true } : { ok: false, reply: run.lastReply ?? noServer(nexthopText) },
    );
  }

  async #endpoints(
    nexthops: readonly Nexthop[],
    run: RunState,
  ): Promise<{ ok: true; list: readonly Endpoint[] } | { ok: false; reply: SmtpReply }> {
    const s = this.settings;
    const list: Endpoint[] = [];
    for (const hop of nexthops) {
      if (hop.kind === 'unix') {
        list.push({ host: hop.path, address: '', port: 0, nexthop: hop.path, viaMx: false });
      }
    }
    const inet = nexthops.filter((h) => h.kind === 'inet');
    if (inet.length > 0) {
      const r = await findEndpoints(inet, {
        resolver: this.#resolver,
        ownNames: [s.myhostname, ...(this.#options.ownNames ?? [])],
        mxAddressLimit: s.mxAddressLimit,
        addressPreference: s.addressPreference,
        deferIfNoMxAddressFound: s.deferIfNoMxAddressFound,
        randomize: s.randomizeAddresses,
        ...(this.#options.random ? { random: this.#options.random } : {}),
      });
      if (r.ok) list.push(...r.endpoints);
      else if (list.length === 0) {
        this.#log.info(run.request.queueId, r.reply.text);
        return { ok: false, reply: r.reply };
      }
    }
    if (!run.sts) return { ok: true, list };
    // RFC 8461 section 5: no MX host matches an enforced policy — never deliver elsewhere.
    const usable = run.sts.usable(list);
    return usable.length > 0
      ? { ok: true, list: usable }
      : { ok: false, reply: run.sts.noMatchReply() };
  }

  /** The transaction on a cached session, probed with RSET; a stale session is dropped. */
  async #reuse(conn: SmtpConnection, run: RunState): Promise<Outcome> {
    if (run.sts && !run.sts.allows(conn.peer.host)) {
      // The policy changed since the session was made: that server is no longer allowed.
      conn.destroy();
      return 'next';
    }
    return this.#transact(conn, run, true);
  }

  async #session(
    ep: Endpoint,
    run: RunState,
    plaintextOnly: boolean,
  ): Promise<Outcome | 'retry-plaintext'> {
    const s = this.settings;
    const { request, tracker } = run;
    const label = relayName(ep);
    let socket: Awaited<ReturnType<Connector['connect']>>;
    try {
      const family = isIP(ep.address);
      const local = family === 6 ? s.bindAddress6 : family === 4 ? s.bindAddress : '';
      socket = await this.#connector.connect(
        ep.address === ''
          ? { path: ep.host }
          : { host: ep.address, port: ep.port, ...(local ? { localAddress: local } : {}) },
        { signal: request.signal, timeoutMs: s.timeouts.connect },
      );
    } catch (err) {
      const why = (err as Error)?.message ?? String(err);
      run.lastReply = new SmtpReply(451, '4.4.1', `connect to ${label}: ${why}`);
      run.lastRelay = label;
      this.#log.info(request.queueId, `connect to ${label}: ${why}`);
      return 'next';
    }
    const conn = new SmtpConnection(socket, ep, Date.now());
    this.#cache.opened++;
    const onAbort = (): void => conn.destroy();
    request.signal.addEventListener('abort', onAbort, { once: true });
    try {
      let policy: TlsPolicy = { level: 'none' };
      if (run.sts?.enforced) policy = run.sts.tlsPolicy();
      else if (s.tlsSecurityLevel !== 'none' || this.#tlsTable) {
        policy = await findPolicy(this.#tlsTable, run.nexthopText, ep.nexthop, s.tlsSecurityLevel);
      }
      let hs: Awaited<ReturnType<typeof handshake>>;
      try {
        hs = await handshake(conn, {
          settings: s,
          endpoint: ep,
          nexthopText: run.nexthopText,
          policy,
          plaintextOnly,
          saslTable: this.#saslTable,
          dane: this.#options.dane,
          ca: this.#ca,
        });
      } catch (err) {
        if (!(err instanceof SessionError)) throw err;
        const reply = run.sts?.note(err.reply) ?? err.reply;
        run.lastReply = reply;
        run.lastRelay = label;
        tracker.softAll(reply, label);
        this.#log.info(request.queueId, reply.text);
        return 'next';
      }
      if (!hs.ok) {
        if (hs.greeted) run.sessions++;
        run.lastRelay = label;
        void conn.quit(false, 0);
        if (hs.final) {
          tracker.bounceAll(hs.reply, label, `dns; ${ep.host}`);
          run.greeted = true;
          return 'done';
        }
        const reply = run.sts?.note(hs.reply) ?? hs.reply;
        run.lastReply = reply;
        tracker.softAll(reply, label);
        this.#log.info(request.queueId, reply.text);
        return hs.retryPlaintext ? 'retry-plaintext' : 'next';
      }
      run.sts?.checkTesting(conn, ep);
      run.greeted = true;
      run.sessions++;
      return await this.#transact(conn, run);
    } finally {
      request.signal.removeEventListener('abort', onAbort);
    }
  }

  /** The transaction; `probe` for a cached session (see TransactionState.probe). */
  async #transact(conn: SmtpConnection, run: RunState, probe = false): Promise<Outcome> {
    const s = this.settings;
    const label = relayName(conn.peer);
    const state: TransactionState = { bodySent: false, reusable: true, probe };
    const onAbort = (): void => conn.destroy();
    // Past the probe, a cached session counts as one used, like a fresh one greeted.
    const used = (): void => {
      if (!probe) return;
      this.#cache.reused++;
      run.greeted = true;
      run.sessions++;
    };
    run.request.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const outcome = await runTransaction(conn, run.request, run.tracker, s, state);
      if (outcome === 'stale') {
        conn.destroy();
        return 'next';
      }
      used();
      conn.uses++;
      if (state.reusable && !conn.broken) this.#cache.put(run.cacheKey, conn);
      else void conn.quit(!s.skipQuitResponse, s.timeouts.quit);
      return outcome;
    } catch (err) {
      conn.destroy();
      if (!(err instanceof SessionError)) throw err;
      used();
      run.lastReply = err.reply;
      run.lastRelay = label;
      run.tracker.softAll(err.reply, label);
      this.#log.info(run.request.queueId, err.reply.text);
      // After the body went out, another server would mean a second copy.
      return state.bodySent ? 'done' : 'next';
    } finally {
      run.request.signal.removeEventListener('abort', onAbort);
    }
  }
}

interface RunState {
  readonly request: DeliveryRequest;
  readonly tracker: RecipientTracker;
  readonly nexthopText: string;
  readonly cacheKey: string;
  /** The MTA-STS policy in force for this delivery, if any. */
  readonly sts: MtaStsDecision | undefined;
  lastReply: SmtpReply | undefined;
  lastRelay: string | undefined;
  greeted: boolean;
  sessions: number;
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1);
}

function noServer(nexthop: string): SmtpReply {
  return new SmtpReply(451, '4.4.1', `no server for ${nexthop} could be reached`);
}
