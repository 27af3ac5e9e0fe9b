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
  // Most text has no capital letter: then it is returned as it is, with nothing made.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
  }
  return text;
}

/**
 * Whether `text[from..]` is already canonical domain text: ASCII without capitals or a
 * trailing dot. Such a domain is its own canonical form (the common case, checked
 * without making a string).
 */
function isPlainDomain(text: string, from: number): boolean {
  const end = text.length;
  if (end > from && text.charCodeAt(end - 1) === 0x2e) return false;
  for (let i = from; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f || (c >= 0x41 && c <= 0x5a)) return false;
  }
  return true;
}

/** Canonical domain text: trailing dot dropped, lower-cased, U-labels UTS #46-mapped. */
export function canonicalDomain(domain: string): string {
  if (isPlainDomain(domain, 0)) return domain;
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

/**
 * Whether rewriteAddress() would give `address` back unchanged: `local@domain` with a
 * local part that does not start with `@` and a domain that is already canonical (and
 * has a dot, or needs none). Every address of a message is rewritten several times on
 * its way in, and nearly all of them are already canonical.
 */
function isCanonical(address: Address, p: RewriteParameters): boolean {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || address.charCodeAt(0) === 0x40) return false;
  if (!isPlainDomain(address, at + 1)) return false;
  if (!p.appendDotMydomain || !p.mydomain || address.charCodeAt(at + 1) === 0x5b) return true;
  return address.indexOf('.', at + 1) >= 0;
}

/** Rewrites an internal address to canonical form. Never throws. */
export function rewriteAddress(address: Address, p: RewriteParameters): Address {
  if (isCanonical(address, p)) return address;
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
