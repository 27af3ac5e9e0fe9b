/**
 * SmtpReply: one SMTP reply as a value — a three-digit code, an RFC 3463 enhanced
 * status and text lines.
 *
 * Postfix counterpart: the (code, dsn, text) triple that smtpd_check.c and
 * cleanup_strerror.c build. Like Postfix (smtpd_check.c, "dsn class must match reply
 * class"), the constructor forces the enhanced status class to agree with the reply
 * code, so a 4xx reply can never carry a 5.x.x status.
 *
 * SECURITY: reply text may contain text from a remote peer or a client; every line is
 * made printable (no CR, LF, NUL or other controls) so a reply can never inject a
 * second reply or command.
 *
 * STANDARDS: RFC 5321 section 4.2 (reply syntax), RFC 3463 (enhanced status codes),
 * RFC 2034 (enhanced codes are sent on 2xx, 4xx and 5xx replies only).
 *
 * @module
 */

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})$/;
/** Set while SmtpReply.clean() builds its reply: the caller vouches for the text. */
let vouched = false;
/** Any control character (what printable() replaces), tab included. */
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Replaces control characters (CR, LF, NUL, ...) so the text stays on one line; tabs become spaces.
 *
 * @example
 * ```ts
 * printable('bad\r\nRCPT TO:<x>'); // 'bad__RCPT TO:<x>'
 * ```
 */
export function printable(text: string, replacement = '_'): string {
  // Most text is clean: one scan decides, and the replacing passes run only when needed.
  if (!CONTROL.test(text)) return text;
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, replacement).replace(/\t/g, ' ');
}

/**
 * Reply classes as RFC 5321 section 4.2.1 defines them.
 *
 * @example
 * ```ts
 * const cls: ReplyClass = new SmtpReply(451, '4.3.0', 'try later').replyClass; // 'transient'
 * ```
 */
export type ReplyClass = 'positive' | 'intermediate' | 'transient' | 'permanent';

/**
 * One SMTP reply as a value: code, RFC 3463 enhanced status and text lines, with the
 * status class forced to agree with the code. Postfix counterpart: the (code, dsn, text)
 * triple of smtpd_check.c.
 *
 * @example
 * ```ts
 * const r = new SmtpReply(450, '5.7.1', 'try again later'); // enhanced becomes 4.7.1
 * r.toString(); // '450 4.7.1 try again later'
 * SmtpReply.parse('550 5.1.1 no such user').permanent; // true
 * ```
 */
export class SmtpReply {
  /** Three-digit reply code, 200..599. */
  readonly code: number;
  /** RFC 3463 enhanced status (`5.1.1`); empty for 1xx/3xx replies and the greeting. */
  readonly enhanced: string;
  /** Text lines, without code or enhanced status; never empty. */
  readonly lines: readonly string[];

  /**
   * @param code - reply code (200..599)
   * @param enhanced - enhanced status; its class digit is rewritten to match `code`
   *   (a 4xx code with `5.7.1` becomes `4.7.1`); '' to send none
   * @param text - one line, or several for a multi-line reply
   */
  constructor(code: number, enhanced: string, text: string | readonly string[]) {
    if (!Number.isInteger(code) || code < 200 || code > 599) {
      throw new RangeError(`SMTP reply code ${code} is outside 200..599`);
    }
    this.code = code;
    this.enhanced = normaliseEnhanced(code, enhanced);
    if (vouched && typeof text === 'string') {
      this.lines = [text];
      return;
    }
    // Most replies are one line: the splitting pattern runs only when there is a line break.
    const lines =
      typeof text === 'string' && !text.includes('\n')
        ? [printable(text)]
        : (typeof text === 'string' ? text.split(/\r?\n/) : text).map((l) => printable(l));
    this.lines = lines.length > 0 ? lines : [''];
  }

  /** The whole text, lines joined with a space (for logs and DSNs). */
  get text(): string {
    return this.lines.join(' ');
  }

  /** The RFC 5321 class of the code. */
  get replyClass(): ReplyClass {
    const c = Math.floor(this.code / 100);
    return c === 2 ? 'positive' : c === 3 ? 'intermediate' : c === 4 ? 'transient' : 'permanent';
  }

  /** True for a 2xx reply. */
  get positive(): boolean {
    return this.code < 300;
  }

  /** True for a 4xx reply. */
  get transient(): boolean {
    return this.code >= 400 && this.code < 500;
  }

  /** True for a 5xx reply. */
  get permanent(): boolean {
    return this.code >= 500;
  }

