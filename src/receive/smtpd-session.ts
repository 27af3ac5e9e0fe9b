/**
 * SmtpSession: one SMTP conversation, from the greeting (or the PROXY header, or the
 * TLS handshake of a wrapper-mode port) to the last reply: the command loop and its
 * error counting.
 *
 * Postfix counterpart: smtpd.c smtpd_proto() and the session-level command actions
 * (helo_cmd, rset_cmd, noop_cmd, vrfy_cmd, quit_cmd, xclient_cmd, starttls), with the
 * error bookkeeping of smtpd_chat.c: every 4xx/5xx
 * counts as an error; once the count reaches `smtpd_soft_error_limit` each reply is
 * delayed by `smtpd_error_sleep_time`; at `smtpd_hard_error_limit` the session ends
 * with `421 4.7.0`. Junk commands (HELO, EHLO, RSET, NOOP, VRFY, HELP) beyond
 * `smtpd_junk_command_limit` count as errors; a queued message clears both counts.
 *
 * Pipelining: commands are read and answered strictly in order; replies are batched
 * (smtpd-session-io.ts). `smtpd_forbid_unauth_pipelining` (postconf(5)): input pending
 * when the greeting goes out, after any command of a non-ESMTP session, or after a
 * command that must end a group (HELO, EHLO, DATA, NOOP, VRFY) ends the session with
 * `554 5.5.0`; the flag also feeds `reject_unauth_pipelining`.
 *
 * The session's state lives in an SmtpdState (smtpd-state.ts) that the command
 * handlers share: AUTH in smtpd-auth-exchange.ts, MAIL, RCPT, DATA and BDAT in
 * smtpd-transaction.ts. Access policy: smtpd-restrictions.ts, run per stage with
 * `smtpd_delay_reject` semantics.
 *
 * Does not: ETRN, XFORWARD, reverse DNS for logs (the client name is `unknown` unless
 * XCLIENT or the receiver sets it), or add a Received header (Cleanup does, from the
 * SubmissionSource, which carries TLS facts and the SASL login).
 *
 * SECURITY: every read is bounded (line_length_limit, message_size_limit,
 * smtpd_recipient_limit, error and junk limits, timeouts); the end of DATA is only
 * CRLF.CRLF; after STARTTLS all earlier input is discarded and the session starts over
 * (RFC 3207 section 4.2); AUTH is offered only over TLS by default; XCLIENT and the
 * PROXY header are honoured only from trusted addresses; client strings are made
 * printable before they reach a log or a reply.
 *
 * STANDARDS: RFC 5321, RFC 2920 (PIPELINING), RFC 1870 (SIZE), RFC 3463, RFC 6152,
 * RFC 3461 (DSN), RFC 6531 (SMTPUTF8), RFC 3030 (CHUNKING), RFC 3207 (STARTTLS),
 * RFC 4954 (AUTH).
 *
 * @module
 */
import { printable, SmtpReply } from '../smtp-reply.js';
import type { ClientInfo } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { authCommand } from './smtpd-auth-exchange.js';
import {
  type CommandSpec,
  isForbiddenCommand,
  lookupCommand,
  splitCommand,
} from './smtpd-commands.js';
import type { CommandLine } from './smtpd-line-reader.js';
import { sendSmtpdNotice } from './smtpd-notice.js';
import { parseProxyHeader } from './smtpd-proxy-protocol.js';
import * as R from './smtpd-replies.js';
import type { CommandCheck } from './smtpd-restriction-types.js';
import { ehloFeatures, vrfyCommand, xclientCommand } from './smtpd-session-commands.js';
import { abortQuietly, MAX_LOGGED, tlsInfoOf } from './smtpd-session-helpers.js';
import { SessionIo, type Wake } from './smtpd-session-io.js';
import { type SessionContext, SmtpdState } from './smtpd-state.js';
import { bdatCommand, dataCommand, mailCommand, rcptCommand } from './smtpd-transaction.js';
import type { TranscriptSnapshot } from './smtpd-transcript.js';

export { buildSessionReplies, type SessionReplies } from './smtpd-replies.js';
export type { SessionContext } from './smtpd-state.js';

