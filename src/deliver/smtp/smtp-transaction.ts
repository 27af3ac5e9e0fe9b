/**
 * One mail transaction of the SMTP/LMTP client: MAIL, RCPT, DATA, the streamed body and
 * the replies to it, with PIPELINING when offered.
 *
 * Postfix counterpart: smtp_proto.c (smtp_xfer: the MAIL/RCPT/DATA state machine,
 * smtp_loop with pipelined command groups), lmtp(8)'s per-recipient replies.
 *
 * - Before MAIL: SIZE pre-check (`552 5.3.4 message size N exceeds size limit M of
 *   server X`, a bounce), SMTPUTF8 need (`5.6.7` bounce when the envelope is not ASCII
 *   and the server lacks SMTPUTF8), MIME downgrade when the server lacks 8BITMIME.
 * - MAIL 5xx bounces all; 4xx defers all (or the next server takes them). RCPT replies
 *   apply per recipient. DATA's reply and the reply to "." apply to the accepted
 *   recipients; LMTP gives one reply per accepted recipient, each reported as it comes,
 *   so a connection lost after two of three replies never delivers those two again.
 * - DSN: NOTIFY/ORCPT on RCPT, RET/ENVID on MAIL when the server offers DSN; otherwise a
 *   success is reported with action `relayed` (RFC 3461 section 4.2 says the client
 *   then notifies for NOTIFY=SUCCESS).
 *
 * A lost connection or timeout throws SessionError; `state.bodySent` tells the caller
 * whether another server may still be tried (only before the body went out).
 *
 * STANDARDS: RFC 5321 sections 3.3, 4.1.1.2-4.1.1.4; RFC 2920 (PIPELINING; DATA ends a
 * group); RFC 1870 (SIZE); RFC 6152 (8BITMIME); RFC 3461 (DSN); RFC 6531 (SMTPUTF8);
 * RFC 2033 section 4.2 (LMTP replies after DATA).
 *
 * @module
 */

import type { Readable } from 'node:stream';
import { formatAddress, isAscii } from '../../address/address.js';
import { encodeXtext } from '../../address/xtext.js';
import { SmtpReply } from '../../smtp-reply.js';
import type { Recipient } from '../../types.js';
import type { DeliveryRequest } from '../types.js';
import type { ClientSettings } from './client-settings.js';
import { DotStuffer } from './dot-stuffer.js';
import { downgradeMime, needsDowngrade } from './mime-downgrade.js';
import type { RecipientTracker } from './recipient-tracker.js';
import { SessionError } from './session-error.js';
import type { SmtpConnection } from './smtp-connection.js';

export interface TransactionState {
  /** Set once the first byte of the body was written. */
  bodySent: boolean;
  /** The session is still in a clean state and may carry another message. */
  reusable: boolean;
  /**
   * A cached session: RSET goes first, the probe that it still works (smtp_reuse.c);
   * with PIPELINING it leads the MAIL, RCPT, DATA group instead of costing a round trip.
   */
  readonly probe?: boolean;
}

/**
 * `done`: nothing more to try for this request; `next`: soft failure, try another
 * server; `stale`: the probe of a cached session failed — drop it, nothing was
 * decided for any recipient.
 */
export type TransactionResult = 'done' | 'next' | 'stale';

/** Whether the envelope needs SMTPUTF8 (a non-ASCII address). */
export function envelopeNeedsUtf8(
  request: DeliveryRequest,
  recipients: readonly Recipient[],
): boolean {
  return !isAscii(request.sender) || recipients.some((r) => !isAscii(r.address));
}

