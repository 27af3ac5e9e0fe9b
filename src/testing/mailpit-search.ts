/**
 * Mailpit's search filters over captured messages: `to:`, `from:`, `cc:`, `bcc:`,
 * `reply-to:`, `addressed:`, `subject:`, `message-id:`, `has:attachment`, `has:inline`,
 * `is:read`, `is:unread`, `larger:`, `smaller:`, `after:`, `before:` and plain words,
 * each negated by a leading `-` or `!`, words in double quotes taken as one term.
 *
 * Postfix counterpart: none. The behaviour follows Mailpit's documented search: every
 * term must match; a match is a case-insensitive substring of the field (an address
 * term looks at names and addresses); plain words look at the subject, the addresses,
 * the text body (or the HTML without tags) and attachment names.
 *
 * Does not: tags (`tag:`, `is:tagged` match nothing), time zones (`after:` and
 * `before:` take what Date.parse takes, in the server's zone).
 *
 * @module
 */

import type { CapturedMessage } from './captured-message.js';
import type { MailAddress } from './header-mailboxes.js';

type Predicate = (message: CapturedMessage, read: boolean) => boolean;

/** Splits a query into terms; `"two words"` is one term (quotes removed, also after a prefix). */
export function searchTerms(query: string): string[] {
  const out: string[] = [];
  const re = /(?:[^\s"]*"[^"]*"?[^\s"]*)+|[^\s]+/g;
  for (const m of query.matchAll(re)) {
    const term = m[0].replace(/"/g, '');
    if (term !== '') out.push(term);
  }
  return out;
}

function addressText(list: readonly (MailAddress | undefined)[]): string {
  return list
    .filter((m): m is MailAddress => m !== undefined)
    .map((m) => `${m.name} <${m.address}>`)
    .join(', ')
    .toLowerCase();
}

/** The HTML's text: tags, scripts and styles removed, entities of markup decoded. */
export function htmlText(html: string): string {
  return html
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .replace(/&quot;/gi, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/gi, '&');
}

/** A byte count from `2kb`, `4MB`, `1.5m` or `300`; 0 when it does not parse. */
function sizeToBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s?([km]b?)?$/i.exec(text.trim());
  if (!m) return 0;
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toLowerCase();
  return Math.floor(unit.startsWith('k') ? n * 1024 : unit.startsWith('m') ? n * 1024 * 1024 : n);
}

function searchText(m: CapturedMessage): string {
  return [
    m.subject ?? '',
    addressText([m.from, ...m.to, ...m.cc, ...m.bcc, ...m.replyTo]),
    m.text ?? (m.html ? htmlText(m.html) : ''),
    ...m.attachments.map((a) => a.filename ?? ''),
  ]
    .join('\n')
    .toLowerCase();
}

/** Prefixed terms that look for a substring in one field. */
const FIELD_TERMS: readonly (readonly [string, (m: CapturedMessage) => string])[] = [
  ['to:', (m) => addressText(m.to)],
  ['from:', (m) => addressText([m.from])],
  ['cc:', (m) => addressText(m.cc)],
  ['bcc:', (m) => addressText(m.bcc)],
  ['reply-to:', (m) => addressText(m.replyTo)],
  ['addressed:', (m) => addressText([m.from, ...m.to, ...m.cc, ...m.bcc, ...m.replyTo])],
  ['subject:', (m) => (m.subject ?? '').toLowerCase()],
  ['message-id:', (m) => (m.messageId ?? '').toLowerCase()],
];

/** Terms that are a fixed test. */
const FLAG_TERMS: Readonly<Record<string, Predicate>> = {
  'is:read': (_m, read) => read,
  'is:unread': (_m, read) => !read,
  'is:tagged': () => false,
  'has:attachment': (m) => m.attachments.some((a) => !a.inline),
  'has:attachments': (m) => m.attachments.some((a) => !a.inline),
  'has:inline': (m) => m.attachments.some((a) => a.inline),
  'has:inlines': (m) => m.attachments.some((a) => a.inline),
};

function termPredicate(term: string): Predicate | undefined {
  const lower = term.toLowerCase();
  for (const [prefix, field] of FIELD_TERMS) {
    if (!lower.startsWith(prefix)) continue;
    const want = lower.slice(prefix.length);
    return (m) => want === '' || field(m).includes(want);
  }
  // Own keys only: a term such as `constructor` is a word to search for.
  if (Object.hasOwn(FLAG_TERMS, lower)) return FLAG_TERMS[lower];
  if (lower.startsWith('tag:')) return () => false;
  for (const [prefix, larger] of [
    ['larger:', true],
    ['smaller:', false],
  ] as const) {
    const size = lower.startsWith(prefix) ? sizeToBytes(lower.slice(prefix.length)) : 0;
    if (size > 0) return (m) => (larger ? m.raw.length > size : m.raw.length < size);
  }
  for (const [prefix, after] of [
    ['after:', true],
    ['before:', false],
  ] as const) {
    if (!lower.startsWith(prefix)) continue;
    const t = Date.parse(term.slice(prefix.length));
    // As Mailpit does, an unreadable date is ignored.
    if (Number.isNaN(t)) return undefined;
    return (m) => (after ? m.deliveredAt.getTime() >= t : m.deliveredAt.getTime() <= t);
  }
  return (m) => searchText(m).includes(lower);
}

/** A predicate for a Mailpit search query (every term must hold). */
export function compileSearch(query: string): Predicate {
  const predicates: Predicate[] = [];
  for (const raw of searchTerms(query)) {
    let term = raw;
    let negate = false;
    if (term.length > 1 && (term[0] === '-' || term[0] === '!')) {
      negate = true;
      term = term.slice(1);
    }
    // A term without a letter or digit is noise, as in Mailpit.
    if (!/[A-Za-z0-9]/.test(term)) continue;
    const p = termPredicate(term);
    if (!p) continue;
    predicates.push(negate ? (m, read) => !p(m, read) : p);
  }
  return (m, read) => predicates.every((p) => p(m, read));
}
