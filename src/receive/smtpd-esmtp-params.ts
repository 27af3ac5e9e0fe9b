/**
 * Meaning of the ESMTP parameters of MAIL FROM and RCPT TO: SIZE, BODY, SMTPUTF8, RET
 * and ENVID on MAIL; NOTIFY and ORCPT on RCPT.
 *
 * Postfix counterpart: the parameter loops of smtpd.c mail_cmd() and rcpt_cmd(), with
 * their replies (`501 5.5.4 Bad message size syntax`, `555 5.5.4 Unsupported option`,
 * ...). The syntax of the parameter list itself (keywords, esmtp-value characters,
 * duplicates) is checked by address/address.ts parseMailArgument(); this module takes
 * its map and decides what each keyword means.
 *
 * Does not: enforce `message_size_limit` against SIZE= (the session does, with the
 * limit in hand), use AUTH= (RFC 4954 section 5: accepted and ignored, as Postfix
 * does for a client it does not trust to vouch for other senders),
 * BINARYMIME, REQUIRETLS, XVERP.
 *
 * SECURITY: ENVID and ORCPT are decoded from xtext and must be printable US-ASCII
 * (address/xtext.ts); lengths are bounded as RFC 3461 says; error replies never echo
 * the client's value, only the keyword, made printable and short.
 *
 * STANDARDS: RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531 section 3.4 (SMTPUTF8),
 * RFC 3461 sections 4.1-4.4 (NOTIFY, ORCPT, RET, ENVID).
 *
 * @module
 */

import { decodeXtext } from '../address/xtext.js';
import { SmtpError } from '../errors.js';
import { printable, SmtpReply } from '../smtp-reply.js';
import type { BodyType, DsnNotifyKeyword, DsnRet, RecipientDsn, SenderParams } from '../types.js';
import type { Mutable } from '../util/mutable.js';

/** RFC 3461 section 4.4: ENVID is at most 100 characters. */
export const MAX_ENVID_LENGTH = 100;
/** RFC 3461 section 4.2: ORCPT (the whole `addr-type;xtext`) is at most 500 characters. */
export const MAX_ORCPT_LENGTH = 500;

function fail(code: number, enhanced: string, text: string): SmtpError {
  return new SmtpError(new SmtpReply(code, enhanced, text));
}

function unsupported(option: string): SmtpError {
  return fail(555, '5.5.4', `Unsupported option: ${printable(option).slice(0, 40)}`);
}

/**
 * Interprets MAIL FROM parameters (keywords upper-cased, as parseMailArgument gives
 * them).
 *
 * @throws SmtpError `501 5.5.4` for a bad value, `555 5.5.4 Unsupported option` for an
 *   unknown keyword.
 */
export function interpretMailParams(params: ReadonlyMap<string, string | undefined>): SenderParams {
  let declaredSize: number | undefined;
  let bodyType: BodyType | undefined;
  let smtputf8: boolean | undefined;
  let ret: DsnRet | undefined;
  let envid: string | undefined;
  if (params.size === 0) return {};
  for (const [keyword, value] of params) {
    switch (keyword) {
      case 'SIZE':
        // RFC 1870: size-value = 1*20DIGIT.
        if (value === undefined || !/^\d{1,20}$/.test(value))
          throw fail(501, '5.5.4', 'Bad message size syntax');
        declaredSize = Number(value);
        break;
      case 'BODY': {
        // Postfix compares the whole `BODY=7BIT` / `BODY=8BITMIME`; anything else,
        // BINARYMIME included, is an unsupported option.
        const v = value?.toUpperCase();
        if (v !== '7BIT' && v !== '8BITMIME')
          throw unsupported(value === undefined ? keyword : `${keyword}=${value}`);
        bodyType = v;
        break;
      }
      case 'SMTPUTF8':
        if (value !== undefined) throw fail(501, '5.5.4', 'Bad SMTPUTF8 parameter syntax');
        smtputf8 = true;
        break;
      case 'RET': {
        const v = value?.toUpperCase();
        if (v !== 'FULL' && v !== 'HDRS') throw fail(501, '5.5.4', 'Bad RET parameter syntax');
        ret = v;
        break;
      }
      case 'ENVID': {
        if (value === undefined) throw fail(501, '5.5.4', 'Bad ENVID parameter syntax');
        const decoded = decodeOrFail(value, 'Bad ENVID parameter syntax');
        if (decoded === '' || decoded.length > MAX_ENVID_LENGTH)
          throw fail(501, '5.5.4', 'Bad ENVID parameter syntax');
        envid = decoded;
        break;
      }
      case 'AUTH':
        // RFC 4954 section 5: the server may ignore AUTH= from an untrusted client.
        if (value === undefined) throw fail(501, '5.5.4', 'Bad AUTH parameter syntax');
        break;
      default:
        throw unsupported(keyword);
    }
  }
  // Built by assignment: no temporary object per absent parameter.
  const out: Mutable<SenderParams> = {};
  if (declaredSize !== undefined) out.declaredSize = declaredSize;
  if (bodyType !== undefined) out.bodyType = bodyType;
  if (smtputf8 !== undefined) out.smtputf8 = smtputf8;
  if (ret !== undefined) out.ret = ret;
  if (envid !== undefined) out.envid = envid;
  return out;
}

