/**
 * The actions of header_checks(5) and body_checks(5): parsing the result of a check
 * table into a typed action.
 *
 * Postfix counterpart: cleanup_message.c cleanup_act() (the action words and their
 * arguments) and header_checks(5) (what each one does). Action words are
 * case-insensitive; the argument is the rest of the result after white space.
 *
 * | action            | effect (applied by check-effects.ts)                               |
 * | ----------------- | ------------------------------------------------------------------ |
 * | REJECT [text]     | reject the whole message; default `550 5.7.1 message content rejected`; text starting with a 4xx code makes it temporary |
 * | DISCARD [text]    | claim success, drop the message, stop inspection                   |
 * | HOLD [text]       | commit into the hold queue                                         |
 * | REDIRECT address  | replace every recipient (last one wins; overrides FILTER)          |
 * | BCC address       | add a NOTIFY=NONE recipient                                        |
 * | FILTER tr:nexthop | route through a content filter (last one wins)                     |
 * | PREPEND text      | insert a line before the current one (not inspected)               |
 * | REPLACE text      | replace the current line (not inspected again)                     |
 * | IGNORE            | delete the line silently                                            |
 * | STRIP [text]      | log and delete the line                                             |
 * | WARN / INFO [text]| log the line                                                        |
 * | DUNNO / OK        | as if nothing matched                                               |
 * | PASS [text]       | stop header and body inspection for the rest of the message         |
 *
 * An unknown action word is an operator error: Postfix logs a warning and treats the
 * line as not matched, and so does Postern (`kind: 'unknown'`). An action that needs
 * an argument and has none (`REDIRECT` alone) is treated the same way.
 *
 * Does not: decide where a line sits (header class, MIME part) or look anything up.
 *
 * SECURITY: action text comes from the operator's tables, but a regexp table may
 * substitute `$1` from the message itself: PREPEND/REPLACE text is made a single line
 * (CR, LF and NUL replaced) before it is written, and REJECT text goes through
 * SmtpReply, which makes it printable.
 *
 * @module
 */

import { SmtpReply } from '../smtp-reply.js';

/**
 * A parsed check action.
 *
 * @example
 * ```ts
 * const action: CheckAction = parseCheckAction('REJECT spam is not welcome here');
 * if (action.kind === 'reject') console.log(action.reply.toString());
 * ```
 */
export type CheckAction =
  | { readonly kind: 'reject'; readonly reply: SmtpReply }
  | { readonly kind: 'discard'; readonly text: string }
  | { readonly kind: 'hold'; readonly text: string }
  | { readonly kind: 'redirect'; readonly address: string }
  | { readonly kind: 'bcc'; readonly address: string }
  | { readonly kind: 'filter'; readonly nexthop: string }
  | { readonly kind: 'prepend'; readonly text: string }
  | { readonly kind: 'replace'; readonly text: string }
  | { readonly kind: 'ignore' }
  | { readonly kind: 'strip'; readonly text: string }
  | { readonly kind: 'warn'; readonly text: string }
  | { readonly kind: 'info'; readonly text: string }
  | { readonly kind: 'dunno' }
  | { readonly kind: 'pass'; readonly text: string }
  | { readonly kind: 'unknown'; readonly reason: string };

/** Postfix's default REJECT reply for content (cleanup_message.c). */
export const DEFAULT_CONTENT_REJECT = 'message content rejected';

/** One line of text, safe to write as a header or body line. */
export function singleLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ');
}

/**
 * The reply for `REJECT text`: `text` may start with a reply code and enhanced status
 * (`450 4.7.1 try later`, `554 go away`); a 4xx code makes the rejection temporary.
 * Without a code the reply is `550 5.7.1 text` (Postfix's default DSN for content).
 */
export function rejectReply(text: string): SmtpReply {
  const t = text.trim();
  const m = /^([45]\d\d)(?:\s+([45]\.\d{1,3}\.\d{1,3}))?(?:\s+(.*))?$/s.exec(t);
  if (m) {
    const code = Number(m[1]);
    const enhanced = m[2] ?? (code >= 500 ? '5.7.1' : '4.7.1');
    return new SmtpReply(code, enhanced, m[3] ?? DEFAULT_CONTENT_REJECT);
  }
  const e = /^([45]\.\d{1,3}\.\d{1,3})(?:\s+(.*))?$/s.exec(t);
  if (e) {
    const code = e[1]!.startsWith('4') ? 450 : 550;
    return new SmtpReply(code, e[1]!, e[2] ?? DEFAULT_CONTENT_REJECT);
  }
  return new SmtpReply(550, '5.7.1', t === '' ? DEFAULT_CONTENT_REJECT : t);
}

/**
 * Parses a check table's result (`REJECT spam`, `prepend X-Seen: yes`, `dunno`).
 *
 * @example
 * ```ts
 * parseCheckAction('prepend X-Seen: yes'); // { kind: 'prepend', text: 'X-Seen: yes' }
 * parseCheckAction('bogus'); // { kind: 'unknown', reason: ... }
 * parseCheckAction('REJECT 450 4.7.1 try later'); // { kind: 'reject', reply: 450 4.7.1 ... }
 * ```
 */
export function parseCheckAction(result: string): CheckAction {
  const trimmed = result.trim();
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(trimmed);
  const word = (m?.[1] ?? '').toUpperCase();
  const arg = (m?.[2] ?? '').trim();
  switch (word) {
    case 'REJECT':
      return { kind: 'reject', reply: rejectReply(arg) };
    case 'DISCARD':
      return { kind: 'discard', text: arg };
    case 'HOLD':
      return { kind: 'hold', text: arg };
    case 'REDIRECT':
    case 'BCC': {
      if (arg === '' || /\s/.test(arg)) {
        return { kind: 'unknown', reason: `${word} needs one address, got "${arg}"` };
      }
      const address = arg.startsWith('<') && arg.endsWith('>') ? arg.slice(1, -1) : arg;
      return word === 'REDIRECT' ? { kind: 'redirect', address } : { kind: 'bcc', address };
    }
    case 'FILTER':
      if (!/^[^\s:]+:\S*$/.test(arg)) {
        return { kind: 'unknown', reason: `FILTER needs transport:nexthop, got "${arg}"` };
      }
      return { kind: 'filter', nexthop: arg };
    case 'PREPEND':
      if (arg === '') return { kind: 'unknown', reason: 'PREPEND needs text' };
      return { kind: 'prepend', text: singleLine(arg) };
    case 'REPLACE':
      if (arg === '') return { kind: 'unknown', reason: 'REPLACE needs text' };
      return { kind: 'replace', text: singleLine(arg) };
    case 'IGNORE':
      return { kind: 'ignore' };
    case 'STRIP':
      return { kind: 'strip', text: arg };
    case 'WARN':
      return { kind: 'warn', text: arg };
    case 'INFO':
      return { kind: 'info', text: arg };
    case 'DUNNO':
    case 'OK':
      return { kind: 'dunno' };
    case 'PASS':
      return { kind: 'pass', text: arg };
    default:
      return { kind: 'unknown', reason: `unknown action "${(m?.[1] ?? '').slice(0, 40)}"` };
  }
}
