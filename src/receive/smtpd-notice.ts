/**
 * The SMTP server's postmaster notice: a session transcript (smtpd-transcript.ts)
 * mailed to the postmaster when the session had an error of a class in
 * `notifyClasses`.
 *
 * Postfix counterpart: smtpd_chat.c smtpd_chat_notify(). The notice goes from the
 * double-bounce sender (`doubleBounceSender`, so that it can never start a bounce
 * war) to `errorNoticeRecipient`, and to `bounceNoticeRecipient` when the `bounce`
 * class is among the triggers (postconf(5) notify_classes: "send transcripts of SMTP
 * sessions when Postfix rejects mail ... to bounce_notice_recipient"). Subject
 * `Postern SMTP server: errors from NAME[ADDR]`, body "Transcript of session follows."
 * and the lines, each indented by one space and wrapped at 78 columns with a 4-space
 * indent, then the reason a session was aborted, if any.
 *
 * It is submitted like a bounce: through the Submission port with `{ component:
 * 'notify', protocol: 'local', internal: true }` (no Received header, content checks
 * only if `internalMailFilterClasses` has `notify`; counted apart from client mail). Like Postfix's
 * post_mail_fopen_nowait() it is junk mail: a notice that cannot be queued is logged
 * and dropped, never retried, and never affects the client.
 *
 * Does not: attach the message (there is none: the session failed), or rate-limit
 * notices across sessions.
 *
 * SECURITY: every transcript line is already printable ASCII and bounded
 * (smtpd-transcript.ts); the one space in front of each keeps a client line from
 * reading as a header, a `From ` line or a lone `.`.
 *
 * STANDARDS: RFC 5322 (the header), RFC 3834 section 5 (`Auto-Submitted:
 * auto-generated`), RFC 2045 (a 7bit text/plain body).
 *
 * @module
 */

import { formatAddress } from '../address/address.js';
import type { ComponentLogger } from '../log.js';
import type { Address, Clock, QueueId, SubmissionPort } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { mailDate } from '../util/mail-date.js';
import type { SmtpdParameters } from './smtpd-parameters.js';
import type { SmtpdErrorClass, TranscriptSnapshot } from './smtpd-transcript.js';

/** Postfix smtpd_chat.c LENGTH and INDENT. */
const WRAP_COLUMNS = 78;
const WRAP_INDENT = 4;
/** Longest client name quoted in the Subject. */
const MAX_CLIENT = 200;

/**
 * What `sendSmtpdNotice()` needs.
 *
 * @example
 * ```ts
 * const options: SmtpdNoticeOptions = { submission: cleanup, params, clock: systemClock, log };
 * ```
 */
export interface SmtpdNoticeOptions {
  /** Where the notice is submitted (Cleanup). */
  readonly submission: SubmissionPort;
  /** `doubleBounceSender`, `errorNoticeRecipient`, `bounceNoticeRecipient`, `myorigin`, `myhostname`, `mailName`. */
  readonly params: SmtpdParameters;
  /** For the Date header. */
  readonly clock: Clock;
  /** The SMTP server's log (component `smtpd`). */
  readonly log: ComponentLogger;
}

/**
 * Who gets a transcript: `errorNoticeRecipient` for `policy`, `protocol`,
 * `resource` and `software`; `bounceNoticeRecipient` for `bounce`; each once.
 *
 * @example
 * ```ts
 * noticeRecipients(['protocol'], params); // ['postmaster']
 * noticeRecipients(['bounce'], resolveParameters({ bounceNoticeRecipient: 'abuse' })); // ['abuse']
 * ```
 */
export function noticeRecipients(
  classes: readonly SmtpdErrorClass[],
  params: Pick<SmtpdParameters, 'errorNoticeRecipient' | 'bounceNoticeRecipient'>,
): Address[] {
  const out: Address[] = [];
  const add = (a: Address): void => {
    if (a !== '' && !out.some((o) => o.toLowerCase() === a.toLowerCase())) out.push(a);
  };
  if (classes.some((c) => c !== 'bounce')) add(params.errorNoticeRecipient);
  if (classes.includes('bounce')) add(params.bounceNoticeRecipient);
  return out;
}

/**
 * The notice as message text (headers, empty line, body; CRLF line ends).
 *
 * @example
 * ```ts
 * const text = composeSmtpdNotice({
 *   snapshot, client: 'unknown[192.0.2.1]', to: ['postmaster'], queueId: tx.queueId,
 *   now: Date.now(), params,
 * });
 * ```
 */
