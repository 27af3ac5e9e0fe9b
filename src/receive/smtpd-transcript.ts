/**
 * SmtpdTranscript: the bounded history of one SMTP session ("In:" client lines, "Out:"
 * server replies) and the error classes that occurred in it, for the postmaster notice
 * of smtpd-notice.ts.
 *
 * Postfix counterpart: smtpd_chat.c smtp_chat_append() / smtpd_chat_reset() and the
 * `error_mask` bookkeeping of smtpd.c and smtpd_check.c (MAIL_ERROR_POLICY, _PROTOCOL,
 * _RESOURCE, _SOFTWARE, _BOUNCE, global/mail_error.c). As in Postfix:
 * - nothing is recorded when `notifyClasses` names none of the classes an SMTP session
 *   can raise (Postfix: `notify_mask == 0`);
 * - at HELO/EHLO a history longer than the flush threshold (Postfix
 *   `smtpd_history_flush_threshold`, 100) is handed out for a notice if it had a
 *   notifiable error, then dropped together with its error classes (chat_reset());
 * - at the end of the session what is left is handed out if it had a notifiable error;
 * - a queued message clears the error classes (data_cmd() clears `error_mask`).
 *
 * Which class a reply raises: the session marks the replies whose origin it knows
 * (`mark()`: restriction rejects are `policy`, an unknown recipient is `bounce`); all
 * others are classified from the reply by `classifyReply()`.
 *
 * Does not: compose or send the notice (smtpd-notice.ts), record message content
 * (Postfix does not either), or the `data` class (no Postern table raises it).
 *
 * SECURITY: the history is bounded whatever the client sends: at most `maxLines` lines
 * are kept (the first and the last half; the count of lines left out in between is
 * kept), each cut to `maxLineLength` characters, and made printable ASCII when handed out. Credentials
 * never enter it: an AUTH command keeps only its mechanism, every SASL response line
 * is recorded as `***`, and so are command lines right after an AUTH exchange that are
 * one base64 token and no command (responses a client sent after a refused AUTH). Postfix records both as sent and warns in postconf(5)
 * that notices "may contain confidential information such as SASL passwords"; Postern
 * masks them instead.
 *
 * STANDARDS: RFC 3463 (the enhanced status codes `classifyReply()` reads), RFC 4954
 * section 4 (AUTH initial response and continuation lines).
 *
 * @module
 */

import type { SmtpReply } from '../smtp-reply.js';
import { lookupCommand } from './smtpd-commands.js';

/**
 * The `notifyClasses` an SMTP session can raise (Postfix mail_error.c names).
 *
 * @example
 * ```ts
 * const cls: SmtpdErrorClass = classifyReply(new SmtpReply(500, '5.5.2', 'Error: command not recognized'))!;
 * // 'protocol'
 * ```
 */
export type SmtpdErrorClass = 'policy' | 'protocol' | 'resource' | 'software' | 'bounce';

/**
 * All of them, in Postfix's order.
 *
 * @example
 * ```ts
 * const watched = params.notifyClasses.filter((c) => (SMTPD_ERROR_CLASSES as readonly string[]).includes(c));
 * ```
 */
export const SMTPD_ERROR_CLASSES: readonly SmtpdErrorClass[] = Object.freeze([
  'policy',
  'protocol',
  'resource',
  'software',
  'bounce',
]);

/**
 * How much history one session may keep.
 *
 * @example
 * ```ts
 * const limits: TranscriptLimits = { flushThreshold: 100, maxLines: 200, maxLineLength: 512 };
 * const transcript = new SmtpdTranscript(['protocol'], limits);
 * ```
 */
export interface TranscriptLimits {
  /** Postfix `smtpd_history_flush_threshold`: at HELO/EHLO a longer history is flushed. @default 100 */
  readonly flushThreshold: number;
  /** Lines kept at most (the first and the last half of them). @default 200 */
  readonly maxLines: number;
  /** Characters kept of each line, prefix included. @default 512 */
  readonly maxLineLength: number;
}

/**
 * Defaults: Postfix's threshold, and room for one threshold's worth past it.
 *
 * @example
 * ```ts
 * const t = new SmtpdTranscript(params.notifyClasses, { ...DEFAULT_TRANSCRIPT_LIMITS, maxLines: 400 });
 * ```
 */
export const DEFAULT_TRANSCRIPT_LIMITS: TranscriptLimits = Object.freeze({
  flushThreshold: 100,
  maxLines: 200,
  maxLineLength: 512,
});

/**
 * A history handed out for a notice.
 *
 * @example
 * ```ts
 * const snapshot: TranscriptSnapshot | undefined = transcript.finish();
 * if (snapshot) console.log(snapshot.classes, snapshot.lines.length);
 * ```
 */
