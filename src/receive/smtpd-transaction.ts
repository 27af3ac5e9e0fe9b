/**
 * The mail transaction of an SMTP session: MAIL, RCPT, DATA and BDAT, from the sender
 * checks to the commit that earns the `250 2.0.0 Ok: queued as ID`.
 *
 * Postfix counterpart: smtpd.c mail_cmd(), rcpt_cmd(), data_cmd(), bdat_cmd() and
 * receive_data(), with smtpd_check.c's per-stage checks: under `smtpd_delay_reject`
 * the client, helo and sender lists run again at each RCPT; with
 * `smtpd_delay_open_until_valid_rcpt = yes` the Submission transaction (Postfix's
 * cleanup stream) is opened at the first accepted RCPT.
 *
 * Does not: read or answer commands (smtpd-session.ts runs the loop and counts errors),
 * parse DATA or BDAT content (smtpd-session-data.ts), write the queue (the Submission
 * port does, behind commit()).
 *
 * SECURITY: the size is checked on SIZE= and again on what arrives; the anvil message
 * and recipient rate limits apply before any lookup; a transaction whose connection
 * went away while it was opening is aborted; a commit that fails or is refused aborts
 * the transaction, so nothing half-written stays queued ("when in doubt, defer").
 *
 * STANDARDS: RFC 5321 sections 3.3 and 4.1.1.2-4.1.1.4, RFC 1870 (SIZE), RFC 3030
 * (CHUNKING), RFC 3461 (DSN parameters), RFC 6531 (SMTPUTF8).
 *
 * @module
 */

import { formatAddress, parseMailArgument } from '../address/address.js';
import { checkSenderAddress } from '../address/envelope-address.js';
import { replyFor } from '../errors.js';
import type { ResolveResult } from '../rewrite/types.js';
import { printable, SmtpReply } from '../smtp-reply.js';
import type { Address, SenderParams, SubmissionAction, SubmissionTransaction } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { interpretMailParams, interpretRcptParams } from './smtpd-esmtp-params.js';
import { unsafeLocalRecipient } from './smtpd-local-part-check.js';
import * as R from './smtpd-replies.js';
import type { Decision } from './smtpd-restriction-builtins.js';
import type { RestrictionStage } from './smtpd-restriction-types.js';
import { BdatState, receiveBdatChunk, receiveData } from './smtpd-session-data.js';
import { abortQuietly, clip, safeReply } from './smtpd-session-helpers.js';
import type { SmtpdState } from './smtpd-state.js';

/** RFC 3030: a chunk size is at most 20 digits; Postern also caps the number. */
const BDAT_SYNTAX = /^(\d{1,20})(?:[ \t]+(LAST))?$/i;

/**
 * MAIL FROM: the sender, its parameters, and the sender restrictions when not delayed
 * (only those make it wait).
 */
export function mailCommand(s: SmtpdState, args: string): SmtpReply | Promise<SmtpReply> {
  const p = s.params;
  if (p.smtpdHeloRequired && s.helo === undefined) return R.R_NEED_HELO;
  if (s.sender !== undefined) return R.R_NESTED_MAIL;
  if (p.smtpdTlsSecurityLevel === 'encrypt' && s.tls === undefined) return R.R_TLS_REQUIRED;
  if (args.length < 5 || args.slice(0, 5).toUpperCase() !== 'FROM:') return R.R_SYNTAX_MAIL;
  if (s.clientReject) return s.clientReject;
  let address: Address;
  let params: SenderParams;
  let utf8: boolean;
  try {
    const parsed = parseMailArgument(args.slice(5), 'sender');
    params = interpretMailParams(parsed.params);
    address = parsed.address;
    utf8 = parsed.utf8;
  } catch (err) {
    return s.rejectFor('MAIL', err);
  }
  if (utf8 && !params.smtputf8) return R.R_NEED_SMTPUTF8;
  const bad = checkSenderAddress(address, p);
  if (bad) {
    s.ctx.log.warning(
      undefined,
      `Illegal address syntax from ${s.namaddr} in MAIL command: <${clip(address)}>: ${bad.reason}`,
    );
    return bad.reply;
  }
  const limit = p.messageSizeLimit;
  if (limit > 0 && params.declaredSize !== undefined && params.declaredSize > limit)
    return R.R_SIZE_EXCEEDS;
  if (s.ctx.anvil.event(s.peerAddress, 'message')) {
    const r = new SmtpReply(
      450,
      '4.7.1',
      `Error: too much mail from ${printable(s.client.address)}`,
    );
    s.ctx.log.warning(undefined, `Message delivery request rate limit exceeded from ${s.namaddr}`);
    return r;
  }
  s.sender = address;
  s.senderParams = params;
  if (!p.smtpdDelayReject && !s.ctx.restrictions.isEmpty('sender')) return senderRestrictions(s);
  return R.R_MAIL_OK;
}

