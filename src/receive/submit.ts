/**
 * submit(): hand a message to Postern from Node code.
 *
 * Two ways in, one shape: `Mta#submit()` goes straight to Cleanup of a running MTA;
 * `submitToMaildrop()` writes to a queue's maildrop directory like `postern sendmail`,
 * so it works while no server runs and the server's Pickup delivers it later.
 *
 * @example
 * await mta.submit({ from: 'app@example.com', to: ['user@example.net'], content: 'Subject: hi\r\n\r\nhello\r\n' });
 *
 * @module
 */

import { userInfo } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type AddressProblem,
  checkRecipientAddress,
  checkSenderAddress,
  type EnvelopeAddressParams,
} from '../address/envelope-address.js';
import { SmtpError } from '../errors.js';
import { printable } from '../smtp-reply.js';
import type {
  Address,
  DsnNotifyKeyword,
  DsnRet,
  QueueId,
  SubmissionPort,
  SubmissionSource,
} from '../types.js';
import { MaildropSubmission, maildropDirectory } from './maildrop.js';

/**
 * A message to submit (`Mta.submit()`), as `sendmail` would take it.
 *
 * @example
 * ```ts
 * const message: SubmitMessage = {
 *   from: 'app@example.com',
 *   to: ['ann@example.com'],
 *   content: 'Subject: Welcome\n\nHello Ann\n',
 *   notify: ['FAILURE', 'DELAY'],
 * };
 * const queueId = await mta.submit(message);
 * ```
 */
export interface SubmitMessage {
  /** Envelope sender; '' for the null sender. */
  readonly from: Address;
  /** Envelope recipients (may be empty with `extractRecipients`). */
  readonly to: readonly Address[];
  /** The message: headers, an empty line, the body (LF or CRLF line ends). */
  readonly content: string | Buffer | Readable;
  /** Also take recipients from To/Cc/Bcc, as `sendmail -t`. */
  readonly extractRecipients?: boolean;
  /** DSN NOTIFY for every recipient (RFC 3461; `sendmail -N`). */
  readonly notify?: readonly DsnNotifyKeyword[];
  /** DSN RET: how much of the message a notice returns (`sendmail -R`). */
  readonly ret?: DsnRet;
  /** DSN ENVID: the sender's identifier for this message (`sendmail -V`). */
  readonly envid?: string;
}

/** Postfix's defaults, for a caller without parameters at hand. */
const DEFAULT_CHECKS: EnvelopeAddressParams = { allowMinUser: false, lineLengthLimit: 2048 };

/**
 * Submits through any Submission port. Resolves with the queue ID once the message is
 * durable; rejects with SmtpError carrying the reply when it was refused — before
 * anything is opened when an address is unusable (`501 5.1.7` for the sender, `501
 * 5.1.3` for a recipient: control characters, a leading `-` without `allowMinUser`, or
 * longer than `lineLengthLimit`).
 */
export async function submitThrough(
  port: SubmissionPort,
  message: SubmitMessage,
  source: SubmissionSource,
  checks: EnvelopeAddressParams = DEFAULT_CHECKS,
): Promise<QueueId> {
  const refuse = (address: Address, bad: AddressProblem | undefined): void => {
    if (!bad) return;
    const shown = printable(address).slice(0, 100);
    throw new SmtpError(bad.reply, `${bad.reply.text}: <${shown}>: ${bad.reason}`);
  };
  refuse(message.from, checkSenderAddress(message.from, checks));
  for (const address of message.to) refuse(address, checkRecipientAddress(address, checks));
  const tx = await port.open(source);
  try {
    tx.setSender(message.from, {
      ...(message.envid !== undefined ? { envid: message.envid } : {}),
      ...(message.ret !== undefined ? { ret: message.ret } : {}),
    });
    if (message.extractRecipients) tx.apply({ type: 'extractRecipients' });
    for (const address of message.to)
      tx.addRecipient({ address, ...(message.notify ? { notify: message.notify } : {}) });
    const body =
      typeof message.content === 'string' || Buffer.isBuffer(message.content)
        ? Readable.from([Buffer.from(message.content)])
        : message.content;
    await pipeline(body, tx.content);
    const result = await tx.commit();
    if (!result.reply.positive || result.queueId === undefined) {
      if (result.reply.positive) return ''; // deliberately discarded (a DISCARD action)
      throw new SmtpError(result.reply);
    }
    return result.queueId;
  } catch (err) {
    await tx.abort();
    throw err;
  }
}

/** Writes a message into `queueDirectory`'s maildrop (no server needed). Resolves with the maildrop file's ID. */
export function submitToMaildrop(
  queueDirectory: string,
  message: SubmitMessage,
  options: { messageSizeLimit?: number } = {},
): Promise<string> {
  const user = userInfo().username;
  const port = new MaildropSubmission({
    directory: maildropDirectory(queueDirectory),
    messageSizeLimit: options.messageSizeLimit ?? 10240000,
    user,
  });
  return submitThrough(port, message, {
    component: 'sendmail',
    protocol: 'local',
    localUser: user,
  });
}
