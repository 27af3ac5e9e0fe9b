/**
 * SmtpSession: one SMTP conversation, from the greeting to the last reply.
 *
 * Postfix counterpart: smtpd.c smtpd_proto() and the command actions (helo_cmd,
 * mail_cmd, rcpt_cmd, data_cmd, rset_cmd, noop_cmd, vrfy_cmd, quit_cmd), with the
 * error bookkeeping of smtpd_chat.c: every 4xx/5xx counts as an error; once the count
 * reaches `smtpd_soft_error_limit` each reply is delayed by `smtpd_error_sleep_time`;
 * at `smtpd_hard_error_limit` the session ends with `421 4.7.0`. Junk commands (HELO,
 * EHLO, RSET, NOOP, VRFY, HELP) beyond `smtpd_junk_command_limit` count as errors; a
 * queued message clears both counts.
 *
 * Data path: input is a LineReader (commands) that DATA borrows chunks from; content
 * goes through a DataReader straight into the Submission transaction's `content`
 * stream, chunk by chunk, pausing while `write()` returns false. Nothing is held whole.
 *
 * Pipelining: commands are read and answered strictly in order; replies are batched
 * and written once, when the session has consumed all the input it has and is about to
 * wait for more (RFC 2920 section 3.2: the server may buffer replies within a group).
 *
 * Transactions: Postfix's `smtpd_delay_open_until_valid_rcpt = yes` — the Submission
 * transaction (and its queue ID) is opened at the first accepted RCPT, not at MAIL,
 * so a client whose recipients are all refused costs no queue work.
 *
 * Does not: STARTTLS, AUTH, XCLIENT/XFORWARD, BDAT/CHUNKING, ETRN, client/helo/sender/
 * recipient restrictions beyond the relay list, `smtpd_forbid_unauth_pipelining`,
 * reverse DNS (the client name is always `unknown`), or add a Received header (Cleanup
 * does, from the SubmissionSource).
 *
 * SECURITY: every read is bounded (line_length_limit, message_size_limit,
 * smtpd_recipient_limit, error and junk limits, smtpd_timeout on every wait for input);
 * the end of DATA is only CRLF.CRLF (data-reader.ts); NUL bytes and invalid UTF-8 in
 * commands are refused; an HTTP request or a header sent as a command ends the session
 * (smtp-commands.ts); client strings are made printable before they reach a log or a
 * reply; the socket is paused while input piles up unread.
 *
 * STANDARDS: RFC 5321 (SMTP), RFC 1869/5321 section 4.1.1.1 (EHLO), RFC 2920
 * (PIPELINING), RFC 1870 (SIZE), RFC 2034/3463 (ENHANCEDSTATUSCODES), RFC 6152
 * (8BITMIME), RFC 3461 (DSN), RFC 6531 (SMTPUTF8).
 *
 * @module
 */