/** smtpd_sender_restrictions at MAIL time (smtpd_delay_reject = no). */
async function senderRestrictions(s: SmtpdState): Promise<SmtpReply> {
  const o = await s.check('sender', 'MAIL');
  if (o.reply) {
    s.logReject('MAIL', o.reply, undefined);
    s.sender = undefined;
    s.senderParams = {};
    return s.restricted(o.reply);
  }
  return R.R_MAIL_OK;
}

/** RCPT TO: resolve, check, and add the recipient, opening the transaction at the first. */
export async function rcptCommand(s: SmtpdState, args: string): Promise<SmtpReply> {
  if (s.sender === undefined) return R.R_NEED_MAIL;
  if (args.length < 3 || args.slice(0, 3).toUpperCase() !== 'TO:') return R.R_SYNTAX_RCPT;
  if (s.rcptCount >= s.params.smtpdRecipientLimit) return R.R_TOO_MANY_RCPT;
  let address: Address;
  let dsn: ReturnType<typeof interpretRcptParams>;
  let utf8: boolean;
  try {
    const parsed = parseMailArgument(args.slice(3), 'recipient');
    dsn = interpretRcptParams(parsed.params);
    address = parsed.address;
    utf8 = parsed.utf8;
  } catch (err) {
    return s.rejectFor('RCPT', err);
  }
  if (utf8 && !s.senderParams.smtputf8) return R.R_NEED_SMTPUTF8;
  const external = formatAddress(address);
  if (s.ctx.anvil.event(s.peerAddress, 'recipient')) {
    s.ctx.log.warning(undefined, `Recipient address rate limit exceeded from ${s.namaddr}`);
    return new SmtpReply(
      450,
      '4.7.1',
      `Error: too many recipients from ${printable(s.client.address)}`,
    );
  }

  let resolved: ResolveResult;
  try {
    // Without a promise to wait for when no table is asked (resolveNow).
    const now = s.ctx.rewriter.resolveNow(address, s.sender);
    resolved = now instanceof Promise ? await now : now;
  } catch (err) {
    s.ctx.log.warning(
      undefined,
      `${s.namaddr}: address resolution failed for <${external}>: ${errorMessage(err)}`,
    );
    const r = new SmtpReply(451, '4.3.0', `<${external}>: Temporary lookup failure`);
    s.logReject('RCPT', r, external);
    return r;
  }
  // A bad address, or a local part no local delivery may get (smtpd-local-part-check.ts).
  const e = resolved.error;
  const r = e ? safeReply(e.code, e.enhanced, e.text) : unsafeLocalRecipient(resolved, external);
  if (r) {
    s.logReject('RCPT', r, external);
    // Postfix: mail to the error transport is MAIL_ERROR_BOUNCE.
    return s.transcript.mark(r, r.permanent ? 'bounce' : 'resource');
  }
  const verdict = rcptRestrictions(s, address, resolved);
  const denied = verdict instanceof Promise ? await verdict : verdict;
  if (denied) {
    s.logReject('RCPT', denied, external);
    return denied;
  }

  if (s.tx === undefined) {
    let tx: SubmissionTransaction;
    try {
      tx = await s.ctx.submission.open(s.source());
    } catch (err) {
      s.ctx.log.warning(
        undefined,
        `${s.namaddr}: cannot open a queue transaction: ${errorMessage(err)}`,
      );
      return replyFor(err, 'Error: queue file write error');
    }
    if (s.io.closed || s.sender === undefined) {
      abortQuietly(tx);
      return R.R_NEED_MAIL;
    }
    // The contract says content never emits 'error' (commit() reports failures); a
    // listener anyway, so that a faulty port cannot take the process down.
    tx.content.on('error', (err: Error) => {
      s.ctx.log.warning(tx.queueId, `content stream error: ${errorMessage(err)}`);
    });
    tx.setSender(s.sender, s.senderParams);
    if (s.pendingActions) {
      for (const a of s.pendingActions) tx.apply(a);
      s.pendingActions = undefined;
    }
    s.tx = tx;
    s.ctx.log.info(
      tx.queueId,
      `client=${s.namaddr}${s.authUser !== undefined ? `, sasl_method=${s.authMethod}, sasl_username=${clip(s.authUser)}` : ''}`,
    );
  }
  try {
    s.tx.addRecipient(
      dsn.notify === undefined && dsn.orcpt === undefined ? { address } : { address, ...dsn },
    );
  } catch (err) {
    return replyFor(err, 'Error: queue file write error');
  }
  s.rcptCount++;
  return R.R_RCPT_OK;
}

