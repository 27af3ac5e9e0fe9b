/**
 * The delivery status notification (DSN) message: an RFC 3464 multipart/report with a
 * human-readable notice, the machine-readable delivery report and the original message
 * (or its headers), produced as a stream.
 *
 * Postfix counterpart: bounce(8)'s bounce_notify_util.c and the default templates
 * (bounce(5)), in Postfix's layout:
 * - headers `From: Mail Delivery System <MAILER-DAEMON@myorigin>`, `Subject:`
 *   ("Undelivered Mail Returned to Sender" / "Delayed Mail (still being retried)" /
 *   "Successful Mail Delivery Report"), `To:`, `Auto-Submitted: auto-replied`,
 *   `MIME-Version`, `Content-Type: multipart/report; report-type=delivery-status;
 *   boundary="QUEUEID.UNIXTIME/MYHOSTNAME"`;
 * - part 1 `Notification` (text/plain): the notice and one line per recipient,
 *   `<rcpt> (expanded from <orig>): reason`;
 * - part 2 `Delivery report` (message/delivery-status): `Reporting-MTA`,
 *   `Original-Envelope-Id`, `X-Postern-Queue-ID` and `X-Postern-Sender` (Postfix's
 *   `X-Postfix-*` fields), `Arrival-Date`; per recipient `Final-Recipient`,
 *   `Original-Recipient`, `Action`, `Status`, `Remote-MTA`, `Diagnostic-Code` and, in
 *   delay notices, `Will-Retry-Until`;
 * - part 3 the original: `message/rfc822` for failures unless RET=HDRS or the message
 *   is larger than `bounceSizeLimit`, else `text/rfc822-headers` (delay and success
 *   notices always carry headers only, as Postfix's do). SMTPUTF8 messages use
 *   message/global-delivery-status and message/global[-headers] (RFC 6533).
 *
 * Because internal mail gets no header repair in Cleanup, the notice carries its own
 * `Date:` and `Message-Id:`.
 *
 * The original is streamed from the queue, never buffered: the result is a Readable
 * that pulls the original only as fast as it is read. If the original cannot be read
 * at all, the third part says so (Postfix's "Undelivered message unavailable").
 *
 * Does not: send (bounce.ts submits it), choose recipients (NOTIFY is applied by
 * Bounce), templates (`bounce_template_file`), threaded bounces.
 *
 * STANDARDS: RFC 3464 (delivery-status), RFC 6522 (multipart/report), RFC 3461 section
 * 4.3 (Original-Recipient from ORCPT), RFC 3463 (status codes), RFC 6533 (UTF-8 DSNs),
 * RFC 3834 (Auto-Submitted).
 *
 * @module
 */

import { Readable } from 'node:stream';
import { formatAddress } from '../../address/address.js';
import type { Address, QueueId } from '../../types.js';
import { mailDate } from '../../util/mail-date.js';
import type { MessageRecord, StoredRecipient } from '../types.js';
import type { BounceParameters } from './bounce-parameters.js';

/** What a notice is about. */
export type DsnKind = 'failure' | 'delay' | 'success';

/** Everything the builder needs. */
export interface DsnMessageInput {
  readonly kind: DsnKind;
  /** The original message. */
  readonly record: MessageRecord;
  /** The recipients to report (NOTIFY already applied). */
  readonly recipients: readonly StoredRecipient[];
  /** Who gets the notice (the original sender, or postmaster). */
  readonly to: Address;
  /** The notice's own queue ID (for its Message-Id). */
  readonly queueId: QueueId;
  readonly params: Pick<
    BounceParameters,
    'myhostname' | 'myorigin' | 'bounceSizeLimit' | 'maximalQueueLifetime' | 'bounceQueueLifetime'
  >;
  /** Now, ms since the epoch. */
  readonly now: number;
  /** A fresh stream of the original content (CRLF). */
  readonly openContent: () => Readable;
}

const SUBJECTS: Record<DsnKind, string> = {
  failure: 'Undelivered Mail Returned to Sender',
  delay: 'Delayed Mail (still being retried)',
  success: 'Successful Mail Delivery Report',
};

const ACTIONS: Record<DsnKind, string> = {
  failure: 'failed',
  delay: 'delayed',
  success: 'delivered',
};

/** Longest diagnostic text written on one line (RFC 5322 line limit 998). */
const TEXT_LIMIT = 900;

/** One line of text safe inside a header field or report line. */
function line(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return clean.length > TEXT_LIMIT ? `${clean.slice(0, TEXT_LIMIT)}...` : clean;
}

function isAsciiText(text: string): boolean {
  return /^[\x00-\x7f]*$/.test(text);
}

