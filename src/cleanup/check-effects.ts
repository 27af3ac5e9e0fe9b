/**
 * What a header_checks / body_checks match does to the message (as opposed to the
 * line): the envelope actions (HOLD, REDIRECT, BCC, FILTER, DISCARD), the rejection
 * (REJECT), and the log line Postfix writes for each.
 *
 * Postfix counterpart: cleanup_message.c cleanup_act() and its log format:
 * `QUEUEID: reject: header Subject: ... from client[addr]; from=<s> to=<r>
 * proto=ESMTP helo=<h>: 550 5.7.1 text`.
 *
 * Does not: edit lines (content-checks.ts returns those edits to the writer).
 *
 * SECURITY: the logged line is the message's own text: cut at 200 characters (the
 * logger makes it printable).
 *
 * @module
 */

import type { ComponentLogger } from '../log.js';
import type { SmtpReply } from '../smtp-reply.js';
import type { Address, QueueId, SubmissionSource } from '../types.js';
import type { CheckAction } from './check-action.js';
import type { CleanupEnvelope } from './cleanup-envelope.js';
import type { CheckClass } from './content-checks.js';

const LINE_LOG_LIMIT = 200;

/** The transaction's side of a check match. */
export interface CheckEffectTarget {
  readonly queueId: QueueId;
  readonly source: SubmissionSource;
  readonly env: CleanupEnvelope;
  readonly log: ComponentLogger;
  /** trivial-rewrite of a REDIRECT/BCC address; undefined when it failed (already held). */
  rewrite(address: Address): Address | undefined;
  /** REJECT: stop and reply with `reply` at commit. */
  reject(reply: SmtpReply): void;
  /** DISCARD: stop writing; commit replies 250. */
  discard(): void;
}

/** ` from name[addr]; from=<s> to=<r> proto=P helo=<h>`, as Postfix's check log lines. */
export function checkLogContext(source: SubmissionSource, env: CleanupEnvelope): string {
  const client = source.client
    ? ` from ${source.client.name ?? 'unknown'}[${source.client.address}]`
    : '';
  const first = env.recipients[0];
  return (
    `${client}; from=<${env.sender ?? ''}>` +
    `${first ? ` to=<${first.address}>` : ''} proto=${source.protocol}` +
    `${source.helo !== undefined ? ` helo=<${source.helo}>` : ''}`
  );
}

/** Applies a match's effect on the message and logs it. */
export function applyCheckEffect(
  t: CheckEffectTarget,
  where: CheckClass,
  line: string,
  action: CheckAction,
): void {
  const { env } = t;
  const word = where === 'body' ? 'body' : 'header';
  const log = (level: 'info' | 'warning', what: string, text: string): void =>
    t.log[level](
      t.queueId,
      `${what}: ${word} ${line.slice(0, LINE_LOG_LIMIT)}${checkLogContext(t.source, env)}${text ? `: ${text}` : ''}`,
    );
  switch (action.kind) {
    case 'reject':
      // Postfix: `...: 5.7.1 message content rejected` (the status and text, no code).
      log('info', 'reject', `${action.reply.enhanced} ${action.reply.text}`);
      t.reject(action.reply);
      return;
    case 'discard':
      log('info', 'discard', action.text);
      env.discard = action.text ? { reason: action.text } : {};
      t.discard();
      return;
    case 'hold':
      log('info', 'hold', action.text);
      env.hold = action.text ? { reason: action.text } : {};
      return;
    case 'redirect': {
      log('info', 'redirect', action.address);
      const to = t.rewrite(action.address);
      if (to !== undefined) env.redirect = to;
      return;
    }
    case 'bcc': {
      log('info', 'bcc', action.address);
      const to = t.rewrite(action.address);
      if (to !== undefined) env.bccs.push(to);
      return;
    }
    case 'filter':
      log('info', 'filter', action.nexthop);
      env.filter = action.nexthop;
      return;
    case 'strip':
      log('info', 'strip', action.text);
      return;
    case 'warn':
      // Postfix logs this at info level: the text itself says `warning: header ...`.
      log('info', 'warning', action.text);
      return;
    case 'info':
      log('info', 'info', action.text);
      return;
    case 'pass':
      if (action.text) log('info', 'pass', action.text);
      return;
    case 'unknown':
      t.log.warning(t.queueId, `check table result ignored: ${action.reason}`);
      return;
    default:
      return;
  }
}
