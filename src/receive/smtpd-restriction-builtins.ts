/**
 * The built-in restrictions of the smtpd access policy, as a map from name to function:
 * the list of names the restriction lists accept is the map's keys.
 *
 * Postfix counterpart: smtpd_check.c's generic_checks() and the check functions it
 * calls (permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination,
 * reject_unauth_pipelining, reject_*_helo_hostname, reject_non_fqdn_*,
 * reject_unknown_*, reject_unlisted_recipient, reject_sender_login_mismatch,
 * reject_plaintext_session, reject_rbl_client), with the reply codes and texts of
 * postconf(5).
 *
 * Each function returns a Decision: permit (the list is done), dunno (the list goes
 * on) or a reply. `defer_if_permit` and `defer_if_reject` only mark the evaluation
 * state, which the evaluator (smtpd-restrictions.ts) reads at the end of the list.
 *
 * Does not: compile lists, look up access tables (smtpd-access-checks.ts), ask policy
 * servers, or catch what a check throws (the evaluator turns a throw into a deferral).
 *
 * SECURITY: client-supplied names and addresses are made printable before they reach
 * a reply text; DNS answers only ever reject or defer, never permit.
 *
 * @module
 */

import net from 'node:net';
import { splitAddress } from '../address/address.js';
import type { ComponentLogger } from '../log.js';
import type { ResolveResult } from '../rewrite/types.js';
import { printable, SmtpReply } from '../smtp-reply.js';
import type { CidrList } from '../tables/cidr.js';
import { lookupAddress } from '../tables/search-order.js';
import type { LookupTable } from '../tables/types.js';
import type { Address, Resolver, SubmissionAction } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { accessReply } from './smtpd-access-result.js';
import { isAuthorizedDestination } from './smtpd-authorized-destination.js';
import { checkMailDomain, rblLookup, verifiedClientName } from './smtpd-dns-checks.js';
import type { SmtpdParameters } from './smtpd-parameters.js';
import { stageContext, stageWhat } from './smtpd-restriction-request.js';
import type { RestrictionRequest, RestrictionStage } from './smtpd-restriction-types.js';

/** The final answer of one list. `reply` undefined means permitted. */
export interface RestrictionOutcome {
  readonly reply?: SmtpReply;
  /** 421/521 from a table: hang up after the reply. */
  readonly disconnect?: boolean;
  /** Actions for the message (HOLD, DISCARD, PREPEND...), only on permit. */
  readonly actions: readonly SubmissionAction[];
}

/** Per-session memo of DNS facts restrictions share. */
export interface RestrictionMemo {
  clientName?: Promise<{ name: string } | 'unknown' | 'temp'>;
}

/** What the lists need from their surroundings. */
export interface RestrictionEnvironment {
  readonly params: SmtpdParameters;
  readonly log: ComponentLogger;
  readonly resolver?: Resolver;
  /** Recipient validation of the RCPT's resolve result: listed, and the reject text if not. */
  readonly isListedRecipient?: (
    address: Address,
    resolved: ResolveResult,
  ) => ListedAnswer | Promise<ListedAnswer>;
  /** Postfix `smtpd_sender_login_maps`: sender → owner login(s). */
  readonly senderLoginMaps?: LookupTable;
  /** The session's address is local (`localDomain`) for unknown-domain checks. */
  readonly isLocalDomain?: (domain: string) => boolean;
}

/** What one restriction decided. */
export type Decision =
  | { readonly kind: 'permit' }
  | { readonly kind: 'dunno' }
  | { readonly kind: 'reply'; readonly reply: SmtpReply; readonly disconnect: boolean };

/** What an evaluation of one list carries from step to step. */
export interface EvalState {
  actions: SubmissionAction[];
  deferIfPermit: SmtpReply | undefined;
  deferIfReject: boolean;
}

/** Everything a built-in restriction can read. */
export interface BuiltinCall {
  readonly env: RestrictionEnvironment;
  readonly mynetworks: CidrList;
  readonly stage: RestrictionStage;
  readonly req: RestrictionRequest;
  readonly memo: RestrictionMemo;
  readonly state: EvalState;
  /** The argument that follows the name in the list (reject_rbl_client's domain). */
  readonly arg: string | undefined;
}

