/**
 * The message text that sendmail(1) reads on standard input: line ends fixed to LF
 * (Postfix's `sendmail_fix_line_endings = always`) and, unless `-i`/`-oi` was given,
 * input ended by a line holding only a dot. Dots are not unstuffed: this is not SMTP.
 *
 * @module
 */

import { Transform, type TransformCallback } from 'node:stream';

export class SendmailInput extends Transform {
  readonly #dotEnds: boolean;
  /** Held back: a line start that may yet be ".", or a CR that may yet start a CRLF. */
  #carry = '';
  /** Part of the current line was already passed on, so it cannot be the dot line. */
  #midLine = false;
  #done = false;

  /** @param dotEnds - a line with only "." ends the input (sendmail without -i) */
  constructor(dotEnds: boolean) {
    super();
    this.#dotEnds = dotEnds;
  }

  /** The lone-dot line was seen. */
  get finished(): boolean {
    return this.#done;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.#done) {
      callback();
      return;
    }
    const data = this.#carry + chunk.toString('latin1');
    this.#carry = '';
    let out = '';
    let start = 0;
    for (let nl = data.indexOf('\n'); nl >= 0; nl = data.indexOf('\n', start)) {
      let line = data.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      start = nl + 1;
      if (!this.#midLine && this.#dotEnds && line === '.') {
        this.#done = true;
        if (out) this.push(Buffer.from(out, 'latin1'));
        this.push(null);
        callback();
        return;
      }
      out += `${line}\n`;
      this.#midLine = false;
    }
    const rest = data.slice(start);
    if (!this.#midLine && this.#dotEnds && (rest === '.' || rest === '.\r')) {
      this.#carry = rest;
    } else if (rest.endsWith('\r')) {
      out += rest.slice(0, -1);
      this.#carry = '\r';
      this.#midLine = true;
    } else if (rest) {
      out += rest;
      this.#midLine = true;
    }
    if (out) this.push(Buffer.from(out, 'latin1'));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#done && this.#carry) this.push(Buffer.from(this.#carry, 'latin1'));
    callback();
  }
}