function mailCommand(
  request: DeliveryRequest,
  conn: SmtpConnection,
  eightBitOk: boolean,
  utf8: boolean,
): string {
  const f = conn.features;
  let cmd = `MAIL FROM:<${formatAddress(request.sender)}>`;
  if (f.has('SIZE') && request.size > 0) cmd += ` SIZE=${request.size}`;
  if (eightBitOk && f.has('8BITMIME') && (request.bodyType === '8BITMIME' || request.eightBit)) {
    cmd += ' BODY=8BITMIME';
  }
  if (utf8) cmd += ' SMTPUTF8';
  if (f.has('DSN')) {
    if (request.ret) cmd += ` RET=${request.ret}`;
    if (request.envid) cmd += ` ENVID=${encodeXtext(request.envid)}`;
  }
  return cmd;
}

function rcptCommand(r: Recipient, conn: SmtpConnection): string {
  let cmd = `RCPT TO:<${formatAddress(r.address)}>`;
  if (conn.features.has('DSN')) {
    if (r.notify && r.notify.length > 0) cmd += ` NOTIFY=${r.notify.join(',')}`;
    if (r.orcpt) {
      const semi = r.orcpt.indexOf(';');
      if (semi > 0)
        cmd += ` ORCPT=${r.orcpt.slice(0, semi)};${encodeXtext(r.orcpt.slice(semi + 1))}`;
    }
  }
  return cmd;
}

