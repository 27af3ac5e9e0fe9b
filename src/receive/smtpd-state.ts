/**
 * SmtpdState: what one SMTP session knows — the client, the HELO name, TLS and SASL
 * facts, the mail transaction in progress, the error and junk counts — and the small
 * operations every command handler shares (restriction requests, reject logging,
 * transaction reset).
 *
 * Postfix counterpart: smtpd.h SMTPD_STATE and smtpd_state.c, with the parts of
 * smtpd.c that every command uses (mail_reset(), log_whatsup(), the `reject:` log
 * line of smtpd_check.c).
 *
 * The session (smtpd-session.ts) owns the state and runs the command loop; the AUTH
 * exchange (smtpd-auth-exchange.ts) and the MAIL-RCPT-DATA transaction
 * (smtpd-transaction.ts) read and change it through this object.
 *
 * Does not: read or write the socket (SessionIo), decide what a command means.
 *
 * SECURITY: client strings kept here (HELO, SASL login, addresses) are made printable
 * and clipped before they reach a log line.
 *
 * @module
 */

import type { TLSSocketOptions } from 'node:tls';
import { formatAddress } from '../address/address.js';
import { replyFor, SmtpError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import type { ResolveResult } from '../rewrite/types.js';
import type { SmtpReply } from '../smtp-reply.js';
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
import type { Mutable } from '../util/mutable.js';
import type { Anvil } from './anvil.js';
import type { AuthBackend } from './smtpd-auth.js';
import type { SmtpdParameters } from './smtpd-parameters.js';
import type { SessionReplies } from './smtpd-replies.js';
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
import type { BdatState } from './smtpd-session-data.js';
import { abortQuietly, clip, namaddrOf } from './smtpd-session-helpers.js';
import type { SessionIo } from './smtpd-session-io.js';
import { restrictionClass, SmtpdTranscript } from './smtpd-transcript.js';

/** What the receiver shares with all its sessions. */
export interface SessionContext {
  readonly params: SmtpdParameters;
  readonly submission: SubmissionPort;
  readonly rewriter: Pick<Rewriter, 'resolve' | 'resolveNow'>;
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

/** The parameters of no MAIL yet: one shared object, not one per session and transaction. */
const NO_SENDER_PARAMS: SenderParams = Object.freeze({});

/** The counts and text of the last `disconnect from` summary made (without notes). */
let lastStats: readonly (string | number)[] = [];
let lastSummary = ' commands=0';

function sameStats(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The state of one SMTP session, shared by its command handlers. */
export class SmtpdState {
  readonly ctx: SessionContext;
  readonly params: SmtpdParameters;
  readonly io: SessionIo;
  /** The history mailed to the postmaster per notifyClasses (smtpd-transcript.ts). */
  readonly transcript: SmtpdTranscript;
  /** The address anvil counted this connection under. */
  readonly peerAddress: string;
  readonly memo: RestrictionMemo = {};
  /**
   * Commands counted for the `disconnect from` summary, in the order first seen: the
   * name, then the accepted and total counts (a session uses a handful of commands, so a
   * flat list beats a Map that every session would build and grow).
   */
  readonly #stats: (string | number)[] = [];

  client: ClientInfo;
  /** Postfix's `name[address]` of the client, for logs. */
  namaddr: string;
  helo: string | undefined;
  esmtp = false;
  tls: TlsInfo | undefined;
  authUser: string | undefined;
  authMethod: string | undefined;
  sender: Address | undefined;
  senderParams: SenderParams = NO_SENDER_PARAMS;
  rcptCount = 0;
  tx: SubmissionTransaction | undefined;
  /** Restriction actions that came before the transaction was opened; made for the first. */
  pendingActions: SubmissionAction[] | undefined;
  bdat: BdatState | undefined;
  /** A client-stage reject held for MAIL and RCPT (smtpd_delay_reject = no). */
  clientReject: SmtpReply | undefined;
  errors = 0;
  junk = 0;
  /** The last command seen, for `lost connection after X`. */
  where = 'CONNECT';
  improperPipelining = false;
  bareLfNoted = false;
  /** Receiving or committing a message: a graceful stop lets it finish. */
  busy = false;

  constructor(ctx: SessionContext, io: SessionIo, client: ClientInfo) {
    this.ctx = ctx;
    this.params = ctx.params;
    this.io = io;
    this.client = {
      address: client.address,
      ...(client.port !== undefined ? { port: client.port } : {}),
      name: client.name ?? 'unknown',
    };
    this.peerAddress = client.address;
    this.namaddr = namaddrOf(this.client);
    this.transcript = new SmtpdTranscript(ctx.params.notifyClasses);
  }

  /** Replaces the client (PROXY header, XCLIENT). */
  setClient(client: ClientInfo): void {
    this.client = client;
    this.namaddr = namaddrOf(client);
  }

  /** Counts a command for the `disconnect from` summary. */
  count(command: string, ok: boolean): void {
    const stats = this.#stats;
    let i = 0;
    while (i < stats.length && stats[i] !== command) i += 3;
    if (i === stats.length) stats.push(command, 0, 0);
    if (ok) stats[i + 1] = (stats[i + 1] as number) + 1;
    stats[i + 2] = (stats[i + 2] as number) + 1;
  }

  /** Postfix's ` ehlo=1 mail=1 ... commands=N` summary of the session. */
  summary(): string {
    const stats = this.#stats;
    // Most sessions of a server end with the same counts: the last summary made is reused.
    if (!this.bareLfNoted && sameStats(stats, lastStats)) return lastSummary;
    let summary = '';
    let ok = 0;
    let total = 0;
    for (let i = 0; i < stats.length; i += 3) {
      const n = stats[i + 1] as number;
      const t = stats[i + 2] as number;
      summary += n === t ? ` ${stats[i]}=${n}` : ` ${stats[i]}=${n}/${t}`;
      ok += n;
      total += t;
    }
    summary += ok === total ? ` commands=${ok}` : ` commands=${ok}/${total}`;
    if (this.bareLfNoted) return `${summary} notes=bare_lf`;
    lastStats = stats.slice();
    lastSummary = summary;
    return summary;
  }

  /** Runs `stage`'s list; a permit's actions go to the transaction. */
  async check(
    stage: RestrictionStage,
    state: string,
    extra?: Partial<RestrictionRequest>,
  ): Promise<RestrictionOutcome> {
    const o = await this.ctx.restrictions.evaluate(
      stage,
      this.request(stage, state, extra),
      this.memo,
    );
    if (!o.reply && o.actions.length > 0) this.addActions(o.actions);
    return o;
  }

  /** Applies actions to the open transaction, or holds them until it opens. */
  addActions(actions: readonly SubmissionAction[]): void {
    if (this.tx) for (const a of actions) this.tx.apply(a);
    else if (this.pendingActions) this.pendingActions.push(...actions);
    else this.pendingActions = [...actions];
  }

  /** The facts a restriction sees at this point of the session. */
  request(
    stage: RestrictionStage,
    protocolState: string,
    extra?: Partial<RestrictionRequest>,
  ): RestrictionRequest {
    // Built by assignment: every RCPT makes a few of these, and each conditional
    // spread costs a temporary object.
    const r: Mutable<RestrictionRequest> = {
      stage,
      protocolState,
      client: this.client,
      protocolName: this.esmtp ? 'ESMTP' : 'SMTP',
      recipientCount: this.rcptCount,
      improperPipelining: this.improperPipelining,
    };
    if (this.helo !== undefined) r.helo = this.helo;
    if (this.sender !== undefined) r.sender = this.sender;
    if (this.authUser !== undefined) r.saslUsername = this.authUser;
    if (this.authMethod !== undefined) r.saslMethod = this.authMethod;
    if (this.tls) r.tls = this.tls;
    if (this.tx) r.queueId = this.tx.queueId;
    if (this.senderParams.declaredSize !== undefined) r.size = this.senderParams.declaredSize;
    return extra === undefined ? r : Object.assign(r, extra);
  }

  /** request() at RCPT, with the recipient and its resolve result. */
  rcptRequest(
    stage: RestrictionStage,
    recipient: Address,
    resolved: ResolveResult,
  ): RestrictionRequest {
    const r = this.request(stage, 'RCPT') as Mutable<RestrictionRequest>;
    r.recipient = recipient;
    r.resolved = resolved;
    return r;
  }

  /** Who submits: the protocol name Cleanup writes into the Received header, and the client. */
  source(): SubmissionSource {
    const base = this.senderParams.smtputf8 ? 'UTF8SMTP' : this.esmtp ? 'ESMTP' : 'SMTP';
    const protocol =
      base === 'SMTP'
        ? base
        : `${base}${this.tls ? 'S' : ''}${this.authUser !== undefined ? 'A' : ''}`;
    const source: Mutable<SubmissionSource> = { component: 'smtpd', protocol, client: this.client };
    if (this.helo !== undefined) source.helo = this.helo;
    if (this.tls) source.tls = this.tls;
    if (this.authUser !== undefined) source.authUser = this.authUser;
    return source;
  }

  /** Postfix mail_reset(): forgets the sender and recipients and aborts the transaction. */
  resetTransaction(): void {
    const tx = this.tx;
    this.tx = undefined;
    this.sender = undefined;
    this.senderParams = NO_SENDER_PARAMS;
    this.rcptCount = 0;
    this.bdat = undefined;
    this.pendingActions = undefined;
    if (tx) abortQuietly(tx);
  }

  /** The reply for an error thrown while parsing a command; unexpected ones are logged. */
  rejectFor(command: string, err: unknown): SmtpReply {
    if (err instanceof SmtpError) return err.reply;
    this.ctx.log.warning(undefined, `${this.namaddr}: ${command}: ${errorMessage(err)}`);
    return replyFor(err);
  }

  /** Postfix's `NOQUEUE: reject: RCPT from name[addr]: reply; from=<> to=<> proto= helo=<>`. */
  logReject(stage: string, r: SmtpReply, to: string | undefined, queueId = this.tx?.queueId): void {
    const sender = this.sender === undefined ? '' : formatAddress(this.sender);
    const parts = [`from=<${clip(sender)}>`];
    if (to !== undefined) parts.push(`to=<${clip(to)}>`);
    parts.push(`proto=${this.esmtp ? 'ESMTP' : 'SMTP'}`);
    if (this.helo !== undefined) parts.push(`helo=<${clip(this.helo)}>`);
    const prefix = queueId ? '' : 'NOQUEUE: ';
    this.ctx.log.info(
      queueId,
      `${prefix}reject: ${stage} from ${this.namaddr}: ${r.toString()}; ${parts.join(' ')}`,
      {
        event: 'reject',
        stage,
        client_name: this.client.name,
        client_address: this.client.address,
        reply_code: r.code,
        dsn: r.enhanced,
        from: clip(sender),
        ...(to !== undefined ? { to: clip(to) } : {}),
        proto: this.esmtp ? 'ESMTP' : 'SMTP',
        ...(this.helo !== undefined ? { helo: clip(this.helo) } : {}),
      },
    );
  }

  /** A reply from the access restrictions, marked with its error class for the transcript. */
  restricted(reply: SmtpReply): SmtpReply {
    return this.transcript.mark(reply, restrictionClass(reply));
  }
}
