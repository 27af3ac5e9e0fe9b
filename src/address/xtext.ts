/**
 * xtext: the encoding of the DSN parameters ENVID and ORCPT.
 *
 * Postfix counterpart: xtext.c (xtext_quote, xtext_unquote).
 *
 * Does not: handle RFC 6533 utf-8-addr-xtext (`\x{HHHH}`) used by ORCPT=utf-8;.
 *
 * SECURITY: the decoded text ends up in queue files and DSN headers, so it must be
 * printable US-ASCII (RFC 3461 section 4.2 and 4.4); `+0D+0A` and other encoded
 * controls are refused rather than decoded.
 *
 * STANDARDS: RFC 3461 section 4 (xtext = *( xchar / hexchar ), xchar = "!".."~" less
 * "+" and "=", hexchar = "+" two upper-case hex digits).
 *
 * @module
 */

import { SmtpError } from '../errors.js';
import { SmtpReply } from '../smtp-reply.js';

function invalid(reason: string): SmtpError {
  return new SmtpError(new SmtpReply(501, '5.5.4', 'Invalid xtext'), `Invalid xtext: ${reason}`);
}

/**
 * Decodes xtext. Lower-case hex digits are tolerated (as Postfix does); the result must
 * be printable US-ASCII.
 *
 * @throws SmtpError `501 5.5.4 Invalid xtext`
 *
 * @example
 * ```ts
 * decodeXtext('rfc822;a+2Bb@example.com'); // 'rfc822;a+b@example.com'
 * ```
 */
export function decodeXtext(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x2b /* + */) {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw invalid('"+" not followed by two hex digits');
      const byte = Number.parseInt(hex, 16);
      if (byte < 0x20 || byte > 0x7e) throw invalid('encoded character is not printable US-ASCII');
      out += String.fromCharCode(byte);
      i += 2;
    } else if (c >= 0x21 && c <= 0x7e && c !== 0x3d /* = */) {
      out += value[i];
    } else {
      throw invalid('character outside xchar');
    }
  }
  return out;
}

/**
 * Encodes text as xtext: `+`, `=`, space, controls and non-ASCII (as UTF-8 bytes) become `+HH`.
 *
 * @example
 * ```ts
 * encodeXtext('a+b=c'); // 'a+2Bb+3Dc'
 * ```
 */
export function encodeXtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    if (byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d) {
      out += String.fromCharCode(byte);
    } else {
      out += `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}
