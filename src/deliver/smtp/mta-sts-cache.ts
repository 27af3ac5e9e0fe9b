/**
 * MtaStsResolver: the MTA-STS policy of a recipient domain, from the `_mta-sts` TXT
 * record, an in-memory policy cache and, when needed, an HTTPS fetch.
 *
 * Postfix counterpart: none built in; postfix-mta-sts-resolver (a daemon answering
 * `smtp_tls_policy_maps` queries) does this next to Postfix.
 *
 * Control flow (RFC 8461 section 5.1), per look-up:
 * - the TXT record is queried each time (the DNS resolver caches it);
 * - a cached, unexpired policy whose id equals the record's is used as is;
 * - a new id, or no usable cached policy, means a fetch; a successful fetch replaces
 *   the cached policy, which then lives `max_age` seconds;
 * - a failed fetch keeps the cached policy while it is unexpired (an attacker who blocks
 *   the HTTPS host cannot switch enforcement off), and the same id is not fetched again
 *   for `fetchRetryMs` (section 3.3 suggests at least five minutes);
 * - a missing, ambiguous or failing TXT record also keeps the cached policy: only a
 *   fetched `mode: none` policy, or expiry, removes one;
 * - no record and nothing cached: no policy (`undefined`).
 * Concurrent look-ups for one domain share one TXT query and one fetch. The cache holds
 * at most `cacheSize` domains, least recently used first out.
 *
 * mtaStsResolverFor() builds the one an SMTP client uses by default; SharedMtaSts gives
 * the SMTP transports of one Mta a single one, so a policy is fetched once for all.
 *
 * Does not: refresh policies before they expire (section 10.2 suggests it), persist the
 * cache across restarts, or send TLS reports (RFC 8460).
 *
 * STANDARDS: RFC 8461 sections 3.1, 3.3, 5.1, 10.2.
 *
 * @module
 */

import { LRUCache } from 'lru-cache';
import { systemClock } from '../../clock.js';
import { type ComponentLogger, silentLogger } from '../../log.js';
import { DnsResolver, isDnsNoData, isDnsNotFound } from '../../resolver.js';
import type { Clock, Resolver } from '../../types.js';
import { errorMessage } from '../../util/error-message.js';
import { type ClientSettings, clientSettings } from './client-settings.js';
import { MtaStsFetcher, mtaStsDomain } from './mta-sts-fetcher.js';
import { MtaStsError, type MtaStsPolicy, selectMtaStsRecord } from './mta-sts-policy.js';
import { loadCa } from './smtp-handshake.js';
import type { SmtpClientParameters } from './smtp-parameters.js';

/**
 * Options of an MtaStsResolver.
 *
 * @example
 * ```ts
 * const sts = new MtaStsResolver({
 *   resolver: new DnsResolver(),
 *   cacheSize: 10_000,
 *   fetchTimeoutMs: 10_000,
 * } satisfies MtaStsResolverOptions);
 * ```
 */
export interface MtaStsResolverOptions {
  /** DNS: the TXT record, and the policy host's addresses for the default fetcher. */
  readonly resolver: Resolver;
  /** Fetches a policy; default: an MtaStsFetcher with `ca`, `fetchTimeoutMs` and `port`. */
  readonly fetch?: (domain: string) => Promise<MtaStsPolicy>;
  /** Trusted CAs (PEM) for the default fetcher; undefined = Node's bundle. */
  readonly ca?: string;
  /** Timeout of the default fetcher, in ms. @default 10000 */
  readonly fetchTimeoutMs?: number;
  /** Port of the policy host for the default fetcher (tests). @default 443 */
  readonly port?: number;
  /** Domains whose policy is kept. @default 10000 */
  readonly cacheSize?: number;
  /** How long a failed fetch of one policy id is not tried again, in ms. @default 300000 */
  readonly fetchRetryMs?: number;
  /** Time source for policy expiry. @default systemClock */
  readonly clock?: Clock;
  /** Where fetch failures and policy changes are logged. @default silentLogger */
  readonly logger?: ComponentLogger;
}

