/**
 * The checks a locally submitted message must pass, shared by the writer and the reader
 * of the maildrop: `postern sendmail` runs them before it writes anything (and exits
 * with a sysexits code), Pickup runs the same ones on every file it reads (and returns
 * a file that fails them to its sender).
 *
 * Postfix counterpart: the checks postdrop(1) and pickup(8) make on the record stream
 * (record types, lengths) and sendmail(1)'s refusal of bad command-line values; Postern
 * keeps them in one place so that what sendmail accepts, Pickup accepts.
 *
 * Checked: the envelope sender and every recipient with the rule every way in applies
 * (address/envelope-address.ts: no control characters, at most `lineLengthLimit`
 * bytes, no leading `-` unless `allowMinUser`, recipients not empty), the number of
 * recipients (`smtpdRecipientLimit`), the full name (`-F`), the ENVID (`-V`), the user
 * name, and the message size (`messageSizeLimit`).
 *
 * Does not do: address syntax or policy beyond that rule (Cleanup and the Rewriter
 * decide those for every way in alike), reading files.
 *
 * SECURITY: every field of a maildrop file is written by a local user and is hostile
 * input; a control character in any of them could forge a header line or a log line.
 *
 * @module
 */

import {
  checkRecipientAddress,
  checkSenderAddress,
  type EnvelopeAddressParams,
} from '../address/envelope-address.js';
import { SmtpReply } from '../smtp-reply.js';
import type { PickupParameters } from './pickup-parameters.js';

/** Longest `-F` full name. */
export const FULL_NAME_MAX = 256;
/** Longest ENVID (RFC 3461 section 4.4). */
export const ENVID_MAX = 100;
/** Longest user name in a maildrop file. */
export const USER_MAX = 256;

/** The bounds a maildrop message is held to. */
export interface MaildropLimits {
  /** Longest address in bytes (Postfix: line_length_limit). */
  readonly addressLength: number;
  /** An address may start with `-` (Postfix: allow_min_user). */
  readonly allowMinUser: boolean;
  /** Most envelope recipients in one message (smtpdRecipientLimit). */
  readonly recipients: number;
  /** Largest message content in bytes (messageSizeLimit); 0 = none. */
  readonly messageSize: number;
}

/** The limits from the parameters. */
export function maildropLimits(
  params: Pick<
    PickupParameters,
    'lineLengthLimit' | 'smtpdRecipientLimit' | 'messageSizeLimit' | 'allowMinUser'
  >,
): MaildropLimits {
  return {
    addressLength: params.lineLengthLimit,
    allowMinUser: params.allowMinUser,
    recipients: params.smtpdRecipientLimit,
    messageSize: params.messageSizeLimit,
  };
}

/** What part of a submission a problem is about: sendmail maps it to an exit code. */
export type MaildropField =
  | 'sender'
  | 'recipients'
  | 'fullName'
  | 'envid'
  | 'user'
  | 'size'
  | 'envelope';

/** Why a submission cannot be accepted: a sentence for people and the reply it maps to. */
export interface MaildropProblem {
  readonly field: MaildropField;
  /** What is wrong, naming the value's place and the limit (`-F`, recipient 3...). */
  readonly text: string;
  /** The permanent reply (and enhanced status) a bounce or an SMTP client sees. */
  readonly reply: SmtpReply;
}

/** The envelope fields the checks look at. */
export interface CheckedFields {
  /** Undefined: the default sender, taken from the submitting user. */
  readonly sender?: string | undefined;
  readonly recipients: readonly { readonly address: string; readonly orcpt?: string }[];
  /** `sendmail -t`: recipients may come from the headers instead. */
  readonly extractRecipients?: boolean | undefined;
  readonly fullName?: string | undefined;
  readonly envid?: string | undefined;
  readonly user?: string | undefined;
  /** How the text names the sender (sendmail: `-f <ADDRESS>`). */
  readonly senderLabel?: string | undefined;
}

const CONTROL = /[\x00-\x1f\x7f]/;

