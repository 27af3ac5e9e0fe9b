/**
 * Domain names: IDN conversion (U-labels ↔ A-labels with UTS #46 mapping), syntax
 * checks, and the public-suffix view of a name.
 *
 * Postfix counterpart: midna_domain.c (midna_domain_to_ascii / _to_utf8 with UTS #46
 * non-transitional processing) and valid_hostname.c.
 *
 * Routing and comparison use the A-label form: two spellings of one name (`BÜCHER.example`,
 * `bücher.example`, `xn--bcher-kva.example`, full-width letters, ideographic full stops,
 * ignored code points such as U+200B) become the same key, so a table or domain list
 * written in either form matches, and a spelling cannot slip past a list. The U-label
 * form (the A-label decoded again) is what stays in an SMTPUTF8 envelope.
 *
 * Does not: judge whether a name is confusable with another (a homograph such as
 * Cyrillic `раураl.com` is a different, valid domain and is routed to exactly that
 * domain), or look anything up in DNS.
 *
 * SECURITY: every input is hostile. Nothing here throws: an unconvertible name gives
 * `undefined`, and callers turn that into a 5.1.3/5.1.2 reply.
 *
 * STANDARDS: RFC 5890/5891 (IDNA2008 A-labels and U-labels), UTS #46 (mapping, here
 * Node's WHATWG URL domainToASCII), RFC 1035 section 2.3.4 (63/255 octet limits),
 * RFC 5321 section 4.1.3 (address literals).
 *
 * @module
 */

import { createRequire } from 'node:module';
import { domainToASCII, domainToUnicode } from 'node:url';
import type * as Tldts from 'tldts';
import { isAddressLiteral, isAscii } from './address.js';

/** RFC 1035 section 2.3.4, as a name without its trailing dot. */
const MAX_NAME = 253;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

function lowerAscii(text: string): string {
  return text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** Whether an ASCII name is a syntactically valid host name (LDH plus `_`, A-labels that decode). */
function validAsciiName(name: string): boolean {
  if (name === '' || name.length > MAX_NAME) return false;
  for (const label of name.split('.')) {
    if (!LABEL.test(label)) return false;
    if (label.startsWith('xn--')) {
      // An A-label must decode to a U-label that encodes back to itself.
      const back = domainToASCII(domainToUnicode(label));
      if (back !== label || isAscii(domainToUnicode(label))) return false;
    } else if (label.length >= 4 && label[2] === '-' && label[3] === '-') {
      return false; // RFC 5891 section 4.2.3.1: `??--` is reserved
    }
  }
  // The WHATWG host parser's verdict (Node's), as a browser reads the name: one ending in
  // a number must be an IPv4 address (`09`, `b.90`, `256.1.1.1` and `a.0x1` are not).
  return domainToASCII(name) !== '';
}

/**
 * tldts, loaded on first use, by domainInfo only: the public suffix list it carries is
 * ~0.6 MB of code and data in every heap that loads it (with an smtpd worker thread,
 * two), and neither checking nor converting a name needs it (its host-name check gives
 * the WHATWG host parser's verdict, asked above). `domainInfo` is synchronous, hence
 * require.
 */
let tldts: typeof Tldts | undefined;
function loadTldts(): typeof Tldts {
  tldts ??= createRequire(import.meta.url)('tldts') as typeof Tldts;
  return tldts;
}

/**
 * The A-label (ASCII) form of a domain, lower-cased, one trailing dot removed;
 * address literals are returned as they are (lower-cased `ipv6:` tag). `undefined`
 * when the name is not a valid host name in any form.
 *
 * @example
 * ```ts
 * toAsciiDomain('bücher.example'); // 'xn--bcher-kva.example'
 * toAsciiDomain('bad domain'); // undefined
 * ```
 */
export function toAsciiDomain(domain: string): string | undefined {
  const known = asciiForms.get(domain);
  if (known !== undefined) return known === false ? undefined : known;
  const ascii = asciiForm(domain);
  if (domain.length <= MAX_NAME + 1) {
    // Bounded: a client cycling through names only makes the cache start over.
    if (asciiForms.size >= ASCII_FORMS_MAX) asciiForms.clear();
    // Copies, not the strings given: `domain` may be a slice that would keep a long
    // line alive (UTF-16 copies every code unit as it is, lone surrogates included).
    const key = Buffer.from(domain, 'utf16le').toString('utf16le');
    const form = ascii === undefined ? false : ascii === domain ? key : copyAscii(ascii);
    asciiForms.set(key, form);
  }
  return ascii;
}

/**
 * The names most recently put in A-label form, and their forms (false: not valid). The
 * same few domains come up many times for each message (recipient, sender, table and
 * list lookups), and checking a name (its labels, IDNA, the public suffix list) costs
 * far more than a lookup here.
 */
const asciiForms = new Map<string, string | false>();
const ASCII_FORMS_MAX = 256;

function copyAscii(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

function asciiForm(domain: string): string | undefined {
  let d = domain.endsWith('.') && domain.length > 1 ? domain.slice(0, -1) : domain;
  if (d.startsWith('[')) return isAddressLiteral(d) ? lowerAscii(d) : undefined;
  if (d === '' || /[\x00-\x20\x7f@\\/?#%:[\]]/.test(d)) return undefined;
  if (!isAscii(d)) {
    const mapped = domainToASCII(d);
    if (mapped === '') return undefined;
    d = mapped;
  }
  d = lowerAscii(d);
  return validAsciiName(d) ? d : undefined;
}

/**
 * The U-label form of a valid domain (A-labels decoded); `undefined` when not valid.
 *
 * @example
 * ```ts
 * toUnicodeDomain('xn--bcher-kva.example'); // 'bücher.example'
 * ```
 */
export function toUnicodeDomain(domain: string): string | undefined {
  const ascii = toAsciiDomain(domain);
  if (ascii === undefined) return undefined;
  if (ascii.startsWith('[') || !ascii.includes('xn--')) return ascii;
  return domainToUnicode(ascii);
}

/**
 * Whether `domain` is a valid host name (in either form) or address literal.
 *
 * @example
 * ```ts
 * isValidDomain('[192.0.2.1]'); // true
 * isValidDomain('-bad-.example'); // false
 * ```
 */
export function isValidDomain(domain: string): boolean {
  return toAsciiDomain(domain) !== undefined;
}

/**
 * What the public suffix list says of a name: its registrable domain
 * (`bar.co.uk` for `foo.bar.co.uk`), public suffix, and whether the name *is* a public
 * suffix (mail to `user@co.uk` has no owner to go to).
 *
 * @example
 * ```ts
 * domainInfo('foo.bar.co.uk')?.registrable; // 'bar.co.uk'
 * domainInfo('co.uk')?.isPublicSuffix; // true
 * ```
 */
export function domainInfo(domain: string):
  | {
      readonly ascii: string;
      readonly registrable: string | undefined;
      readonly publicSuffix: string | undefined;
      readonly isPublicSuffix: boolean;
      readonly fqdn: boolean;
    }
  | undefined {
  const ascii = toAsciiDomain(domain);
  if (ascii === undefined) return undefined;
  if (ascii.startsWith('[')) {
    return {
      ascii,
      registrable: undefined,
      publicSuffix: undefined,
      isPublicSuffix: false,
      fqdn: true,
    };
  }
  const p = loadTldts().parse(ascii, { allowPrivateDomains: false });
  const suffix = p.publicSuffix ?? undefined;
  return {
    ascii,
    registrable: p.domain ?? undefined,
    publicSuffix: suffix,
    isPublicSuffix: suffix === ascii,
    fqdn: ascii.includes('.'),
  };
}
