/**
 * SessionIo: the byte side of one SMTP session — the socket, buffered input, batched
 * replies, the idle timer, and the switch to TLS.
 *
 * Postfix counterpart: smtp_stream.c / vstream.c as smtpd uses them (smtp_get with a
 * deadline, smtp_fputs into a buffer flushed before each read), and tls_server.c's
 * handshake with `vstream_fpurge()` of pending plaintext — the CVE-2011-0411 fix.
 *
 * Replies are queued and written once, when the session has consumed all the input it
 * has and waits for more (RFC 2920 section 3.2). Input is paused while too much is
 * buffered unread; output waits for the client when it stops reading.
 *
 * Does not: parse commands (smtpd-line-reader.ts, smtpd-session.ts), hold message content
 * (the DATA and BDAT readers take chunks and hand them on).
 *
 * SECURITY: `startTls()` throws away every byte received before the handshake: a
 * command pipelined after STARTTLS in plaintext must never run as if it came over TLS.
 * Every wait is bounded by the session timeout.
 *
 * STANDARDS: RFC 3207 section 4.2 (discard state after STARTTLS), RFC 2920.
 *
 * @module
 */

import net from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import type { TLSSocket, TLSSocketOptions } from 'node:tls';
import { builtin } from '../builtin.js';
import type { Clock, TimerHandle } from '../types.js';
import { LineReader } from './smtpd-line-reader.js';

/** Stop reading from the socket when this much unread input is buffered. */
const INPUT_HIGH_WATER = 256 * 1024;
/** Write out batched replies early when they grow past this. */
const OUTPUT_BATCH_LIMIT = 64 * 1024;
/** Wait for the client to read its replies when this much output is queued. */
export const OUTPUT_HIGH_WATER = 256 * 1024;

export type Wake = 'data' | 'eof' | 'timeout' | 'shutdown' | 'drain';

/** How the TLS handshake went. */
export type TlsOutcome =
  | { readonly ok: true; readonly socket: TLSSocket }
  | { readonly ok: false; readonly reason: string };

/** The resolve function of the promise captureWake() was last the executor of. */
let capturedWake: ((why: Wake) => void) | undefined;

function captureWake(resolve: (why: Wake) => void): void {
  capturedWake = resolve;
}

/**
 * A TCP socket of its own (not TLS over it, not an in-memory stream). A TLS socket says
 * so in `encrypted`, node's documented way to tell it from a net.Socket: unlike
 * `instanceof TLSSocket`, it does not need node:tls loaded in a server without TLS.
 */
function isPlainSocket(s: Duplex): boolean {
  return s instanceof net.Socket && (s as { encrypted?: unknown }).encrypted !== true;
}

/** Socket, input buffer and output batch of one session. */
export class SessionIo {
  #socket: Duplex;
  input: LineReader;
  readonly #clock: Clock;
  readonly #lineLimit: number;
  #timeoutMs: number;
  eof = false;
  closed = false;
  #paused = false;
  #out = '';
  #wake: ((why: Wake) => void) | undefined;
  #waitingSince: number | undefined;
  #timer: TimerHandle | undefined;
  /** Waits that end when the socket closes; made for the first (most sessions never wait). */
  #closeWaiters: Set<() => void> | undefined;
  /** Called once when the current socket has closed. */
  onClosed: (() => void) | undefined;
  /** Called with socket errors (already handled as EOF). */
  onSocketError: ((err: Error) => void) | undefined;
  /** Called with every reply queued for the client (the session transcript). */
  onOutput: ((wire: string) => void) | undefined;

  constructor(socket: Duplex, clock: Clock, timeoutMs: number, lineLimit: number) {
    this.#socket = socket;
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#lineLimit = lineLimit;
    this.input = new LineReader(lineLimit);
  }

  get socket(): Duplex {
    return this.#socket;
  }

