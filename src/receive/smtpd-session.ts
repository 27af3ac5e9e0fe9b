/**
 * SmtpSession: one SMTP conversation, from the greeting (or the PROXY header, or the
 * TLS handshake of a wrapper-mode port) to the last reply.
 *
 * Postfix counterpart: smtpd.c smtpd_proto() and the command actions (helo_cmd,
 * mail_cmd, rcpt_cmd, data_cmd, bdat_cmd, rset_cmd, noop_cmd, vrfy_cmd, quit_cmd,
 * xclient_cmd, starttls), with the error bookkeeping of smtpd_chat.c: every 4xx/5xx
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
 * Access policy: smtpd-restrictions.ts, run per stage with `smtpd_delay_reject`
 * semantics (client, helo and sender lists run again at each RCPT). Transactions:
 * `smtpd_delay_open_until_valid_rcpt = yes` — the Submission transaction is opened at
 * the first accepted RCPT.
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

import type { TLSSocketOptions } from 'node:tls';
import { formatAddress, parseMailArgument } from '../address/address.js';
import { checkSenderAddress } from '../address/envelope-address.js';
import type { Parameters } from '../config/parameters.js';
import { replyFor, SmtpError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import type { ResolveResult } from '../rewrite/types.js';
import { printable, SmtpReply } from '../smtp-reply.js';
import type { CidrList } from '../tables/cidr.js';
import type {
  Address,
  ClientInfo,
  Clock,
  SenderParams,
  SubmissionAction,
  SubmissionPort,
  SubmissionSource,
  SubmissionTransaction,
  TlsInfo,
} from '../types.js';
import { errorMessage } from '../util/error-message.js';
import type { Anvil } from './anvil.js';
import {
  type AuthBackend,
  checkCramMd5,
  checkCredentials,
  cramMd5Challenge,
  decodeBase64,
  parsePlain,
} from './smtpd-auth.js';
import { isForbiddenCommand, lookupCommand, splitCommand } from './smtpd-commands.js';
import { interpretMailParams, interpretRcptParams } from './smtpd-esmtp-params.js';
import type { CommandLine } from './smtpd-line-reader.js';
import { unsafeLocalRecipient } from './smtpd-local-part-check.js';
import { sendSmtpdNotice } from './smtpd-notice.js';
import { parseProxyHeader } from './smtpd-proxy-protocol.js';
import type { SessionReplies } from './smtpd-replies.js';
import * as R from './smtpd-replies.js';
import type {
  CommandCheck,
  RestrictionRequest,
  RestrictionStage,
} from './smtpd-restriction-types.js';
import type {
  RestrictionMemo,
  RestrictionOutcome,
  SmtpdRestrictions,
} from './smtpd-restrictions.js';
import { BdatState, receiveBdatChunk, receiveData } from './smtpd-session-data.js';
import {
  abortQuietly,
  clip,
  MAX_LOGGED,
  namaddrOf,
  safeReply,
  tlsInfoOf,
} from './smtpd-session-helpers.js';
import { SessionIo } from './smtpd-session-io.js';
import { restrictionClass, SmtpdTranscript, type TranscriptSnapshot } from './smtpd-transcript.js';
import { applyXclient } from './smtpd-xclient.js';

/** What the receiver shares with all its sessions. */
export interface SessionContext {
  readonly params: Parameters;
  readonly submission: SubmissionPort;
  readonly rewriter: Pick<Rewriter, 'resolve'>;
  readonly restrictions: SmtpdRestrictions;
  readonly log: ComponentLogger;
  readonly clock: Clock;
  readonly replies: SessionReplies;
  /** TLS server options (secureContext / SNICallback); undefined when TLS is off. */
  readonly tls: TLSSocketOptions | undefined;
  /** The SASL backend; undefined when AUTH is off. */
  readonly auth: AuthBackend | undefined;
  readonly anvil: Anvil;
  readonly xclientHosts: CidrList;
  readonly proxyHosts: CidrList | undefined;
  readonly bareLfExclusions: CidrList;
  /** Runs before each command (smtpd-restriction-types.ts); a test double's fault hook. */
  readonly commandCheck?: CommandCheck | undefined;
}

export { buildSessionReplies, type SessionReplies } from './smtpd-replies.js';

/** Longest HELO name kept for logs and the Received header. */
const MAX_HELO_LENGTH = 255;
/** RFC 3030: a chunk size is at most 20 digits; Postern also caps the number. */
const BDAT_SYNTAX = /^(\d{1,20})(?:[ \t]+(LAST))?$/i;

/** One SMTP session over a duplex stream. Start it with `start()`; `done` settles when it is over. */
export class SmtpSession {
  readonly #ctx: SessionContext;
  readonly #params: Parameters;
  readonly #io: SessionIo;
  #client: ClientInfo;
  /** The address anvil counted this connection under. */
  readonly #peerAddress: string;
  #namaddr: string;

  #finished = false;
  #shutdown: 'none' | 'graceful' | 'now' = 'none';
  #busy = false;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;

  // SMTP state.
  #helo: string | undefined;
  #esmtp = false;
  #tls: TlsInfo | undefined;
  #authUser: string | undefined;
  #authMethod: string | undefined;
  #sender: Address | undefined;
  #senderParams: SenderParams = {};
  #rcptCount = 0;
  #tx: SubmissionTransaction | undefined;
  #pendingActions: SubmissionAction[] = [];
  #bdat: BdatState | undefined;
  #clientReject: SmtpReply | undefined;
  #errors = 0;
  #junk = 0;
  #where = 'CONNECT';
  #improperPipelining = false;
  readonly #memo: RestrictionMemo = {};
  readonly #stats = new Map<string, { ok: number; total: number }>();
  #bareLfNoted = false;
  /** The history mailed to the postmaster per notifyClasses (smtpd-transcript.ts). */
  readonly #transcript: SmtpdTranscript;
  #notices: Promise<void> = Promise.resolve();