export function composeSmtpdNotice(input: {
  readonly snapshot: TranscriptSnapshot;
  /** `name[address]` of the client. */
  readonly client: string;
  readonly to: readonly Address[];
  readonly queueId: QueueId;
  readonly now: number;
  readonly params: Pick<SmtpdParameters, 'myorigin' | 'myhostname' | 'mailName'>;
}): string {
  const { snapshot, params } = input;
  const client = ascii(input.client).slice(0, MAX_CLIENT);
  const stamp = new Date(input.now).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const to = input.to.map((a) => `<${ascii(qualified(a, params.myorigin))}>`).join(', ');
  const out = [
    `From: Mail Delivery System <MAILER-DAEMON@${params.myorigin}>`,
    `To: Postmaster ${to}`,
    `Subject: ${ascii(params.mailName)} SMTP server: errors from ${client}`,
    `Date: ${mailDate(input.now)}`,
    `Message-Id: <${stamp}.${input.queueId}@${params.myhostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
    'Transcript of session follows.',
    '',
  ];
  snapshot.lines.forEach((line, i) => {
    if (i === snapshot.omittedAt && snapshot.omitted > 0)
      out.push(` ... ${snapshot.omitted} lines left out ...`);
    out.push(...wrap(line));
  });
  if (snapshot.omittedAt >= snapshot.lines.length && snapshot.omitted > 0)
    out.push(` ... ${snapshot.omitted} lines left out ...`);
  out.push('');
  if (snapshot.reason !== undefined) {
    out.push(`Session aborted, reason: ${ascii(snapshot.reason)}`, '');
  }
  out.push('For other details, see the local mail logfile', '');
  return out.join('\r\n');
}

/**
 * Composes and queues a transcript notice. Never rejects: a failure is logged as
 * `warning: postmaster notify: ...` and the notice is dropped.
 *
 * @returns the notice's queue ID, or undefined when nothing was queued
 * @example
 * ```ts
 * const snapshot = transcript.finish();
 * if (snapshot) await sendSmtpdNotice(snapshot, 'unknown[192.0.2.1]', { submission, params, clock, log });
 * ```
 */
export async function sendSmtpdNotice(
  snapshot: TranscriptSnapshot,
  client: string,
  options: SmtpdNoticeOptions,
): Promise<QueueId | undefined> {
  const { params, log } = options;
  const to = noticeRecipients(snapshot.classes, params);
  if (to.length === 0) return undefined;
  let tx: Awaited<ReturnType<SubmissionPort['open']>> | undefined;
  try {
    tx = await options.submission.open({ component: 'notify', protocol: 'local', internal: true });
    tx.setSender(params.doubleBounceSender, { bodyType: '7BIT' });
    for (const address of to) tx.addRecipient({ address });
    const text = composeSmtpdNotice({
      snapshot,
      client,
      to,
      queueId: tx.queueId,
      now: options.clock.now(),
      params,
    });
    // A notice is at most a few hundred short lines: one write.
    tx.content.end(Buffer.from(text, 'latin1'));
    const result = await tx.commit();
    if (!result.reply.positive) throw new Error(result.reply.toString());
    if (result.queueId !== undefined) {
      log.info(undefined, `${client}: postmaster notification: ${result.queueId}`, {
        notice: result.queueId,
        classes: snapshot.classes.join(','),
      });
    }
    return result.queueId;
  } catch (err) {
    tx?.abort().catch(() => undefined);
    log.warning(undefined, `postmaster notify: ${client}: ${errorMessage(err)}`);
    return undefined;
  }
}

/** One transcript line as body lines: wrapped at 78 columns, one space in front. */
function wrap(line: string): string[] {
  const out: string[] = [];
  let rest = line;
  let indent = '';
  for (;;) {
    const room = WRAP_COLUMNS - indent.length;
    if (rest.length <= room) {
      out.push(` ${indent}${rest}`);
      return out;
    }
    // Break at the last blank that fits, as Postfix line_wrap() does, unless that
    // leaves a stub (such as a lone `In:`); then mid-word.
    let cut = rest.lastIndexOf(' ', room);
    if (cut < room / 2) cut = room;
    out.push(` ${indent}${rest.slice(0, cut)}`);
    rest = rest.slice(cut).replace(/^ +/, '');
    indent = ' '.repeat(WRAP_INDENT);
    if (rest === '') return out;
  }
}

function qualified(address: Address, myorigin: string): string {
  return formatAddress(address.includes('@') ? address : `${address}@${myorigin}`);
}

function ascii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
