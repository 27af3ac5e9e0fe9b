/**
 * The facts of a Postfix-format log text as data: `name=value` pairs, the client's
 * name and address, and which event the line reports.
 *
 * Postfix counterpart: none — Postfix logs text, and tools (pflogsumm, fail2ban,
 * postfix_exporter) parse it with regular expressions. Postern parses its own lines
 * once, the same way, so that JSON output and metrics have fields on every event, and
 * lets the fields a component passes with the event take precedence.
 *
 * Event names: `connect`, `disconnect`, `lost_connection`, `timeout`, `client`,
 * `reject` (and `reject_warning`, `hold`, `discard`), `sasl_login`, `sasl_failed`,
 * `tls`, `queue_active`, `delivery`, `removed`, `message_id`; other lines have none.
 *
 * Does not: trust what it parses — values come from text that may hold a client's
 * strings (an address may contain `, to=<`); a component that needs exact facts passes
 * them as the event's `fields`.
 *
 * @module
 */

import type { LogEvent } from './types.js';

/** A field value, as in LogEvent.fields. */
type Value = string | number | boolean | undefined;

/** `name=value` where value is `<...>` or runs to the next blank, comma or semicolon. */
const PAIR = /(?:^|[\s,;])([a-z][a-z0-9_-]*)=(<[^>]*>|[^\s,;]*)/g;
/** `name[address]` after `from ` or `client=`, or at the start of the text. */
const CLIENT = /(?:^|\bfrom |client=)([^\s[\]]+)\[([^\]\s]*)\]/;
const NUMERIC = new Set(['size', 'nrcpt', 'delay', 'uid']);

/** Which event a text reports, by its Postfix wording; the first match wins. */
const EVENTS: readonly (readonly [RegExp, string])[] = [
  [/^connect from /, 'connect'],
  [/^disconnect from /, 'disconnect'],
  [/^lost connection after /, 'lost_connection'],
  [/^timeout after /, 'timeout'],
  [/^client=/, 'client'],
  [/^(?:NOQUEUE: )?(reject|reject_warning|hold|discard): /, ''],
  [/: SASL \S+ authentication failed/, 'sasl_failed'],
  [/: sasl_method=/, 'sasl_login'],
  [/^(?:STARTTLS|TLS) connection established from /, 'tls'],
  [/^from=<.*>, size=\d+, nrcpt=\d+/, 'queue_active'],
  [/^to=<.*, status=\w+/, 'delivery'],
  [/^removed$/, 'removed'],
  [/^message-id=/, 'message_id'],
];

/**
 * The structured fields of `event`: what its text says, then the event's own `fields`.
 *
 * @example
 * ```ts
 * logFields({ time: 0, level: 'info', component: 'smtpd', text: 'connect from mail.example[192.0.2.1]' });
 * // { event: 'connect', client_name: 'mail.example', client_address: '192.0.2.1' }
 * ```
 */
export function logFields(event: LogEvent): Record<string, Value> {
  const text = event.text;
  const out: Record<string, Value> = {};
  for (const [pattern, name] of EVENTS) {
    const m = pattern.exec(text);
    if (!m) continue;
    out.event = name || m[1];
    break;
  }
  const client = CLIENT.exec(text);
  if (client) {
    out.client_name = client[1];
    out.client_address = client[2];
  }
  if (out.event === 'reject' || out.event === 'reject_warning') rejectFacts(text, out);
  else if (out.event === 'lost_connection' || out.event === 'timeout')
    out.after = /after (\S+)/.exec(text)?.[1];
  else if (out.event === 'sasl_failed') {
    const m = /SASL (\S+) authentication failed: (.*?)(?:, sasl_username=|$)/.exec(text);
    out.sasl_method = m?.[1];
    out.reason = m?.[2];
  }
  // The parenthesised detail of a delivery (`status=sent (250 2.0.0 Ok)`) is one value.
  const detail = /, status=\w+ \((.*)\)$/.exec(text);
  const pairsText = detail ? text.slice(0, text.indexOf(' (', detail.index)) : text;
  if (detail) out.detail = detail[1];
  for (const m of pairsText.matchAll(PAIR)) {
    const name = m[1]!;
    let value = m[2]!;
    if (value.startsWith('<') && value.endsWith('>')) value = value.slice(1, -1);
    if (name in out && name !== 'event') continue;
    out[name] = NUMERIC.has(name) && /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  if (event.fields) Object.assign(out, event.fields);
  return out;
}

/** `reject: RCPT from c[a]: 554 5.7.1 <x>: Relay access denied; from=<s> to=<r> ...` */
function rejectFacts(text: string, out: Record<string, Value>): void {
  const m =
    /reject(?:_warning)?: (\S+) from [^:]*: (\d{3}) (\d\.\d{1,3}\.\d{1,3}) (.*?)(?:; from=<|$)/.exec(
      text,
    );
  if (!m) return;
  out.stage = m[1];
  out.reply_code = Number(m[2]);
  out.dsn = m[3];
  out.reason = m[4];
}
