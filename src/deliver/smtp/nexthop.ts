/**
 * Nexthop syntax of the SMTP and LMTP clients: what `relayhost`, a transport(5) entry or
 * the recipient domain names as the place to deliver to.
 *
 * Postfix counterpart: smtp_connect.c (smtp_connect_dest, smtp_parse_destination) and
 * lmtp(8)'s `unix:` / `inet:` destinations.
 *
 * Forms:
 * - `example.com`, `example.com:2525` — MX look-up (not for LMTP), then A/AAAA;
 * - `[mx.example.com]`, `[mx.example.com]:587`, `[192.0.2.1]`, `[ipv6:2001:db8::1]:25` —
 *   no MX look-up;
 * - `inet:host:port`, `inet:[host]:port` — the same, `inet:` being optional;
 * - `unix:/path/to/socket` — LMTP over a UNIX-domain socket;
 * - a list `a, b c` — tried in order (Postfix 3.5).
 * A port may also be a service name: `smtp` 25, `submission` 587, `submissions`/`smtps`
 * 465, `lmtp` 24.
 *
 * @module
 */

import { isIP } from 'node:net';
import { PosternError, type PosternErrorOptions } from '../../errors.js';

/** One parsed nexthop. */
export type Nexthop =
  | {
      readonly kind: 'inet';
      /** Host name or numeric address, without brackets or `ipv6:`. */
      readonly host: string;
      readonly port: number;
      /** Look up MX records for `host` first. */
      readonly mx: boolean;
    }
  | { readonly kind: 'unix'; readonly path: string };

const SERVICES: Readonly<Record<string, number>> = {
  smtp: 25,
  submission: 587,
  submissions: 465,
  smtps: 465,
  lmtp: 24,
};

/** Raised for a nexthop that cannot be parsed; the text says what is wrong. */
export class NexthopSyntaxError extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_NEXTHOP_SYNTAX', message, options);
  }
}

function parsePort(text: string, nexthop: string): number {
  if (/^\d{1,5}$/.test(text)) {
    const n = Number(text);
    if (n > 0 && n <= 65535) return n;
  }
  const known = SERVICES[text.toLowerCase()];
  if (known !== undefined) return known;
  throw new NexthopSyntaxError(`bad port "${text}" in nexthop "${nexthop}"`);
}

/**
 * Parses one nexthop (not a list).
 * @param defaultPort - 25 for SMTP, 24 for LMTP
 * @param mxByDefault - whether an unbracketed name gets an MX look-up (SMTP yes, LMTP no)
 */
export function parseNexthop(text: string, defaultPort: number, mxByDefault: boolean): Nexthop {
  let rest = text.trim();
  if (/^unix:/i.test(rest)) {
    const path = rest.slice(5);
    if (path === '' || /[\0\r\n]/.test(path)) {
      throw new NexthopSyntaxError(`bad socket path in nexthop "${text}"`);
    }
    return { kind: 'unix', path };
  }
  if (/^inet:/i.test(rest)) rest = rest.slice(5);
  let host: string;
  let portText: string | undefined;
  let mx = mxByDefault;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw new NexthopSyntaxError(`missing "]" in nexthop "${text}"`);
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':'))
        throw new NexthopSyntaxError(`junk after "]" in nexthop "${text}"`);
      portText = after.slice(1);
    }
    if (/^ipv6:/i.test(host)) host = host.slice(5);
    mx = false;
  } else {
    // A bare IPv6 address has colons of its own; only a name or IPv4 takes `:port`.
    if (isIP(rest) === 6) {
      host = rest;
    } else {
      const colon = rest.lastIndexOf(':');
      host = colon < 0 ? rest : rest.slice(0, colon);
      if (colon >= 0) portText = rest.slice(colon + 1);
    }
    if (isIP(host) !== 0) mx = false;
  }
  if (host === '' || /[\s\0/\\@]/.test(host)) {
    throw new NexthopSyntaxError(`bad host name in nexthop "${text}"`);
  }
  const port = portText === undefined ? defaultPort : parsePort(portText, text);
  return { kind: 'inet', host: host.replace(/\.$/, ''), port, mx };
}

/** Parses a nexthop list (`a, b c`), as relayhost may be. */
export function parseNexthopList(
  text: string,
  defaultPort: number,
  mxByDefault: boolean,
): Nexthop[] {
  const items = text.split(/[\s,]+/).filter((s) => s !== '');
  if (items.length === 0) throw new NexthopSyntaxError('empty nexthop');
  return items.map((s) => parseNexthop(s, defaultPort, mxByDefault));
}