/** Delivers the request's pending recipients over `conn`. */
export async function runTransaction(
  conn: SmtpConnection,
  request: DeliveryRequest,
  tracker: RecipientTracker,
  settings: ClientSettings,
  state: TransactionState,
): Promise<TransactionResult> {
  const t = settings.timeouts;
  const f = conn.features;
  const relay =
    conn.peer.address === ''
      ? conn.peer.host
      : `${conn.peer.host}[${conn.peer.address}]:${conn.peer.port}`;
  const remoteMta = `dns; ${conn.peer.host}`;
  const lmtp = settings.protocol === 'lmtp';
  const recipients = tracker.pending;
  const common = { relay, remoteMta } as const;
  state.reusable = true;

  // RFC 1870: refuse early rather than send a message the server will reject.
  const limit = Number(f.get('SIZE') ?? '0');
  if (Number.isFinite(limit) && limit > 0 && request.size > limit) {
    tracker.bounceAll(
      new SmtpReply(
        552,
        '5.3.4',
        `message size ${request.size} exceeds size limit ${limit} of server ${relay}`,
      ),
      relay,
    );
    return 'done';
  }
  const utf8Needed = request.smtputf8 && envelopeNeedsUtf8(request, recipients);
  if (utf8Needed && !f.has('SMTPUTF8')) {
    tracker.bounceAll(
      new SmtpReply(554, '5.6.7', `SMTPUTF8 is required, but was not offered by host ${relay}`),
      relay,
    );
    return 'done';
  }
  const downgrade =
    settings.mimeOutputConversion && needsDowngrade(request.eightBit, request.bodyType, f);
  const dsn = f.has('DSN');
  const pipelining = f.has('PIPELINING');
  const mail = mailCommand(request, conn, true, utf8Needed);
  const rcpts = recipients.map((r) => rcptCommand(r, conn));

  // PIPELINING: MAIL, every RCPT and DATA in one group (RFC 2920 section 3.1), after
  // the RSET probe of a cached session (RSET may appear anywhere in a group).
  const group = pipelining ? [mail, ...rcpts, 'DATA'] : [mail];
  if (state.probe) {
    conn.write(pipelining ? ['RSET', ...group] : ['RSET']);
    conn.phase = 'sending RSET';
    // A cached session that fails its probe is dropped quietly; the caller opens another.
    const rset = await conn.read(t.rset).catch((err: unknown) => {
      if (err instanceof SessionError) return undefined;
      throw err;
    });
    if (!rset?.positive) return 'stale';
    if (!pipelining) conn.write(group);
  } else conn.write(group);
  conn.phase = 'sending MAIL FROM';
  const mailReply = await conn.read(t.mail);
  if (!mailReply.positive) {
    if (pipelining) {
      // Drain the replies to the rest of the group so the session stays in step.
      for (let i = 0; i < rcpts.length; i++) await conn.read(t.rcpt);
      await conn.read(t.dataInit);
    }
    const reply = mailReply.withText(
      `host ${relay} said: ${mailReply.text} (in reply to MAIL FROM command)`,
    );
    if (mailReply.permanent) {
      tracker.bounceAll(reply, relay, remoteMta);
      return 'done';
    }
    tracker.softAll(reply, relay);
    return 'next';
  }

  const accepted: Recipient[] = [];
  conn.phase = 'sending RCPT TO';
  for (const [i, r] of recipients.entries()) {
    if (!pipelining) conn.write([rcpts[i]!]);
    const rr = await conn.read(t.rcpt);
    if (rr.positive) {
      accepted.push(r);
      continue;
    }
    const reply = rr.withText(`host ${relay} said: ${rr.text} (in reply to RCPT TO command)`);
    if (rr.permanent) tracker.final(r, { status: 'bounced', reply, ...common });
    else tracker.soft(r, { status: 'deferred', reply, ...common });
  }

  if (!pipelining) {
    if (accepted.length === 0) {
      conn.write(['RSET']);
      conn.phase = 'sending RSET';
      await conn.read(t.rset);
      return tracker.done ? 'done' : 'next';
    }
    conn.write(['DATA']);
  }
  conn.phase = 'sending DATA command';
  const dataReply = await conn.read(t.dataInit);
  if (dataReply.code !== 354) {
    if (accepted.length > 0) {
      const reply = dataReply.positive
        ? new SmtpReply(451, '4.5.0', `host ${relay} answered DATA with ${dataReply.code}`)
        : dataReply.withText(`host ${relay} said: ${dataReply.text} (in reply to DATA command)`);
      for (const r of accepted) {
        if (reply.permanent) tracker.final(r, { status: 'bounced', reply, ...common });
        else tracker.soft(r, { status: 'deferred', reply, ...common });
      }
      if (dataReply.positive) state.reusable = false;
    }
    return tracker.done ? 'done' : 'next';
  }
  if (accepted.length === 0) {
    // A server that says 354 with no valid recipient gets an empty message it must refuse.
    conn.write(['.']);
    conn.phase = 'sending end of data -- message may be sent more than once';
    await conn.read(t.dataDone);
    return tracker.done ? 'done' : 'next';
  }

  conn.phase = 'sending message body';
  state.bodySent = true;
  const content: Readable = downgrade
    ? await downgradeMime(() => request.openContent())
    : request.openContent();
  const body = content.pipe(new DotStuffer(settings.lineLengthLimit));
  content.once('error', (err) => body.destroy(err));
  try {
    await conn.writeBody(body, t.dataXfer);
  } catch (err) {
    content.destroy();
    // A content read failure leaves the server mid-DATA: the session is unusable.
    state.reusable = false;
    conn.destroy();
    throw err;
  }
  conn.phase = 'sending end of data -- message may be sent more than once';
  const action = dsn ? undefined : ('relayed' as const);
  const ok = (r: Recipient, reply: SmtpReply): void =>
    tracker.final(r, { status: 'sent', reply, ...common, ...(action ? { action } : {}) });
  const replies = lmtp ? accepted.length : 1;
  for (let i = 0; i < replies; i++) {
    const dr = await conn.read(t.dataDone);
    const targets = lmtp ? [accepted[i]!] : accepted;
    const reply = dr.positive
      ? dr.withText(`${dr.text}`)
      : dr.withText(`host ${relay} said: ${dr.text} (in reply to end of DATA command)`);
    for (const r of targets) {
      if (dr.positive) ok(r, reply);
      else if (dr.permanent) tracker.final(r, { status: 'bounced', reply, ...common });
      else tracker.soft(r, { status: 'deferred', reply, ...common });
    }
  }
  // After the body, another server would mean a second copy for the ones accepted here.
  return 'done';
}