/** A built-in restriction. */
export type Builtin = (call: BuiltinCall) => Decision | Promise<Decision>;

export const PERMIT: Decision = { kind: 'permit' };
export const DUNNO: Decision = { kind: 'dunno' };

/** A reply that does not end the session. */
export function rejectWith(reply: SmtpReply): Decision {
  return { kind: 'reply', reply, disconnect: false };
}

/** `<what>: Class rejected: text` with the stage's codes. */
function classReply(
  c: BuiltinCall,
  code: number,
  enhanced: string,
  className: string,
  what: string,
  text: string,
): Decision {
  const ctx = { ...stageContext(c.stage, c.req, c.env.params), className, what };
  return rejectWith(accessReply(code, enhanced, ctx, text));
}

const quoted = (value: string | undefined): string =>
  value !== undefined ? `<${printable(value)}>` : '<>';
const heloOf = (req: RestrictionRequest): string => `<${printable(req.helo ?? '')}>`;

/** Postfix `valid_hostname()` (or an address literal). */
export function isValidHeloName(name: string): boolean {
  if (/^\[[0-9A-Fa-f.:]+\]$/.test(name) || /^\[IPv6:[0-9A-Fa-f.:]+\]$/i.test(name)) {
    const inner = name.slice(1, -1).replace(/^IPv6:/i, '');
    return net.isIP(inner) !== 0;
  }
  if (name.length > 255 || name === '') return false;
  return name
    .replace(/\.$/, '')
    .split('.')
    .every((l) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
}

function isFqdn(name: string): boolean {
  if (name.startsWith('[')) return isValidHeloName(name);
  return isValidHeloName(name) && name.replace(/\.$/, '').includes('.');
}

function unauthDestination(c: BuiltinCall, reject: boolean): Decision {
  const { req, env } = c;
  if (!req.resolved || isAuthorizedDestination(req.resolved)) return DUNNO;
  const base = env.params.relayDomainsRejectCode;
  const code = reject ? base : base - 100;
  return rejectWith(
    new SmtpReply(
      code,
      code >= 500 ? '5.7.1' : '4.7.1',
      `${quoted(req.recipient)}: Relay access denied`,
    ),
  );
}

async function unknownDomain(c: BuiltinCall, isSender: boolean): Promise<Decision> {
  const { req, env } = c;
  const address = isSender ? req.sender : req.recipient;
  if (!address || !env.resolver) return DUNNO;
  const domain = splitAddress(address).domain;
  if (domain === '' || env.isLocalDomain?.(domain)) return DUNNO;
  if (!isSender && req.resolved && req.resolved.addressClass !== 'default') return DUNNO;
  const v = await checkMailDomain(env.resolver, domain);
  if (v === 'ok') return DUNNO;
  const code = v === 'temp' ? 450 : env.params.unknownAddressRejectCode;
  return classReply(
    c,
    code,
    `${code >= 500 ? 5 : 4}.${isSender ? '1.8' : '1.2'}`,
    isSender ? 'Sender address' : 'Recipient address',
    quoted(address),
    'Domain not found',
  );
}

async function unknownClientHostname(c: BuiltinCall): Promise<Decision> {
  const { req, env, memo } = c;
  if (!env.resolver) return DUNNO;
  if (req.client.name && req.client.name !== 'unknown') return DUNNO;
  memo.clientName ??= verifiedClientName(env.resolver, req.client.address);
  const v = await memo.clientName;
  if (typeof v === 'object') return DUNNO;
  const code = v === 'temp' ? 450 : env.params.unknownClientRejectCode;
  return rejectWith(
    new SmtpReply(
      code,
      code >= 500 ? '5.7.25' : '4.7.25',
      `Client host rejected: cannot find your hostname, [${printable(req.client.address)}]`,
    ),
  );
}

/** What recipient validation says: listed, and the reject text if not. */
export interface ListedAnswer {
  readonly listed: boolean;
  readonly text: string;
}

/**
 * Postfix's reject_unlisted_recipient: a recipient in a local or virtual domain that
 * the address tables do not know. Dunno when no validation is configured; without a
 * promise when validation had nothing to look up.
 */
export function unlistedRecipient(
  env: RestrictionEnvironment,
  req: RestrictionRequest,
): Decision | Promise<Decision> {
  const check = env.isListedRecipient;
  if (!check || req.recipient === undefined || !req.resolved) return DUNNO;
  let found: ListedAnswer | Promise<ListedAnswer>;
  try {
    found = check(req.recipient, req.resolved);
  } catch (err) {
    return validationFailed(env, req, err);
  }
  if (found instanceof Promise) {
    return found.then(
      (f) => unlistedDecision(env, req, f),
      (err: unknown) => validationFailed(env, req, err),
    );
  }
  return unlistedDecision(env, req, found);
}

function unlistedDecision(
  env: RestrictionEnvironment,
  req: RestrictionRequest,
  found: ListedAnswer,
): Decision {
  if (found.listed || found.text === '') return DUNNO;
  return rejectWith(
    new SmtpReply(
      env.params.unknownLocalRecipientRejectCode,
      '5.1.1',
      `<${printable(req.recipient ?? '')}>: Recipient address rejected: ${printable(found.text)}`,
    ),
  );
}

function validationFailed(
  env: RestrictionEnvironment,
  req: RestrictionRequest,
  err: unknown,
): Decision {
  env.log.warning(undefined, `recipient validation failed: ${errorMessage(err)}`);
  return rejectWith(
    new SmtpReply(451, '4.3.0', `<${printable(req.recipient ?? '')}>: Temporary lookup failure`),
  );
}

async function senderLoginMismatch(c: BuiltinCall): Promise<Decision> {
  const { req, env } = c;
  const maps = env.senderLoginMaps;
  if (!maps || req.sender === undefined) return DUNNO;
  const hit = await lookupAddress(maps, req.sender, { style: 'access' });
  const owners = hit ? hit.value.split(/[\s,]+/).filter((o) => o !== '') : [];
  const sender = quoted(req.sender);
  if (req.saslUsername === undefined) {
    if (owners.length === 0) return DUNNO;
    return classReply(c, 553, '5.7.1', 'Sender address', sender, 'not logged in');
  }
  if (owners.includes(req.saslUsername)) return DUNNO;
  const text = `not owned by user ${printable(req.saslUsername)}`;
  return classReply(c, 553, '5.7.1', 'Sender address', sender, text);
}

async function rblClient(c: BuiltinCall): Promise<Decision> {
  const { req, env, arg } = c;
  if (!env.resolver || arg === undefined) return DUNNO;
  const hit = await rblLookup(env.resolver, req.client.address, arg);
  if (!hit) return DUNNO;
  const why = hit.reason ? `; ${printable(hit.reason).slice(0, 200)}` : '';
  const code = env.params.mapsRblRejectCode;
  return rejectWith(
    new SmtpReply(
      code,
      code >= 500 ? '5.7.1' : '4.7.1',
      `Service unavailable; Client host [${printable(req.client.address)}] blocked using ${printable(hit.domain)}${why}`,
    ),
  );
}

/** The built-in restrictions by name. */
export const BUILTINS: Readonly<Record<string, Builtin>> = {
  permit: () => PERMIT,
  reject: (c) => {
    const p = c.env.params;
    const ctx = stageContext(c.stage, c.req, p);
    const enhanced = p.rejectCode >= 500 ? '5.7.1' : '4.7.1';
    return rejectWith(accessReply(p.rejectCode, enhanced, ctx, 'Access denied'));
  },
  defer: (c) => {
    const p = c.env.params;
    const ctx = stageContext(c.stage, c.req, p);
    return rejectWith(accessReply(p.deferCode, '4.7.1', ctx, 'Access denied'));
  },
  defer_if_permit: (c) => {
    const p = c.env.params;
    c.state.deferIfPermit ??= accessReply(
      p.deferCode,
      '4.7.1',
      stageContext(c.stage, c.req, p),
      'Service is unavailable',
    );
    return DUNNO;
  },
  defer_if_reject: (c) => {
    c.state.deferIfReject = true;
    return DUNNO;
  },
  permit_mynetworks: ({ req, mynetworks }) =>
    req.client.address !== '' && mynetworks.matches(req.client.address) ? PERMIT : DUNNO,
  permit_sasl_authenticated: ({ req }) => (req.saslUsername !== undefined ? PERMIT : DUNNO),
  permit_auth_destination: ({ req }) =>
    req.resolved && isAuthorizedDestination(req.resolved) ? PERMIT : DUNNO,
  reject_unauth_destination: (c) => unauthDestination(c, true),
  defer_unauth_destination: (c) => unauthDestination(c, false),
  reject_unauth_pipelining: (c) => {
    if (!c.req.improperPipelining) return DUNNO;
    const ctx = stageContext(c.stage, c.req, c.env.params);
    return rejectWith(
      new SmtpReply(
        503,
        '5.5.0',
        `${stageWhat(c.stage, c.req)}: ${ctx.className} rejected: Improper use of SMTP command pipelining`,
      ),
    );
  },
  reject_invalid_helo_hostname: (c) => {
    const helo = c.req.helo;
    if (helo === undefined || isValidHeloName(helo)) return DUNNO;
    const code = c.env.params.invalidHostnameRejectCode;
    return classReply(c, code, '5.5.2', 'Helo command', heloOf(c.req), 'Invalid name');
  },
  reject_non_fqdn_helo_hostname: (c) => {
    const helo = c.req.helo;
    if (helo === undefined || isFqdn(helo)) return DUNNO;
    const code = c.env.params.nonFqdnRejectCode;
    const text = 'need fully-qualified hostname';
    return classReply(c, code, '5.5.2', 'Helo command', heloOf(c.req), text);
  },
  reject_unknown_helo_hostname: async (c) => {
    const { req, env } = c;
    if (req.helo === undefined || req.helo.startsWith('[') || !env.resolver) return DUNNO;
    const v = await checkMailDomain(env.resolver, req.helo);
    if (v === 'ok') return DUNNO;
    const code = v === 'temp' ? 450 : env.params.unknownAddressRejectCode;
    return classReply(c, code, '4.7.1', 'Helo command', heloOf(req), 'Host not found');
  },
  reject_non_fqdn_sender: (c) => {
    const sender = c.req.sender;
    if (!sender || isFqdn(splitAddress(sender).domain)) return DUNNO;
    const code = c.env.params.nonFqdnRejectCode;
    const text = 'need fully-qualified address';
    return classReply(c, code, '5.5.2', 'Sender address', quoted(sender), text);
  },
  reject_non_fqdn_recipient: (c) => {
    const rcpt = c.req.recipient;
    if (!rcpt || isFqdn(splitAddress(rcpt).domain)) return DUNNO;
    const code = c.env.params.nonFqdnRejectCode;
    const text = 'need fully-qualified address';
    return classReply(c, code, '5.5.2', 'Recipient address', quoted(rcpt), text);
  },
  reject_unknown_sender_domain: (c) => unknownDomain(c, true),
  reject_unknown_recipient_domain: (c) => unknownDomain(c, false),
  reject_unknown_client_hostname: unknownClientHostname,
  reject_unknown_reverse_client_hostname: unknownClientHostname,
  reject_unlisted_recipient: (c) => unlistedRecipient(c.env, c.req),
  reject_sender_login_mismatch: senderLoginMismatch,
  reject_plaintext_session: ({ req }) =>
    req.tls ? DUNNO : rejectWith(new SmtpReply(450, '4.7.1', 'Session encryption is required')),
  reject_rbl_client: rblClient,
};

/** Built-ins that take the next list entry as their argument, and what it must be. */
export const BUILTIN_ARGUMENT: Readonly<Record<string, string>> = {
  reject_rbl_client: 'a DNS list domain',
};

/** Built-ins that refuse mail to unauthorised destinations (Postfix's open-relay guard). */
export const DEFAULT_DENY: ReadonlySet<string> = new Set([
  'reject',
  'defer',
  'defer_if_permit',
  'reject_unauth_destination',
  'defer_unauth_destination',
]);