  constructor(ctx: SessionContext, socket: import('node:stream').Duplex, client: ClientInfo) {
    this.#ctx = ctx;
    this.#params = ctx.params;
    this.#client = {
      address: client.address,
      ...(client.port !== undefined ? { port: client.port } : {}),
      name: client.name ?? 'unknown',
    };
    this.#peerAddress = client.address;
    this.#namaddr = namaddrOf(this.#client);
    this.#io = new SessionIo(
      socket,
      ctx.clock,
      ctx.params.smtpdTimeout,
      ctx.params.lineLengthLimit,
    );
    this.#io.onClosed = () => {
      if (this.#finished) this.#resolveDone();
    };
    this.#io.onSocketError = (err) =>
      this.#ctx.log.debug(undefined, `${this.#namaddr}: ${errorMessage(err)}`);
    this.#transcript = new SmtpdTranscript(ctx.params.notifyClasses);
    if (this.#transcript.enabled) this.#io.onOutput = (wire) => this.#transcript.reply(wire);
    const closed = new Promise<void>((resolve) => {
      this.#resolveDone = resolve;
    });
    // Done once the socket is closed and any postmaster notice has been queued.
    this.#done = closed.then(() => this.#notices);
  }

  get done(): Promise<void> {
    return this.#done;
  }

  get busy(): boolean {
    return this.#busy;
  }

  start(): void {
    this.#io.attach();
    this.#run().catch((err: unknown) => {
      this.#ctx.log.error(undefined, `${this.#namaddr}: session failed: ${errorMessage(err)}`);
      this.#io.destroy();
      this.#finish();
    });
  }

  shutdown(graceful: boolean): void {
    if (this.#finished) return;
    if (graceful) {
      if (this.#shutdown === 'none') this.#shutdown = 'graceful';
      if (!this.#busy) this.#io.wakeUp('shutdown');
    } else {
      this.#shutdown = 'now';
      this.#io.destroy();
      this.#io.wakeUp('eof');
    }
  }

  // ---------------------------------------------------------------- output

  async #respond(reply: SmtpReply): Promise<void> {
    let r = reply;
    if (this.#params.softBounce && r.permanent) r = r.toTransient();
    if (this.#errors >= this.#params.smtpdSoftErrorLimit && this.#params.smtpdErrorSleepTime > 0) {
      this.#io.flush();
      await this.#io.sleep(this.#params.smtpdErrorSleepTime);
    }
    this.#io.queue(r.toWire());
    this.#transcript.replied(reply);
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
    const anvil = this.#ctx.anvil.connect(this.#peerAddress);
    try {
      if (!(await this.#prelude(anvil))) return;
      while (await this.#step()) {
        // one command per step
      }
    } finally {
      this.#ctx.anvil.disconnect(this.#peerAddress);
      this.#end();
    }
  }

  /** PROXY header, wrapper-mode TLS, anvil, client restrictions, greeting. */
  async #prelude(anvil: 'count' | 'rate' | undefined): Promise<boolean> {
    const p = this.#params;
    if (p.smtpdUpstreamProxyProtocol === 'haproxy') {
      if (!(await this.#readProxyHeader())) return false;
    }
    if (p.smtpdTlsWrappermode) {
      if (!(await this.#handshake())) return false;
    }
    this.#ctx.log.info(undefined, `connect from ${this.#namaddr}`);
    if (anvil) {
      const what = anvil === 'count' ? 'connections' : 'connections';
      this.#ctx.log.warning(
        undefined,
        `Connection ${anvil} limit exceeded from ${this.#namaddr} for service smtp`,
      );
      this.#io.queue(
        new SmtpReply(
          421,
          '4.7.0',
          `${p.myhostname} Error: too many ${what} from ${printable(this.#client.address)}`,
        ).toWire(),
      );
      return false;
    }
    if (!p.smtpdDelayReject && !this.#ctx.restrictions.isEmpty('client')) {
      const o = await this.#ctx.restrictions.evaluate(
        'client',
        this.#request('client', 'CONNECT'),
        this.#memo,
      );
      if (o.reply) {
        this.#clientReject = this.#restricted(o.reply);
        this.#logReject('CONNECT', o.reply, undefined);
        if (o.disconnect) {
          this.#io.queue(o.reply.toWire());
          this.#transcript.replied(o.reply);
          return false;
        }
      } else this.#pendingActions.push(...o.actions);
    }
    // smtpd_forbid_unauth_pipelining (a): the client talked before the greeting.
    if (this.#io.input.buffered > 0 && this.#syncViolation('CONNECT')) return false;
    this.#io.queue(this.#ctx.replies.greeting);
    return true;
  }

  async #readProxyHeader(): Promise<boolean> {
    const trusted = this.#ctx.proxyHosts;
    if (trusted && !trusted.matches(this.#peerAddress)) {
      this.#ctx.log.warning(
        undefined,
        `${this.#namaddr}: PROXY header from an untrusted address; disconnecting`,
      );
      return false;
    }
    this.#io.setTimeoutMs(this.#params.smtpdUpstreamProxyTimeout);
    let buf: Buffer = Buffer.alloc(0);
    for (;;) {
      const chunk = this.#io.input.takeChunk();
      if (chunk) buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const h = parseProxyHeader(buf);
      if (h.ok === true) {
        if (h.length < buf.length) this.#io.input.unshift(buf.subarray(h.length));
        if (h.client) {
          this.#client = { address: h.client.address, port: h.client.port, name: 'unknown' };
          this.#namaddr = namaddrOf(this.#client);
        }
        this.#io.setTimeoutMs(this.#params.smtpdTimeout);
        return true;
      }
      if (h.ok === false) {
        this.#ctx.log.warning(undefined, `${this.#namaddr}: ${h.error}; disconnecting`);
        return false;
      }
      if (chunk) continue;
      const why = await this.#io.waitInput();
      if (why === 'timeout' || why === 'eof' || why === 'shutdown') {
        this.#ctx.log.warning(undefined, `${this.#namaddr}: no PROXY header (${why})`);
        return false;
      }
    }
  }

  /** Runs the TLS handshake; logs and returns false on failure. */
  async #handshake(): Promise<boolean> {
    const opts = this.#ctx.tls;
    if (!opts) return false;
    const r = await this.#io.startTls(opts, this.#params.smtpdStarttlsTimeout);
    if (!r.ok) {
      this.#ctx.log.info(
        undefined,
        `SSL_accept error from ${this.#namaddr}: ${printable(r.reason).slice(0, 200)}`,
      );
      return false;
    }
    this.#tls = tlsInfoOf(r.socket);
    this.#ctx.log.info(
      undefined,
      `${this.#params.smtpdTlsWrappermode ? 'TLS' : 'STARTTLS'} connection established from ${this.#namaddr}: ${this.#tls.protocol} with cipher ${this.#tls.cipher}`,
    );
    return true;
  }

  /** Postfix's improper-pipelining handling; returns true when the session must end. */
  #syncViolation(after: string): boolean {
    if (!this.#improperPipelining) {
      this.#improperPipelining = true;
      const peek = this.#io.input.peek(MAX_LOGGED);
      this.#ctx.log.info(
        undefined,
        `improper command pipelining after ${after} from ${this.#namaddr}: ${printable(peek.toString('latin1'))}`,
      );
    }
    if (!this.#params.smtpdForbidUnauthPipelining) return false;
    this.#io.queue(R.R_SYNC.toWire());
    return true;
  }

  async #step(): Promise<boolean> {
    const io = this.#io;
    if (io.closed) {
      this.#logLost();
      return false;
    }
    if (this.#shutdown !== 'none') {
      io.queue(this.#ctx.replies.shutdown.toWire());
      return false;
    }
    if (this.#errors >= this.#params.smtpdHardErrorLimit) {
      this.#ctx.log.info(undefined, `too many errors after ${this.#where} from ${this.#namaddr}`);
      io.queue(this.#ctx.replies.tooManyErrors.toWire());
      this.#transcript.error('protocol');
      this.#transcript.aborted('too many errors');
      return false;
    }
    if (io.outputPending > R_OUTPUT_HIGH) {
      io.flush();
      if (!(await io.waitOutput())) return false;
    }
    const line = io.input.next();
    if (!line) {
      if (io.eof) {
        this.#logLost();
        return false;
      }
      const why = await io.waitInput();
      if (why === 'timeout') {
        this.#ctx.log.info(undefined, `timeout after ${this.#where} from ${this.#namaddr}`);
        this.#transcript.aborted('timeout');
        io.queue(this.#ctx.replies.timeout.toWire());
        return false;
      }
      return true;
    }
    return this.#execute(line);
  }

  async #execute(line: CommandLine): Promise<boolean> {
    this.#transcript.query(line.text);
    if (line.tooLong) {
      this.#count('unknown', false);
      await this.#respond(R.R_TOO_LONG);
      return true;
    }
    if (line.bareLf) {
      const policy = this.#params.smtpdForbidBareNewline;
      if (policy === 'reject' && !this.#ctx.bareLfExclusions.matches(this.#client.address)) {
        this.#count('unknown', false);
        const r = this.#ctx.replies.bareLf;
        await this.#respond(r);
        return r.code !== 521;
      }
      if (policy === 'note' || policy === 'reject') this.#bareLfNoted = true;
    }
    if (line.hasNul) {
      this.#count('unknown', false);
      await this.#respond(R.R_BAD_SYNTAX);
      return true;
    }
    if (line.badUtf8) {
      this.#count('unknown', false);
      await this.#respond(R.R_BAD_UTF8);
      return true;
    }
    const { verb, args } = splitCommand(line.text);
    if (verb === '') {
      this.#count('unknown', false);
      await this.#respond(R.R_BAD_SYNTAX);
      return true;
    }
    const spec = lookupCommand(verb);
    if (!spec) {
      this.#where = 'UNKNOWN';
      this.#count('unknown', false);
      if (isForbiddenCommand(verb)) {
        this.#ctx.log.warning(
          undefined,
          `non-SMTP command from ${this.#namaddr}: ${printable(line.text).slice(0, MAX_LOGGED)}`,
        );
        this.#io.queue(R.R_BREAK_RULES.toWire());
        this.#transcript.error('protocol');
        return false;
      }
      await this.#respond(R.R_UNKNOWN);
      return true;
    }
    // smtpd_forbid_unauth_pipelining (b) and (c).
    if (this.#io.input.buffered > 0 && (spec.syncCheck || !this.#esmtp) && spec.name !== 'QUIT') {
      if (this.#syncViolation(spec.name)) return false;
    }
    this.#where = spec.name;
    const forced = await this.#ctx.commandCheck?.({
      verb: spec.name,
      args,
      client: this.#client,
      tls: this.#tls !== undefined,
    });
    if (forced) {
      this.#count(spec.name.toLowerCase(), false);
      await this.#respond(forced);
      return forced.code !== 421 && forced.code !== 521;
    }
    let reply: SmtpReply;
    switch (spec.name) {
      case 'HELO':
      case 'EHLO':
        reply = await this.#heloCommand(args, spec.name === 'EHLO');
        break;
      case 'STARTTLS': {
        const r = await this.#starttlsCommand(args);
        if (r === undefined) return false;
        if (r === 'done') {
          this.#count('starttls', true);
          return true;
        }
        reply = r;
        break;
      }
      case 'AUTH':
        reply = await this.#authCommand(args);
        break;
      case 'XCLIENT': {
        const r = this.#xclientCommand(args);
        if (r === 'done') {
          this.#count('xclient', true);
          this.#io.queue(this.#ctx.replies.greeting);
          return true;
        }
        reply = r;
        break;
      }
      case 'MAIL':
        reply = await this.#mailCommand(args);
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
      case 'BDAT': {
        const r = await this.#bdatCommand(args);
        if (r === undefined) return false;
        reply = r;
        break;
      }
      case 'RSET':
        if (args !== '') {
          reply = R.R_SYNTAX_RSET;
        } else {
          this.#resetTransaction();
          reply = R.R_OK;
        }
        break;
      case 'NOOP':
        reply = R.R_OK;
        break;
      case 'VRFY':
        reply = this.#vrfyCommand(args);
        break;
      case 'HELP':
        reply = R.R_HELP;
        break;
      case 'QUIT':
        this.#count('quit', true);
        this.#io.queue(R.R_BYE.toWire());
        return false;
    }
    this.#count(spec.name.toLowerCase(), reply.code < 400);
    await this.#respond(reply);
    // Postfix counts the junk command after its reply, against a limit it may equal.
    if (spec.junk && this.#junk++ > this.#params.smtpdJunkCommandLimit) this.#errors++;
    if (reply.code === 421 || reply.code === 521) return false;
    return true;
  }

  // ---------------------------------------------------------------- commands

  #features(): R.EhloFeatures {
    return {
      starttls:
        this.#ctx.tls !== undefined &&
        this.#tls === undefined &&
        this.#params.smtpdTlsSecurityLevel !== 'none',
      auth: this.#authOffered(),
      xclient: this.#ctx.xclientHosts.matches(this.#peerAddress),
    };
  }

  #authOffered(): boolean {
    return (
      this.#ctx.auth !== undefined &&
      this.#params.smtpdSaslAuthEnable &&
      (this.#tls !== undefined || !this.#params.smtpdTlsAuthOnly)
    );
  }

  async #heloCommand(args: string, ehlo: boolean): Promise<SmtpReply> {
    if (args === '') return ehlo ? R.R_SYNTAX_EHLO : R.R_SYNTAX_HELO;
    // RFC 5321 section 4.1.4: EHLO/HELO in a session resets any transaction.
    this.#resetTransaction();
    this.#helo = printable(args).slice(0, MAX_HELO_LENGTH);
    this.#esmtp = ehlo;
    if (!this.#params.smtpdDelayReject && !this.#ctx.restrictions.isEmpty('helo')) {
      const o = await this.#check('helo', ehlo ? 'EHLO' : 'HELO');
      if (o.reply) {
        this.#helo = undefined;
        return this.#restricted(o.reply);
      }
    }
    // Postfix chat_reset(): a long history is reported (if due) and dropped here.
    this.#notify(this.#transcript.checkpoint());
    return ehlo ? this.#ctx.replies.ehlo(this.#features()) : this.#ctx.replies.helo;
  }

  /** STARTTLS: 'done' after a handshake, undefined when the session must end. */
  async #starttlsCommand(args: string): Promise<SmtpReply | 'done' | undefined> {
    if (args !== '') return R.R_SYNTAX_STARTTLS;
    if (this.#tls !== undefined) return R.R_TLS_ALREADY;
    if (this.#ctx.tls === undefined || this.#params.smtpdTlsSecurityLevel === 'none')
      return R.R_TLS_NOT_OFFERED;
    // RFC 3207 section 4.2: anything pipelined after STARTTLS is discarded with the
    // rest of the plaintext state (CVE-2011-0411).
    this.#io.queue(R.R_STARTTLS_READY.toWire());
    if (!(await this.#handshake())) return undefined;
    this.#resetTransaction();
    this.#helo = undefined;
    this.#esmtp = false;
    this.#authUser = undefined;
    this.#authMethod = undefined;
    return 'done';
  }

  async #authCommand(args: string): Promise<SmtpReply> {
    if (!this.#authOffered()) return R.R_AUTH_NOT_ENABLED;
    if (!this.#esmtp) return R.R_NEED_HELO;
    if (this.#authUser !== undefined) return R.R_AUTH_ALREADY;
    if (this.#sender !== undefined) return R.R_IN_TRANSACTION;
    if (this.#ctx.anvil.event(this.#peerAddress, 'auth')) {
      return new SmtpReply(
        450,
        '4.7.1',
        `Error: too many AUTH commands from ${printable(this.#client.address)}`,
      );
    }
    const [mechRaw, initial, extra] = args.split(/[ \t]+/);
    if (!mechRaw || extra !== undefined) return R.R_AUTH_SYNTAX;
    const mech = mechRaw.toUpperCase();
    if (!(this.#params.smtpdSaslMechanisms as readonly string[]).includes(mech))
      return R.R_AUTH_MECH;
    if (mech === 'CRAM-MD5') return this.#cramMd5(initial);
    let username: string;
    let password: string;
    if (mech === 'PLAIN') {
      const resp = initial ?? (await this.#saslChallenge(''));
      if (resp === undefined) return R.R_AUTH_ABORTED;
      const raw = decodeBase64(resp);
      if (!raw) return R.R_AUTH_BAD_B64;
      const plain = parsePlain(raw);
      if (!plain) return this.#authFailed(mech, '');
      ({ username, password } = plain);
    } else {
      let u = initial;
      if (u === undefined) u = await this.#saslChallenge('VXNlcm5hbWU6');
      if (u === undefined) return R.R_AUTH_ABORTED;
      const ub = decodeBase64(u);
      if (!ub) return R.R_AUTH_BAD_B64;
      const pw = await this.#saslChallenge('UGFzc3dvcmQ6');
      if (pw === undefined) return R.R_AUTH_ABORTED;
      const pb = decodeBase64(pw);
      if (!pb) return R.R_AUTH_BAD_B64;
      username = ub.toString('utf8');
      password = pb.toString('utf8');
    }
    const backend = this.#ctx.auth;
    if (!backend) return R.R_AUTH_NOT_ENABLED;
    const result = await checkCredentials(backend, username, password, {
      client: this.#client,
      ...(this.#helo !== undefined ? { helo: this.#helo } : {}),
      ...(this.#tls ? { tls: this.#tls } : {}),
      mechanism: mech,
    });
    return this.#authResult(mech, result, username);
  }

  /** The outcome of a SASL exchange: log, count and reply. */
  #authResult(mech: string, result: 'ok' | 'failed' | 'temp', username: string): SmtpReply {
    if (result === 'temp') {
      this.#ctx.log.warning(
        undefined,
        `${this.#namaddr}: SASL ${mech} authentication temporarily failed`,
      );
      return R.R_AUTH_TEMP;
    }
    if (result === 'failed') return this.#authFailed(mech, username);
    this.#authUser = username;
    this.#authMethod = mech;
    this.#ctx.log.info(
      undefined,
      `${this.#namaddr}: sasl_method=${mech}, sasl_username=${clip(username)}`,
    );
    return R.R_AUTH_OK;
  }

  /** CRAM-MD5 (RFC 2195): a challenge, then `user digest` checked against the table. */
  async #cramMd5(initial: string | undefined): Promise<SmtpReply> {
    // RFC 4954 section 4: CRAM-MD5 has no initial response.
    if (initial !== undefined) return R.R_AUTH_SYNTAX;
    const backend = this.#ctx.auth;
    if (!backend || typeof backend === 'function') return R.R_AUTH_MECH;
    const challenge = cramMd5Challenge(this.#params.myhostname);
    const resp = await this.#saslChallenge(Buffer.from(challenge, 'utf8').toString('base64'));
    if (resp === undefined) return R.R_AUTH_ABORTED;
    const raw = decodeBase64(resp);
    if (!raw) return R.R_AUTH_BAD_B64;
    const { result, username } = await checkCramMd5(backend, challenge, raw);
    return this.#authResult('CRAM-MD5', result, username);
  }

  #authFailed(mech: string, username: string): SmtpReply {
    // Postfix's wording, which fail2ban's postfix filter (mode=auth) matches.
    this.#ctx.log.warning(
      undefined,
      `${this.#namaddr}: SASL ${mech} authentication failed: authentication failure, sasl_username=${clip(username)}`,
      {
        event: 'sasl_failed',
        client_name: this.#client.name,
        client_address: this.#client.address,
        sasl_method: mech,
        sasl_username: clip(username),
      },
    );
    return R.R_AUTH_FAILED;
  }

  /** Sends a 334 challenge and reads the client's line; undefined for `*` or EOF. */
  async #saslChallenge(challenge: string): Promise<string | undefined> {
    this.#io.queue(`334 ${challenge}\r\n`);
    for (;;) {
      const line = this.#io.input.next();
      if (line) {
        if (line.tooLong || line.hasNul) return undefined;
        const t = line.text.trim();
        this.#transcript.saslResponse(t);
        return t === '*' ? undefined : t;
      }
      if (this.#io.eof) return undefined;
      const why = await this.#io.waitInput();
      if (why === 'timeout' || why === 'shutdown') return undefined;
    }
  }

  #xclientCommand(args: string): SmtpReply | 'done' {
    if (!this.#ctx.xclientHosts.matches(this.#peerAddress)) return R.R_XCLIENT_DENIED;
    if (this.#sender !== undefined) return R.R_IN_TRANSACTION;
    const r = applyXclient(args, this.#client, this.#helo);
    if (r instanceof SmtpReply) return r;
    this.#client = r.client;
    this.#namaddr = namaddrOf(this.#client);
    this.#resetTransaction();
    this.#helo = r.helo;
    this.#esmtp = r.helo !== undefined && r.protocol === 'ESMTP';
    if (r.login !== undefined) {
      this.#authUser = r.login;
      this.#authMethod = 'XCLIENT';
    }
    return 'done';
  }

  async #mailCommand(args: string): Promise<SmtpReply> {
    if (this.#params.smtpdHeloRequired && this.#helo === undefined) return R.R_NEED_HELO;
    if (this.#sender !== undefined) return R.R_NESTED_MAIL;
    if (this.#params.smtpdTlsSecurityLevel === 'encrypt' && this.#tls === undefined)
      return R.R_TLS_REQUIRED;
    if (args.length < 5 || args.slice(0, 5).toUpperCase() !== 'FROM:') return R.R_SYNTAX_MAIL;
    if (this.#clientReject) return this.#clientReject;
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
    if (utf8 && !params.smtputf8) return R.R_NEED_SMTPUTF8;
    const bad = checkSenderAddress(address, this.#params);
    if (bad) {
      this.#ctx.log.warning(
        undefined,
        `Illegal address syntax from ${this.#namaddr} in MAIL command: <${clip(address)}>: ${bad.reason}`,
      );
      return bad.reply;
    }
    const limit = this.#params.messageSizeLimit;
    if (limit > 0 && params.declaredSize !== undefined && params.declaredSize > limit)
      return R.R_SIZE_EXCEEDS;
    if (this.#ctx.anvil.event(this.#peerAddress, 'message')) {
      const r = new SmtpReply(
        450,
        '4.7.1',
        `Error: too much mail from ${printable(this.#client.address)}`,
      );
      this.#ctx.log.warning(
        undefined,
        `Message delivery request rate limit exceeded from ${this.#namaddr}`,
      );
      return r;
    }
    this.#sender = address;
    this.#senderParams = params;
    if (!this.#params.smtpdDelayReject && !this.#ctx.restrictions.isEmpty('sender')) {
      const o = await this.#check('sender', 'MAIL');
      if (o.reply) {
        this.#logReject('MAIL', o.reply, undefined);
        this.#sender = undefined;
        this.#senderParams = {};
        return this.#restricted(o.reply);
      }
    }
    return R.R_MAIL_OK;
  }

  async #check(
    stage: RestrictionStage,
    state: string,
    extra: Partial<RestrictionRequest> = {},
  ): Promise<RestrictionOutcome> {
    const o = await this.#ctx.restrictions.evaluate(
      stage,
      this.#request(stage, state, extra),
      this.#memo,
    );
    if (!o.reply && o.actions.length > 0) this.#addActions(o.actions);
    return o;
  }

  #addActions(actions: readonly SubmissionAction[]): void {
    if (this.#tx) for (const a of actions) this.#tx.apply(a);
    else this.#pendingActions.push(...actions);
  }

  #request(
    stage: RestrictionStage,
    protocolState: string,
    extra: Partial<RestrictionRequest> = {},
  ): RestrictionRequest {
    return {
      stage,
      protocolState,
      client: this.#client,
      ...(this.#helo !== undefined ? { helo: this.#helo } : {}),
      protocolName: this.#esmtp ? 'ESMTP' : 'SMTP',
      ...(this.#sender !== undefined ? { sender: this.#sender } : {}),
      ...(this.#authUser !== undefined ? { saslUsername: this.#authUser } : {}),
      ...(this.#authMethod !== undefined ? { saslMethod: this.#authMethod } : {}),
      ...(this.#tls ? { tls: this.#tls } : {}),
      ...(this.#tx ? { queueId: this.#tx.queueId } : {}),
      recipientCount: this.#rcptCount,
      ...(this.#senderParams.declaredSize !== undefined
        ? { size: this.#senderParams.declaredSize }
        : {}),
      improperPipelining: this.#improperPipelining,
      ...extra,
    };
  }

  async #rcptCommand(args: string): Promise<SmtpReply> {
    if (this.#sender === undefined) return R.R_NEED_MAIL;
    if (args.length < 3 || args.slice(0, 3).toUpperCase() !== 'TO:') return R.R_SYNTAX_RCPT;
    if (this.#rcptCount >= this.#params.smtpdRecipientLimit) return R.R_TOO_MANY_RCPT;
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
    if (utf8 && !this.#senderParams.smtputf8) return R.R_NEED_SMTPUTF8;
    const external = formatAddress(address);
    if (this.#ctx.anvil.event(this.#peerAddress, 'recipient')) {
      this.#ctx.log.warning(
        undefined,
        `Recipient address rate limit exceeded from ${this.#namaddr}`,
      );
      return new SmtpReply(
        450,
        '4.7.1',
        `Error: too many recipients from ${printable(this.#client.address)}`,
      );
    }

    let resolved: ResolveResult;
    try {
      resolved = await this.#ctx.rewriter.resolve(address, this.#sender);
    } catch (err) {
      this.#ctx.log.warning(
        undefined,
        `${this.#namaddr}: address resolution failed for <${external}>: ${errorMessage(err)}`,
      );
      const r = new SmtpReply(451, '4.3.0', `<${external}>: Temporary lookup failure`);
      this.#logReject('RCPT', r, external);
      return r;
    }
    // A bad address, or a local part no local delivery may get (smtpd-local-part-check.ts).
    const e = resolved.error;
    const r = e ? safeReply(e.code, e.enhanced, e.text) : unsafeLocalRecipient(resolved, external);
    if (r) {
      this.#logReject('RCPT', r, external);
      // Postfix: mail to the error transport is MAIL_ERROR_BOUNCE.
      return this.#transcript.mark(r, r.permanent ? 'bounce' : 'resource');
    }
    const denied = await this.#rcptRestrictions(address, resolved);
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
          `${this.#namaddr}: cannot open a queue transaction: ${errorMessage(err)}`,
        );
        return replyFor(err, 'Error: queue file write error');
      }
      if (this.#io.closed || this.#sender === undefined) {
        abortQuietly(tx);
        return R.R_NEED_MAIL;
      }
      // The contract says content never emits 'error' (commit() reports failures); a
      // listener anyway, so that a faulty port cannot take the process down.
      tx.content.on('error', (err: Error) => {
        this.#ctx.log.warning(tx.queueId, `content stream error: ${errorMessage(err)}`);
      });
      tx.setSender(this.#sender, this.#senderParams);
      for (const a of this.#pendingActions) tx.apply(a);
      this.#pendingActions = [];
      this.#tx = tx;
      this.#ctx.log.info(
        tx.queueId,
        `client=${this.#namaddr}${this.#authUser !== undefined ? `, sasl_method=${this.#authMethod}, sasl_username=${clip(this.#authUser)}` : ''}`,
      );
    }
    try {
      this.#tx.addRecipient({ address, ...dsn });
    } catch (err) {
      return replyFor(err, 'Error: queue file write error');
    }
    this.#rcptCount++;
    return R.R_RCPT_OK;
  }

  /** client, helo, sender (delayed), relay and recipient lists, then unlisted recipients. */
  async #rcptRestrictions(
    recipient: Address,
    resolved: ResolveResult,
  ): Promise<SmtpReply | undefined> {
    const rs = this.#ctx.restrictions;
    if (this.#clientReject) return this.#clientReject;
    const extra = { recipient, resolved };
    const stages: RestrictionStage[] = this.#params.smtpdDelayReject
      ? ['client', 'helo', 'sender', 'relay', 'recipient']
      : ['relay', 'recipient'];
    const actions: SubmissionAction[] = [];
    for (const stage of stages) {
      if (rs.isEmpty(stage)) continue;
      const o = await rs.evaluate(stage, this.#request(stage, 'RCPT', extra), this.#memo);
      if (o.reply) return this.#restricted(o.reply);
      actions.push(...o.actions);
    }
    if (this.#params.smtpdRejectUnlistedRecipient) {
      const d = await rs.unlistedRecipient(this.#request('recipient', 'RCPT', extra));
      // Postfix: an unknown recipient is MAIL_ERROR_BOUNCE.
      if (d.kind === 'reply')
        return d.reply.permanent
          ? this.#transcript.mark(d.reply, 'bounce')
          : this.#restricted(d.reply);
    }
    if (actions.length > 0) this.#addActions(actions);
    return undefined;
  }

  /** DATA: returns the final reply, or undefined when the session must end now. */
  async #dataCommand(args: string): Promise<SmtpReply | undefined> {
    if (args !== '') return R.R_SYNTAX_DATA;
    if (this.#bdat) return R.R_DATA_AFTER_BDAT;
    // Postfix data_cmd(): 503 only outside a mail transaction; after MAIL, with no
    // accepted recipient (none sent, or all refused in a pipelined group), 554.
    const tx = this.#tx;
    if (this.#sender === undefined) return R.R_NEED_RCPT;
    if (this.#rcptCount === 0 || tx === undefined) return R.R_NO_VALID_RCPT;
    if (!this.#ctx.restrictions.isEmpty('data')) {
      const o = await this.#check('data', 'DATA');
      if (o.reply) {
        this.#logReject('DATA', o.reply, undefined, tx.queueId);
        this.#restricted(o.reply);
        if (o.disconnect) {
          this.#io.queue(o.reply.toWire());
          this.#transcript.replied(o.reply);
          return undefined;
        }
        return o.reply;
      }
    }
    this.#io.queue(R.R_DATA);
    this.#busy = true;
    try {
      const outcome = await receiveData(
        this.#io,
        tx.content,
        this.#params.smtpdForbidBareNewline,
        this.#params.messageSizeLimit,
      );
      if (outcome.end !== 'ok') {
        this.#resetTransaction();
        this.#lostDuring('DATA', outcome.end, outcome.size);
        this.#count('data', false);
        return undefined;
      }
      const excluded = this.#ctx.bareLfExclusions.matches(this.#client.address);
      if (outcome.bareLf && this.#params.smtpdForbidBareNewline === 'reject' && !excluded) {
        this.#resetTransaction();
        const r = this.#ctx.replies.bareLf;
        this.#logReject('END-OF-MESSAGE', r, undefined, tx.queueId);
        return r;
      }
      if (outcome.bareLf && this.#params.smtpdForbidBareNewline !== 'normalize')
        this.#bareLfNoted = true;
      if (outcome.tooBig) {
        this.#resetTransaction();
        this.#logReject('END-OF-MESSAGE', R.R_FILE_TOO_BIG, undefined, tx.queueId);
        return R.R_FILE_TOO_BIG;
      }
      return await this.#commit(tx, outcome.size, undefined);
    } finally {
      this.#busy = false;
    }
  }

  /** BDAT: the chunk's reply, or undefined when the session must end now. */
  async #bdatCommand(args: string): Promise<SmtpReply | undefined> {
    const m = BDAT_SYNTAX.exec(args);
    if (!m) {
      // RFC 3030 section 4: the size is unknown, so the session cannot stay in sync.
      this.#count('bdat', false);
      this.#io.queue(R.R_SYNTAX_BDAT.toWire());
      this.#transcript.error('protocol');
      return undefined;
    }
    const count = Number(m[1]);
    const last = m[2] !== undefined;
    if (!Number.isSafeInteger(count)) {
      this.#io.queue(R.R_SYNTAX_BDAT.toWire());
      this.#transcript.error('protocol');
      return undefined;
    }
    const tx = this.#rcptCount > 0 ? this.#tx : undefined;
    let early: SmtpReply | undefined;
    if (this.#sender === undefined) early = R.R_NEED_RCPT;
    else if (tx === undefined) early = R.R_NO_VALID_RCPT;
    if (!early && !this.#bdat && !this.#ctx.restrictions.isEmpty('data')) {
      const o = await this.#check('data', 'DATA');
      if (o.reply) early = this.#restricted(o.reply);
    }
    const state = this.#bdat ?? new BdatState();
    this.#busy = true;
    try {
      const end = await receiveBdatChunk(
        this.#io,
        count,
        early ? undefined : tx?.content,
        state,
        this.#params.messageSizeLimit,
      );
      if (end !== 'ok') {
        this.#resetTransaction();
        this.#lostDuring('BDAT', end, state.size);
        return undefined;
      }
      if (early) {
        // The chunk was read and dropped; the transaction (if any) is over.
        if (this.#sender !== undefined) this.#resetTransaction();
        return early;
      }
      this.#bdat = state;
      if (!last) {
        if (state.tooBig) {
          this.#resetTransaction();
          return R.R_FILE_TOO_BIG;
        }
        return new SmtpReply(250, '2.0.0', `Ok: ${count} bytes`);
      }
      if (state.tooBig) {
        this.#resetTransaction();
        this.#logReject('END-OF-MESSAGE', R.R_FILE_TOO_BIG, undefined, tx?.queueId);
        return R.R_FILE_TOO_BIG;
      }
      return await this.#commit(tx!, state.size, state.size);
    } finally {
      this.#busy = false;
    }
  }

  /** end-of-data restrictions, commit, reply. `bdatSize` set for BDAT's reply form. */
  async #commit(
    tx: SubmissionTransaction,
    size: number,
    bdatSize: number | undefined,
  ): Promise<SmtpReply> {
    if (!this.#ctx.restrictions.isEmpty('end-of-data')) {
      const o = await this.#check('end-of-data', 'END-OF-MESSAGE', { size });
      if (o.reply) {
        this.#resetTransaction();
        this.#logReject('END-OF-MESSAGE', o.reply, undefined, tx.queueId);
        return this.#restricted(o.reply);
      }
    }
    // The transaction is ours until commit settles; after that it is gone either way.
    this.#tx = undefined;
    let reply: SmtpReply;
    let queueId: string | undefined;
    try {
      const result = await tx.commit();
      reply = result.reply;
      queueId = result.queueId;
    } catch (err) {
      this.#ctx.log.warning(tx.queueId, `commit failed: ${errorMessage(err)}`);
      reply = replyFor(err, 'Error: queue file write error');
    }
    if (!reply.positive) abortQuietly(tx);
    this.#resetTransaction();
    if (reply.positive) {
      this.#errors = 0;
      this.#junk = 0;
      this.#transcript.clearErrors();
      if (bdatSize !== undefined && queueId !== undefined)
        reply = new SmtpReply(250, '2.0.0', `Ok: ${bdatSize} bytes queued as ${queueId}`);
    }
    return reply;
  }

  #lostDuring(what: string, end: 'lost' | 'timeout', size: number): void {
    this.#transcript.aborted(end === 'timeout' ? 'timeout' : 'lost connection');
    if (end === 'timeout') {
      this.#ctx.log.info(undefined, `timeout after ${what} (${size} bytes) from ${this.#namaddr}`);
      this.#io.queue(this.#ctx.replies.timeout.toWire());
    } else {
      this.#ctx.log.info(
        undefined,
        `lost connection after ${what} (${size} bytes) from ${this.#namaddr}`,
      );
    }
  }

  #vrfyCommand(args: string): SmtpReply {
    if (this.#params.disableVrfyCommand) return R.R_VRFY_DISABLED;
    if (args === '') return R.R_SYNTAX_VRFY;
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
    const base = this.#senderParams.smtputf8 ? 'UTF8SMTP' : this.#esmtp ? 'ESMTP' : 'SMTP';
    const protocol =
      base === 'SMTP'
        ? base
        : `${base}${this.#tls ? 'S' : ''}${this.#authUser !== undefined ? 'A' : ''}`;
    return {
      component: 'smtpd',
      protocol,
      client: this.#client,
      ...(this.#helo !== undefined ? { helo: this.#helo } : {}),
      ...(this.#tls ? { tls: this.#tls } : {}),
      ...(this.#authUser !== undefined ? { authUser: this.#authUser } : {}),
    };
  }

  #resetTransaction(): void {
    const tx = this.#tx;
    this.#tx = undefined;
    this.#sender = undefined;
    this.#senderParams = {};
    this.#rcptCount = 0;
    this.#bdat = undefined;
    this.#pendingActions = [];
    if (tx) abortQuietly(tx);
  }

  #rejectFor(command: string, err: unknown): SmtpReply {
    if (err instanceof SmtpError) return err.reply;
    this.#ctx.log.warning(undefined, `${this.#namaddr}: ${command}: ${errorMessage(err)}`);
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
      {
        event: 'reject',
        stage,
        client_name: this.#client.name,
        client_address: this.#client.address,
        reply_code: r.code,
        dsn: r.enhanced,
        from: clip(sender),
        ...(to !== undefined ? { to: clip(to) } : {}),
        proto: this.#esmtp ? 'ESMTP' : 'SMTP',
        ...(this.#helo !== undefined ? { helo: clip(this.#helo) } : {}),
      },
    );
  }

  #logLost(): void {
    if (this.#where !== 'QUIT') {
      this.#transcript.aborted('lost connection');
      this.#ctx.log.info(undefined, `lost connection after ${this.#where} from ${this.#namaddr}`);
    }
  }

  /** A reply from the access restrictions, marked with its error class for the transcript. */
  #restricted(reply: SmtpReply): SmtpReply {
    return this.#transcript.mark(reply, restrictionClass(reply));
  }

  /** Queues a postmaster notice for a transcript that is owed one; the client never waits. */
  #notify(snapshot: TranscriptSnapshot | undefined): void {
    if (!snapshot) return;
    const { submission, params, clock, log } = this.#ctx;
    const sent = sendSmtpdNotice(snapshot, this.#namaddr, { submission, params, clock, log });
    this.#notices = Promise.all([this.#notices, sent]).then(() => undefined);
  }

  /** Final bookkeeping: flush, close the stream, abort what is left, log the summary. */
  #end(): void {
    if (this.#tx) {
      abortQuietly(this.#tx);
      this.#tx = undefined;
    }
    this.#io.end();
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
    this.#notify(this.#transcript.finish());
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#io.stop();
    const s = this.#io.socket;
    if (this.#io.closed) this.#resolveDone();
    else if (s.destroyed) s.once('close', () => this.#resolveDone());
  }
}

const R_OUTPUT_HIGH = 256 * 1024;