  /** Starts listening to the socket and arms the idle timer. */
  attach(): void {
    this.#listen(this.#socket);
    if (this.#socket.destroyed) this.#onClose();
    this.#timer = this.#clock.setTimeout(this.#onTimer, this.#timeoutMs);
  }

  #listen(s: Duplex): void {
    s.on('data', this.#onData);
    s.on('end', this.#onEnd);
    s.on('error', this.#onError);
    s.on('close', this.#onClose);
    s.on('drain', this.#onDrain);
  }

  #unlisten(s: Duplex): void {
    s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('error', this.#onError);
    s.off('close', this.#onClose);
    s.off('drain', this.#onDrain);
  }

  readonly #onData = (chunk: Buffer | string): void => {
    this.input.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    if (!this.#paused && this.input.buffered > INPUT_HIGH_WATER) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.wakeUp('data');
  };

  readonly #onEnd = (): void => {
    this.eof = true;
    this.wakeUp('eof');
  };

  readonly #onError = (err: Error): void => {
    this.onSocketError?.(err);
    this.eof = true;
    this.wakeUp('eof');
  };

  readonly #onClose = (): void => {
    this.closed = true;
    this.eof = true;
    this.wakeUp('eof');
    const waiters = this.#closeWaiters;
    if (waiters) {
      for (const w of waiters) w();
      waiters.clear();
    }
    this.onClosed?.();
  };

  readonly #onDrain = (): void => {
    this.wakeUp('drain');
  };

  /** One timer per session, re-armed, firing only while waiting for the client. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#finished) return;
    const timeout = this.#timeoutMs;
    const since = this.#waitingSince;
    const now = this.#clock.now();
    if (since !== undefined && now - since >= timeout) {
      this.wakeUp('timeout');
    } else {
      const remaining = since === undefined ? timeout : timeout - (now - since);
      this.#timer = this.#clock.setTimeout(this.#onTimer, Math.max(1, remaining));
      return;
    }
    this.#timer = this.#clock.setTimeout(this.#onTimer, timeout);
  };

  #finished = false;

  /** Changes the idle deadline (e.g. smtpd_upstream_proxy_timeout for the PROXY header). */
  setTimeoutMs(ms: number): void {
    this.#timeoutMs = ms;
  }

  wakeUp(why: Wake): void {
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      this.#waitingSince = undefined;
      wake(why);
    }
  }

  /** Writes batched replies, then waits for input (or EOF, a timeout, a shutdown). */
  waitInput(): Promise<Wake> {
    this.flush();
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
    if (this.eof) return Promise.resolve('eof');
    // A session waits for every command: the promise is made with a shared executor,
    // without a closure of its own.
    const woken = new Promise<Wake>(captureWake);
    this.#waitingSince = this.#clock.now();
    this.#wake = capturedWake;
    capturedWake = undefined;
    return woken;
  }

  /** Waits until the client has read enough of our replies (bounded by the timeout). */
  async waitOutput(): Promise<boolean> {
    while (!this.closed && this.#socket.writableLength > OUTPUT_HIGH_WATER) {
      const why = await new Promise<Wake>((resolve) => {
        this.#waitingSince = this.#clock.now();
        this.#wake = resolve;
      });
      if (why === 'timeout') return false;
    }
    return !this.closed;
  }

  /** Waits for a downstream writable to drain, or for the connection to close. */
  waitDrain(stream: Writable): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        stream.off('close', done);
        this.#closeWaiters?.delete(done);
        resolve();
      };
      stream.on('drain', done);
      stream.on('close', done);
      this.#waitClose(done);
    });
  }

  #waitClose(done: () => void): void {
    this.#closeWaiters ??= new Set();
    this.#closeWaiters.add(done);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const done = (): void => {
        timer?.cancel();
        this.#closeWaiters?.delete(done);
        resolve();
      };
      this.#waitClose(done);
      timer = this.#clock.setTimeout(done, ms);
    });
  }

  get outputPending(): number {
    return this.#socket.writableLength;
  }

  queue(wire: string): void {
    this.onOutput?.(wire);
    this.#out += wire;
    if (this.#out.length > OUTPUT_BATCH_LIMIT) this.flush();
  }

  flush(): void {
    if (this.#out === '') return;
    const s = this.#socket;
    if (!s.destroyed && s.writable) s.write(this.#out);
    this.#out = '';
  }

  /**
   * Runs the server side of a TLS handshake on the current socket. Everything read
   * before it is discarded (RFC 3207 section 4.2; CVE-2011-0411). On success the
   * session reads and writes through the TLS socket from then on.
   */
  async startTls(options: TLSSocketOptions, timeoutMs: number): Promise<TlsOutcome> {
    this.flush();
    const raw = this.#socket;
    // The client may have hung up right after its STARTTLS: there is nothing to wait for.
    if (this.eof || raw.destroyed) return { ok: false, reason: 'lost connection' };
    this.#unlisten(raw);
    this.input = new LineReader(this.#lineLimit);
    if (this.#paused) {
      this.#paused = false;
      raw.resume();
    }
    const tls = builtin('tls');
    const secure = new tls.TLSSocket(raw as never, { ...options, isServer: true });
    // The raw socket's errors surface on the TLS socket; keep one listener so that a
    // reset during the handshake is not an uncaught 'error'.
    raw.on('error', () => {});
    const outcome = await new Promise<TlsOutcome>((resolve) => {
      const timer = this.#clock.setTimeout(() => {
        finish({ ok: false, reason: 'timeout' });
      }, timeoutMs);
      const finish = (o: TlsOutcome): void => {
        timer.cancel();
        if (this.#wake === onWake) this.#wake = undefined;
        secure.off('secure', onSecure);
        secure.off('error', onError);
        secure.off('end', onClose);
        secure.off('close', onClose);
        resolve(o);
      };
      const onSecure = (): void => finish({ ok: true, socket: secure });
      const onError = (err: Error): void => finish({ ok: false, reason: err.message });
      // A half-open socket reports the client's FIN as 'end' and stays open: the
      // handshake can never finish then, so that too ends the wait.
      const onClose = (): void => finish({ ok: false, reason: 'lost connection' });
      // A stop (graceful or not) does not wait for a handshake either.
      const onWake = (why: Wake): void => {
        if (why === 'shutdown' || why === 'eof') finish({ ok: false, reason: 'lost connection' });
      };
      this.#wake = onWake;
      secure.on('secure', onSecure);
      secure.on('error', onError);
      secure.on('end', onClose);
      secure.on('close', onClose);
    });
    this.#socket = secure;
    this.#listen(secure);
    if (!outcome.ok) {
      secure.destroy();
      this.eof = true;
    }
    return outcome;
  }

  /** Ends the session's I/O: flushes, half-closes, and destroys after the client reads. */
  end(): void {
    this.#finished = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#wake = undefined;
    this.flush();
    const s = this.#socket;
    if (!s.destroyed) {
      // Postfix's smtpd closes once its last reply is written. When the kernel has taken
      // every byte, close() sends them and then the FIN, as a shutdown() would: no
      // half-close to wait for and no timer. A TLS stream still owes its close_notify.
      if (s.writableLength === 0 && isPlainSocket(s)) {
        s.destroy();
        return;
      }
      s.end();
      if (s.writableFinished) s.destroy();
      else {
        s.once('finish', () => s.destroy());
        // A client that never reads could hold the socket open: give up after the timeout.
        const t = this.#clock.setTimeout(() => s.destroy(), this.#timeoutMs);
        s.once('close', () => t.cancel());
      }
      if (this.#paused) s.resume();
    }
  }

  /** Stops the timer without touching the socket (a session that failed). */
  stop(): void {
    this.#finished = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#wake = undefined;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
