/**
 * SmtpConnection: one connection to an SMTP or LMTP server — read replies, write
 * commands and the message body, each bounded by a per-phase timeout; STARTTLS upgrade.
 *
 * Postfix counterpart: smtp_stream.c / smtp_chat.c (timed reads and writes, reply
 * collection) and the VSTREAM under an SMTP_SESSION.
 *
 * Does not: know the SMTP state machine (smtp-transaction.ts and smtp-handshake.ts do),
 * pick servers, or cache itself.
 *
 * SECURITY: every reply is parsed with bounds (reply-parser.ts). Bytes that arrive after
 * the 220 to STARTTLS and before the TLS handshake are refused (CVE-2011-0411, command
 * injection into the TLS session). Commands written are checked for CR, LF and NUL.
 *
 * @module
 */

import type { Duplex, Readable } from 'node:stream';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { builtin } from '../../builtin.js';
import type { SmtpReply } from '../../smtp-reply.js';
import { ReplyParser, ReplySyntaxError } from './reply-parser.js';
import { SessionError } from './session-error.js';

/** Who the connection is with, for messages and `relay=`. */
export interface PeerInfo {
  /** The server's name as found (MX host, nexthop host, socket path). */
  readonly host: string;
  /** Numeric address, or '' for a UNIX socket. */
  readonly address: string;
  readonly port: number;
}

/** `host[addr]:port`, Postfix's `relay=` form; the path for a UNIX socket. */
export function relayName(peer: PeerInfo): string {
  if (peer.address === '') return peer.host;
  return `${peer.host}[${peer.address}]:${peer.port}`;
}

interface Waiter {
  resolve(reply: SmtpReply): void;
  reject(error: Error): void;
}

export class SmtpConnection {
  readonly peer: PeerInfo;
  /** When the connection was made (for the reuse time limit). */
  readonly createdAt: number;
  /** Messages delivered over it (for the reuse count limit). */
  uses = 0;
  /** ESMTP keywords of the last EHLO/LHLO reply, upper-cased, with their argument. */
  features: ReadonlyMap<string, string> = new Map();
  /** Set once TLS is up. */
  tls: { protocol: string; cipher: string; authorized: boolean } | undefined;
  #socket: Duplex;
  #parser = new ReplyParser();
  #replies: SmtpReply[] = [];
  #waiters: Waiter[] = [];
  #failure: Error | undefined;
  #phase = 'connecting';
  #onData = (chunk: Buffer): void => this.#receive(chunk);
  #onEnd = (): void => this.#fail(SessionError.lost(this.peer.host, this.#phase));
  #onError = (err: Error): void => this.#fail(SessionError.lost(this.peer.host, this.#phase, err));

  constructor(socket: Duplex, peer: PeerInfo, now: number) {
    this.#socket = socket;
    this.peer = peer;
    this.createdAt = now;
    this.#attach();
  }

  /** The connection can no longer be used. */
  get broken(): boolean {
    return this.#failure !== undefined;
  }

  /** Names the current phase for error texts (`receiving the initial server greeting`). */
  set phase(phase: string) {
    this.#phase = phase;
  }

  get phase(): string {
    return this.#phase;
  }