/** Longest HELO name kept for logs and the Received header. */
const MAX_HELO_LENGTH = 255;
/** Wait for the client to read its replies before reading more commands past this. */
const R_OUTPUT_HIGH = 256 * 1024;

/** One SMTP session over a duplex stream. Start it with `start()`; `done` settles when it is over. */
export class SmtpSession {
  readonly #s: SmtpdState;
  #finished = false;
  #shutdown: 'none' | 'graceful' | 'now' = 'none';
  readonly #done: Promise<void>;
  #resolveDone!: (notices: Promise<void> | undefined) => void;
  /** The postmaster notices queued so far; undefined while there are none (most sessions). */
  #notices: Promise<void> | undefined;

  constructor(ctx: SessionContext, socket: import('node:stream').Duplex, client: ClientInfo) {
    const io = new SessionIo(
      socket,
      ctx.clock,
      ctx.params.smtpdTimeout,
      ctx.params.lineLengthLimit,
    );
    const s = new SmtpdState(ctx, io, client);
    this.#s = s;
    io.onClosed = () => {
      if (this.#finished) this.#closed();
    };
    io.onSocketError = (err) => ctx.log.debug(undefined, `${s.namaddr}: ${errorMessage(err)}`);
    if (s.transcript.enabled) io.onOutput = (wire) => s.transcript.reply(wire);
    this.#done = new Promise<void>((resolve) => {
      this.#resolveDone = resolve as (notices: Promise<void> | undefined) => void;
    });
  }

  /** The socket is closed: done once any postmaster notice has been queued. */
  #closed(): void {
    // Resolved with the notices' promise, `done` follows it.
    this.#resolveDone(this.#notices);
  }

  get done(): Promise<void> {
    return this.#done;
  }

  get busy(): boolean {
    return this.#s.busy;
  }

  start(): void {
    this.#s.io.attach();
    this.#run().catch((err: unknown) => {
      this.#s.ctx.log.error(undefined, `${this.#s.namaddr}: session failed: ${errorMessage(err)}`);
      this.#s.io.destroy();
      this.#finish();
    });
  }

  shutdown(graceful: boolean): void {
    if (this.#finished) return;
    if (graceful) {
      if (this.#shutdown === 'none') this.#shutdown = 'graceful';
      if (!this.#s.busy) this.#s.io.wakeUp('shutdown');
    } else {
      this.#shutdown = 'now';
      this.#s.io.destroy();
      this.#s.io.wakeUp('eof');
    }
  }

  // ---------------------------------------------------------------- output

  /** Queues a reply; past the soft error limit, after a pause (then it returns its promise). */
  #respond(reply: SmtpReply): Promise<void> | undefined {
    const r = this.#s.params.softBounce && reply.permanent ? reply.toTransient() : reply;
    if (
      this.#s.errors >= this.#s.params.smtpdSoftErrorLimit &&
      this.#s.params.smtpdErrorSleepTime > 0
    ) {
      this.#s.io.flush();
      return this.#s.io.sleep(this.#s.params.smtpdErrorSleepTime).then(() => this.#send(r, reply));
    }
    this.#send(r, reply);
    return undefined;
  }

  #send(r: SmtpReply, reply: SmtpReply): void {
    this.#s.io.queue(r.toWire());
    this.#s.transcript.replied(reply);
    if (r.code >= 400) this.#s.errors++;
  }

  // ---------------------------------------------------------------- main loop

  async #run(): Promise<void> {
    const anvil = this.#s.ctx.anvil.connect(this.#s.peerAddress);
    try {
      if (!(await this.#prelude(anvil))) return;
      for (;;) {
        // One command or wait per step: true to go on, false to end, 'wait' for input
        // first; a command that finished at once gives no promise.
        const going = this.#step();
        if (going === 'wait') {
          if (!this.#afterWait(await this.#s.io.waitInput())) break;
        } else if (going === false || (going !== true && !(await going))) break;
      }
    } finally {
      this.#s.ctx.anvil.disconnect(this.#s.peerAddress);
      this.#end();
    }
  }

  /** PROXY header, wrapper-mode TLS, anvil, client restrictions, greeting. */
  async #prelude(anvil: 'count' | 'rate' | undefined): Promise<boolean> {
    const p = this.#s.params;
    if (p.smtpdUpstreamProxyProtocol === 'haproxy') {
      if (!(await this.#readProxyHeader())) return false;
    }
    if (p.smtpdTlsWrappermode) {
      if (!(await this.#handshake())) return false;
    }
    this.#s.ctx.log.info(undefined, `connect from ${this.#s.namaddr}`);
    if (anvil) {
      this.#s.ctx.log.warning(
        undefined,
        `Connection ${anvil} limit exceeded from ${this.#s.namaddr} for service smtp`,
      );
      this.#s.io.queue(
        new SmtpReply(
          421,
          '4.7.0',
          `${p.myhostname} Error: too many connections from ${printable(this.#s.client.address)}`,
        ).toWire(),
      );
      return false;
    }
    if (!p.smtpdDelayReject && !this.#s.ctx.restrictions.isEmpty('client')) {
      // A permit's actions are held for the transaction.
      const o = await this.#s.check('client', 'CONNECT');
      if (o.reply) {
        this.#s.clientReject = this.#s.restricted(o.reply);
        this.#s.logReject('CONNECT', o.reply, undefined);
        if (o.disconnect) {
          this.#s.io.queue(o.reply.toWire());
          this.#s.transcript.replied(o.reply);
          return false;
        }
      }
    }
    // smtpd_forbid_unauth_pipelining (a): the client talked before the greeting.
    if (this.#s.io.input.buffered > 0 && this.#syncViolation('CONNECT')) return false;
    this.#s.io.queue(this.#s.ctx.replies.greeting);
    return true;
  }

  async #readProxyHeader(): Promise<boolean> {
    const trusted = this.#s.ctx.proxyHosts;
    if (trusted && !trusted.matches(this.#s.peerAddress)) {
      this.#s.ctx.log.warning(
        undefined,
        `${this.#s.namaddr}: PROXY header from an untrusted address; disconnecting`,
      );
      return false;
    }
    this.#s.io.setTimeoutMs(this.#s.params.smtpdUpstreamProxyTimeout);
    let buf: Buffer = Buffer.alloc(0);
    for (;;) {
      const chunk = this.#s.io.input.takeChunk();
      if (chunk) buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const h = parseProxyHeader(buf);
      if (h.ok === true) {
        if (h.length < buf.length) this.#s.io.input.unshift(buf.subarray(h.length));
        if (h.client) {
          this.#s.setClient({ address: h.client.address, port: h.client.port, name: 'unknown' });
        }
        this.#s.io.setTimeoutMs(this.#s.params.smtpdTimeout);
        return true;
      }
      if (h.ok === false) {
        this.#s.ctx.log.warning(undefined, `${this.#s.namaddr}: ${h.error}; disconnecting`);
        return false;
      }
      if (chunk) continue;
      const why = await this.#s.io.waitInput();
      if (why === 'timeout' || why === 'eof' || why === 'shutdown') {
        this.#s.ctx.log.warning(undefined, `${this.#s.namaddr}: no PROXY header (${why})`);
        return false;
      }
    }
  }

  /** Runs the TLS handshake; logs and returns false on failure. */
  async #handshake(): Promise<boolean> {
    const opts = this.#s.ctx.tls;
    if (!opts) return false;
    const r = await this.#s.io.startTls(opts, this.#s.params.smtpdStarttlsTimeout);
    if (!r.ok) {
      this.#s.ctx.log.info(
        undefined,
        `SSL_accept error from ${this.#s.namaddr}: ${printable(r.reason).slice(0, 200)}`,
      );
      return false;
    }
    this.#s.tls = tlsInfoOf(r.socket);
    this.#s.ctx.log.info(
      undefined,
      `${this.#s.params.smtpdTlsWrappermode ? 'TLS' : 'STARTTLS'} connection established from ${this.#s.namaddr}: ${this.#s.tls.protocol} with cipher ${this.#s.tls.cipher}`,
    );
    return true;
  }

  /** Postfix's improper-pipelining handling; returns true when the session must end. */
  #syncViolation(after: string): boolean {
    if (!this.#s.improperPipelining) {
      this.#s.improperPipelining = true;
      const peek = this.#s.io.input.peek(MAX_LOGGED);
      this.#s.ctx.log.info(
        undefined,
        `improper command pipelining after ${after} from ${this.#s.namaddr}: ${printable(peek.toString('latin1'))}`,
      );
    }
    if (!this.#s.params.smtpdForbidUnauthPipelining) return false;
    this.#s.io.queue(R.R_SYNC.toWire());
    return true;
  }

  #step(): boolean | Promise<boolean> | 'wait' {
    const io = this.#s.io;
    if (io.closed) {
      this.#logLost();
      return false;
    }
    if (this.#shutdown !== 'none') {
      io.queue(this.#s.ctx.replies.shutdown.toWire());
      return false;
    }
    if (this.#s.errors >= this.#s.params.smtpdHardErrorLimit) {
      this.#s.ctx.log.info(
        undefined,
        `too many errors after ${this.#s.where} from ${this.#s.namaddr}`,
      );
      io.queue(this.#s.ctx.replies.tooManyErrors.toWire());
      this.#s.transcript.error('protocol');
      this.#s.transcript.aborted('too many errors');
      return false;
    }
    if (io.outputPending > R_OUTPUT_HIGH) {
      io.flush();
      return io.waitOutput();
    }
    const line = io.input.next();
    if (!line) {
      if (io.eof) {
        this.#logLost();
        return false;
      }
      return 'wait';
    }
    return this.#execute(line);
  }

  /** After a wait for input: go on, unless the client timed out. */
  #afterWait(why: Wake): boolean {
    if (why !== 'timeout') return true;
    this.#s.ctx.log.info(undefined, `timeout after ${this.#s.where} from ${this.#s.namaddr}`);
    this.#s.transcript.aborted('timeout');
    this.#s.io.queue(this.#s.ctx.replies.timeout.toWire());
    return false;
  }

  /** One command line: true to go on, false to end the session; a promise only if it waits. */
  #execute(line: CommandLine): boolean | Promise<boolean> {
    this.#s.transcript.query(line.text);
    if (line.tooLong) {
      this.#s.count('unknown', false);
      return this.#then(this.#respond(R.R_TOO_LONG), true);
    }
    if (line.bareLf) {
      const policy = this.#s.params.smtpdForbidBareNewline;
      if (policy === 'reject' && !this.#s.ctx.bareLfExclusions.matches(this.#s.client.address)) {
        this.#s.count('unknown', false);
        const r = this.#s.ctx.replies.bareLf;
        return this.#then(this.#respond(r), r.code !== 521);
      }
      if (policy === 'note' || policy === 'reject') this.#s.bareLfNoted = true;
    }
    if (line.hasNul) {
      this.#s.count('unknown', false);
      return this.#then(this.#respond(R.R_BAD_SYNTAX), true);
    }
    if (line.badUtf8) {
      this.#s.count('unknown', false);
      return this.#then(this.#respond(R.R_BAD_UTF8), true);
    }
    const { verb, args } = splitCommand(line.text);
    if (verb === '') {
      this.#s.count('unknown', false);
      return this.#then(this.#respond(R.R_BAD_SYNTAX), true);
    }
    const spec = lookupCommand(verb);
    if (!spec) {
      this.#s.where = 'UNKNOWN';
      this.#s.count('unknown', false);
      if (isForbiddenCommand(verb)) {
        this.#s.ctx.log.warning(
          undefined,
          `non-SMTP command from ${this.#s.namaddr}: ${printable(line.text).slice(0, MAX_LOGGED)}`,
        );
        this.#s.io.queue(R.R_BREAK_RULES.toWire());
        this.#s.transcript.error('protocol');
        return false;
      }
      return this.#then(this.#respond(R.R_UNKNOWN), true);
    }
    // smtpd_forbid_unauth_pipelining (b) and (c).
    if (
      this.#s.io.input.buffered > 0 &&
      (spec.syncCheck || !this.#s.esmtp) &&
      spec.name !== 'QUIT'
    ) {
      if (this.#syncViolation(spec.name)) return false;
    }
    this.#s.where = spec.name;
    const check = this.#s.ctx.commandCheck;
    return check ? this.#checked(check, spec, args) : this.#command(spec, args);
  }

  /** A command after the commandCheck hook, which may answer it instead. */
  async #checked(check: CommandCheck, spec: CommandSpec, args: string): Promise<boolean> {
    const s = this.#s;
    const forced = await check({
      verb: spec.name,
      args,
      client: s.client,
      tls: s.tls !== undefined,
    });
    if (forced) {
      this.#s.count(spec.lowerName, false);
      await this.#respond(forced);
      return forced.code !== 421 && forced.code !== 521;
    }
    return this.#command(spec, args);
  }

  #command(spec: CommandSpec, args: string): boolean | Promise<boolean> {
    let reply: SmtpReply | Promise<SmtpReply>;
    switch (spec.name) {
      case 'HELO':
      case 'EHLO':
        reply = this.#heloCommand(args, spec.name === 'EHLO');
        break;
      case 'STARTTLS':
      case 'DATA':
      case 'BDAT':
        return this.#staged(spec, args);
      case 'AUTH':
        reply = authCommand(this.#s, args);
        break;
      case 'XCLIENT': {
        const r = xclientCommand(this.#s, args);
        if (r === 'done') {
          this.#s.count('xclient', true);
          this.#s.io.queue(this.#s.ctx.replies.greeting);
          return true;
        }
        reply = r;
        break;
      }
      case 'MAIL':
        reply = mailCommand(this.#s, args);
        break;
      case 'RCPT':
        reply = rcptCommand(this.#s, args);
        break;
      case 'RSET':
        if (args !== '') {
          reply = R.R_SYNTAX_RSET;
        } else {
          this.#s.resetTransaction();
          reply = R.R_OK;
        }
        break;
      case 'NOOP':
        reply = R.R_OK;
        break;
      case 'VRFY':
        reply = vrfyCommand(this.#s, args);
        break;
      case 'HELP':
        reply = R.R_HELP;
        break;
      case 'QUIT':
        this.#s.count('quit', true);
        this.#s.io.queue(R.R_BYE.toWire());
        return false;
    }
    return reply instanceof SmtpReply
      ? this.#replied(spec, reply)
      : this.#repliedLater(spec, reply);
  }

  /** A reply still to come (a lookup, a transaction): answered when it is there. */
  #repliedLater(spec: CommandSpec, reply: Promise<SmtpReply>): Promise<boolean> {
    return reply.then((r) => this.#replied(spec, r));
  }

  /** STARTTLS, DATA and BDAT: they wait for the client, and may end the session. */
  #staged(spec: CommandSpec, args: string): Promise<boolean> {
    if (spec.name === 'STARTTLS') return this.#starttls(spec, args);
    const received = (spec.name === 'DATA' ? dataCommand : bdatCommand)(this.#s, args);
    return received.then((r) => (r === undefined ? false : this.#replied(spec, r)));
  }

  async #starttls(spec: CommandSpec, args: string): Promise<boolean> {
    const r = await this.#starttlsCommand(args);
    if (r === undefined) {
      // Postfix: `lost connection after STARTTLS`, and `starttls=0/1` in the summary.
      this.#s.count('starttls', false);
      this.#logLost();
      return false;
    }
    if (r === 'done') {
      this.#s.count('starttls', true);
      return true;
    }
    return this.#replied(spec, r);
  }

  /** Counts and answers a command; false when the reply ends the session. */
  #replied(spec: CommandSpec, reply: SmtpReply): boolean | Promise<boolean> {
    this.#s.count(spec.lowerName, reply.code < 400);
    const going = reply.code !== 421 && reply.code !== 521;
    // Postfix counts the junk command after its reply, against a limit it may equal.
    const paused = this.#respond(reply);
    if (!spec.junk) return this.#then(paused, going);
    return paused ? paused.then(() => this.#junk(going)) : this.#junk(going);
  }

  #junk(going: boolean): boolean {
    if (this.#s.junk++ > this.#s.params.smtpdJunkCommandLimit) this.#s.errors++;
    return going;
  }

  /** `going`, once the reply's pause (past the soft error limit) is over. */
  #then(paused: Promise<void> | undefined, going: boolean): boolean | Promise<boolean> {
    return paused ? paused.then(() => going) : going;
  }

  // ---------------------------------------------------------------- commands

  #heloCommand(args: string, ehlo: boolean): SmtpReply | Promise<SmtpReply> {
    if (args === '') return ehlo ? R.R_SYNTAX_EHLO : R.R_SYNTAX_HELO;
    // RFC 5321 section 4.1.4: EHLO/HELO in a session resets any transaction.
    this.#s.resetTransaction();
    this.#s.helo = printable(args).slice(0, MAX_HELO_LENGTH);
    this.#s.esmtp = ehlo;
    if (!this.#s.params.smtpdDelayReject && !this.#s.ctx.restrictions.isEmpty('helo'))
      return this.#heloChecked(ehlo);
    return this.#greeted(ehlo);
  }

  async #heloChecked(ehlo: boolean): Promise<SmtpReply> {
    const o = await this.#s.check('helo', ehlo ? 'EHLO' : 'HELO');
    if (!o.reply) return this.#greeted(ehlo);
    this.#s.helo = undefined;
    return this.#s.restricted(o.reply);
  }

  #greeted(ehlo: boolean): SmtpReply {
    // Postfix chat_reset(): a long history is reported (if due) and dropped here.
    this.#notify(this.#s.transcript.checkpoint());
    return ehlo ? this.#s.ctx.replies.ehlo(ehloFeatures(this.#s)) : this.#s.ctx.replies.helo;
  }

  /** STARTTLS: 'done' after a handshake, undefined when the session must end. */
  async #starttlsCommand(args: string): Promise<SmtpReply | 'done' | undefined> {
    if (args !== '') return R.R_SYNTAX_STARTTLS;
    if (this.#s.tls !== undefined) return R.R_TLS_ALREADY;
    if (this.#s.ctx.tls === undefined || this.#s.params.smtpdTlsSecurityLevel === 'none')
      return R.R_TLS_NOT_OFFERED;
    // RFC 3207 section 4.2: anything pipelined after STARTTLS is discarded with the
    // rest of the plaintext state (CVE-2011-0411).
    this.#s.io.queue(R.R_STARTTLS_READY.toWire());
    if (!(await this.#handshake())) return undefined;
    this.#s.resetTransaction();
    this.#s.helo = undefined;
    this.#s.esmtp = false;
    this.#s.authUser = undefined;
    this.#s.authMethod = undefined;
    return 'done';
  }

  // ---------------------------------------------------------------- helpers

  #logLost(): void {
    if (this.#s.where !== 'QUIT') {
      this.#s.transcript.aborted('lost connection');
      this.#s.ctx.log.info(
        undefined,
        `lost connection after ${this.#s.where} from ${this.#s.namaddr}`,
      );
    }
  }

  /** Queues a postmaster notice for a transcript that is owed one; the client never waits. */
  #notify(snapshot: TranscriptSnapshot | undefined): void {
    if (!snapshot) return;
    const { submission, params, clock, log } = this.#s.ctx;
    const sent = sendSmtpdNotice(snapshot, this.#s.namaddr, { submission, params, clock, log });
    const before = this.#notices;
    this.#notices = (before ? Promise.all([before, sent]) : sent).then(() => undefined);
  }

  /** Final bookkeeping: flush, close the stream, abort what is left, log the summary. */
  #end(): void {
    if (this.#s.tx) {
      abortQuietly(this.#s.tx);
      this.#s.tx = undefined;
    }
    this.#s.io.end();
    this.#s.ctx.log.info(undefined, `disconnect from ${this.#s.namaddr}${this.#s.summary()}`);
    this.#notify(this.#s.transcript.finish());
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#s.io.stop();
    const socket = this.#s.io.socket;
    if (this.#s.io.closed) this.#closed();
    else if (socket.destroyed) socket.once('close', () => this.#closed());
  }
}
