/**
 * `postern/dns`: the Resolver Postern uses when none is injected, and how to read the
 * errors a Resolver throws. This file only re-exports; the Resolver contract is exported
 * from `postern`.
 *
 * Postfix counterpart: dns_lookup.c, whose results tell "no such name" (a bounce),
 * "no such record" (try the next kind) and "try again" (a deferral) apart.
 *
 * Does not: cache. DnsResolver asks `dns.resolve*` (c-ares) every time and never
 * `dns.lookup`, which would share libuv's thread pool with every fsync.
 *
 * @example
 * ```ts
 * import { DnsResolver, isDnsNotFound, isDnsTemporary } from 'postern/dns';
 *
 * const resolver = new DnsResolver({ servers: ['127.0.0.1'], timeoutMs: 2000 });
 * try {
 *   await resolver.resolveMx('example.com');
 * } catch (err) {
 *   if (isDnsTemporary(err)) console.log('defer: try again later');
 *   else if (isDnsNotFound(err)) console.log('bounce: no such domain');
 * }
 * ```
 *
 * @module postern/dns
 */

export type { DnsResolverOptions } from '../resolver.js';
export { DnsResolver, isDnsNoData, isDnsNotFound, isDnsTemporary } from '../resolver.js';
