/**
 * mailauth's DNS lookups through Postern's injectable Resolver, so DKIM keys, SPF and
 * DMARC records come from the same resolver (and the same fakes in tests) as MX
 * lookups.
 *
 * Postfix counterpart: none (OpenDKIM and OpenDMARC resolve on their own).
 *
 * mailauth asks `(name, rrtype)` as `dns.promises.resolve` answers: TXT as arrays of
 * strings, A/AAAA/PTR as strings, MX as `{ exchange, priority }`. PTR questions come as
 * `in-addr.arpa` / `ip6.arpa` names; the Resolver takes the address. Errors pass
 * through with their `code` (ENOTFOUND, ENODATA), which mailauth reads as "no record".
 *
 * @module
 */

import type { Resolver } from '../types.js';
import type { MailauthResolver } from './mailauth-loader.js';

/**
 * A mailauth resolver over `resolver`.
 *
 * @example
 * ```ts
 * const resolve = mailauthResolver(new DnsResolver());
 * await resolve('_dmarc.example.com', 'TXT');
 * ```
 */
export function mailauthResolver(resolver: Resolver): MailauthResolver {
  return async (name, rrtype) => {
    switch (rrtype.toUpperCase()) {
      case 'TXT':
        return resolver.resolveTxt(name);
      case 'A':
        return resolver.resolve4(name);
      case 'AAAA':
        return resolver.resolve6(name);
      case 'MX':
        return resolver.resolveMx(name);
      case 'PTR': {
        const address = addressOfPtrName(name);
        if (address === undefined) throw notFound(name);
        return resolver.reverse(address);
      }
      default:
        throw Object.assign(new Error(`no ${rrtype} lookups for ${name}`), { code: 'ENODATA' });
    }
  };
}

/** `4.3.2.1.in-addr.arpa` → `1.2.3.4`; a nibble `ip6.arpa` name → the IPv6 address. */
export function addressOfPtrName(name: string): string | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(n);
  if (v4) return [v4[4], v4[3], v4[2], v4[1]].join('.');
  const v6 = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(n);
  if (!v6) return undefined;
  const hex = v6[1]!.split('.').filter(Boolean).reverse().join('');
  return hex.match(/.{4}/g)!.join(':');
}

function notFound(name: string): Error {
  return Object.assign(new Error(`${name}: not found`), { code: 'ENOTFOUND' });
}
