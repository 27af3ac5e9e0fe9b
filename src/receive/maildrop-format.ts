/**
 * The maildrop file format: one locally submitted message per file, written by
 * `postern sendmail` / `submit()` and read by Pickup.
 *
 * Postfix counterpart: the record stream postdrop(1) writes and pickup(8) reads. The
 * layout here is content first and the envelope last, so a writer can stream the
 * content before it knows the whole envelope (as the Submission port allows):
 *
 * ```
 * <content bytes: the message as submitted, LF or CRLF line ends>
 * <envelope: one line of JSON>\n
 * POSTERN-MAILDROP 1 <content length> <envelope length>\n
 * ```
 *
 * The trailer is written last, so a file that was cut short has no valid trailer and is
 * rejected whole. Nothing else in the file is trusted either: the reader checks that the
 * lengths add up to the file size and validates every envelope field.
 *
 * SECURITY: maildrop files come from local users and are hostile input. Every field has
 * a bound (address length, recipient count, envelope size), addresses may not hold
 * control characters, and unknown fields are refused.
 *
 * @module
 */

import type { DsnNotifyKeyword, DsnRet } from '../types.js';

/** Format version written in the trailer. */
export const MAILDROP_VERSION = 1;

/** Longest trailer line (`POSTERN-MAILDROP 1 <15 digits> <15 digits>\n`). */
export const TRAILER_MAX = 64;

/** Largest envelope JSON accepted, whatever the recipient count. */
export const ENVELOPE_MAX = 4 * 1024 * 1024;

const TRAILER = /^POSTERN-MAILDROP (\d{1,3}) (\d{1,15}) (\d{1,15})\n$/;

/** One recipient of a maildrop file. */
export interface MaildropRecipient {
  readonly address: string;
  readonly notify?: readonly DsnNotifyKeyword[];
  readonly orcpt?: string;
}

/** The envelope of a maildrop file. */
export interface MaildropEnvelope {
  /** Envelope sender ('' for the null sender). */
  readonly sender: string;
  readonly recipients: readonly MaildropRecipient[];
  /** `sendmail -t`: take recipients from the To/Cc/Bcc headers as well. */
  readonly extractRecipients?: boolean;
  /** The submitting user (login name), for `Received: ... from userid USER`. */
  readonly user: string;
  /** Submission time, ms since the epoch. */
  readonly time: number;
  readonly envid?: string;
  readonly ret?: DsnRet;
  /** `sendmail -F`: the sender's full name, for a From: header Cleanup adds. */
  readonly fullName?: string;
}

/** Limits for reading an envelope. */
export interface EnvelopeLimits {
  /** Longest address (Postfix: line_length_limit). */
  readonly addressLength: number;
  /** Most recipients in one file. */
  readonly recipients: number;
}

/** The trailer for a file whose parts have these byte lengths. */
export function maildropTrailer(contentLength: number, envelopeLength: number): string {
  return `POSTERN-MAILDROP ${MAILDROP_VERSION} ${contentLength} ${envelopeLength}\n`;
}

/** Where the parts of a file are, from its last bytes; undefined when they are not a trailer. */
export function parseTrailer(
  tail: Buffer,
  fileSize: number,
): { contentLength: number; envelopeOffset: number; envelopeLength: number } | undefined {
  const text = tail.toString('latin1');
  const start = text.lastIndexOf('POSTERN-MAILDROP ');
  if (start < 0) return undefined;
  const m = TRAILER.exec(text.slice(start));
  if (!m || Number(m[1]) !== MAILDROP_VERSION) return undefined;
  const contentLength = Number(m[2]);
  const envelopeLength = Number(m[3]);
  const trailerLength = tail.length - start;
  if (contentLength + envelopeLength + trailerLength !== fileSize) return undefined;
  if (envelopeLength < 3 || envelopeLength > ENVELOPE_MAX) return undefined;
  return { contentLength, envelopeOffset: contentLength, envelopeLength };
}

const NOTIFY: ReadonlySet<string> = new Set(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);
const KEYS: ReadonlySet<string> = new Set([
  'sender',
  'recipients',
  'extractRecipients',
  'user',
  'time',
  'envid',
  'ret',
  'fullName',
]);

const CONTROL = /[\x00-\x1f\x7f]/;

function text(value: unknown, what: string, max: number, allowEmpty = true): string {
  if (typeof value !== 'string') throw new SyntaxError(`${what} is not a string`);
  if (!allowEmpty && value === '') throw new SyntaxError(`${what} is empty`);
  if (value.length > max) throw new SyntaxError(`${what} is longer than ${max} characters`);
  if (CONTROL.test(value)) throw new SyntaxError(`${what} contains control characters`);
  return value;
}

/**
 * Parses and validates an envelope line. Throws SyntaxError saying what is wrong; the
 * caller moves such a file aside.
 */
export function parseEnvelope(json: string, limits: EnvelopeLimits): MaildropEnvelope {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new SyntaxError('envelope is not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SyntaxError('envelope is not an object');
  }
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KEYS.has(key))
      throw new SyntaxError(`envelope has an unknown field "${key.slice(0, 40)}"`);
  }
  const sender = text(o.sender, 'sender', limits.addressLength);
  if (!Array.isArray(o.recipients)) throw new SyntaxError('recipients is not a list');
  if (o.recipients.length > limits.recipients) {
    throw new SyntaxError(
      `${o.recipients.length} recipients; at most ${limits.recipients} are allowed`,
    );
  }
  const recipients = o.recipients.map((r: unknown, i: number): MaildropRecipient => {
    if (typeof r !== 'object' || r === null)
      throw new SyntaxError(`recipient ${i} is not an object`);
    const rr = r as Record<string, unknown>;
    const address = text(rr.address, `recipient ${i}`, limits.addressLength, false);
    let notify: DsnNotifyKeyword[] | undefined;
    if (rr.notify !== undefined) {
      if (
        !Array.isArray(rr.notify) ||
        !rr.notify.every((n) => typeof n === 'string' && NOTIFY.has(n))
      ) {
        throw new SyntaxError(`recipient ${i} has a bad notify list`);
      }
      notify = rr.notify as DsnNotifyKeyword[];
    }
    const orcpt =
      rr.orcpt === undefined
        ? undefined
        : text(rr.orcpt, `recipient ${i} orcpt`, limits.addressLength);
    return { address, ...(notify ? { notify } : {}), ...(orcpt !== undefined ? { orcpt } : {}) };
  });
  const extractRecipients = o.extractRecipients === undefined ? false : o.extractRecipients;
  if (typeof extractRecipients !== 'boolean')
    throw new SyntaxError('extractRecipients is not true or false');
  if (recipients.length === 0 && !extractRecipients) throw new SyntaxError('no recipients');
  const user = text(o.user, 'user', 256, false);
  if (typeof o.time !== 'number' || !Number.isFinite(o.time))
    throw new SyntaxError('time is not a number');
  const envid = o.envid === undefined ? undefined : text(o.envid, 'envid', 100);
  if (o.ret !== undefined && o.ret !== 'FULL' && o.ret !== 'HDRS')
    throw new SyntaxError('ret is not FULL or HDRS');
  const fullName = o.fullName === undefined ? undefined : text(o.fullName, 'fullName', 256);
  return {
    sender,
    recipients,
    extractRecipients,
    user,
    time: o.time,
    ...(envid !== undefined ? { envid } : {}),
    ...(o.ret !== undefined ? { ret: o.ret as DsnRet } : {}),
    ...(fullName !== undefined ? { fullName } : {}),
  };
}