interface CachedPolicy {
  readonly policy: MtaStsPolicy;
  readonly id: string;
  readonly expiresAt: number;
}

interface FailedFetch {
  readonly id: string;
  readonly at: number;
}

/**
 * Finds and caches MTA-STS policies. `lookup()` never throws: every failure means "use
 * what is cached, else no policy", as RFC 8461 section 5.1 asks.
 *
 * @example
 * ```ts
 * const sts = new MtaStsResolver({ resolver: new DnsResolver() });
 * const policy = await sts.lookup('example.com');
 * if (policy?.mode === 'enforce') console.log(`MX must match ${policy.mx.join(', ')}`);
 * ```
 */
export class MtaStsResolver {
  readonly #resolver: Resolver;
  readonly #fetch: (domain: string) => Promise<MtaStsPolicy>;
  readonly #clock: Clock;
  readonly #log: ComponentLogger;
  readonly #retryMs: number;
  readonly #cache: LRUCache<string, CachedPolicy>;
  readonly #failed: LRUCache<string, FailedFetch>;
  readonly #inflight = new Map<string, Promise<MtaStsPolicy | undefined>>();
  #fetches = 0;

  constructor(options: MtaStsResolverOptions) {
    const size = options.cacheSize ?? 10_000;
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(
        `MtaStsResolver: cacheSize ${size} must be a whole number of at least 1 (smtpMtaStsCacheSize)`,
      );
    }
    this.#resolver = options.resolver;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger.for('smtp');
    this.#retryMs = options.fetchRetryMs ?? 300_000;
    this.#cache = new LRUCache({ max: size });
    this.#failed = new LRUCache({ max: size });
    if (options.fetch) {
      this.#fetch = options.fetch;
    } else {
      const fetcher = new MtaStsFetcher({
        resolver: options.resolver,
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
        ...(options.fetchTimeoutMs !== undefined ? { timeoutMs: options.fetchTimeoutMs } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
      });
      this.#fetch = (domain) => fetcher.fetch(domain);
    }
  }

  /** Policy fetches started since the resolver was built (successful or not). */
  get fetches(): number {
    return this.#fetches;
  }

  /**
   * The policy that applies to mail for `domain` now, or `undefined` when it has none
   * (also for names MTA-STS does not apply to, such as address literals). A policy in
   * mode `none` is returned as such.
   */
  lookup(domain: string): Promise<MtaStsPolicy | undefined> {
    const key = mtaStsDomain(domain);
    if (key === undefined) return Promise.resolve(undefined);
    const running = this.#inflight.get(key);
    if (running) return running;
    const p = this.#lookup(key).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  /** Forgets every cached policy and failed fetch. */
  clear(): void {
    this.#cache.clear();
    this.#failed.clear();
  }

  async #lookup(domain: string): Promise<MtaStsPolicy | undefined> {
    const now = this.#clock.now();
    let cached = this.#cache.get(domain);
    if (cached && now >= cached.expiresAt) {
      this.#cache.delete(domain);
      cached = undefined;
    }

    const id = await this.#recordId(domain);
    if (id === undefined) return cached?.policy;
    if (cached && cached.id === id) return cached.policy;

    const failed = this.#failed.get(domain);
    if (failed && failed.id === id && now - failed.at < this.#retryMs) return cached?.policy;

    this.#fetches++;
    let policy: MtaStsPolicy;
    try {
      policy = await this.#fetch(domain);
    } catch (err) {
      this.#failed.set(domain, { id, at: this.#clock.now() });
      const why = errorMessage(err);
      this.#log.warning(
        undefined,
        `MTA-STS policy of ${domain} (id ${id}) could not be fetched: ${why}${cached ? '; the cached policy stays in force' : ''}`,
      );
      return cached?.policy;
    }
    this.#failed.delete(domain);
    this.#cache.set(domain, { policy, id, expiresAt: this.#clock.now() + policy.maxAge * 1000 });
    this.#log.info(
      undefined,
      `MTA-STS policy of ${domain} (id ${id}): mode ${policy.mode}, max_age ${policy.maxAge}${policy.mx.length > 0 ? `, mx ${policy.mx.join(' ')}` : ''}`,
    );
    return policy;
  }

  /** The id of the domain's record; `undefined` when there is no usable one. */
  async #recordId(domain: string): Promise<string | undefined> {
    let records: string[][];
    try {
      records = await this.#resolver.resolveTxt(`_mta-sts.${domain}`);
    } catch (err) {
      if (!isDnsNotFound(err) && !isDnsNoData(err)) {
        const why = errorMessage(err);
        this.#log.info(undefined, `MTA-STS record of ${domain} not available: ${why}`);
      }
      return undefined;
    }
    try {
      return selectMtaStsRecord(records)?.id;
    } catch (err) {
      if (!(err instanceof MtaStsError)) throw err;
      this.#log.warning(undefined, `MTA-STS record of ${domain} ignored: ${err.message}`);
      return undefined;
    }
  }
}

