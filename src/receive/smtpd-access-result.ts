/**
 * Interprets an access(5) result — from a table, a policy server or a restriction
 * function — as a verdict for the restriction evaluator.
 *
 * Postfix counterpart: smtpd_check.c check_table_result(): `OK` and all-numeric values
 * permit, `REJECT`/`DEFER`/`4NN`/`5NN` end the list with that reply, `DUNNO` goes on,
 * `DEFER_IF_REJECT`/`DEFER_IF_PERMIT` set a pending deferral, `HOLD`, `DISCARD`,
 * `REDIRECT`, `FILTER`, `PREPEND`, `BCC` attach an action to the message (DISCARD also
 * permits, the others go on), `WARN`/`INFO` only log, and anything else is a list of
 * restriction names to evaluate in place (a restriction class).
 *
 * Does not: look anything up (the caller did), evaluate nested restriction names (it
 * returns them as `restrictions`).
 *
 * SECURITY: table and policy texts are made printable and bounded before they reach a
 * reply; a malformed code (`299 x`, `550 4.1.1`) never makes a malformed reply — the
 * enhanced code is replaced by the stage default.
 *
 * @module
 */

import { printable, SmtpReply } from '../smtp-reply.js';
import type { SubmissionAction } from '../types.js';

/** The outcome of one access lookup. */
export type AccessVerdict =
  | { readonly kind: 'permit'; readonly action?: SubmissionAction }
  | { readonly kind: 'dunno'; readonly action?: SubmissionAction; readonly log?: string }
  | { readonly kind: 'reply'; readonly reply: SmtpReply; readonly disconnect: boolean }
  | { readonly kind: 'defer-if-permit' | 'defer-if-reject'; readonly text: string }
  | { readonly kind: 'restrictions'; readonly names: readonly string[] };

/** What a reply built from a table names: `<what>: Class rejected: text`. */
export interface AccessReplyContext {
  /** `<client.example[192.0.2.1]>`, `<user@example.com>`... as Postfix quotes it. */
  readonly what: string;
  /** `Client host`, `Helo command`, `Sender address`, `Recipient address`, `Data command`. */
  readonly className: string;
  readonly rejectCode: number;
  readonly deferCode: number;
}

const MAX_TEXT = 400;

function clean(text: string): string {
  return printable(text).slice(0, MAX_TEXT);
}

/** Builds `<what>: Class rejected: text`, as Postfix's reject texts read. */
export function accessReply(
  code: number,
  enhanced: string,
  ctx: AccessReplyContext,
  text: string,
): SmtpReply {
  const body = `${ctx.what}: ${ctx.className} rejected: ${clean(text)}`;
  try {
    return new SmtpReply(code, enhanced, body);
  } catch {
    return new SmtpReply(code, code >= 500 ? '5.7.1' : '4.7.1', body);
  }
}

/** Interprets `value` (trimmed) for the stage described by `ctx`. */
export function interpretAccessResult(value: string, ctx: AccessReplyContext): AccessVerdict {
  const v = value.trim();
  const sp = v.search(/\s/);
  const word = (sp < 0 ? v : v.slice(0, sp)).toUpperCase();
  const rest = sp < 0 ? '' : v.slice(sp + 1).trim();
  if (/^\d+$/.test(word) && rest === '' && !/^[45]\d\d$/.test(word)) return { kind: 'permit' };
  const numeric = /^([45])\d\d$/.exec(word);
  if (numeric) {
    const code = Number(word);
    let enhanced = `${numeric[1]}.7.1`;
    let text = rest;
    const m = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/.exec(rest);
    if (m && m[1] === numeric[1]) {
      enhanced = `${m[1]}.${m[2]}.${m[3]}`;
      text = rest.slice(m[0].length);
    }
    return {
      kind: 'reply',
      reply: accessReply(code, enhanced, ctx, text || 'Access denied'),
      disconnect: code === 421 || code === 521,
    };
  }
  switch (word) {
    case 'OK':
      return { kind: 'permit' };
    case 'DUNNO':
      return { kind: 'dunno' };
    case 'REJECT':
      return {
        kind: 'reply',
        reply: accessReply(
          ctx.rejectCode,
          ctx.rejectCode >= 500 ? '5.7.1' : '4.7.1',
          ctx,
          rest || 'Access denied',
        ),
        disconnect: false,
      };
    case 'DEFER':
      return {
        kind: 'reply',
        reply: accessReply(ctx.deferCode, '4.7.1', ctx, rest || 'Access denied'),
        disconnect: false,
      };
    case 'DEFER_IF_PERMIT':
      return { kind: 'defer-if-permit', text: clean(rest || 'Service is unavailable') };
    case 'DEFER_IF_REJECT':
      return { kind: 'defer-if-reject', text: clean(rest || 'Service is unavailable') };
    case 'HOLD':
      return { kind: 'dunno', action: { type: 'hold', ...(rest ? { reason: clean(rest) } : {}) } };
    case 'DISCARD':
      return {
        kind: 'permit',
        action: { type: 'discard', ...(rest ? { reason: clean(rest) } : {}) },
      };
    case 'REDIRECT':
      if (rest === '' || /\s/.test(rest)) break;
      return { kind: 'dunno', action: { type: 'redirect', address: rest } };
    case 'BCC':
      if (rest === '' || /\s/.test(rest)) break;
      return { kind: 'dunno', action: { type: 'bcc', address: rest } };
    case 'FILTER':
      if (!/^[^\s:]+:\S*$/.test(rest)) break;
      return { kind: 'dunno', action: { type: 'filter', nexthop: rest } };
    case 'PREPEND':
      if (!/^[\x21-\x39\x3b-\x7e]+:/.test(rest)) break;
      return { kind: 'dunno', action: { type: 'prepend', header: clean(rest) } };
    case 'WARN':
    case 'INFO':
      return { kind: 'dunno', log: `${word.toLowerCase()}: ${clean(rest)}` };
    default:
      return { kind: 'restrictions', names: v.split(/[\s,]+/).filter((w) => w !== '') };
  }
  // A known action with an unusable argument: Postfix logs and defers.
  return {
    kind: 'reply',
    reply: new SmtpReply(451, '4.3.5', 'Server configuration error'),
    disconnect: false,
  };
}