export interface TranscriptSnapshot {
  /** `In:  ...` / `Out: ...` lines, printable ASCII, each at most `maxLineLength`. */
  readonly lines: readonly string[];
  /** How many lines were left out between the first and the last half. */
  readonly omitted: number;
  /** Where the omitted lines were: the index in `lines` before which they belong. */
  readonly omittedAt: number;
  /** The error classes that occurred and are in `notifyClasses`, in Postfix's order. */
  readonly classes: readonly SmtpdErrorClass[];
  /** Why the session ended early (`timeout`, `lost connection`, `too many errors`). */
  readonly reason?: string;
}

const IN = 'In:  ';
const OUT = 'Out: ';
const MASK = '***';

/**
 * The history of one session. Every method is cheap and never throws; when no
 * notifiable class is configured, every method does nothing.
 *
 * @example
 * ```ts
 * const t = new SmtpdTranscript(['protocol']);
 * t.reply('220 mx.example.com ESMTP Postern\r\n');
 * t.query('FOO');
 * const r = new SmtpReply(500, '5.5.2', 'Error: command not recognized');
 * t.reply(r.toWire());
 * t.replied(r);
 * t.finish()?.lines; // ['Out: 220 mx.example.com ESMTP Postern', 'In:  FOO', 'Out: 500 5.5.2 ...']
 * ```
 */
/** The watched classes of each `notifyClasses` list: every session of a server shares one. */
const watchedCache = new WeakMap<readonly string[], ReadonlySet<SmtpdErrorClass>>();

function watchedClasses(notifyClasses: readonly string[]): ReadonlySet<SmtpdErrorClass> {
  let watched = watchedCache.get(notifyClasses);
  if (watched === undefined) {
    const wanted = new Set(notifyClasses.map((c) => c.trim().toLowerCase()));
    watched = new Set(SMTPD_ERROR_CLASSES.filter((c) => wanted.has(c)));
    // Keyed by the list itself: parameters are read-only once built (a reload builds new ones).
    watchedCache.set(notifyClasses, watched);
  }
  return watched;
}

function checkedLimits(limits: Partial<TranscriptLimits>): TranscriptLimits {
  const l = { ...DEFAULT_TRANSCRIPT_LIMITS, ...limits };
  for (const [name, value] of Object.entries(l)) {
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`transcript limit ${name} must be a positive integer, got ${value}`);
  }
  if (l.maxLines < 2) throw new RangeError('transcript limit maxLines must be at least 2');
  return l;
}

export class SmtpdTranscript {
  readonly #notify: ReadonlySet<SmtpdErrorClass>;
  readonly #limits: TranscriptLimits;
  readonly #headMax: number;
  readonly #tailMax: number;
  /**
   * Lines as recorded: a client line as it came (it never ends in CRLF), a reply line as
   * sent, CRLF included; the `In:` / `Out:` prefixes are added only for a notice.
   */
  #head: string[] = [];
  /** Ring buffer of the last lines once the head is full. */
  #tail: string[] = [];
  #tailStart = 0;
  #omitted = 0;
  #count = 0;
  /** The error classes raised, one bit each in SMTPD_ERROR_CLASSES order. */
  #classes = 0;
  #reason: string | undefined;
  /** Replies marked with their class; made for the first one (most sessions have none). */
  #marks: WeakMap<SmtpReply, SmtpdErrorClass> | undefined;
  /** The last client lines were an AUTH exchange: a base64 token now is a response. */
  #inAuth = false;

  /**
   * @param notifyClasses - Postfix `notify_classes`; names other than the SMTP
   *   session's classes (`2bounce`, `delay`, ...) are ignored here
   * @param limits - bounds of the history
   * @throws RangeError when a limit is not a positive integer
   */
  constructor(notifyClasses: readonly string[], limits?: Partial<TranscriptLimits>) {
    this.#notify = watchedClasses(notifyClasses);
    const l = limits === undefined ? DEFAULT_TRANSCRIPT_LIMITS : checkedLimits(limits);
    this.#limits = l;
    this.#headMax = Math.ceil(l.maxLines / 2);
    this.#tailMax = l.maxLines - this.#headMax;
  }

  /** False when `notifyClasses` names no class a session can raise: nothing is kept. */
  get enabled(): boolean {
    return this.#notify.size > 0;
  }

  /** Lines recorded since the last flush, omitted ones included. */
  get length(): number {
    return this.#count;
  }

