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
 * control characters, and unknown fields are refused; the checks are those of
 * maildrop-checks.ts, which `postern sendmail` applies before it writes.
 *
 * @module
 */

import { SmtpReply } from '../smtp-reply.js';
import type { DsnNotifyKeyword, DsnRet } from '../types.js';
import {
  addressProblem,
  ENVID_MAX,
  envelopeProblem,
  type MaildropLimits,
  type MaildropProblem,
} from './maildrop-checks.js';

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
  /**
   * Envelope sender ('' for the null sender). Absent: the default sender, which Pickup
   * takes from the file's owner (`user@$myorigin`), never from the file.
   */
  readonly sender?: string;
  readonly recipients: readonly MaildropRecipient[];
  /** `sendmail -t`: take recipients from the To/Cc/Bcc headers as well. */
  readonly extractRecipients?: boolean;
  /**
   * The login name of the user who wrote the file, as that user's sendmail saw it.
   * Informational only: Pickup takes the identity from the file's owner and logs a
   * mismatch.
   */
  readonly user: string;
  /** Submission time, ms since the epoch. */
  readonly time: number;
  readonly envid?: string;
  readonly ret?: DsnRet;
  /** `sendmail -F`: the sender's full name, for a From: header Cleanup adds. */
  readonly fullName?: string;
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

/** What Pickup needs to return a refused file to its sender. */
export interface ReturnInfo {
  /** The sender as written; undefined for the default sender (the file's owner). */
  readonly sender: string | undefined;
  /** The recipients that are text, at most the recipient limit of them. */
  readonly recipients: readonly string[];
  readonly ret?: DsnRet;
  readonly envid?: string;
}

/**
 * The result of reading an envelope: the envelope when it passes every check;
 * otherwise the problem and, when a sender can be named, what is needed to return the
 * message to that sender. A file with neither cannot be read at all.
 */
export type EnvelopeReading =
  | { readonly envelope: MaildropEnvelope; readonly problem?: undefined }
  | {
      readonly envelope?: undefined;
      readonly problem: MaildropProblem;
      readonly returnTo: ReturnInfo | undefined;
    };

function malformed(text: string): MaildropProblem {
  const full = `malformed maildrop file: ${text}`;
  return { field: 'envelope', text: full, reply: new SmtpReply(554, '5.6.0', full) };
}

/**
 * Reads and checks an envelope line with the checks `postern sendmail` makes before it
 * writes (maildrop-checks.ts), so both agree on what is acceptable.
 */
export function readEnvelope(json: string, limits: MaildropLimits): EnvelopeReading {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return { problem: malformed('the envelope is not valid JSON'), returnTo: undefined };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { problem: malformed('the envelope is not an object'), returnTo: undefined };
  const o = raw as Record<string, unknown>;
  // Who the message can go back to: the sender as written, or the owner by default.
  if (o.sender !== undefined) {
    if (typeof o.sender !== 'string')
      return { problem: malformed('sender is not a string'), returnTo: undefined };
    const bad = addressProblem(o.sender, 'sender', limits);
    if (bad) return { problem: bad, returnTo: undefined };
  }
  const list = Array.isArray(o.recipients) ? o.recipients : [];
  const named = list
    .slice(0, limits.recipients)
    .map((r: unknown) => (r as { address?: unknown } | null)?.address)
    .filter((a): a is string => typeof a === 'string' && a !== '');
  const returnTo: ReturnInfo = {
    sender: o.sender as string | undefined,
    recipients: named,
    ...(o.ret === 'FULL' || o.ret === 'HDRS' ? { ret: o.ret } : {}),
    ...(typeof o.envid === 'string' && !/[\x00-\x1f\x7f]/.test(o.envid)
      ? { envid: o.envid.slice(0, ENVID_MAX) }
      : {}),
  };
  const refuse = (p: MaildropProblem): EnvelopeReading => ({ problem: p, returnTo });
  for (const key of Object.keys(o)) {
    if (!KEYS.has(key)) return refuse(malformed(`unknown field "${key.slice(0, 40)}"`));
  }
  if (!Array.isArray(o.recipients)) return refuse(malformed('recipients is not a list'));
  const recipients: MaildropRecipient[] = [];
  for (const [i, r] of o.recipients.slice(0, limits.recipients + 1).entries()) {
    if (typeof r !== 'object' || r === null)
      return refuse(malformed(`recipient ${i} is not an object`));
    const rr = r as Record<string, unknown>;
    if (typeof rr.address !== 'string') return refuse(malformed(`recipient ${i} has no address`));
    if (rr.orcpt !== undefined && typeof rr.orcpt !== 'string')
      return refuse(malformed(`recipient ${i} has a bad orcpt`));
    let notify: DsnNotifyKeyword[] | undefined;
    if (rr.notify !== undefined) {
      if (
        !Array.isArray(rr.notify) ||
        !rr.notify.every((n) => typeof n === 'string' && NOTIFY.has(n))
      ) {
        return refuse(malformed(`recipient ${i} has a bad notify list`));
      }
      notify = rr.notify as DsnNotifyKeyword[];
    }
    recipients.push({
      address: rr.address,
      ...(notify ? { notify } : {}),
      ...(rr.orcpt !== undefined ? { orcpt: rr.orcpt as string } : {}),
    });
  }
  const extractRecipients = o.extractRecipients === undefined ? false : o.extractRecipients;
  if (typeof extractRecipients !== 'boolean')
    return refuse(malformed('extractRecipients is not true or false'));
  if (typeof o.user !== 'string') return refuse(malformed('user is not a string'));
  if (typeof o.time !== 'number' || !Number.isFinite(o.time))
    return refuse(malformed('time is not a number'));
  if (o.envid !== undefined && typeof o.envid !== 'string')
    return refuse(malformed('envid is not a string'));
  if (o.ret !== undefined && o.ret !== 'FULL' && o.ret !== 'HDRS')
    return refuse(malformed('ret is not FULL or HDRS'));
  if (o.fullName !== undefined && typeof o.fullName !== 'string')
    return refuse(malformed('fullName is not a string'));
  const checked = envelopeProblem(
    {
      sender: o.sender as string | undefined,
      // The real count, so the message says how many there were.
      recipients: o.recipients.length > recipients.length ? o.recipients : recipients,
      extractRecipients,
      fullName: o.fullName as string | undefined,
      envid: o.envid as string | undefined,
      user: o.user,
    },
    limits,
  );
  if (checked) return refuse(checked);
  return {
    envelope: {
      ...(o.sender !== undefined ? { sender: o.sender as string } : {}),
      recipients,
      extractRecipients,
      user: o.user,
      time: o.time,
      ...(o.envid !== undefined ? { envid: o.envid as string } : {}),
      ...(o.ret !== undefined ? { ret: o.ret as DsnRet } : {}),
      ...(o.fullName !== undefined ? { fullName: o.fullName as string } : {}),
    },
  };
}