/** A bare name (`postmaster`) gets `@myorigin`; others are formatted as they are. */
function qualified(address: Address, myorigin: string): string {
  if (address === '') return '';
  return formatAddress(address.includes('@') ? address : `${address}@${myorigin}`);
}

/** `rfc822; addr`, or `utf-8; addr` when the address is not ASCII (RFC 6533 section 3). */
function typed(address: Address): string {
  const a = line(formatAddress(address));
  return isAsciiText(a) ? `rfc822; ${a}` : `utf-8; ${a}`;
}

/** The per-recipient reason in the notification text. */
function reasonOf(r: StoredRecipient, kind: DsnKind): string {
  const last = r.last;
  if (!last) return kind === 'success' ? 'delivered' : 'no reason recorded';
  const reply = `${last.code} ${last.enhanced} ${line(last.text)}`.replace(/\s+/g, ' ').trim();
  if (last.remoteMta) return `host ${line(last.remoteMta.replace(/^dns;\s*/i, ''))} said: ${reply}`;
  return kind === 'success' ? line(last.text) || 'delivered' : line(last.text);
}

function statusOf(r: StoredRecipient, kind: DsnKind): string {
  const e = r.last?.enhanced;
  if (e && /^[245]\.\d{1,3}\.\d{1,3}$/.test(e)) return e;
  return kind === 'failure' ? '5.0.0' : kind === 'delay' ? '4.0.0' : '2.0.0';
}

function notice(kind: DsnKind, host: string, retryUntil: string): string {
  const head = `This is the mail system at host ${host}.\r\n\r\n`;
  const sign = '\r\n                   The mail system\r\n\r\n';
  switch (kind) {
    case 'failure':
      return (
        head +
        'Your message could not be delivered to one or more of its recipients.\r\n' +
        'The reasons are listed below; the message itself is attached.\r\n\r\n' +
        'If you need help, write to postmaster and include this report. You may\r\n' +
        'remove your own text from the attached message first.\r\n' +
        sign
      );
    case 'delay':
      return (
        head +
        'THIS IS A WARNING ONLY: there is no need to send your message again.\r\n\r\n' +
        'Your message has not yet been delivered to the recipients listed below.\r\n' +
        `The mail system will keep trying until ${retryUntil}.\r\n` +
        'If delivery still fails by then, you will receive a separate notice.\r\n' +
        sign
      );
    case 'success':
      return (
        head +
        'Your message was delivered to the destinations listed below, as you\r\n' +
        'asked when you sent it (NOTIFY=SUCCESS).\r\n' +
        sign
      );
  }
}

/**
 * Builds the notice. The returned stream yields the whole message with CRLF line
 * ends; reading it reads the original from the queue on demand.
 */
export function dsnMessage(input: DsnMessageInput): Readable {
  return Readable.from(generate(input), { objectMode: false });
}

