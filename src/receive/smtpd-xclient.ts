/**
 * XCLIENT: a trusted SMTP proxy or front end tells the server who the real client is.
 *
 * Postfix counterpart: smtpd.c xclient_cmd() and XCLIENT_README. Attributes NAME,
 * REVERSE_NAME, ADDR, PORT, PROTO, HELO and LOGIN replace the session's view of the
 * client; `[UNAVAILABLE]` and `[TEMPUNAVAIL]` mean unknown. Values are xtext. After a
 * successful XCLIENT the server greets again (220) and the client starts over with
 * EHLO, as Postfix does. Only `smtpd_authorized_xclient_hosts` may use it.
 *
 * Does not: DESTADDR/DESTPORT (there is no use for them here).
 *
 * SECURITY: the caller checks authorisation first; every value is decoded, checked
 * (an address must be an IP address, a port a number) and made printable.
 *
 * @module
 */

import net from 'node:net';
import { decodeXtext } from '../address/xtext.js';
import { printable, SmtpReply } from '../smtp-reply.js';
import type { ClientInfo } from '../types.js';

const R_BAD = (what: string): SmtpReply =>
  new SmtpReply(501, '5.5.4', `Bad ${what} syntax in XCLIENT command`);

/** What XCLIENT changed. */
export interface XclientResult {
  readonly client: ClientInfo;
  readonly helo: string | undefined;
  readonly protocol: 'SMTP' | 'ESMTP' | undefined;
  readonly login: string | undefined;
}

/** Applies `NAME=... ADDR=...` to the current client; an SmtpReply when malformed. */
export function applyXclient(
  args: string,
  client: ClientInfo,
  helo: string | undefined,
): XclientResult | SmtpReply {
  if (args.trim() === '') return new SmtpReply(501, '5.5.4', 'Syntax: XCLIENT attribute=value ...');
  let address = client.address;
  let port = client.port;
  let name = client.name ?? 'unknown';
  let newHelo = helo;
  let protocol: 'SMTP' | 'ESMTP' | undefined;
  let login: string | undefined;
  for (const item of args.trim().split(/[ \t]+/)) {
    const eq = item.indexOf('=');
    if (eq <= 0) return R_BAD('attribute');
    const key = item.slice(0, eq).toUpperCase();
    let value: string;
    try {
      value = decodeXtext(item.slice(eq + 1));
    } catch {
      return R_BAD(key);
    }
    const unavailable = value === '[UNAVAILABLE]' || value === '[TEMPUNAVAIL]';
    switch (key) {
      case 'NAME':
      case 'REVERSE_NAME':
        if (key === 'NAME') name = unavailable ? 'unknown' : printable(value).slice(0, 255);
        break;
      case 'ADDR': {
        if (unavailable) break;
        const a = value.replace(/^IPV6:/i, '');
        if (net.isIP(a) === 0) return R_BAD('ADDR');
        address = a;
        break;
      }
      case 'PORT':
        if (unavailable) break;
        if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) return R_BAD('PORT');
        port = Number(value);
        break;
      case 'PROTO':
        if (unavailable) break;
        if (value.toUpperCase() !== 'SMTP' && value.toUpperCase() !== 'ESMTP')
          return R_BAD('PROTO');
        protocol = value.toUpperCase() as 'SMTP' | 'ESMTP';
        break;
      case 'HELO':
        newHelo = unavailable ? undefined : printable(value).slice(0, 255);
        break;
      case 'LOGIN':
        login = unavailable ? undefined : printable(value).slice(0, 255);
        break;
      default:
        return R_BAD('attribute');
    }
  }
  return {
    client: { address, ...(port !== undefined ? { port } : {}), name },
    helo: newHelo,
    protocol,
    login,
  };
}