  #attach(): void {
    this.#socket.on('data', this.#onData);
    this.#socket.on('end', this.#onEnd);
    this.#socket.on('close', this.#onEnd);
    this.#socket.on('error', this.#onError);
  }

  #detach(): void {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.off('error', this.#onError);
  }

  #receive(chunk: Buffer): void {
    if (this.#failure) return;
    let replies: SmtpReply[];
    try {
      replies = this.#parser.push(chunk);
    } catch (err) {
      const what = err instanceof ReplySyntaxError ? err.message : 'unreadable reply';
      this.#fail(SessionError.protocol(this.peer.host, what));
      return;
    }
    for (const r of replies) {
      const w = this.#waiters.shift();
      if (w) w.resolve(r);
      else this.#replies.push(r);
    }
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
    this.#socket.destroy();
  }

  /** Fails the connection (abort, a peer that misbehaves); pending reads reject. */
  destroy(error?: Error): void {
    this.#fail(
      error ?? new SessionError('aborted', SessionError.lost(this.peer.host, this.#phase).reply),
    );
  }

  /** The next reply, within `timeoutMs` (0 = no limit). */
  read(timeoutMs: number): Promise<SmtpReply> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<SmtpReply>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        resolve: (r) => {
          if (timer) clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          if (timer) clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.#fail(SessionError.timeout(this.peer.host, this.#phase));
        }, timeoutMs);
      }
    });
  }

  /** Writes command lines (each without CRLF). Pipelined groups go in one write. */
  write(lines: readonly string[]): void {
    if (this.#failure) return;
    for (const l of lines) {
      if (/[\r\n\0]/.test(l)) throw new Error('an SMTP command must not contain CR, LF or NUL');
    }
    this.#socket.write(`${lines.join('\r\n')}\r\n`);
  }

  /** Writes one command and reads its reply. */
  async command(line: string, timeoutMs: number): Promise<SmtpReply> {
    this.write([line]);
    return this.read(timeoutMs);
  }

  /**
   * Streams `body` (already dot-stuffed, ending in `.\r\n`) with backpressure. A write
   * that makes no progress for `timeoutMs` fails the session (Postfix
   * smtp_data_xfer_timeout is a no-progress timer).
   */
  async writeBody(body: Readable, timeoutMs: number): Promise<void> {
    if (this.#failure) throw this.#failure;
    const socket = this.#socket;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          const err = SessionError.timeout(this.peer.host, this.#phase);
          this.#fail(err);
          body.destroy();
        }, timeoutMs);
      }
    };
    // Corked, a small message and its terminator leave in one write(v); a large one
    // leaves a socket buffer at a time, uncorked whenever the buffer is full.
    socket.cork();
    try {
      arm();
      for await (const chunk of body) {
        if (this.#failure) throw this.#failure;
        if (!socket.write(chunk as Buffer)) {
          socket.uncork();
          await new Promise<void>((resolve, reject) => {
            const onDrain = (): void => {
              socket.off('close', onClose);
              resolve();
            };
            const onClose = (): void => {
              socket.off('drain', onDrain);
              reject(this.#failure ?? SessionError.lost(this.peer.host, this.#phase));
            };
            socket.once('drain', onDrain);
            socket.once('close', onClose);
          });
          socket.cork();
        }
        arm();
      }
      if (this.#failure) throw this.#failure;
    } catch (err) {
      if (this.#failure) throw this.#failure;
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      while (socket.writableCorked > 0) socket.uncork();
    }
  }

  /**
   * Upgrades to TLS after the server's 220 to STARTTLS. Resolves once the handshake is
   * done; certificate checks are the caller's (the TLS policy decides what counts).
   */
  async startTls(options: ConnectionOptions, timeoutMs: number): Promise<TLSSocket> {
    if (this.#parser.pending || this.#replies.length > 0) {
      // Plaintext sent after the 220 would be read as if it came over TLS.
      this.#fail(SessionError.protocol(this.peer.host, 'unexpected data after STARTTLS reply'));
      throw this.#failure;
    }
    this.#detach();
    const plain = this.#socket;
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const s = builtin('tls').connect({ ...options, socket: plain as never });
      const done = (err?: Error): void => {
        if (timer) clearTimeout(timer);
        s.off('secureConnect', onOk);
        s.off('error', done);
        if (err) {
          s.destroy();
          plain.destroy();
          reject(err);
        } else resolve(s);
      };
      const onOk = (): void => done();
      s.once('secureConnect', onOk);
      s.once('error', done);
      if (timeoutMs > 0)
        timer = setTimeout(() => done(new Error('TLS handshake timed out')), timeoutMs);
    }).catch((err: Error) => {
      const e = new SessionError('tls', SessionError.lost(this.peer.host, 'TLS handshake').reply, {
        cause: err,
      });
      this.#failure = e;
      throw e;
    });
    this.#socket = secure;
    this.#parser = new ReplyParser();
    this.#attach();
    const cipher = secure.getCipher();
    this.tls = {
      protocol: secure.getProtocol() ?? 'TLS',
      cipher: cipher?.name ?? 'unknown',
      authorized: secure.authorized,
    };
    return secure;
  }

  /** Sends QUIT and closes without waiting long for the reply (smtp_skip_quit_response). */
  async quit(waitForReply: boolean, timeoutMs: number): Promise<void> {
    if (!this.#failure) {
      try {
        this.write(['QUIT']);
        if (waitForReply) await this.read(timeoutMs);
      } catch {
        // The server hanging up first is fine.
      }
    }
    this.#detach();
    this.#socket.on('error', () => {});
    this.#socket.end();
    this.#socket.destroy();
    this.#failure ??= SessionError.lost(this.peer.host, 'closing');
  }
}
