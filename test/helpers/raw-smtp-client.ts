/**
 * A raw SMTP client for receiver tests: writes exactly the bytes it is given (bare LFs,
 * NULs, pipelined groups, split chunks) and parses replies, multi-line aware.
 *
 * @module
 */

import { connect, type Socket } from 'node:net';

export interface RawReply {
  readonly code: number;
  /** Text of each line, after the code and separator. */
  readonly lines: string[];
  /** The reply as received, CRLFs included. */
  readonly raw: string;
}

export class RawSmtpClient {
  readonly socket: Socket;
  #buffer = '';
  #lines: string[] = [];
  #replies: RawReply[] = [];
  #waiters: ((r: RawReply | undefined) => void)[] = [];
  #closed = false;
  #closeWaiters: (() => void)[] = [];
  /** Everything received, for assertions on batching. */
  received = '';
  /** Number of 'data' events received (one per server write, roughly). */
  dataEvents = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', () => {});
    // The server ends its side first; end ours too so that the socket closes fully.
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w(undefined);
      for (const w of this.#closeWaiters.splice(0)) w();
    });
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawSmtpClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, allowHalfOpen: true }, () => resolve(new RawSmtpClient(s)));
      s.once('error', reject);
    });
  }

  /** Opens a session and reads the greeting. */
  static async greeted(port: number): Promise<{ client: RawSmtpClient; greeting: RawReply }> {
    const client = await RawSmtpClient.open(port);
    const greeting = await client.reply();
    return { client, greeting };
  }

  get closed(): boolean {
    return this.#closed;
  }

  #onData(chunk: string): void {
    this.dataEvents++;
    this.received += chunk;
    this.#buffer += chunk;
    for (;;) {
      const i = this.#buffer.indexOf('\r\n');
      if (i < 0) break;
      const line = this.#buffer.slice(0, i);
      this.#buffer = this.#buffer.slice(i + 2);
      this.#lines.push(line);
      if (line[3] !== '-') {
        const lines = this.#lines;
        this.#lines = [];
        const reply: RawReply = {
          code: Number(line.slice(0, 3)),
          lines: lines.map((l) => l.slice(4)),
          raw: lines.map((l) => `${l}\r\n`).join(''),
        };
        const w = this.#waiters.shift();
        if (w) w(reply);
        else this.#replies.push(reply);
      }
    }
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The next reply; rejects after `timeoutMs` or if the connection closes first. */
  reply(timeoutMs = 5000): Promise<RawReply> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed)
      return Promise.reject(
        new Error(`connection closed; received so far: ${JSON.stringify(this.received)}`),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(
          new Error(
            `no reply within ${timeoutMs} ms; received so far: ${JSON.stringify(this.received)}`,
          ),
        );
      }, timeoutMs);
      const waiter = (r: RawReply | undefined): void => {
        clearTimeout(timer);
        if (r) resolve(r);
        else
          reject(new Error(`connection closed; received so far: ${JSON.stringify(this.received)}`));
      };
      this.#waiters.push(waiter);
    });
  }

  /** Sends one command line (CRLF added) and returns its reply. */
  async command(line: string, timeoutMs?: number): Promise<RawReply> {
    this.send(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** Resolves when the server has closed the connection. */
  waitClose(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`connection still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