const NOTIFY_KEYWORDS: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

/**
 * Interprets RCPT TO parameters.
 *
 * @throws SmtpError `501 5.5.4` for a bad NOTIFY or ORCPT, `555 5.5.4 Unsupported
 *   option` for an unknown keyword.
 */
export function interpretRcptParams(params: ReadonlyMap<string, string | undefined>): RecipientDsn {
  let notify: DsnNotifyKeyword[] | undefined;
  let orcpt: string | undefined;
  if (params.size === 0) return {};
  for (const [keyword, value] of params) {
    switch (keyword) {
      case 'NOTIFY':
        notify = parseNotify(value);
        break;
      case 'ORCPT':
        orcpt = parseOrcpt(value);
        break;
      default:
        throw unsupported(keyword);
    }
  }
  const out: Mutable<RecipientDsn> = {};
  if (notify !== undefined) out.notify = notify;
  if (orcpt !== undefined) out.orcpt = orcpt;
  return out;
}

/** RFC 3461 section 4.1: `NEVER`, or a comma list of SUCCESS, FAILURE, DELAY. */
function parseNotify(value: string | undefined): DsnNotifyKeyword[] {
  const bad = (): SmtpError => fail(501, '5.5.4', 'Error: Bad NOTIFY parameter syntax');
  if (value === undefined) throw bad();
  const words = value.toUpperCase().split(',');
  if (words.length === 1 && words[0] === 'NEVER') return ['NEVER'];
  const out: DsnNotifyKeyword[] = [];
  for (const w of words) {
    if (!NOTIFY_KEYWORDS.has(w) || out.includes(w as DsnNotifyKeyword)) throw bad();
    out.push(w as DsnNotifyKeyword);
  }
  return out;
}

/**
 * RFC 3461 section 4.2: `addr-type ";" xtext`; returned as `addr-type;decoded`. The
 * address type is an atom (`rfc822`, `utf-8`); it is lower-cased for `rfc822`, as the
 * DSN writer expects.
 */
function parseOrcpt(value: string | undefined): string {
  const bad = (): SmtpError => fail(501, '5.5.4', 'Error: Bad ORCPT parameter syntax');
  if (value === undefined || value.length > MAX_ORCPT_LENGTH) throw bad();
  const semi = value.indexOf(';');
  if (semi <= 0) throw bad();
  const type = value.slice(0, semi);
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type)) throw bad();
  const address = decodeOrFail(value.slice(semi + 1), 'Error: Bad ORCPT parameter syntax');
  if (address === '') throw bad();
  return `${type.toLowerCase() === 'rfc822' ? 'rfc822' : type};${address}`;
}

function decodeOrFail(value: string, text: string): string {
  try {
    return decodeXtext(value);
  } catch {
    throw fail(501, '5.5.4', text);
  }
}