  /** The reply as it goes on the wire, CRLF-terminated, multi-line when needed. */
  toWire(): string {
    // Built once: the fixed replies go out thousands of times.
    if (this.#wire !== undefined) return this.#wire;
    const prefix = this.enhanced ? `${this.enhanced} ` : '';
    let out = '';
    for (let i = 0; i < this.lines.length; i++) {
      const sep = i === this.lines.length - 1 ? ' ' : '-';
      out += `${this.code}${sep}${prefix}${this.lines[i]}\r\n`;
    }
    this.#wire = out;
    return out;
  }

  #wire: string | undefined;

  /** `550 5.1.1 text` on one line, as Postfix logs replies. */
  toString(): string {
    return `${this.code}${this.enhanced ? ` ${this.enhanced}` : ''} ${this.text}`;
  }

  /** The same reply with a 4xx code: Postfix's soft_bounce. */
  toTransient(): SmtpReply {
    if (!this.permanent) return this;
    return new SmtpReply(this.code - 100, this.enhanced, this.lines);
  }

  /** The same code and status with other text. */
  withText(text: string | readonly string[]): SmtpReply {
    return new SmtpReply(this.code, this.enhanced, text);
  }

  /**
   * A one-line reply whose text the caller built from fixed text and values of the
   * project's own making (queue IDs, counts): no control character can be in it, so the
   * scan for them is skipped. Text from a client, a peer or a table goes through `new`.
   *
   * @example
   * ```ts
   * SmtpReply.clean(250, '2.0.0', `Ok: queued as ${queueId}`);
   * ```
   */
  static clean(code: number, enhanced: string, text: string): SmtpReply {
    vouched = true;
    try {
      return new SmtpReply(code, enhanced, text);
    } finally {
      vouched = false;
    }
  }

  /**
   * Parses `550 5.1.1 text` (one line, as found in tables, configs and remote replies).
   * A missing enhanced status is derived from the code (`x.0.0`).
   */
  static parse(line: string): SmtpReply {
    const m = /^([2-5]\d\d)(?:[ -](.*))?$/s.exec(line.trim());
    if (!m) throw new SyntaxError(`not an SMTP reply: "${printable(line).slice(0, 80)}"`);
    const code = Number(m[1]);
    const rest = m[2] ?? '';
    const e = /^([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)(.*)$/s.exec(rest);
    if (e) return new SmtpReply(code, e[1]!, e[2] ?? '');
    return new SmtpReply(code, defaultEnhanced(code), rest);
  }
}

/**
 * `x.0.0` for a code, '' where RFC 2034 sends no enhanced status.
 *
 * @example
 * ```ts
 * defaultEnhanced(550); // '5.0.0'
 * defaultEnhanced(354); // ''
 * ```
 */
export function defaultEnhanced(code: number): string {
  const c = Math.floor(code / 100);
  return c === 2 || c === 4 || c === 5 ? `${c}.0.0` : '';
}

function normaliseEnhanced(code: number, enhanced: string): string {
  if (!enhanced) return '';
  const c = Math.floor(code / 100);
  if (c !== 2 && c !== 4 && c !== 5) return '';
  // Almost every status is already in its final form: kept as it is, without a match.
  if (canonicalEnhanced(enhanced, c)) return enhanced;
  const m = ENHANCED.exec(enhanced);
  if (!m) return `${c}.0.0`;
  return `${c}.${Number(m[2])}.${Number(m[3])}`;
}

/** Whether `s` is `c.N.N` with the class digit `c` and no leading zeros (what normaliseEnhanced makes). */
function canonicalEnhanced(s: string, c: number): boolean {
  if (s.charCodeAt(0) !== 48 + c || s.charCodeAt(1) !== 46) return false;
  let i = 2;
  for (let part = 0; part < 2; part++) {
    const start = i;
    while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
    const n = i - start;
    if (n === 0 || n > 3 || (n > 1 && s.charCodeAt(start) === 48)) return false;
    if (part === 0) {
      if (s.charCodeAt(i) !== 46) return false;
      i++;
    }
  }
  return i === s.length;
}

/**
 * Shorthand: `reply(550, '5.1.1', 'text')`.
 *
 * @example
 * ```ts
 * throw new SmtpError(reply(550, '5.1.1', 'no such user'));
 * ```
 */
export function reply(code: number, enhanced: string, text: string | readonly string[]): SmtpReply {
  return new SmtpReply(code, enhanced, text);
}
