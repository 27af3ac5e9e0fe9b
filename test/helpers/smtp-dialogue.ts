/**
 * A scripted SMTP client for tests: send raw bytes, read whole replies (multi-line
 * aware), assert codes. Deliberately dumb so that it can send what no real client would.
 */

import { connect, type Socket } from 'node:net';

export interface Reply {
  readonly code: number;
  readonly lines: string[];
  readonly text: string;
}

export class SmtpDialogue {
  readonly socket: Socket;
  #buffer = '';
  #replies: Reply[] = [];
  #waiters: ((r: Reply | undefined) => void)[] = [];
  #closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w(undefined);
    });
    socket.on('error', () => {});
  }

  static open(port: number, host = '127.0.0.1'): Promise<SmtpDialogue> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new SmtpDialogue(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let lines: string[] = [];
    for (;;) {
      const i = this.#buffer.indexOf('\r\n');
      if (i < 0) break;
      const line = this.#buffer.slice(0, i);
      this.#buffer = this.#buffer.slice(i + 2);
      lines.push(line);
      if (/^\d{3} /.test(line) || !/^\d{3}-/.test(line)) {
        const code = Number(line.slice(0, 3));
        const reply: Reply = { code, lines, text: lines.map((l) => l.slice(4)).join('\n') };
        lines = [];
        const w = this.#waiters.shift();
        if (w) w(reply);
        else this.#replies.push(reply);
      }
    }
  }

  /** The next reply; rejects after `timeoutMs` or if the server closed first. */
  read(timeoutMs = 10_000): Promise<Reply> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(new Error('connection closed before a reply'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((r) => {
        clearTimeout(t);
        if (r) resolve(r);
        else reject(new Error('connection closed before a reply'));
      });
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Sends one command line (CRLF added) and returns its reply. */
  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  /** Sends a command and asserts the reply code. */
  async expect(line: string, code: number): Promise<Reply> {
    const r = await this.command(line);
    if (r.code !== code) throw new Error(`"${line}" got ${r.code} ${r.text}, expected ${code}`);
    return r;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Waits until the server closes the connection. */
  waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error('server did not close the connection')),
        timeoutMs,
      );
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