import type { Duplex, Writable } from 'node:stream';
import type { Parameters } from '../config/parameters.js';
import { replyFor, SmtpError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import { formatAddress, parseMailArgument } from '../rewrite/address.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import type { ResolveResult } from '../rewrite/types.js';
import { printable, SmtpReply } from '../smtp-reply.js';
import type {
  Address,
  ClientInfo,
  Clock,
  SenderParams,
  SubmissionPort,
  SubmissionSource,
  SubmissionTransaction,
  TimerHandle,
} from '../types.js';
import { DataReader } from './data-reader.js';
import { interpretMailParams, interpretRcptParams } from './esmtp-params.js';
import { type CommandLine, LineReader } from './line-reader.js';
import type { RelayPolicy } from './relay-policy.js';
import { isForbiddenCommand, lookupCommand, splitCommand } from './smtp-commands.js';

/** What the receiver shares with all its sessions. */
export interface SessionContext {
  readonly params: Parameters;
  readonly submission: SubmissionPort;
  readonly rewriter: Pick<Rewriter, 'resolve'>;
  readonly relayPolicy: RelayPolicy;
  readonly log: ComponentLogger;
  readonly clock: Clock;
  /** Replies computed once from the parameters. */
  readonly replies: SessionReplies;
}

/** Replies whose text depends only on the parameters. */
export interface SessionReplies {
  readonly greeting: string;
  readonly ehlo: SmtpReply;
  readonly helo: SmtpReply;
  readonly tooManyErrors: SmtpReply;
  readonly timeout: SmtpReply;
  readonly shutdown: SmtpReply;
  readonly bareLf: SmtpReply;
}

/** Builds the parameter-dependent replies once per receiver. */
export function buildSessionReplies(params: Parameters): SessionReplies {
  const host = params.myhostname;
  const ehloLines = [
    host,
    'PIPELINING',
    params.messageSizeLimit > 0 ? `SIZE ${params.messageSizeLimit}` : 'SIZE',
  ];
  if (!params.disableVrfyCommand) ehloLines.push('VRFY');
  ehloLines.push('ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8');
  return {
    greeting: new SmtpReply(220, '', params.smtpdBanner).toWire(),
    ehlo: new SmtpReply(250, '', ehloLines),
    helo: new SmtpReply(250, '', host),
    tooManyErrors: new SmtpReply(421, '4.7.0', `${host} Error: too many errors`),
    timeout: new SmtpReply(421, '4.4.2', `${host} Error: timeout exceeded`),
    shutdown: new SmtpReply(
      421,
      '4.3.2',
      `${host} Service shutting down, closing transmission channel`,
    ),
    bareLf: new SmtpReply(
      params.smtpdForbidBareNewlineRejectCode,
      '5.5.2',
      `${host} Error: bare <LF> received`,
    ),
  };
}

// Fixed replies (Postfix smtpd.c texts).
const R_OK = new SmtpReply(250, '2.0.0', 'Ok');
const R_MAIL_OK = new SmtpReply(250, '2.1.0', 'Ok');
const R_RCPT_OK = new SmtpReply(250, '2.1.5', 'Ok');
const R_DATA = new SmtpReply(354, '', 'End data with <CR><LF>.<CR><LF>').toWire();
const R_BYE = new SmtpReply(221, '2.0.0', 'Bye');
const R_BREAK_RULES = new SmtpReply(221, '2.7.0', 'Error: I can break rules, too. Goodbye.');
const R_HELP = new SmtpReply(
  214,
  '2.0.0',
  'Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP',
);
const R_UNKNOWN = new SmtpReply(500, '5.5.2', 'Error: command not recognized');
const R_TOO_LONG = new SmtpReply(500, '5.5.2', 'Error: command too long');
const R_BAD_SYNTAX = new SmtpReply(500, '5.5.2', 'Error: bad syntax');
const R_BAD_UTF8 = new SmtpReply(500, '5.5.2', 'Error: bad UTF-8 syntax');
const R_VRFY_DISABLED = new SmtpReply(502, '5.5.1', 'VRFY command is disabled');
const R_NEED_HELO = new SmtpReply(503, '5.5.1', 'Error: send HELO/EHLO first');
const R_NEED_MAIL = new SmtpReply(503, '5.5.1', 'Error: need MAIL command');
const R_NESTED_MAIL = new SmtpReply(503, '5.5.1', 'Error: nested MAIL command');
const R_NEED_RCPT = new SmtpReply(503, '5.5.1', 'Error: need RCPT command');
const R_NO_VALID_RCPT = new SmtpReply(554, '5.5.1', 'Error: no valid recipients');
const R_TOO_MANY_RCPT = new SmtpReply(452, '4.5.3', 'Error: too many recipients');
const R_SIZE_EXCEEDS = new SmtpReply(552, '5.3.4', 'Message size exceeds fixed limit');
const R_FILE_TOO_BIG = new SmtpReply(552, '5.3.4', 'Error: message file too big');
const R_NEED_SMTPUTF8 = new SmtpReply(
  553,
  '5.6.7',
  'Must declare SMTPUTF8 to send unicode address',
);
const R_SYNTAX_HELO = new SmtpReply(501, '5.5.4', 'Syntax: HELO hostname');
const R_SYNTAX_EHLO = new SmtpReply(501, '5.5.4', 'Syntax: EHLO hostname');
const R_SYNTAX_MAIL = new SmtpReply(501, '5.5.4', 'Syntax: MAIL FROM:<address>');
const R_SYNTAX_RCPT = new SmtpReply(501, '5.5.4', 'Syntax: RCPT TO:<address>');
const R_SYNTAX_DATA = new SmtpReply(501, '5.5.4', 'Syntax: DATA');
const R_SYNTAX_RSET = new SmtpReply(501, '5.5.4', 'Syntax: RSET');
const R_SYNTAX_VRFY = new SmtpReply(501, '5.5.4', 'Syntax: VRFY address');

/** Stop reading from the socket when this much unread input is buffered. */
const INPUT_HIGH_WATER = 256 * 1024;
/** Write out batched replies early when they grow past this. */
const OUTPUT_BATCH_LIMIT = 64 * 1024;
/** Wait for the client to read its replies when this much output is queued. */
const OUTPUT_HIGH_WATER = 256 * 1024;
/** Longest HELO name kept for logs and the Received header. */
const MAX_HELO_LENGTH = 255;
/** Longest client string quoted in a log line. */
const MAX_LOGGED = 100;

type Wake = 'data' | 'eof' | 'timeout' | 'shutdown' | 'drain';

/** One SMTP session over a duplex stream. Start it with `start()`; `done` settles when it is over. */
export class SmtpSession {
  readonly #ctx: SessionContext;
  readonly #params: Parameters;
  readonly #socket: Duplex;
  readonly #client: ClientInfo;
  /** `name[address]`, Postfix's namaddr. */
  readonly #namaddr: string;
  readonly #input: LineReader;

  // Connection state.
  #eof = false;
  #closed = false;
  #finished = false;
  #paused = false;
  #out = '';
  #wake: ((why: Wake) => void) | undefined;
  #waitingSince: number | undefined;
  #timer: TimerHandle | undefined;
  #shutdown: 'none' | 'graceful' | 'now' = 'none';
  #busy = false;
  readonly #closeWaiters = new Set<() => void>();
  readonly #done: Promise<void>;
  #resolveDone!: () => void;

  // SMTP state.
  #helo: string | undefined;
  #esmtp = false;
  #sender: Address | undefined;
  #senderParams: SenderParams = {};
  #rcptCount = 0;
  #rcptAttempts = 0;
  #tx: SubmissionTransaction | undefined;
  #errors = 0;
  #junk = 0;
  #where = 'CONNECT';
  readonly #stats = new Map<string, { ok: number; total: number }>();
  #bareLfNoted = false;

  constructor(ctx: SessionContext, socket: Duplex, client: ClientInfo) {
    this.#ctx = ctx;
    this.#params = ctx.params;
    this.#socket = socket;
    this.#client = {
      address: client.address,
      ...(client.port !== undefined ? { port: client.port } : {}),
      name: client.name ?? 'unknown',
    };
    this.#namaddr = `${printable(this.#client.name ?? 'unknown')}[${printable(client.address)}]`;
    this.#input = new LineReader(ctx.params.lineLengthLimit);
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Settles when the session has ended and its stream is closed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** True while a message is being received or committed (graceful close waits for it). */
  get busy(): boolean {
    return this.#busy;
  }

  /** Greets the client and serves it until QUIT, an error limit, a timeout or a disconnect. */
  start(): void {
    const s = this.#socket;
    s.on('data', this.#onData);
    s.on('end', this.#onEnd);
    s.on('error', this.#onError);
    s.on('close', this.#onClose);
    s.on('drain', this.#onDrain);
    if (s.destroyed) this.#onClose();
    this.#timer = this.#ctx.clock.setTimeout(this.#onTimer, this.#params.smtpdTimeout);
    this.#run().catch((err: unknown) => {
      this.#ctx.log.error(undefined, `${this.#namaddr}: session failed: ${describe(err)}`);
      this.#socket.destroy();
      this.#finish();
    });
  }

  /**
   * Ends the session: `graceful` lets a message being received finish (and answers it),
   * then replies `421 4.3.2` at the next command; otherwise the connection is dropped
   * at once and any open transaction aborted.
   */
  shutdown(graceful: boolean): void {
    if (this.#finished) return;
    if (graceful) {
      if (this.#shutdown === 'none') this.#shutdown = 'graceful';
      if (!this.#busy) this.#wakeUp('shutdown');
    } else {
      this.#shutdown = 'now';
      this.#socket.destroy();
      this.#wakeUp('eof');
    }
  }

  // ---------------------------------------------------------------- stream events

  readonly #onData = (chunk: Buffer | string): void => {
    this.#input.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    if (!this.#paused && this.#input.buffered > INPUT_HIGH_WATER) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#wakeUp('data');
  };

  readonly #onEnd = (): void => {
    this.#eof = true;
    this.#wakeUp('eof');
  };

  readonly #onError = (err: Error): void => {
    this.#ctx.log.debug(undefined, `${this.#namaddr}: ${describe(err)}`);
    this.#eof = true;
    this.#wakeUp('eof');
  };

  readonly #onClose = (): void => {
    this.#closed = true;
    this.#eof = true;
    this.#wakeUp('eof');
    for (const w of this.#closeWaiters) w();
    this.#closeWaiters.clear();
    if (this.#finished) this.#resolveDone();
  };

  readonly #onDrain = (): void => {
    this.#wakeUp('drain');
  };

  /** smtpd_timeout: one timer per session, re-armed, firing only while waiting for the client. */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#finished) return;
    const timeout = this.#params.smtpdTimeout;
    const since = this.#waitingSince;
    const now = this.#ctx.clock.now();
    if (since !== undefined && now - since >= timeout) {
      this.#wakeUp('timeout');
      return;
    }
    const remaining = since === undefined ? timeout : timeout - (now - since);
    this.#timer = this.#ctx.clock.setTimeout(this.#onTimer, Math.max(1, remaining));
  };

  #wakeUp(why: Wake): void {
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      this.#waitingSince = undefined;
      wake(why);
    }
  }

  /** Writes batched replies, then waits for input (or EOF, a timeout, a shutdown). */
  #waitInput(): Promise<Wake> {
    this.#flush();
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
    if (this.#eof) return Promise.resolve('eof');
    return new Promise((resolve) => {
      this.#waitingSince = this.#ctx.clock.now();
      this.#wake = resolve;
    });
  }

  /** Waits until the client has read enough of our replies (bounded by smtpd_timeout). */
  async #waitOutput(): Promise<boolean> {
    while (!this.#closed && writableLength(this.#socket) > OUTPUT_HIGH_WATER) {
      const why = await new Promise<Wake>((resolve) => {
        this.#waitingSince = this.#ctx.clock.now();
        this.#wake = resolve;
      });
      if (why === 'timeout') return false;
    }
    return !this.#closed;
  }

  /** Waits for a downstream writable to drain, or for the connection to close. */
  #waitDrain(stream: Writable): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        stream.off('close', done);
        this.#closeWaiters.delete(done);
        resolve();
      };
      stream.on('drain', done);
      stream.on('close', done);
      this.#closeWaiters.add(done);
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const done = (): void => {
        timer?.cancel();
        this.#closeWaiters.delete(done);
        resolve();
      };
      this.#closeWaiters.add(done);
      timer = this.#ctx.clock.setTimeout(done, ms);
    });
  }

  // ---------------------------------------------------------------- output

  #queue(wire: string): void {
    this.#out += wire;
    if (this.#out.length > OUTPUT_BATCH_LIMIT) this.#flush();
  }

  #flush(): void {
    if (this.#out === '') return;
    const s = this.#socket;
    if (!s.destroyed && s.writable) s.write(this.#out);
    this.#out = '';
  }

  /** Queues a command's reply, with Postfix's error accounting and error delay. */
  async #respond(reply: SmtpReply): Promise<void> {
    let r = reply;
    if (this.#params.softBounce && r.permanent) r = r.toTransient();
    if (this.#errors >= this.#params.smtpdSoftErrorLimit && this.#params.smtpdErrorSleepTime > 0) {
      this.#flush();
      await this.#sleep(this.#params.smtpdErrorSleepTime);
    }
    this.#queue(r.toWire());
    if (r.code >= 400) this.#errors++;
  }

  #count(command: string, ok: boolean): void {
    let s = this.#stats.get(command);
    if (!s) {
      s = { ok: 0, total: 0 };
      this.#stats.set(command, s);
    }
    s.total++;
    if (ok) s.ok++;
  }

  // ---------------------------------------------------------------- main loop

  async #run(): Promise<void> {
    this.#ctx.log.info(undefined, `connect from ${this.#namaddr}`);
    this.#queue(this.#ctx.replies.greeting);
    try {
      while (await this.#step()) {
        // one command per step
      }
    } finally {
      this.#end();
    }
  }

  /** Reads and runs one command. Returns false when the session is over. */
  async #step(): Promise<boolean> {
    if (this.#closed) {
      this.#logLost();
      return false;
    }
    if (this.#shutdown !== 'none') {
      this.#queue(this.#ctx.replies.shutdown.toWire());
      return false;
    }
    if (this.#errors >= this.#params.smtpdHardErrorLimit) {
      this.#ctx.log.info(undefined, `too many errors after ${this.#where} from ${this.#namaddr}`);
      this.#queue(this.#ctx.replies.tooManyErrors.toWire());
      return false;
    }
    if (writableLength(this.#socket) > OUTPUT_HIGH_WATER) {
      this.#flush();
      if (!(await this.#waitOutput())) return false;
    }
    const line = this.#input.next();
    if (!line) {
      if (this.#eof) {
        this.#logLost();
        return false;
      }
      const why = await this.#waitInput();
      if (why === 'timeout') {
        this.#ctx.log.info(undefined, `timeout after ${this.#where} from ${this.#namaddr}`);
        this.#queue(this.#ctx.replies.timeout.toWire());
        return false;
      }
      return true;
    }
    return this.#execute(line);
  }

  async #execute(line: CommandLine): Promise<boolean> {
    if (line.tooLong) {
      this.#count('unknown', false);
      await this.#respond(R_TOO_LONG);
      return true;
    }
    if (line.bareLf) {
      const policy = this.#params.smtpdForbidBareNewline;
      if (policy === 'reject') {
        this.#count('unknown', false);
        const r = this.#ctx.replies.bareLf;
        await this.#respond(r);
        return r.code !== 521;
      }
      if (policy === 'note') this.#bareLfNoted = true;
    }
    if (line.hasNul) {
      this.#count('unknown', false);
      await this.#respond(R_BAD_SYNTAX);
      return true;
    }
    if (line.badUtf8) {
      this.#count('unknown', false);
      await this.#respond(R_BAD_UTF8);
      return true;
    }
    const { verb, args } = splitCommand(line.text);
    if (verb === '') {
      this.#count('unknown', false);
      await this.#respond(R_BAD_SYNTAX);
      return true;
    }
    const spec = lookupCommand(verb);
    if (!spec) {
      this.#where = 'UNKNOWN';
      if (isForbiddenCommand(verb)) {
        this.#ctx.log.warning(
          undefined,
          `non-SMTP command from ${this.#namaddr}: ${printable(line.text).slice(0, MAX_LOGGED)}`,
        );
        this.#count('unknown', false);
        this.#queue(R_BREAK_RULES.toWire());
        return false;
      }
      this.#count('unknown', false);
      await this.#respond(R_UNKNOWN);
      return true;
    }
    this.#where = spec.name;
    let reply: SmtpReply;
    switch (spec.name) {
      case 'HELO':
        reply = this.#heloCommand(args, false);
        break;
      case 'EHLO':
        reply = this.#heloCommand(args, true);
        break;
      case 'MAIL':
        reply = this.#mailCommand(args);
        break;
      case 'RCPT':
        reply = await this.#rcptCommand(args);
        break;
      case 'DATA': {
        const r = await this.#dataCommand(args);
        if (r === undefined) return false;
        reply = r;
        break;
      }
      case 'RSET':
        reply = this.#rsetCommand(args);
        break;
      case 'NOOP':
        reply = R_OK;
        break;
      case 'VRFY':
        reply = this.#vrfyCommand(args);
        break;
      case 'HELP':
        reply = R_HELP;
        break;
      case 'QUIT':
        this.#count('quit', true);
        this.#queue(R_BYE.toWire());
        return false;
    }
    this.#count(spec.name.toLowerCase(), reply.code < 400);
    await this.#respond(reply);
    // Postfix counts the junk command after its reply, against a limit it may equal.
    if (spec.junk && this.#junk++ > this.#params.smtpdJunkCommandLimit) this.#errors++;
    if (spec.name === 'DATA' && reply.code === 521) return false;
    return true;
  }

  // ---------------------------------------------------------------- commands

  #heloCommand(args: string, ehlo: boolean): SmtpReply {
    if (args === '') return ehlo ? R_SYNTAX_EHLO : R_SYNTAX_HELO;
    // RFC 5321 section 4.1.4: EHLO/HELO in a session resets any transaction.
    this.#resetTransaction();
    this.#helo = printable(args).slice(0, MAX_HELO_LENGTH);
    this.#esmtp = ehlo;
    return ehlo ? this.#ctx.replies.ehlo : this.#ctx.replies.helo;
  }

  #mailCommand(args: string): SmtpReply {
    if (this.#params.smtpdHeloRequired && this.#helo === undefined) return R_NEED_HELO;
    if (this.#sender !== undefined) return R_NESTED_MAIL;
    if (args.length < 5 || args.slice(0, 5).toUpperCase() !== 'FROM:') return R_SYNTAX_MAIL;
    let address: Address;
    let params: SenderParams;
    let utf8: boolean;
    try {
      const parsed = parseMailArgument(args.slice(5), 'sender');
      params = interpretMailParams(parsed.params);
      address = parsed.address;
      utf8 = parsed.utf8;
    } catch (err) {
      return this.#rejectFor('MAIL', err);
    }
    if (utf8 && !params.smtputf8) return R_NEED_SMTPUTF8;
    const limit = this.#params.messageSizeLimit;
    if (limit > 0 && params.declaredSize !== undefined && params.declaredSize > limit)
      return R_SIZE_EXCEEDS;
    this.#sender = address;
    this.#senderParams = params;
    return R_MAIL_OK;
  }

  async #rcptCommand(args: string): Promise<SmtpReply> {
    if (this.#sender === undefined) return R_NEED_MAIL;
    if (args.length < 3 || args.slice(0, 3).toUpperCase() !== 'TO:') return R_SYNTAX_RCPT;
    this.#rcptAttempts++;
    if (this.#rcptCount >= this.#params.smtpdRecipientLimit) return R_TOO_MANY_RCPT;
    let address: Address;
    let dsn: ReturnType<typeof interpretRcptParams>;
    let utf8: boolean;
    try {
      const parsed = parseMailArgument(args.slice(3), 'recipient');
      dsn = interpretRcptParams(parsed.params);
      address = parsed.address;
      utf8 = parsed.utf8;
    } catch (err) {
      return this.#rejectFor('RCPT', err);
    }
    if (utf8 && !this.#senderParams.smtputf8) return R_NEED_SMTPUTF8;
    const external = formatAddress(address);

    let resolved: ResolveResult;
    try {
      resolved = await this.#ctx.rewriter.resolve(address);
    } catch (err) {
      this.#ctx.log.warning(
        undefined,
        `${this.#namaddr}: address resolution failed for <${external}>: ${describe(err)}`,
      );
      const r = new SmtpReply(451, '4.3.0', `<${external}>: Temporary lookup failure`);
      this.#logReject('RCPT', r, external);
      return r;
    }
    if (resolved.error) {
      const e = resolved.error;
      const r = safeReply(e.code, e.enhanced, e.text);
      this.#logReject('RCPT', r, external);
      return r;
    }
    const denied = this.#ctx.relayPolicy.check({
      client: this.#client,
      saslAuthenticated: false,
      recipient: external,
      resolved,
    });
    if (denied) {
      this.#logReject('RCPT', denied, external);
      return denied;
    }

    if (this.#tx === undefined) {
      let tx: SubmissionTransaction;
      try {
        tx = await this.#ctx.submission.open(this.#source());
      } catch (err) {
        this.#ctx.log.warning(
          undefined,
          `${this.#namaddr}: cannot open a queue transaction: ${describe(err)}`,
        );
        return replyFor(err, 'Error: queue file write error');
      }
      if (this.#closed || this.#sender === undefined) {
        // The client went away (or the transaction was reset) while the queue opened.
        abortQuietly(tx);
        return R_NEED_MAIL;
      }
      // The contract says content never emits 'error' (commit() reports failures); a
      // listener anyway, so that a faulty port cannot take the process down.
      tx.content.on('error', (err: Error) => {
        this.#ctx.log.warning(tx.queueId, `content stream error: ${describe(err)}`);
      });
      tx.setSender(this.#sender, this.#senderParams);
      this.#tx = tx;
      this.#ctx.log.info(tx.queueId, `client=${this.#namaddr}`);
    }
    try {
      this.#tx.addRecipient({ address, ...dsn });
    } catch (err) {
      return replyFor(err, 'Error: queue file write error');
    }
    this.#rcptCount++;
    return R_RCPT_OK;
  }

  /** DATA: returns the final reply, or undefined when the session must end now. */
  async #dataCommand(args: string): Promise<SmtpReply | undefined> {
    if (args !== '') return R_SYNTAX_DATA;
    if (this.#sender === undefined) return R_NEED_MAIL;
    const tx = this.#tx;
    if (this.#rcptCount === 0 || tx === undefined)
      return this.#rcptAttempts === 0 ? R_NEED_RCPT : R_NO_VALID_RCPT;
    this.#queue(R_DATA);
    this.#busy = true;
    try {
      const outcome = await this.#receiveContent(tx);
      if (outcome.end !== 'ok') {
        this.#resetTransaction();
        if (outcome.end === 'timeout') {
          this.#ctx.log.info(
            undefined,
            `timeout after DATA (${outcome.size} bytes) from ${this.#namaddr}`,
          );
          this.#queue(this.#ctx.replies.timeout.toWire());
        } else {
          this.#ctx.log.info(
            undefined,
            `lost connection after DATA (${outcome.size} bytes) from ${this.#namaddr}`,
          );
        }
        this.#count('data', false);
        return undefined;
      }
      if (outcome.bareLf && this.#params.smtpdForbidBareNewline === 'reject') {
        this.#resetTransaction();
        const r = this.#ctx.replies.bareLf;
        this.#logReject('END-OF-MESSAGE', r, undefined, tx.queueId);
        return r;
      }
      if (outcome.bareLf && this.#params.smtpdForbidBareNewline === 'note')
        this.#bareLfNoted = true;
      if (outcome.tooBig) {
        this.#resetTransaction();
        this.#logReject('END-OF-MESSAGE', R_FILE_TOO_BIG, undefined, tx.queueId);
        return R_FILE_TOO_BIG;
      }
      // The transaction is ours until commit settles; after that it is gone either way.
      this.#tx = undefined;
      let reply: SmtpReply;
      try {
        const result = await tx.commit();
        reply = result.reply;
      } catch (err) {
        this.#ctx.log.warning(tx.queueId, `commit failed: ${describe(err)}`);
        reply = replyFor(err, 'Error: queue file write error');
      }
      if (!reply.positive) abortQuietly(tx);
      this.#resetTransaction();
      if (reply.positive) {
        this.#errors = 0;
        this.#junk = 0;
      }
      return reply;
    } finally {
      this.#busy = false;
    }
  }

  /** Streams DATA content into the transaction, chunk by chunk. */
  async #receiveContent(
    tx: SubmissionTransaction,
  ): Promise<{ end: 'ok' | 'lost' | 'timeout'; size: number; tooBig: boolean; bareLf: boolean }> {
    const reader = new DataReader(this.#params.smtpdForbidBareNewline);
    const content = tx.content;
    const limit = this.#params.messageSizeLimit;
    const pieces: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    for (;;) {
      const chunk = this.#input.takeChunk();
      if (chunk === undefined) {
        if (this.#eof) return { end: 'lost', size, tooBig, bareLf: reader.sawBareLf };
        const why = await this.#waitInput();
        if (why === 'timeout') return { end: 'timeout', size, tooBig, bareLf: reader.sawBareLf };
        continue;
      }
      pieces.length = 0;
      const end = reader.feed(chunk, 0, pieces);
      let needDrain = false;
      if (pieces.length > 0) {
        let n = 0;
        for (const p of pieces) n += p.length;
        size += n;
        if (!tooBig && limit > 0 && size > limit) tooBig = true;
        if (!tooBig) {
          const buf = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, n);
          needDrain = !content.write(buf);
        }
      }
      if (end >= 0) {
        if (end < chunk.length) this.#input.unshift(chunk.subarray(end));
        return { end: 'ok', size, tooBig, bareLf: reader.sawBareLf };
      }
      if (needDrain && !content.destroyed) {
        await this.#waitDrain(content);
        if (this.#closed) return { end: 'lost', size, tooBig, bareLf: reader.sawBareLf };
      }
    }
  }

  #rsetCommand(args: string): SmtpReply {
    if (args !== '') return R_SYNTAX_RSET;
    this.#resetTransaction();
    return R_OK;
  }

  #vrfyCommand(args: string): SmtpReply {
    if (this.#params.disableVrfyCommand) return R_VRFY_DISABLED;
    if (args === '') return R_SYNTAX_VRFY;
    try {
      const parsed = parseMailArgument(args, 'recipient');
      // RFC 5321 section 3.5.3: 252 — cannot verify, but will accept and try.
      return new SmtpReply(252, '2.0.0', `<${formatAddress(parsed.address)}>`);
    } catch (err) {
      return replyFor(err);
    }
  }

  // ---------------------------------------------------------------- helpers

  #source(): SubmissionSource {
    const protocol = this.#senderParams.smtputf8 ? 'UTF8SMTP' : this.#esmtp ? 'ESMTP' : 'SMTP';
    return {
      component: 'smtpd',
      protocol,
      client: this.#client,
      ...(this.#helo !== undefined ? { helo: this.#helo } : {}),
    };
  }

  #resetTransaction(): void {
    const tx = this.#tx;
    this.#tx = undefined;
    this.#sender = undefined;
    this.#senderParams = {};
    this.#rcptCount = 0;
    this.#rcptAttempts = 0;
    if (tx) abortQuietly(tx);
  }

  #rejectFor(command: string, err: unknown): SmtpReply {
    if (err instanceof SmtpError) return err.reply;
    this.#ctx.log.warning(undefined, `${this.#namaddr}: ${command}: ${describe(err)}`);
    return replyFor(err);
  }

  /** Postfix's `NOQUEUE: reject: RCPT from name[addr]: reply; from=<> to=<> proto= helo=<>`. */
  #logReject(
    stage: string,
    r: SmtpReply,
    to: string | undefined,
    queueId = this.#tx?.queueId,
  ): void {
    const sender = this.#sender === undefined ? '' : formatAddress(this.#sender);
    const parts = [`from=<${clip(sender)}>`];
    if (to !== undefined) parts.push(`to=<${clip(to)}>`);
    parts.push(`proto=${this.#esmtp ? 'ESMTP' : 'SMTP'}`);
    if (this.#helo !== undefined) parts.push(`helo=<${clip(this.#helo)}>`);
    const prefix = queueId ? '' : 'NOQUEUE: ';
    this.#ctx.log.info(
      queueId,
      `${prefix}reject: ${stage} from ${this.#namaddr}: ${r.toString()}; ${parts.join(' ')}`,
    );
  }

  #logLost(): void {
    if (this.#where !== 'QUIT')
      this.#ctx.log.info(undefined, `lost connection after ${this.#where} from ${this.#namaddr}`);
  }

  /** Final bookkeeping: flush, close the stream, abort what is left, log the summary. */
  #end(): void {
    if (this.#tx) {
      abortQuietly(this.#tx);
      this.#tx = undefined;
    }
    this.#flush();
    const s = this.#socket;
    if (!s.destroyed) {
      s.end();
      if (s.writableFinished) s.destroy();
      else {
        s.once('finish', () => s.destroy());
        // A client that never reads could hold the socket open: give up after smtpd_timeout.
        const t = this.#ctx.clock.setTimeout(() => s.destroy(), this.#params.smtpdTimeout);
        s.once('close', () => t.cancel());
      }
      if (this.#paused) s.resume();
    }
    let summary = '';
    let ok = 0;
    let total = 0;
    for (const [name, st] of this.#stats) {
      summary += st.ok === st.total ? ` ${name}=${st.ok}` : ` ${name}=${st.ok}/${st.total}`;
      ok += st.ok;
      total += st.total;
    }
    summary += ok === total ? ` commands=${ok}` : ` commands=${ok}/${total}`;
    if (this.#bareLfNoted) summary += ' notes=bare_lf';
    this.#ctx.log.info(undefined, `disconnect from ${this.#namaddr}${summary}`);
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#wake = undefined;
    if (this.#closed || this.#socket.destroyed) {
      // 'close' may still be pending after destroy(); resolve on it when it comes.
      if (this.#closed) this.#resolveDone();
      else this.#socket.once('close', () => this.#resolveDone());
    }
  }
}

function writableLength(s: Duplex): number {
  return s.writableLength;
}

function abortQuietly(tx: SubmissionTransaction): void {
  tx.abort().catch(() => {
    // abort() leaves nothing behind by contract; a failure here has nothing to add.
  });
}

function safeReply(code: number, enhanced: string, text: string): SmtpReply {
  try {
    return new SmtpReply(code, enhanced, text);
  } catch {
    return new SmtpReply(451, '4.3.0', 'Error: address resolution returned an invalid reply');
  }
}

function clip(text: string): string {
  return printable(text).slice(0, MAX_LOGGED);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
