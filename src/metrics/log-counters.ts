/**
 * LogCounters: rejects by reason, failed SASL logins and TLS sessions, counted from
 * the Mta's log events — the numbers postfix_exporter and pflogsumm read from a
 * Postfix maillog.
 *
 * Postfix counterpart: none built in. The reasons are Postfix's reply wordings, as
 * pflogsumm groups them: `relay_denied` (Relay access denied), `unknown_recipient`
 * (User unknown in ... table), `recipient_rejected`, `sender_rejected`,
 * `client_rejected`, `helo_rejected` (access(5) and the reject_* restrictions),
 * `rbl` (blocked using ...), `data_rejected`, `content` (header/body checks, a content
 * filter), `limit` (size, rate and error limits), `other`.
 *
 * Does not: label with anything a client chooses (addresses, host names, reply text),
 * so the number of series stays bounded.
 *
 * @module
 */

import type { LogEvent } from '../types.js';

/** Reply wordings → reason, first match wins. */
const REASONS: readonly (readonly [RegExp, string])[] = [
  [/Relay access denied/, 'relay_denied'],
  [/User unknown/, 'unknown_recipient'],
  [/blocked using /, 'rbl'],
  [/Recipient address rejected/, 'recipient_rejected'],
  [/Sender address rejected/, 'sender_rejected'],
  [/Client host rejected/, 'client_rejected'],
  [/Helo command rejected/, 'helo_rejected'],
  [/Data command rejected/, 'data_rejected'],
  [/too (big|large|many|much)|exceeds|Too many|limit/i, 'limit'],
];

const TLS = /^(?:STARTTLS|TLS) connection established from .*: (\S+) with cipher /;
const STAGE = /reject(?:_warning)?: (\S+) from /;

/**
 * One reject count.
 *
 * @example
 * ```ts
 * const { rejects } = await mta.metrics.snapshot();
 * const relay = rejects.filter((r) => r.reason === 'relay_denied').reduce((n, r) => n + r.count, 0);
 * ```
 */
export interface RejectCount {
  /** The program that rejected: `smtpd`, `qmqpd`, `cleanup`. */
  readonly service: string;
  /** The SMTP stage (`CONNECT`, `HELO`, `MAIL`, `RCPT`, `DATA`, `END-OF-MESSAGE`), `header`, `body` or `content`. */
  readonly stage: string;
  /** The reason class (see the module doc). */
  readonly reason: string;
  /** Rejects so far. */
  readonly count: number;
}

/**
 * Counters fed with every log event.
 *
 * @example
 * ```ts
 * const counters = new LogCounters();
 * logger.addSink((e) => counters.observe(e));
 * ```
 */
export class LogCounters {
  readonly #rejects = new Map<
    string,
    { service: string; stage: string; reason: string; count: number }
  >();
  readonly #sasl = new Map<string, number>();
  readonly #tls = new Map<string, number>();

  /** Counts `event` if it is a reject, a failed SASL login or a TLS session. */
  observe(event: LogEvent): void {
    const f = event.fields;
    if (f?.event === 'sasl_failed') {
      bump(this.#sasl, String(f.sasl_method ?? 'unknown'));
      return;
    }
    const text = event.text;
    if (text.startsWith('reject: ') || text.startsWith('NOQUEUE: reject: ')) {
      this.#reject(event);
      return;
    }
    if (event.component === 'smtpd' && text.includes('connection established from ')) {
      const m = TLS.exec(text);
      if (m) bump(this.#tls, m[1]!);
    }
  }

  /** Rejects so far, per service, stage and reason. */
  get rejects(): RejectCount[] {
    return [...this.#rejects.values()].map((r) => ({ ...r }));
  }

  /** Failed SASL logins so far, per mechanism. */
  get saslFailures(): Record<string, number> {
    return Object.fromEntries(this.#sasl);
  }

  /** TLS sessions accepted so far (STARTTLS or wrapper mode), per protocol version. */
  get tlsSessions(): Record<string, number> {
    return Object.fromEntries(this.#tls);
  }

  #reject(event: LogEvent): void {
    const f = event.fields;
    const text = event.text;
    let stage = typeof f?.stage === 'string' ? f.stage : STAGE.exec(text)?.[1];
    let reason: string | undefined;
    if (event.component === 'cleanup') {
      // `reject: header Subject: ...`, `reject: body ...`, `reject: content filter: ...`.
      const what = /^reject: (header|body)\b/.exec(text)?.[1];
      stage = what ?? 'content';
      reason = !what && /message size|exceeds|too many/.test(text) ? 'limit' : 'content';
    }
    // Only the reply: the envelope after it (`; from=<...> to=<...>`) is the client's.
    const end = text.lastIndexOf('; from=<');
    const reply = end > 0 ? text.slice(0, end) : text;
    reason ??= REASONS.find(([pattern]) => pattern.test(reply))?.[1] ?? 'other';
    const key = `${event.component}\u0000${stage ?? 'unknown'}\u0000${reason}`;
    const row = this.#rejects.get(key);
    if (row) row.count++;
    else
      this.#rejects.set(key, {
        service: event.component,
        stage: stage ?? 'unknown',
        reason,
        count: 1,
      });
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