/**
 * client, helo, sender (delayed), relay and recipient lists, then unlisted recipients:
 * the reply that refuses the recipient, or undefined. A promise only once a list or the
 * recipient validation has to wait (most answer at once, and this runs for every RCPT).
 */
function rcptRestrictions(
  s: SmtpdState,
  recipient: Address,
  resolved: ResolveResult,
): SmtpReply | undefined | Promise<SmtpReply | undefined> {
  if (s.clientReject) return s.clientReject;
  return rcptLists(s, recipient, resolved, 0, undefined);
}

/** The lists from stage `from` on, with the actions collected so far. */
function rcptLists(
  s: SmtpdState,
  recipient: Address,
  resolved: ResolveResult,
  from: number,
  collected: SubmissionAction[] | undefined,
): SmtpReply | undefined | Promise<SmtpReply | undefined> {
  const rs = s.ctx.restrictions;
  const stages = s.params.smtpdDelayReject ? RCPT_STAGES_DELAYED : RCPT_STAGES;
  let actions = collected;
  for (let i = from; i < stages.length; i++) {
    const stage = stages[i]!;
    if (rs.isEmpty(stage)) continue;
    const now = rs.evaluateNow(stage, s.rcptRequest(stage, recipient, resolved), s.memo);
    if (now instanceof Promise) {
      return now.then((o) =>
        o.reply
          ? s.restricted(o.reply)
          : rcptLists(s, recipient, resolved, i + 1, withActions(actions, o.actions)),
      );
    }
    if (now.reply) return s.restricted(now.reply);
    actions = withActions(actions, now.actions);
  }
  if (!s.params.smtpdRejectUnlistedRecipient) return accepted(s, actions);
  const d = rs.unlistedRecipientNow(s.rcptRequest('recipient', recipient, resolved));
  return d instanceof Promise ? d.then((x) => unlisted(s, x, actions)) : unlisted(s, d, actions);
}

/** The actions collected, with those of one more list. */
function withActions(
  actions: SubmissionAction[] | undefined,
  more: readonly SubmissionAction[],
): SubmissionAction[] | undefined {
  if (more.length === 0) return actions;
  const all = actions ?? [];
  all.push(...more);
  return all;
}

