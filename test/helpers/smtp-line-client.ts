/**
 * A small SMTP client over any duplex stream (a TCP socket, or the TLS socket that
 * replaces it after STARTTLS), for receiver tests that need TLS.
 *
 * @module
 */

import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

export interface LineReply {
  readonly code: number;
  readonly lines: string[];
  readonly raw: string;
}

export class SmtpLineClient {
  socket: Duplex;
  #buffer = '';
  #lines: string[] = [];
  #replies: LineReply[] = [];
  #waiters: ((r: LineReply | undefined) => void)[] = [];
  closed = false;
  received = '';

  constructor(socket: Duplex) {
    this.socket = socket;
    this.#attach(socket);
  }

  #attach(socket: Duplex): void {
    socket.on('data', this.#onData);
    socket.on('error', () => {});
    socket.on('close', this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    const text = chunk.toString('latin1');
    this.received += text;
    this.#buffer += text;
    for (;;) {
      const i = this.#buffer.indexOf('\r\n');
      if (i < 0) break;
      const line = this.#buffer.slice(0, i);
      this.#buffer = this.#buffer.slice(i + 2);
      this.#lines.push(line);
      if (line[3] !== '-') {
        const lines = this.#lines;
        this.#lines = [];
        const r = {
          code: Number(line.slice(0, 3)),
          lines: lines.map((l) => l.slice(4)),
          raw: lines.map((l) => `${l}\r\n`).join(''),
        };
        const w = this.#waiters.shift();
        if (w) w(r);
        else this.#replies.push(r);
      }
    }
  };

  readonly #onClose = (): void => {
    this.closed = true;
    for (const w of this.#waiters.splice(0)) w(undefined);
  };

  static connect(port: number): Promise<SmtpLineClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new SmtpLineClient(s)));
      s.once('error', reject);
    });
  }

  /** Connects with TLS from the first byte (wrapper mode). */
  static connectTls(port: number, ca: string): Promise<SmtpLineClient> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ port, host: '127.0.0.1', ca, servername: 'mx.example.test' }, () =>
        resolve(new SmtpLineClient(s)),
      );
      s.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  reply(timeoutMs = 5000): Promise<LineReply> {
    const q = this.#replies.shift();
    if (q) return Promise.resolve(q);
    if (this.closed)
      return Promise.reject(new Error(`closed; received ${JSON.stringify(this.received)}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`no reply; received ${JSON.stringify(this.received)}`)),
        timeoutMs,
      );
      this.#waiters.push((r) => {
        clearTimeout(t);
        if (r) resolve(r);
        else reject(new Error(`closed; received ${JSON.stringify(this.received)}`));
      });
    });
  }

  async command(line: string): Promise<LineReply> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  /** Upgrades to TLS after a 220 to STARTTLS; resolves with the TLS socket's cipher. */
  startTls(ca: string, servername = 'mx.example.test'): Promise<void> {
    const raw = this.socket;
    raw.off('data', this.#onData);
    raw.off('close', this.#onClose);
    return new Promise((resolve, reject) => {
      const s = tls.connect({ socket: raw as net.Socket, ca, servername }, () => {
        this.socket = s;
        this.#attach(s);
        resolve();
      });
      s.once('error', reject);
    });
  }

  waitClose(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('still open')), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