function problem(field: MaildropField, text: string, code: number, enhanced: string) {
  return { field, text, reply: new SmtpReply(code, enhanced, text) } satisfies MaildropProblem;
}

/** What is wrong with one text value, or undefined. */
function textProblem(value: string, what: string, max: number): string | undefined {
  if (CONTROL.test(value)) return `${what} contains control characters (newline, NUL, ...)`;
  if (value.length > max) return `${what} is longer than ${max} characters`;
  return undefined;
}

/**
 * Checks one address as sender (may be '' for the null sender) or recipient, with the
 * rule of every way in (checkSenderAddress / checkRecipientAddress); the text names the
 * address and says what is wrong, the reply is that rule's code and enhanced status.
 */
export function addressProblem(
  address: string,
  role: 'sender' | 'recipient',
  limits: MaildropLimits,
  label = `${role === 'sender' ? 'the sender address' : 'recipient'} "${address.slice(0, 60)}"`,
): MaildropProblem | undefined {
  const rule: EnvelopeAddressParams = {
    allowMinUser: limits.allowMinUser,
    lineLengthLimit: limits.addressLength,
  };
  const bad =
    role === 'sender' ? checkSenderAddress(address, rule) : checkRecipientAddress(address, rule);
  if (!bad) return undefined;
  // A label that holds a control character is shown escaped, never raw.
  const shown = CONTROL.test(label) ? `${role} ${JSON.stringify(address.slice(0, 60))}` : label;
  const text = `${shown}: ${bad.reply.text.toLowerCase()}: ${bad.reason}`;
  return {
    field: role === 'sender' ? 'sender' : 'recipients',
    text,
    reply: new SmtpReply(bad.reply.code, bad.reply.enhanced, text),
  };
}

/**
 * Everything wrong with an envelope, first problem first; undefined when it passes.
 * Recipients are checked up to the limit only, so a hostile list costs little.
 */
export function envelopeProblem(
  fields: CheckedFields,
  limits: MaildropLimits,
): MaildropProblem | undefined {
  if (fields.sender !== undefined) {
    const p = addressProblem(fields.sender, 'sender', limits, fields.senderLabel);
    if (p) return p;
  }
  const n = fields.recipients.length;
  if (n > limits.recipients) {
    return problem(
      'recipients',
      `${n} recipients; at most ${limits.recipients} are allowed in one message (smtpdRecipientLimit): send it in parts`,
      550,
      '5.5.3',
    );
  }
  if (n === 0 && !fields.extractRecipients)
    return problem('recipients', 'no recipients; name them or use -t', 554, '5.5.1');
  for (const r of fields.recipients) {
    const p = addressProblem(r.address, 'recipient', limits);
    if (p) return p;
    if (r.orcpt !== undefined) {
      const o = textProblem(r.orcpt, 'an ORCPT', limits.addressLength);
      if (o) return problem('recipients', o, 501, '5.5.4');
    }
  }
  if (fields.fullName !== undefined) {
    const p = textProblem(fields.fullName, 'the full name (-F)', FULL_NAME_MAX);
    if (p) return problem('fullName', p, 554, '5.6.0');
  }
  if (fields.envid !== undefined) {
    const p = textProblem(fields.envid, 'the envelope ID (-V)', ENVID_MAX);
    if (p) return problem('envid', p, 501, '5.5.4');
  }
  if (fields.user !== undefined) {
    if (fields.user === '') return problem('user', 'the user name is empty', 554, '5.6.0');
    const p = textProblem(fields.user, 'the user name', USER_MAX);
    if (p) return problem('user', p, 554, '5.6.0');
  }
  return undefined;
}

/** The problem of a message of `size` bytes, or undefined when it fits messageSizeLimit. */
export function sizeProblem(size: number, limits: MaildropLimits): MaildropProblem | undefined {
  if (limits.messageSize <= 0 || size <= limits.messageSize) return undefined;
  return problem(
    'size',
    `message file too big: more than ${limits.messageSize} bytes (messageSizeLimit)`,
    552,
    '5.3.4',
  );
}