/** reject_unlisted_recipient's verdict. */
function unlisted(
  s: SmtpdState,
  d: Decision,
  actions: SubmissionAction[] | undefined,
): SmtpReply | undefined {
  // Postfix: an unknown recipient is MAIL_ERROR_BOUNCE.
  if (d.kind === 'reply')
    return d.reply.permanent ? s.transcript.mark(d.reply, 'bounce') : s.restricted(d.reply);
  return accepted(s, actions);
}

/** The recipient passed: the lists' actions go to the transaction. */
function accepted(s: SmtpdState, actions: SubmissionAction[] | undefined): undefined {
  if (actions) s.addActions(actions);
  return undefined;
}

/** The lists RCPT runs, with smtpd_delay_reject (the default) and without. */
const RCPT_STAGES_DELAYED: readonly RestrictionStage[] = [
  'client',
  'helo',
  'sender',
  'relay',
  'recipient',
];
const RCPT_STAGES: readonly RestrictionStage[] = ['relay', 'recipient'];

/** DATA: returns the final reply, or undefined when the session must end now. */
export async function dataCommand(s: SmtpdState, args: string): Promise<SmtpReply | undefined> {
  if (args !== '') return R.R_SYNTAX_DATA;
  if (s.bdat) return R.R_DATA_AFTER_BDAT;
  // Postfix data_cmd(): 503 only outside a mail transaction; after MAIL, with no
  // accepted recipient (none sent, or all refused in a pipelined group), 554.
  const tx = s.tx;
  if (s.sender === undefined) return R.R_NEED_RCPT;
  if (s.rcptCount === 0 || tx === undefined) return R.R_NO_VALID_RCPT;
  if (!s.ctx.restrictions.isEmpty('data')) {
    const o = await s.check('data', 'DATA');
    if (o.reply) {
      s.logReject('DATA', o.reply, undefined, tx.queueId);
      s.restricted(o.reply);
      if (o.disconnect) {
        s.io.queue(o.reply.toWire());
        s.transcript.replied(o.reply);
        return undefined;
      }
      return o.reply;
    }
  }
  s.io.queue(R.R_DATA);
  s.busy = true;
  try {
    const policy = s.params.smtpdForbidBareNewline;
    const outcome = await receiveData(s.io, tx.content, policy, s.params.messageSizeLimit);
    if (outcome.end !== 'ok') {
      s.resetTransaction();
      lostDuring(s, 'DATA', outcome.end, outcome.size);
      s.count('data', false);
      return undefined;
    }
    const excluded = s.ctx.bareLfExclusions.matches(s.client.address);
    if (outcome.bareLf && policy === 'reject' && !excluded) {
      s.resetTransaction();
      const r = s.ctx.replies.bareLf;
      s.logReject('END-OF-MESSAGE', r, undefined, tx.queueId);
      return r;
    }
    if (outcome.bareLf && policy !== 'normalize') s.bareLfNoted = true;
    if (outcome.tooBig) {
      s.resetTransaction();
      s.logReject('END-OF-MESSAGE', R.R_FILE_TOO_BIG, undefined, tx.queueId);
      return R.R_FILE_TOO_BIG;
    }
    return await commit(s, tx, outcome.size, undefined);
  } finally {
    s.busy = false;
  }
}