/**
 * The default policy cache of an SMTP client: on `resolver`, with the client's
 * `smtpMtaStsCacheSize` and `smtpMtaStsFetchTimeout`.
 *
 * @example
 * ```ts
 * const sts = mtaStsResolverFor(clientSettings(params, 'smtp'), new DnsResolver(), logger.for('smtp'), {
 *   ca: loadCa(params.smtpTlsCAfile),
 * });
 * ```
 */
export function mtaStsResolverFor(
  settings: ClientSettings,
  resolver: Resolver,
  logger: ComponentLogger,
  options: { readonly ca?: string | undefined; readonly clock?: Clock } = {},
): MtaStsResolver {
  return new MtaStsResolver({
    resolver,
    cacheSize: settings.mtaStsCacheSize,
    fetchTimeoutMs: settings.mtaStsFetchTimeout,
    logger,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
}

/**
 * Hands the SMTP transports of one Mta a single MtaStsResolver, so a domain's policy is
 * fetched and cached once: every transport whose CA file and MTA-STS limits are the
 * main parameters' shares it (built on first use); a transport that overrides one of
 * them gets none here and builds its own.
 *
 * @example
 * ```ts
 * const shared = new SharedMtaSts({ params, logger: logger.for('smtp') });
 * const smtp = new SmtpDeliveryAgent({ params, mtaSts: shared.for(params) });
 * ```
 */
export class SharedMtaSts {
  readonly #main: ClientSettings;
  readonly #resolver: Resolver | undefined;
  readonly #logger: ComponentLogger;
  readonly #clock: Clock | undefined;
  #policies: MtaStsResolver | undefined;
  readonly #given: boolean;

  constructor(options: {
    /** The main parameters. */
    readonly params: SmtpClientParameters;
    /** DNS; default: a DnsResolver. */
    readonly resolver?: Resolver;
    /** Where the policy cache logs. */
    readonly logger: ComponentLogger;
    /** Time for policy expiry. @default systemClock */
    readonly clock?: Clock;
    /** A policy cache to share instead of building one (every SMTP transport gets it). */
    readonly policies?: MtaStsResolver;
  }) {
    this.#main = clientSettings(options.params, 'smtp');
    this.#resolver = options.resolver;
    this.#logger = options.logger;
    this.#clock = options.clock;
    this.#policies = options.policies;
    this.#given = options.policies !== undefined;
  }

  /** The shared policy cache for a transport with parameters `params`, if it may use it. */
  for(params: SmtpClientParameters): MtaStsResolver | undefined {
    if (!params.smtpMtaStsEnable) return undefined;
    if (this.#given) return this.#policies;
    const m = this.#main;
    if (
      params.smtpTlsCAfile !== m.tlsCAfile ||
      params.smtpMtaStsCacheSize !== m.mtaStsCacheSize ||
      params.smtpMtaStsFetchTimeout !== m.mtaStsFetchTimeout
    ) {
      return undefined;
    }
    this.#policies ??= mtaStsResolverFor(m, this.#resolver ?? new DnsResolver(), this.#logger, {
      ca: loadCa(m.tlsCAfile),
      ...(this.#clock ? { clock: this.#clock } : {}),
    });
    return this.#policies;
  }
}