  /** Records a command line from the client; an AUTH command keeps only its mechanism. */
  query(text: string): void {
    if (!this.enabled) return;
    if (this.#inAuth && BASE64_TOKEN.test(text) && !lookupCommand(text.trim())) {
      this.#append(MASK);
      return;
    }
    if (!mayBeAuth(text)) {
      // Not AUTH (MAIL, RCPT, DATA...): nothing to mask, no regular expression to run.
      this.#inAuth = false;
      this.#append(text);
      return;
    }
    const masked = maskAuth(text);
    this.#inAuth = masked !== text || AUTH_VERB.test(text);
    this.#append(masked);
  }

  /** Records a SASL response line: `*` (the client gives up) as is, anything else masked. */
  saslResponse(text: string): void {
    if (!this.enabled) return;
    this.#append(text.trim() === '*' ? '*' : MASK);
  }

  /** Records what the server sent: one `Out:` line per CRLF-terminated reply line. */
  reply(wire: string): void {
    if (!this.enabled) return;
    const first = wire.indexOf('\r\n');
    if (first === wire.length - 2) {
      // Most replies are one line: kept as the string that was sent.
      if (first > 0) this.#append(wire);
      return;
    }
    for (const line of wire.split('\r\n')) if (line !== '') this.#append(`${line}\r\n`);
  }

  /**
   * Tells the transcript where `reply` came from, so that sending it raises `cls`
   * rather than what `classifyReply()` would say. Returns `reply`.
   */
  mark(reply: SmtpReply, cls: SmtpdErrorClass): SmtpReply {
    this.#marks ??= new WeakMap();
    this.#marks.set(reply, cls);
    return reply;
  }