async function* generate(input: DsnMessageInput): AsyncGenerator<Buffer> {
  const { kind, record, params } = input;
  const utf8 = record.smtputf8;
  const boundary = `${record.queueId}.${Math.floor(input.now / 1000)}/${params.myhostname}`;
  const lifetime = record.sender === '' ? params.bounceQueueLifetime : params.maximalQueueLifetime;
  const retryUntil = mailDate(record.arrivalTime + lifetime);
  const headersOnly =
    kind !== 'failure' ||
    record.ret === 'HDRS' ||
    (params.bounceSizeLimit > 0 && record.size > params.bounceSizeLimit);

  const to = line(qualified(input.to, params.myorigin));
  const stamp = new Date(input.now).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${params.myorigin}>`,
    `Subject: ${SUBJECTS[kind]}`,
    `To: ${to}`,
    `Date: ${mailDate(input.now)}`,
    `Message-Id: <${stamp}.${input.queueId}@${params.myhostname}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status;',
    `\tboundary="${boundary}"`,
    `Content-Transfer-Encoding: ${record.eightBit || utf8 ? '8bit' : '7bit'}`,
    '',
    'This is a MIME-encapsulated message.',
    '',
  ];

  // Part 1: the notice for people.
  const lines: string[] = [];
  for (const r of input.recipients) {
    const rcpt = line(formatAddress(r.address));
    const orig = line(formatAddress(r.originalAddress));
    const expanded = r.originalAddress !== r.address ? ` (expanded from <${orig}>)` : '';
    lines.push(`<${rcpt}>${expanded}: ${reasonOf(r, kind)}`);
  }
  const text = notice(kind, params.myhostname, retryUntil) + lines.join('\r\n\r\n') + '\r\n';
  const part1 = [
    `--${boundary}`,
    'Content-Description: Notification',
    `Content-Type: text/plain; charset=${isAsciiText(text) ? 'us-ascii' : 'utf-8'}`,
    '',
    text,
  ];

  // Part 2: the report for programs (RFC 3464 section 2).
  const report = [
    `--${boundary}`,
    'Content-Description: Delivery report',
    `Content-Type: message/${utf8 ? 'global-delivery-status' : 'delivery-status'}`,
    '',
    `Reporting-MTA: dns; ${params.myhostname}`,
    ...(record.envid !== undefined ? [`Original-Envelope-Id: ${line(record.envid)}`] : []),
    `X-Postern-Queue-ID: ${record.queueId}`,
    `X-Postern-Sender: rfc822; ${line(formatAddress(record.sender))}`,
    `Arrival-Date: ${mailDate(record.arrivalTime)}`,
    '',
  ];
  for (const r of input.recipients) {
    report.push(`Final-Recipient: ${typed(r.address)}`);
    report.push(
      `Original-Recipient: ${r.orcpt !== undefined ? line(r.orcpt) : typed(r.originalAddress)}`,
    );
    report.push(
      `Action: ${kind === 'success' ? (r.last?.action ?? ACTIONS.success) : ACTIONS[kind]}`,
    );
    report.push(`Status: ${statusOf(r, kind)}`);
    const last = r.last;
    if (last?.remoteMta) {
      const mta = line(last.remoteMta);
      report.push(`Remote-MTA: ${/^[A-Za-z0-9-]+;/.test(mta) ? mta : `dns; ${mta}`}`);
      report.push(`Diagnostic-Code: smtp; ${line(`${last.code} ${last.enhanced} ${last.text}`)}`);
    } else if (last) {
      report.push(
        `Diagnostic-Code: X-Postern; ${line(last.text) || line(`${last.code} ${last.enhanced}`)}`,
      );
    }
    if (kind === 'delay') report.push(`Will-Retry-Until: ${retryUntil}`);
    report.push('');
  }

  // The trailing '' ends the last field group with an empty line before the boundary.
  yield Buffer.from([...head, ...part1, ...report, ''].join('\r\n'), 'utf8');

  // Part 3: the original, streamed.
  const description =
    kind === 'failure'
      ? headersOnly
        ? 'Undelivered Message Headers'
        : 'Undelivered Message'
      : 'Message Headers';
  const type = headersOnly
    ? utf8
      ? 'message/global-headers'
      : 'text/rfc822-headers'
    : utf8
      ? 'message/global'
      : 'message/rfc822';

  let source: Readable | undefined;
  let first: Buffer | undefined;
  let iterator: AsyncIterator<unknown> | undefined;
  try {
    source = input.openContent();
    iterator = source[Symbol.asyncIterator]();
    const r = await iterator.next();
    if (!r.done) first = toBuffer(r.value);
  } catch {
    source?.destroy();
    source = undefined;
  }

  if (!source) {
    yield Buffer.from(
      [
        `--${boundary}`,
        'Content-Description: Undelivered Message',
        'Content-Type: text/plain; charset=us-ascii',
        '',
        '--- Undelivered message unavailable ---',
        '',
        `--${boundary}--`,
        '',
      ].join('\r\n'),
    );
    return;
  }

  yield Buffer.from(
    [
      `--${boundary}`,
      `Content-Description: ${description}`,
      `Content-Type: ${type}`,
      '',
      `Return-Path: <${line(formatAddress(record.sender))}>`,
      '',
    ].join('\r\n'),
    'utf8',
  );

  try {
    let sent = 0;
    // Headers only: the stored header block is `headerSize` bytes, ending with the empty line.
    const limit = headersOnly
      ? record.headerSize > 0
        ? record.headerSize
        : Number.POSITIVE_INFINITY
      : Infinity;
    let chunk = first;
    let lastByte = 0x0a;
    while (chunk) {
      let piece = chunk;
      if (headersOnly) {
        if (limit === Number.POSITIVE_INFINITY) {
          // No recorded header size: stop at the first empty line.
          const end = chunk.indexOf('\r\n\r\n');
          if (end >= 0) piece = chunk.subarray(0, end + 4);
        } else if (sent + piece.length > limit) {
          piece = piece.subarray(0, limit - sent);
        }
      }
      if (piece.length > 0) {
        yield piece;
        sent += piece.length;
        lastByte = piece[piece.length - 1]!;
      }
      if (headersOnly && (sent >= limit || piece.length < chunk.length)) break;
      const r = await iterator!.next();
      chunk = r.done ? undefined : toBuffer(r.value);
    }
    if (lastByte !== 0x0a) yield Buffer.from('\r\n');
  } catch {
    yield Buffer.from('\r\n--- The rest of the message is unavailable ---\r\n');
  } finally {
    source.destroy();
  }
  yield Buffer.from(`\r\n--${boundary}--\r\n`);
}

function toBuffer(value: unknown): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(String(value));
}