/** BDAT: the chunk's reply, or undefined when the session must end now. */
export async function bdatCommand(s: SmtpdState, args: string): Promise<SmtpReply | undefined> {
  const m = BDAT_SYNTAX.exec(args);
  if (!m) {
    // RFC 3030 section 4: the size is unknown, so the session cannot stay in sync.
    s.count('bdat', false);
    s.io.queue(R.R_SYNTAX_BDAT.toWire());
    s.transcript.error('protocol');
    return undefined;
  }
  const count = Number(m[1]);
  const last = m[2] !== undefined;
  if (!Number.isSafeInteger(count)) {
    s.io.queue(R.R_SYNTAX_BDAT.toWire());
    s.transcript.error('protocol');
    return undefined;
  }
  const tx = s.rcptCount > 0 ? s.tx : undefined;
  let early: SmtpReply | undefined;
  if (s.sender === undefined) early = R.R_NEED_RCPT;
  else if (tx === undefined) early = R.R_NO_VALID_RCPT;
  if (!early && !s.bdat && !s.ctx.restrictions.isEmpty('data')) {
    const o = await s.check('data', 'DATA');
    if (o.reply) early = s.restricted(o.reply);
  }
  const state = s.bdat ?? new BdatState();
  s.busy = true;
  try {
    const end = await receiveBdatChunk(
      s.io,
      count,
      early ? undefined : tx?.content,
      state,
      s.params.messageSizeLimit,
    );
    if (end !== 'ok') {
      s.resetTransaction();
      lostDuring(s, 'BDAT', end, state.size);
      return undefined;
    }
    if (early) {
      // The chunk was read and dropped; the transaction (if any) is over.
      if (s.sender !== undefined) s.resetTransaction();
      return early;
    }
    s.bdat = state;
    if (!last) {
      if (state.tooBig) {
        s.resetTransaction();
        return R.R_FILE_TOO_BIG;
      }
      return SmtpReply.clean(250, '2.0.0', `Ok: ${count} bytes`);
    }
    if (state.tooBig) {
      s.resetTransaction();
      s.logReject('END-OF-MESSAGE', R.R_FILE_TOO_BIG, undefined, tx?.queueId);
      return R.R_FILE_TOO_BIG;
    }
    return await commit(s, tx!, state.size, state.size);
  } finally {
    s.busy = false;
  }
}

/** end-of-data restrictions, commit, reply. `bdatSize` set for BDAT's reply form. */
async function commit(
  s: SmtpdState,
  tx: SubmissionTransaction,
  size: number,
  bdatSize: number | undefined,
): Promise<SmtpReply> {
  if (!s.ctx.restrictions.isEmpty('end-of-data')) {
    const o = await s.check('end-of-data', 'END-OF-MESSAGE', { size });
    if (o.reply) {
      s.resetTransaction();
      s.logReject('END-OF-MESSAGE', o.reply, undefined, tx.queueId);
      return s.restricted(o.reply);
    }
  }
  // The transaction is ours until commit settles; after that it is gone either way.
  s.tx = undefined;
  let reply: SmtpReply;
  let queueId: string | undefined;
  try {
    const result = await tx.commit();
    reply = result.reply;
    queueId = result.queueId;
  } catch (err) {
    s.ctx.log.warning(tx.queueId, `commit failed: ${errorMessage(err)}`);
    reply = replyFor(err, 'Error: queue file write error');
  }
  if (!reply.positive) abortQuietly(tx);
  s.resetTransaction();
  if (reply.positive) {
    s.errors = 0;
    s.junk = 0;
    s.transcript.clearErrors();
    if (bdatSize !== undefined && queueId !== undefined)
      reply = SmtpReply.clean(250, '2.0.0', `Ok: ${bdatSize} bytes queued as ${queueId}`);
  }
  return reply;
}

/** `timeout after DATA (N bytes)` / `lost connection after BDAT (N bytes)`. */
function lostDuring(s: SmtpdState, what: string, end: 'lost' | 'timeout', size: number): void {
  s.transcript.aborted(end === 'timeout' ? 'timeout' : 'lost connection');
  if (end === 'timeout') {
    s.ctx.log.info(undefined, `timeout after ${what} (${size} bytes) from ${s.namaddr}`);
    s.io.queue(s.ctx.replies.timeout.toWire());
  } else {
    s.ctx.log.info(undefined, `lost connection after ${what} (${size} bytes) from ${s.namaddr}`);
  }
}