  /** Notes the class a reply raises, if any (2xx and 3xx raise none). */
  replied(reply: SmtpReply): void {
    if (reply.code < 400) return;
    this.error(this.#marks?.get(reply) ?? classifyReply(reply));
  }

  /** Notes that an error of `cls` occurred. */
  error(cls: SmtpdErrorClass | undefined): void {
    if (cls !== undefined && this.#notify.has(cls))
      this.#classes |= 1 << SMTPD_ERROR_CLASSES.indexOf(cls);
  }

  /** A message was queued: earlier errors are no longer worth a notice. */
  clearErrors(): void {
    this.#classes = 0;
  }

  /** Why the session ended early; the first reason given wins. */
  aborted(reason: string): void {
    if (this.#reason === undefined) this.#reason = reason;
  }

  /**
   * HELO/EHLO: when the history is longer than the flush threshold, drops it and its
   * error classes, and returns it when it is owed a notice.
   */
  checkpoint(): TranscriptSnapshot | undefined {
    if (this.#count <= this.#limits.flushThreshold) return undefined;
    return this.#flush();
  }

  /** The end of the session: returns what is left when it is owed a notice, and drops it. */
  finish(): TranscriptSnapshot | undefined {
    return this.#flush();
  }

  #flush(): TranscriptSnapshot | undefined {
    const classes = this.#classes;
    const snapshot =
      classes !== 0 && this.#count > 0
        ? {
            lines: [...this.#head, ...this.#tailInOrder()].map((l) =>
              clean(prefixed(l), this.#limits.maxLineLength),
            ),
            omitted: this.#omitted,
            omittedAt: this.#head.length,
            classes: SMTPD_ERROR_CLASSES.filter((_, i) => (classes & (1 << i)) !== 0),
            ...(this.#reason !== undefined ? { reason: this.#reason } : {}),
          }
        : undefined;
    if (this.#count > 0) {
      this.#head = [];
      this.#tail = [];
    }
    this.#tailStart = 0;
    this.#omitted = 0;
    this.#count = 0;
    this.#classes = 0;
    return snapshot;
  }

  #append(raw: string): void {
    // Kept as sent, a client line cut to one character past the limit with its prefix
    // (enough for clean() to mark the cut): most sessions owe no notice, so lines get
    // their prefix and are made printable only for one. A reply is the server's own,
    // already bounded string.
    const max = Math.max(0, this.#limits.maxLineLength - IN.length);
    const line = raw.length > max && !isReplyLine(raw) ? raw.slice(0, max + 1) : raw;
    this.#count++;
    if (this.#head.length < this.#headMax) {
      this.#head.push(line);
      return;
    }
    if (this.#tail.length < this.#tailMax) {
      this.#tail.push(line);
      return;
    }
    // Full: the oldest tail line is left out, the newest takes its slot.
    this.#tail[this.#tailStart] = line;
    this.#tailStart = (this.#tailStart + 1) % this.#tailMax;
    this.#omitted++;
  }

  #tailInOrder(): string[] {
    return [...this.#tail.slice(this.#tailStart), ...this.#tail.slice(0, this.#tailStart)];
  }
}

/**
 * The class a reply raises when its origin is not known, after Postfix smtpd.c and
 * smtpd_check.c: syntax and sequence errors (500-504, RFC 3463 X.5.X, X.6.X) are
 * `protocol`; security and policy (X.7.X) and too many recipients (X.5.3) are
 * `policy`; "internal" failures and X.3.5 are `software`; other mail-system and
 * network troubles (X.3.X, 4.4.X) are `resource`; a refused message or recipient
 * (X.1.X, X.2.X, X.3.4 too big, 5.4.X too many hops, 5.0.0) is `bounce`.
 *
 * @returns the class, or undefined for a 2xx or 3xx reply
 * @example
 * ```ts
 * classifyReply(new SmtpReply(451, '4.3.0', 'Error: queue file write error')); // 'resource'
 * classifyReply(new SmtpReply(554, '5.7.1', 'Relay access denied')); // 'policy'
 * classifyReply(new SmtpReply(552, '5.3.4', 'Error: message file too big')); // 'bounce'
 * ```
 */
export function classifyReply(reply: SmtpReply): SmtpdErrorClass | undefined {
  if (reply.code < 400) return undefined;
  const [, subject = '0', detail = '0'] = reply.enhanced.split('.');
  if (subject === '3' && /\binternal\b/i.test(reply.text)) return 'software';
  if (subject === '5' && detail === '3') return 'policy';
  if (reply.code >= 500 && reply.code <= 504) return 'protocol';
  switch (subject) {
    case '5':
    case '6':
      return 'protocol';
    case '7':
      return 'policy';
    case '3':
      if (detail === '4') return 'bounce';
      return detail === '5' ? 'software' : 'resource';
    case '4':
      return reply.permanent ? 'bounce' : 'resource';
    case '1':
    case '2':
      return 'bounce';
    default:
      return reply.permanent ? 'bounce' : 'resource';
  }
}

/**
 * The class of a reply from the access restrictions: `policy`, except a temporary
 * lookup failure (X.3.X: `resource`) or a broken policy service (X.3.5: `software`),
 * as smtpd_check.c distinguishes them.
 *
 * @example
 * ```ts
 * restrictionClass(new SmtpReply(451, '4.3.0', '<a@b>: Temporary lookup failure')); // 'resource'
 * restrictionClass(new SmtpReply(504, '5.5.2', '<x>: Helo command rejected: need fully-qualified hostname')); // 'policy'
 * ```
 */
export function restrictionClass(reply: SmtpReply): SmtpdErrorClass {
  const [, subject, detail] = reply.enhanced.split('.');
  if (subject !== '3') return 'policy';
  return detail === '5' ? 'software' : 'resource';
}

/** One bare base64 token: what a SASL response looks like. */
const BASE64_TOKEN = /^[ \t]*[A-Za-z0-9+/]+={0,2}[ \t]*$/;
const AUTH_VERB = /^[ \t]*AUTH(?:[ \t]|$)/i;

/** An RFC 4422 section 3.1 mechanism name, then a blank or the end. */
const MECHANISM = /^([ \t]+)([A-Za-z0-9_-]{1,20})(?=[ \t]|$)([\s\S]*)$/;

/** Whether a command line can be AUTH: it starts with an A, or with blanks. */
function mayBeAuth(text: string): boolean {
  const c = text.charCodeAt(0);
  return c === 0x41 || c === 0x61 || c === 0x20 || c === 0x09;
}

/**
 * `AUTH PLAIN AGFsaWNl...` → `AUTH PLAIN ***`: the mechanism stays, the response does
 * not; anything after AUTH that is not a mechanism name is masked whole.
 */
function maskAuth(text: string): string {
  const m = /^([ \t]*AUTH)([ \t][\s\S]*)?$/i.exec(text);
  if (!m) return text;
  const verb = m[1] ?? '';
  const rest = m[2];
  if (rest === undefined || rest.trim() === '') return verb;
  const mech = MECHANISM.exec(rest);
  if (!mech) return `${verb} ${MASK}`;
  const response = (mech[3] ?? '').trim() !== '' ? ` ${MASK}` : '';
  return `${verb}${mech[1] ?? ''}${mech[2] ?? ''}${response}`;
}

/** Whether a recorded line is a reply line (only those end in CRLF). */
function isReplyLine(line: string): boolean {
  return line.endsWith('\r\n');
}

/** A recorded line with its `In:` / `Out:` prefix, CRLF removed. */
function prefixed(line: string): string {
  return isReplyLine(line) ? OUT + line.slice(0, -2) : IN + line;
}

/** Printable ASCII only (Postfix printable(..., '?')), cut to `max` characters. */
function clean(text: string, max: number): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > max ? `${printable.slice(0, Math.max(0, max - 3))}...` : printable;
}
