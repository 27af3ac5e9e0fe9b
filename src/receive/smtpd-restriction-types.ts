/**
 * Contracts of the smtpd access policy: the stages, what a restriction sees, and what
 * a restriction function may return.
 *
 * Postfix counterpart: smtpd_check.c's SMTPD_STATE fields that restrictions read, and
 * the SMTPD_CHECK_OK / DUNNO / REJECT outcomes; access(5) for the result vocabulary.
 *
 * A gateway author's hook is a plain async function placed in any restriction list
 * (`smtpdRecipientRestrictions: ['permit_mynetworks', myCheck, 'reject_unauth_destination']`).
 * It returns what an access(5) table would: `undefined` or `'DUNNO'` (no opinion: the
 * list goes on), `'OK'` (permit: this list is done), `'REJECT text'`, `'DEFER text'`,
 * `'550 5.7.1 text'`, `'HOLD'`, `'DISCARD'`, `'PREPEND Header: value'`,
 * `'REDIRECT addr'`, `'FILTER transport:nexthop'`, a restriction name; or an
 * SmtpReply, which rejects (5xx) or defers (4xx) with that reply. A function that
 * throws defers the request (`451 4.3.0`): when in doubt, defer.
 *
 * @module
 */

import type { ResolveResult } from '../rewrite/types.js';
import type { SmtpReply } from '../smtp-reply.js';
import type { Address, ClientInfo, TlsInfo } from '../types.js';

/**
 * Where in the session a restriction list runs (Postfix's smtpd_*_restrictions).
 *
 * @example
 * ```ts
 * const mta = new Mta({ smtpdHeloRestrictions: ['reject_invalid_helo_hostname'] });
 * const stage: RestrictionStage = 'recipient';
 * ```
 */
export type RestrictionStage =
  | 'client'
  | 'helo'
  | 'sender'
  | 'relay'
  | 'recipient'
  | 'data'
  | 'end-of-data';

/**
 * The session facts a restriction can read. Plain data, read-only.
 *
 * @example
 * ```ts
 * const onlyTls: RestrictionFunction = (req: RestrictionRequest) =>
 *   req.stage === 'sender' && !req.tls ? '530 5.7.0 Must issue a STARTTLS command first' : undefined;
 * ```
 */
export interface RestrictionRequest {
  /** The stage being checked. */
  readonly stage: RestrictionStage;
  /** Postfix policy `protocol_state`: CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE. */
  readonly protocolState: string;
  /** The connected client. */
  readonly client: ClientInfo;
  /** The HELO/EHLO argument, once given. */
  readonly helo?: string;
  /** `SMTP` or `ESMTP`. */
  readonly protocolName: string;
  /** MAIL FROM, once given (`''` for the null sender). */
  readonly sender?: Address;
  /** The RCPT TO address being checked. */
  readonly recipient?: Address;
  /** trivial-rewrite's answer for the recipient (relay and recipient stages). */
  readonly resolved?: ResolveResult;
  /** The SASL login name, when authenticated. */
  readonly saslUsername?: string;
  /** The SASL mechanism used to authenticate (`PLAIN`, `LOGIN`). */
  readonly saslMethod?: string;
  /** TLS facts, when the session uses TLS. */
  readonly tls?: TlsInfo;
  /** Queue ID once the transaction is open. */
  readonly queueId?: string;
  /** Accepted recipients so far. */
  readonly recipientCount: number;
  /** SIZE= as declared, or the actual size at end of data. */
  readonly size?: number;
  /** The client pipelined where it may not (for reject_unauth_pipelining). */
  readonly improperPipelining: boolean;
}

/**
 * What a restriction function may return (see the module comment).
 *
 * @example
 * ```ts
 * const verdicts: RestrictionResult[] = ['REJECT no thanks', 'DUNNO', reply(450, '4.7.1', 'slow down'), undefined];
 * ```
 */
export type RestrictionResult = string | SmtpReply | undefined | null;

/**
 * A restriction written in code: the gateway author's hook at every stage.
 *
 * @example
 * ```ts
 * const blockList: RestrictionFunction = async (req) =>
 *   (await isBlocked(req.sender)) ? 'REJECT sender blocked by policy' : undefined;
 * const mta = new Mta({ smtpdRecipientRestrictions: [blockList, 'reject_unauth_destination'] });
 * ```
 */
export type RestrictionFunction = (
  request: RestrictionRequest,
) => RestrictionResult | Promise<RestrictionResult>;

/**
 * A command about to be carried out, as a CommandCheck sees it.
 *
 * @example
 * ```ts
 * const command: SmtpCommand = { verb: 'STARTTLS', args: '', client: { address: '127.0.0.1', port: 40000, name: 'unknown' }, tls: false };
 * ```
 */
export interface SmtpCommand {
  /** The command verb, upper case (`EHLO`, `STARTTLS`, `AUTH`, `MAIL`...). */
  readonly verb: string;
  /** What followed the verb. */
  readonly args: string;
  /** The connected client. */
  readonly client: ClientInfo;
  /** Whether the session already uses TLS. */
  readonly tls: boolean;
}

/**
 * A check that runs before every recognised command — also those no restriction
 * list covers (STARTTLS, AUTH). Resolve an SmtpReply to answer with it instead of
 * carrying the command out (a 421 then ends the session), or undefined to go on;
 * it may take its time (the client waits). Postfix has no counterpart: it exists for
 * test doubles that inject faults (postern/testing), not for policy, which belongs in
 * the restriction lists.
 *
 * @example
 * ```ts
 * const noTls: CommandCheck = (c) =>
 *   c.verb === 'STARTTLS' ? new SmtpReply(454, '4.7.0', 'TLS not available') : undefined;
 * ```
 */
export type CommandCheck = (
  command: SmtpCommand,
) => SmtpReply | undefined | Promise<SmtpReply | undefined>;
