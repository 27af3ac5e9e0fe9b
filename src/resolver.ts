/**
 * DnsResolver: the default Resolver, on `node:dns` promises' Resolver (c-ares), never
 * `dns.lookup`; and helpers that classify DNS errors.
 *
 * Postfix counterpart: dns_lookup.c over the system resolver library, and its
 * DNS_NOTFOUND / DNS_RETRY / "no data" outcomes. `dns.lookup` goes through
 * getaddrinfo on libuv's four-thread pool, which every fsync also uses, so a slow DNS
 * server would stall the queue; the c-ares resolver is asynchronous.
 *
 * node:dns is loaded, and its c-ares channel made, by the first query: a server whose
 * configuration looks nothing up (no relay over SMTP, no DNS restrictions) never pays
 * for either.
 *
 * Does not: cache (callers may), DNSSEC, TLSA.
 *
 * @module
 */

import type { promises as dns } from 'node:dns';
import { builtin } from './builtin.js';
import type { MxRecord, Resolver } from './types.js';

/**
 * Options for DnsResolver.
 *
 * @example
 * ```ts
 * const resolver = new DnsResolver({ servers: ['127.0.0.53'], timeoutMs: 2000 } satisfies DnsResolverOptions);
 * ```
 */
export interface DnsResolverOptions {
  /** Per-query timeout in ms. @default 5000 */
  readonly timeoutMs?: number;
  /** Tries per query. @default 2 */
  readonly tries?: number;
  /** Name servers (`['127.0.0.53']`); the system's by default. */
  readonly servers?: readonly string[];
}

/**
 * A Resolver backed by `dns.promises.Resolver`.
 *
 * @example
 * ```ts
 * const mx = await new DnsResolver().resolveMx('example.com');
 * ```
 */
export class DnsResolver implements Resolver {
  readonly #options: DnsResolverOptions;
  #resolver: InstanceType<typeof dns.Resolver> | undefined;

  constructor(options: DnsResolverOptions = {}) {
    this.#options = { ...options };
    // Name servers are checked now, so that a bad address fails where it is given.
    if (options.servers) this.#r.setServers([...options.servers]);
  }

  /** The c-ares resolver, made on first use. */
  get #r(): InstanceType<typeof dns.Resolver> {
    if (this.#resolver) return this.#resolver;
    const { Resolver } = builtin('dns').promises;
    const options = this.#options;
    this.#resolver = new Resolver({
      timeout: options.timeoutMs ?? 5000,
      tries: options.tries ?? 2,
    });
    return this.#resolver;
  }

  async resolveMx(name: string): Promise<MxRecord[]> {
    return (await this.#r.resolveMx(name)).map((m) => ({
      exchange: m.exchange,
      priority: m.priority,
    }));
  }

  resolve4(name: string): Promise<string[]> {
    return this.#r.resolve4(name);
  }

  resolve6(name: string): Promise<string[]> {
    return this.#r.resolve6(name);
  }

  reverse(address: string): Promise<string[]> {
    return this.#r.reverse(address);
  }

  resolveTxt(name: string): Promise<string[][]> {
    return this.#r.resolveTxt(name);
  }
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The name does not exist (NXDOMAIN).
 *
 * @example
 * ```ts
 * try { await resolver.resolveMx('nx.example'); } catch (err) { if (isDnsNotFound(err)) bounce(); }
 * ```
 */
export function isDnsNotFound(err: unknown): boolean {
  return codeOf(err) === 'ENOTFOUND';
}

/**
 * The name exists but has no record of the asked type.
 *
 * @example
 * ```ts
 * const mx = await resolver.resolveMx(domain).catch((err) => (isDnsNoData(err) ? [] : Promise.reject(err)));
 * ```
 */
export function isDnsNoData(err: unknown): boolean {
  return codeOf(err) === 'ENODATA';
}

/**
 * Anything else: a server failure, a timeout, a refused query — try again later.
 *
 * @example
 * ```ts
 * if (isDnsTemporary(err)) return defer('Host or domain name lookup: try again');
 * ```
 */
export function isDnsTemporary(err: unknown): boolean {
  return !isDnsNotFound(err) && !isDnsNoData(err);
}
