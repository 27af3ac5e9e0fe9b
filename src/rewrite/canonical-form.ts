/**
 * The canonical form of an address: trivial-rewrite's `rewrite` request in the `local`
 * context, as a pure function of the address and the parameters.
 *
 * Postfix counterpart: trivial-rewrite/rewrite.c rewrite_tree() (ADDRESS_REWRITING_README
 * "Rewrite addresses to standard form").
 *
 * `''` and a lone `@` stay `''`; a source route `@a,@b:user@d` is stripped; `user@`
 * loses its empty domain; an address without a domain becomes `user@site` for
 * `site!user` (swapBangpath), `user@dom` for `user%dom` (allowPercentHack), otherwise
 * gets `@$myorigin` (appendAtMyorigin); `user@host` becomes `user@host.$mydomain` with
 * appendDotMydomain; a trailing dot is dropped; the domain is lower-cased and, when it
 * holds non-ASCII, UTS #46-mapped to its U-label form (the form an SMTPUTF8 envelope keeps).
 *
 * Does not: the `remote` context (remote_header_rewrite_domain), canonical maps or
 * masquerading (cleanup), or resolve anything.
 *
 * STANDARDS: RFC 5321 section 3.6.1 (source routes); RFC 1123 section 5.2.16 (the `%`
 * hack); UTS #46 (IDN mapping).
 *
 * @module
 */

import { isAscii, splitAddress } from '../address/address.js';
import { toUnicodeDomain } from '../address/domain.js';
import type { Address } from '../types.js';
import type { RewriterParameters } from './rewrite-parameters.js';

/** Lower-cases ASCII letters only (a UTF-8 local part or U-label keeps its other letters). */
export function lowerAscii(text: string): string {
  return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** Canonical domain text: trailing dot dropped, lower-cased, U-labels UTS #46-mapped. */
export function canonicalDomain(domain: string): string {
  const d = domain.endsWith('.') && domain.length > 1 ? domain.slice(0, -1) : domain;
  if (isAscii(d)) return lowerAscii(d);
  return toUnicodeDomain(d) ?? d.toLowerCase();
}

type RewriteParameters = Pick<
  RewriterParameters,
  | 'swapBangpath'
  | 'allowPercentHack'
  | 'appendAtMyorigin'
  | 'appendDotMydomain'
  | 'myorigin'
  | 'mydomain'
>;

/** An unqualified local part: bang path, percent hack, or `@$myorigin`. */
function qualify(local: string, p: RewriteParameters): { local: string; domain: string } {
  // swap_bangpath: `site!user` → `user@site`.
  const bang = local.indexOf('!');
  if (p.swapBangpath && bang > 0 && bang < local.length - 1) {
    return { local: local.slice(bang + 1), domain: local.slice(0, bang) };
  }
  // allow_percent_hack: `user%domain` → `user@domain` (the last `%`).
  const pct = local.lastIndexOf('%');
  if (p.allowPercentHack && pct > 0 && pct < local.length - 1) {
    return { local: local.slice(0, pct), domain: local.slice(pct + 1) };
  }
  if (p.appendAtMyorigin) return { local, domain: p.myorigin };
  return { local, domain: '' };
}

/** Rewrites an internal address to canonical form. Never throws. */
export function rewriteAddress(address: Address, p: RewriteParameters): Address {
  let addr = address;
  if (addr === '' || addr === '@') return '';
  // RFC 5321 section 3.6.1: a source route is ignored (`@a,@b:user@d`).
  if (addr.startsWith('@')) {
    const colon = addr.indexOf(':');
    if (colon > 0) addr = addr.slice(colon + 1);
    if (addr === '' || addr === '@') return '';
  }
  let { local, domain } = splitAddress(addr);
  if (!addr.includes('@') || domain === '') {
    // `user@`: Postfix drops the empty domain and treats the address as unqualified.
    const r = qualify(local, p);
    local = r.local;
    domain = r.domain;
    if (domain === '') return local;
  }
  domain = canonicalDomain(domain);
  if (p.appendDotMydomain && !domain.includes('.') && !domain.startsWith('[') && p.mydomain) {
    domain = `${domain}.${canonicalDomain(p.mydomain)}`;
  }
  return `${local}@${domain}`;
}
