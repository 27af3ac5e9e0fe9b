/**
 * SmtpdRestrictions: Postfix's smtpd_*_restrictions — the access policy lists of the
 * SMTP server, compiled once and evaluated per stage.
 *
 * Postfix counterpart: smtpd_check.c (generic_checks, check_*_access, reject_unauth_*,
 * check_policy_service, reject_rbl_client, reject_unknown_*), with the evaluation model
 * of SMTPD_ACCESS_README: each list runs left to right; the first restriction that
 * permits, rejects or defers decides; DUNNO goes on; the end of a list permits.
 * `defer_if_permit` / `defer_if_reject` hold a deferral for the end; a temporary table
 * failure acts as `defer_if_permit` (Postfix's `reject_tempfail_action`). Which lists run
 * when (smtpd_delay_reject) is the session's business.
 *
 * Built-ins: permit, reject, defer, defer_if_permit, defer_if_reject, permit_mynetworks,
 * permit_sasl_authenticated, permit_auth_destination, reject_unauth_destination,
 * defer_unauth_destination, reject_unauth_pipelining, reject_invalid_helo_hostname,
 * reject_non_fqdn_helo_hostname, reject_unknown_helo_hostname, reject_non_fqdn_sender,
 * reject_non_fqdn_recipient, reject_unknown_sender_domain,
 * reject_unknown_recipient_domain, reject_unknown_client_hostname,
 * reject_unknown_reverse_client_hostname, reject_unlisted_recipient,
 * reject_sender_login_mismatch, reject_plaintext_session, reject_rbl_client DOMAIN,
 * check_client_access / check_helo_access / check_sender_access /
 * check_recipient_access TABLE, check_policy_service TARGET, and functions.
 *
 * Does not: restriction classes by name (`smtpd_restriction_classes`), `warn_if_reject`,
 * `*_a_access` / `*_mx_access` / `*_ns_access`, RHSBL, `permit_mx_backup`, address
 * verification; an unknown name is refused when the lists are compiled, never skipped.
 *
 * SECURITY: Postfix's startup rule: when neither the relay nor the recipient list holds
 * reject, defer, defer_if_permit, reject_unauth_destination or defer_unauth_destination,
 * the server would be an open relay, so the constructor throws a ConfigError.
 * Restriction functions that throw defer (`451 4.3.0`) — when in doubt, defer.
 *
 * STANDARDS: RFC 5321 section 3.6.2 (relaying is local policy), RFC 2505.
 *
 * @module
 */

import net from 'node:net';
import { splitAddress } from '../address/address.js';
import type { Parameters, RestrictionEntry } from '../config/parameters.js';
import { ConfigError, TableError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import type { ResolveResult } from '../rewrite/types.js';
import { printable, SmtpReply } from '../smtp-reply.js';
import { CidrList } from '../tables/cidr.js';
import { createTable } from '../tables/create-table.js';
import { lookupAddress } from '../tables/search-order.js';
import type { LookupTable } from '../tables/types.js';
import type { Address, Resolver, SubmissionAction } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import {
  type AccessReplyContext,
  accessReply,
  interpretAccessResult,
} from './smtpd-access-result.js';
import { isAuthorizedDestination } from './smtpd-authorized-destination.js';
import { checkMailDomain, rblLookup, verifiedClientName } from './smtpd-dns-checks.js';
import { PolicyClient } from './smtpd-policy-client.js';
import type {
  RestrictionFunction,
  RestrictionRequest,
  RestrictionStage,
} from './smtpd-restriction-types.js';

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
  readonly params: Parameters;
  readonly log: ComponentLogger;
  readonly resolver?: Resolver;
  /** Recipient validation of the RCPT's resolve result: listed, and the reject text if not. */
  readonly isListedRecipient?: (
    address: Address,
    resolved: ResolveResult,
  ) => Promise<{ readonly listed: boolean; readonly text: string }>;
  /** Postfix `smtpd_sender_login_maps`: sender → owner login(s). */
  readonly senderLoginMaps?: LookupTable;
  /** The session's address is local (`localDomain`) for unknown-domain checks. */
  readonly isLocalDomain?: (domain: string) => boolean;
}

type Step =
  | { readonly kind: 'builtin'; readonly name: string; readonly arg?: string }
  | { readonly kind: 'table'; readonly name: string; readonly table: LookupTable }
  | { readonly kind: 'policy'; readonly client: PolicyClient }
  | { readonly kind: 'function'; readonly fn: RestrictionFunction; readonly label: string };

const SIMPLE = new Set([
  'permit',
  'reject',
  'defer',
  'defer_if_permit',
  'defer_if_reject',
  'permit_mynetworks',
  'permit_sasl_authenticated',
  'permit_auth_destination',
  'reject_unauth_destination',
  'defer_unauth_destination',
  'reject_unauth_pipelining',
  'reject_invalid_helo_hostname',
  'reject_non_fqdn_helo_hostname',
  'reject_unknown_helo_hostname',
  'reject_non_fqdn_sender',
  'reject_non_fqdn_recipient',
  'reject_unknown_sender_domain',
  'reject_unknown_recipient_domain',
  'reject_unknown_client_hostname',
  'reject_unknown_reverse_client_hostname',
  'reject_unlisted_recipient',
  'reject_sender_login_mismatch',
  'reject_plaintext_session',
]);
const WITH_TABLE = new Set([
  'check_client_access',
  'check_helo_access',
  'check_sender_access',
  'check_recipient_access',
]);
const DEFAULT_DENY = new Set([
  'reject',
  'defer',
  'defer_if_permit',
  'reject_unauth_destination',
  'defer_unauth_destination',
]);

const PARAM_OF: Record<RestrictionStage, keyof Parameters> = {
  client: 'smtpdClientRestrictions',
  helo: 'smtpdHeloRestrictions',
  sender: 'smtpdSenderRestrictions',
  relay: 'smtpdRelayRestrictions',
  recipient: 'smtpdRecipientRestrictions',
  data: 'smtpdDataRestrictions',
  'end-of-data': 'smtpdEndOfDataRestrictions',
};

const STAGES = Object.keys(PARAM_OF) as RestrictionStage[];
const MAX_NESTING = 4;

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

/** The compiled restriction lists of one receiver. */
export class SmtpdRestrictions {
  readonly #env: RestrictionEnvironment;
  readonly #lists: ReadonlyMap<RestrictionStage, readonly Step[]>;
  readonly #mynetworks: CidrList;
  readonly #policies = new Map<string, PolicyClient>();
  readonly #tables = new Map<string, LookupTable>();

  /**
   * @throws ConfigError for an unknown restriction, a missing argument, a table that
   *   cannot be built, or lists that would make an open relay.
   */
  constructor(
    env: RestrictionEnvironment,
    overrides: Partial<
      Record<RestrictionStage, readonly (RestrictionEntry | RestrictionFunction | LookupTable)[]>
    > = {},
  ) {
    this.#env = env;
    this.#mynetworks = new CidrList(env.params.mynetworks);
    const lists = new Map<RestrictionStage, Step[]>();
    for (const stage of STAGES) {
      const key = PARAM_OF[stage];
      const entries = overrides[stage] ?? (env.params[key] as readonly RestrictionEntry[]);
      lists.set(stage, this.#compile(entries, key));
    }
    this.#lists = lists;
    const guarded = (stage: RestrictionStage): boolean =>
      (lists.get(stage) ?? []).some((s) => s.kind === 'builtin' && DEFAULT_DENY.has(s.name));
    if (!guarded('relay') && !guarded('recipient')) {
      throw new ConfigError(
        'smtpdRelayRestrictions / smtpdRecipientRestrictions: neither list contains reject, defer, ' +
          'defer_if_permit, reject_unauth_destination or defer_unauth_destination, so this server ' +
          'would be an open relay; add "defer_unauth_destination" (Postfix default) at the end of smtpdRelayRestrictions',
        'smtpdRelayRestrictions',
      );
    }
    for (const [code, key] of [
      [env.params.relayDomainsRejectCode, 'relayDomainsRejectCode'],
      [env.params.rejectCode, 'rejectCode'],
      [env.params.accessMapRejectCode, 'accessMapRejectCode'],
    ] as const) {
      if (code < 400 || code > 599)
        throw new ConfigError(`${key}: ${code} is not a 4xx or 5xx code`, key);
    }
  }

  /** Whether `stage`'s list is empty (the session can skip building a request). */
  isEmpty(stage: RestrictionStage): boolean {
    return (this.#lists.get(stage)?.length ?? 0) === 0;
  }

  /** Whether `address` is in mynetworks. */
  inMynetworks(address: string): boolean {
    return address !== '' && this.#mynetworks.matches(address);
  }

  /** Closes policy connections and tables. */
  async close(): Promise<void> {
    for (const p of this.#policies.values()) p.close();
    await Promise.allSettled([...this.#tables.values()].map((t) => t.close?.()));
  }

  #compile(entries: readonly RestrictionEntry[], key: string): Step[] {
    const steps: Step[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (typeof e === 'function') {
        steps.push({
          kind: 'function',
          fn: e as unknown as RestrictionFunction,
          label: e.name || 'function',
        });
        continue;
      }
      if (typeof e !== 'string') {
        throw new ConfigError(
          `${key}: a table object must follow check_*_access; found one at position ${i}`,
          key,
        );
      }
      const name = e.toLowerCase();
      if (SIMPLE.has(name)) {
        steps.push({ kind: 'builtin', name });
        continue;
      }
      if (WITH_TABLE.has(name) || name === 'check_policy_service' || name === 'reject_rbl_client') {
        const arg = entries[i + 1];
        i++;
        if (arg === undefined || typeof arg === 'function')
          throw new ConfigError(`${key}: "${e}" needs an argument after it`, key);
        if (name === 'check_policy_service') {
          if (typeof arg !== 'string')
            throw new ConfigError(
              `${key}: check_policy_service takes inet:host:port or unix:/path`,
              key,
            );
          steps.push({ kind: 'policy', client: this.#policy(arg, key) });
        } else if (name === 'reject_rbl_client') {
          if (typeof arg !== 'string')
            throw new ConfigError(`${key}: reject_rbl_client takes a DNS list domain`, key);
          if (!this.#env.resolver)
            throw new ConfigError(`${key}: reject_rbl_client needs a resolver`, key);
          steps.push({ kind: 'builtin', name, arg });
        } else {
          steps.push({ kind: 'table', name, table: this.#table(arg, key) });
        }
        continue;
      }
      throw new ConfigError(
        `${key}: "${e}" is not a restriction this server knows; see the SmtpdRestrictions documentation for the list`,
        key,
      );
    }
    return steps;
  }

  #table(spec: unknown, key: string): LookupTable {
    if (typeof spec !== 'string') return createTable(spec, key);
    let t = this.#tables.get(spec);
    if (!t) {
      t = createTable(spec, key);
      this.#tables.set(spec, t);
    }
    return t;
  }

  #policy(spec: string, key: string): PolicyClient {
    let p = this.#policies.get(spec);
    if (!p) {
      const params = this.#env.params;
      try {
        p = new PolicyClient(spec, {
          timeoutMs: params.smtpdPolicyServiceTimeout,
          maxIdleMs: params.smtpdPolicyServiceMaxIdle,
          tryLimit: params.smtpdPolicyServiceTryLimit,
          defaultAction: params.smtpdPolicyServiceDefaultAction,
        });
      } catch (err) {
        throw new ConfigError(`${key}: check_policy_service ${errorMessage(err)}`, key);
      }
      this.#policies.set(spec, p);
    }
    return p;
  }

  /** Evaluates `stage`'s list for `request`. */
  async evaluate(
    stage: RestrictionStage,
    request: RestrictionRequest,
    memo: RestrictionMemo,
  ): Promise<RestrictionOutcome> {
    const steps = this.#lists.get(stage) ?? [];
    if (steps.length === 0) return { actions: [] };
    const state: EvalState = { actions: [], deferIfPermit: undefined, deferIfReject: false };
    const r = await this.#run(steps, stage, request, memo, state, 0);
    if (r.kind === 'reply') {
      let reply = r.reply;
      if (state.deferIfReject && reply.permanent) reply = reply.toTransient();
      return { reply, disconnect: r.disconnect, actions: [] };
    }
    if (state.deferIfPermit) return { reply: state.deferIfPermit, actions: [] };
    return { actions: state.actions };
  }

  async #run(
    steps: readonly Step[],
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
    depth: number,
  ): Promise<Decision> {
    for (const step of steps) {
      let d: Decision;
      try {
        d = await this.#step(step, stage, req, memo, state, depth);
      } catch (err) {
        if (err instanceof TableError && err.kind === 'config') {
          this.#env.log.warning(undefined, `${stageWhat(stage, req)}: ${err.message}`);
          d = {
            kind: 'reply',
            reply: new SmtpReply(451, '4.3.5', 'Server configuration error'),
            disconnect: false,
          };
        } else {
          // A temporary table failure or a throwing hook: defer if the rest permits.
          this.#env.log.warning(
            undefined,
            `${stageWhat(stage, req)}: restriction failed: ${(err as Error)?.message ?? String(err)}`,
          );
          state.deferIfPermit ??= new SmtpReply(
            451,
            '4.3.0',
            `${stageWhat(stage, req)}: Temporary lookup failure`,
          );
          d = { kind: 'dunno' };
        }
      }
      if (d.kind !== 'dunno') return d;
    }
    return { kind: 'dunno' };
  }

  async #step(
    step: Step,
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
    depth: number,
  ): Promise<Decision> {
    switch (step.kind) {
      case 'function': {
        const value = await step.fn(req);
        if (value === undefined || value === null) return { kind: 'dunno' };
        if (value instanceof SmtpReply) {
          if (value.code < 400) return { kind: 'permit' };
          return {
            kind: 'reply',
            reply: value,
            disconnect: value.code === 421 || value.code === 521,
          };
        }
        return this.#interpret(
          String(value),
          stageContext(stage, req, this.#env.params),
          stage,
          req,
          memo,
          state,
          depth,
        );
      }
      case 'table':
        return this.#tableStep(step, stage, req, memo, state, depth);
      case 'policy': {
        const action = await step.client.ask(policyAttributes(req));
        return this.#interpret(
          action,
          stageContext(stage, req, this.#env.params),
          stage,
          req,
          memo,
          state,
          depth,
        );
      }
      case 'builtin':
        return this.#builtin(step.name, step.arg, stage, req, memo, state);
    }
  }

  async #interpret(
    value: string,
    ctx: AccessReplyContext,
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
    depth: number,
  ): Promise<Decision> {
    const v = interpretAccessResult(value, ctx);
    switch (v.kind) {
      case 'permit':
        if (v.action) state.actions.push(v.action);
        return { kind: 'permit' };
      case 'dunno':
        if (v.action) state.actions.push(v.action);
        if (v.log) this.#env.log.info(req.queueId, `${v.log}: ${stageWhat(stage, req)}`);
        return { kind: 'dunno' };
      case 'reply':
        return { kind: 'reply', reply: v.reply, disconnect: v.disconnect };
      case 'defer-if-permit':
        state.deferIfPermit ??= accessReply(this.#env.params.deferCode, '4.7.1', ctx, v.text);
        return { kind: 'dunno' };
      case 'defer-if-reject':
        state.deferIfReject = true;
        return { kind: 'dunno' };
      case 'restrictions': {
        if (depth >= MAX_NESTING) {
          this.#env.log.warning(
            undefined,
            `restriction nesting too deep at "${printable(value).slice(0, 60)}"`,
          );
          return {
            kind: 'reply',
            reply: new SmtpReply(451, '4.3.5', 'Server configuration error'),
            disconnect: false,
          };
        }
        let steps: Step[];
        try {
          steps = this.#compile(v.names, 'access table result');
        } catch (err) {
          this.#env.log.warning(undefined, errorMessage(err));
          return {
            kind: 'reply',
            reply: new SmtpReply(451, '4.3.5', 'Server configuration error'),
            disconnect: false,
          };
        }
        return this.#run(steps, stage, req, memo, state, depth + 1);
      }
    }
  }

  async #tableStep(
    step: Extract<Step, { kind: 'table' }>,
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
    depth: number,
  ): Promise<Decision> {
    const p = this.#env.params;
    const codes = { rejectCode: p.accessMapRejectCode, deferCode: p.accessMapDeferCode };
    switch (step.name) {
      case 'check_client_access': {
        const ctx = { what: `<${namaddr(req)}>`, className: 'Client host', ...codes };
        for (const key of clientKeys(
          req.client.name ?? 'unknown',
          req.client.address,
          step.table.flags.pattern,
        )) {
          const value = await step.table.lookup(key);
          if (value !== undefined)
            return this.#interpret(value, ctx, stage, req, memo, state, depth);
        }
        return { kind: 'dunno' };
      }
      case 'check_helo_access': {
        if (req.helo === undefined) return { kind: 'dunno' };
        const ctx = { what: `<${printable(req.helo)}>`, className: 'Helo command', ...codes };
        for (const key of domainKeys(req.helo.toLowerCase(), step.table.flags.pattern)) {
          const value = await step.table.lookup(key);
          if (value !== undefined)
            return this.#interpret(value, ctx, stage, req, memo, state, depth);
        }
        return { kind: 'dunno' };
      }
      case 'check_sender_access':
      case 'check_recipient_access': {
        const sender = step.name === 'check_sender_access';
        const address = sender ? req.sender : req.recipient;
        if (address === undefined) return { kind: 'dunno' };
        const ctx = {
          what: `<${printable(address)}>`,
          className: sender ? 'Sender address' : 'Recipient address',
          ...codes,
        };
        const hit = await lookupAddress(step.table, address, {
          style: 'access',
          recipientDelimiter: p.recipientDelimiter,
        });
        if (!hit) return { kind: 'dunno' };
        return this.#interpret(hit.value, ctx, stage, req, memo, state, depth);
      }
    }
    return { kind: 'dunno' };
  }

  async #builtin(
    name: string,
    arg: string | undefined,
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
  ): Promise<Decision> {
    const p = this.#env.params;
    const ctx = stageContext(stage, req, p);
    const reply = (
      code: number,
      enhanced: string,
      className: string,
      what: string,
      text: string,
    ): Decision => ({
      kind: 'reply',
      reply: accessReply(code, enhanced, { ...ctx, className, what }, text),
      disconnect: false,
    });
    const rcpt = req.recipient !== undefined ? `<${printable(req.recipient)}>` : '<>';
    const sender = req.sender !== undefined ? `<${printable(req.sender)}>` : '<>';
    const helo = `<${printable(req.helo ?? '')}>`;
    switch (name) {
      case 'permit':
        return { kind: 'permit' };
      case 'reject':
        return {
          kind: 'reply',
          reply: accessReply(
            p.rejectCode,
            p.rejectCode >= 500 ? '5.7.1' : '4.7.1',
            ctx,
            'Access denied',
          ),
          disconnect: false,
        };
      case 'defer':
        return {
          kind: 'reply',
          reply: accessReply(p.deferCode, '4.7.1', ctx, 'Access denied'),
          disconnect: false,
        };
      case 'defer_if_permit':
        state.deferIfPermit ??= accessReply(p.deferCode, '4.7.1', ctx, 'Service is unavailable');
        return { kind: 'dunno' };
      case 'defer_if_reject':
        state.deferIfReject = true;
        return { kind: 'dunno' };
      case 'permit_mynetworks':
        return this.inMynetworks(req.client.address) ? { kind: 'permit' } : { kind: 'dunno' };
      case 'permit_sasl_authenticated':
        return req.saslUsername !== undefined ? { kind: 'permit' } : { kind: 'dunno' };
      case 'permit_auth_destination':
        return req.resolved && isAuthorizedDestination(req.resolved)
          ? { kind: 'permit' }
          : { kind: 'dunno' };
      case 'reject_unauth_destination':
      case 'defer_unauth_destination': {
        if (!req.resolved || isAuthorizedDestination(req.resolved)) return { kind: 'dunno' };
        const code =
          name === 'reject_unauth_destination'
            ? p.relayDomainsRejectCode
            : p.relayDomainsRejectCode - 100;
        return {
          kind: 'reply',
          reply: new SmtpReply(
            code,
            code >= 500 ? '5.7.1' : '4.7.1',
            `${rcpt}: Relay access denied`,
          ),
          disconnect: false,
        };
      }
      case 'reject_unauth_pipelining':
        if (!req.improperPipelining) return { kind: 'dunno' };
        return {
          kind: 'reply',
          reply: new SmtpReply(
            503,
            '5.5.0',
            `${stageWhat(stage, req)}: ${ctx.className} rejected: Improper use of SMTP command pipelining`,
          ),
          disconnect: false,
        };
      case 'reject_plaintext_session':
        if (req.tls) return { kind: 'dunno' };
        return {
          kind: 'reply',
          reply: new SmtpReply(450, '4.7.1', 'Session encryption is required'),
          disconnect: false,
        };
      case 'reject_invalid_helo_hostname':
        if (req.helo === undefined || isValidHeloName(req.helo)) return { kind: 'dunno' };
        return reply(p.invalidHostnameRejectCode, '5.5.2', 'Helo command', helo, 'Invalid name');
      case 'reject_non_fqdn_helo_hostname':
        if (req.helo === undefined || isFqdn(req.helo)) return { kind: 'dunno' };
        return reply(
          p.nonFqdnRejectCode,
          '5.5.2',
          'Helo command',
          helo,
          'need fully-qualified hostname',
        );
      case 'reject_unknown_helo_hostname': {
        if (req.helo === undefined || req.helo.startsWith('[') || !this.#env.resolver)
          return { kind: 'dunno' };
        const v = await checkMailDomain(this.#env.resolver, req.helo);
        if (v === 'ok') return { kind: 'dunno' };
        return reply(
          v === 'temp' ? 450 : p.unknownAddressRejectCode,
          '4.7.1',
          'Helo command',
          helo,
          'Host not found',
        );
      }
      case 'reject_non_fqdn_sender':
        if (!req.sender || isFqdn(splitAddress(req.sender).domain)) return { kind: 'dunno' };
        return reply(
          p.nonFqdnRejectCode,
          '5.5.2',
          'Sender address',
          sender,
          'need fully-qualified address',
        );
      case 'reject_non_fqdn_recipient':
        if (!req.recipient || isFqdn(splitAddress(req.recipient).domain)) return { kind: 'dunno' };
        return reply(
          p.nonFqdnRejectCode,
          '5.5.2',
          'Recipient address',
          rcpt,
          'need fully-qualified address',
        );
      case 'reject_unknown_sender_domain':
      case 'reject_unknown_recipient_domain': {
        const isSender = name === 'reject_unknown_sender_domain';
        const address = isSender ? req.sender : req.recipient;
        if (!address || !this.#env.resolver) return { kind: 'dunno' };
        const domain = splitAddress(address).domain;
        if (domain === '' || this.#env.isLocalDomain?.(domain)) return { kind: 'dunno' };
        if (!isSender && req.resolved && req.resolved.addressClass !== 'default')
          return { kind: 'dunno' };
        const v = await checkMailDomain(this.#env.resolver, domain);
        if (v === 'ok') return { kind: 'dunno' };
        const code = v === 'temp' ? 450 : p.unknownAddressRejectCode;
        return reply(
          code,
          `${code >= 500 ? 5 : 4}.${isSender ? '1.8' : '1.2'}`,
          isSender ? 'Sender address' : 'Recipient address',
          isSender ? sender : rcpt,
          'Domain not found',
        );
      }
      case 'reject_unknown_client_hostname':
      case 'reject_unknown_reverse_client_hostname': {
        if (!this.#env.resolver) return { kind: 'dunno' };
        if (req.client.name && req.client.name !== 'unknown') return { kind: 'dunno' };
        memo.clientName ??= verifiedClientName(this.#env.resolver, req.client.address);
        const v = await memo.clientName;
        if (typeof v === 'object') return { kind: 'dunno' };
        const code = v === 'temp' ? 450 : p.unknownClientRejectCode;
        return {
          kind: 'reply',
          reply: new SmtpReply(
            code,
            code >= 500 ? '5.7.25' : '4.7.25',
            `Client host rejected: cannot find your hostname, [${printable(req.client.address)}]`,
          ),
          disconnect: false,
        };
      }
      case 'reject_unlisted_recipient':
        return this.unlistedRecipient(req);
      case 'reject_sender_login_mismatch': {
        const maps = this.#env.senderLoginMaps;
        if (!maps || req.sender === undefined) return { kind: 'dunno' };
        const hit = await lookupAddress(maps, req.sender, { style: 'access' });
        const owners = hit ? hit.value.split(/[\s,]+/).filter((o) => o !== '') : [];
        if (req.saslUsername === undefined) {
          if (owners.length === 0) return { kind: 'dunno' };
          return reply(553, '5.7.1', 'Sender address', sender, 'not logged in');
        }
        if (owners.includes(req.saslUsername)) return { kind: 'dunno' };
        return reply(
          553,
          '5.7.1',
          'Sender address',
          sender,
          `not owned by user ${printable(req.saslUsername)}`,
        );
      }
      case 'reject_rbl_client': {
        if (!this.#env.resolver || arg === undefined) return { kind: 'dunno' };
        const hit = await rblLookup(this.#env.resolver, req.client.address, arg);
        if (!hit) return { kind: 'dunno' };
        const why = hit.reason ? `; ${printable(hit.reason).slice(0, 200)}` : '';
        return {
          kind: 'reply',
          reply: new SmtpReply(
            p.mapsRblRejectCode,
            p.mapsRblRejectCode >= 500 ? '5.7.1' : '4.7.1',
            `Service unavailable; Client host [${printable(req.client.address)}] blocked using ${printable(hit.domain)}${why}`,
          ),
          disconnect: false,
        };
      }
    }
    return { kind: 'dunno' };
  }

  /**
   * Postfix's reject_unlisted_recipient: a recipient in a local or virtual domain that
   * the address tables do not know. Dunno when no validation is configured.
   */
  async unlistedRecipient(req: RestrictionRequest): Promise<Decision> {
    const check = this.#env.isListedRecipient;
    if (!check || req.recipient === undefined || !req.resolved) return { kind: 'dunno' };
    let found: { readonly listed: boolean; readonly text: string };
    try {
      found = await check(req.recipient, req.resolved);
    } catch (err) {
      this.#env.log.warning(
        undefined,
        `recipient validation failed: ${(err as Error)?.message ?? String(err)}`,
      );
      return {
        kind: 'reply',
        reply: new SmtpReply(
          451,
          '4.3.0',
          `<${printable(req.recipient)}>: Temporary lookup failure`,
        ),
        disconnect: false,
      };
    }
    if (found.listed || found.text === '') return { kind: 'dunno' };
    return {
      kind: 'reply',
      reply: new SmtpReply(
        this.#env.params.unknownLocalRecipientRejectCode,
        '5.1.1',
        `<${printable(req.recipient)}>: Recipient address rejected: ${printable(found.text)}`,
      ),
      disconnect: false,
    };
  }
}

interface EvalState {
  actions: SubmissionAction[];
  deferIfPermit: SmtpReply | undefined;
  deferIfReject: boolean;
}

type Decision =
  | { readonly kind: 'permit' }
  | { readonly kind: 'dunno' }
  | { readonly kind: 'reply'; readonly reply: SmtpReply; readonly disconnect: boolean };

function namaddr(req: RestrictionRequest): string {
  return `${printable(req.client.name ?? 'unknown')}[${printable(req.client.address)}]`;
}

function stageWhat(stage: RestrictionStage, req: RestrictionRequest): string {
  switch (stage) {
    case 'client':
      return `<${namaddr(req)}>`;
    case 'helo':
      return `<${printable(req.helo ?? '')}>`;
    case 'sender':
      return `<${printable(req.sender ?? '')}>`;
    case 'relay':
    case 'recipient':
      return `<${printable(req.recipient ?? '')}>`;
    case 'data':
      return '<DATA>';
    case 'end-of-data':
      return '<END-OF-MESSAGE>';
  }
}

function stageContext(
  stage: RestrictionStage,
  req: RestrictionRequest,
  p: Parameters,
): AccessReplyContext {
  const className = {
    client: 'Client host',
    helo: 'Helo command',
    sender: 'Sender address',
    relay: 'Recipient address',
    recipient: 'Recipient address',
    data: 'Data command',
    'end-of-data': 'End-of-data',
  }[stage];
  return {
    what: stageWhat(stage, req),
    className,
    rejectCode: p.rejectCode,
    deferCode: p.deferCode,
  };
}

/** check_client_access keys: name and parent domains, address and its prefixes. */
export function clientKeys(name: string, address: string, pattern: boolean): string[] {
  const keys: string[] = [];
  if (name !== 'unknown' && name !== '') keys.push(...domainKeys(name.toLowerCase(), pattern));
  if (address === '') return keys;
  keys.push(address);
  if (pattern) return keys;
  if (net.isIPv4(address)) {
    const parts = address.split('.');
    for (let n = 3; n >= 1; n--) keys.push(parts.slice(0, n).join('.'));
  } else if (net.isIPv6(address)) {
    const groups = address.split(':');
    for (let n = groups.length - 1; n >= 1; n--) {
      const k = groups.slice(0, n).join(':');
      if (k !== '' && !k.endsWith(':')) keys.push(k);
    }
  }
  return keys;
}

function domainKeys(name: string, pattern: boolean): string[] {
  if (pattern) return [name];
  const keys: string[] = [];
  let n = name.replace(/\.$/, '');
  while (n !== '') {
    keys.push(n);
    const dot = n.indexOf('.');
    if (dot < 0) break;
    n = n.slice(dot + 1);
  }
  return keys;
}

/** The request as Postfix's policy protocol names it (SMTPD_POLICY_README). */
function policyAttributes(req: RestrictionRequest): Record<string, string | number | undefined> {
  return {
    request: 'smtpd_access_policy',
    protocol_state: req.protocolState,
    protocol_name: req.protocolName,
    helo_name: req.helo ?? '',
    queue_id: req.queueId ?? '',
    sender: req.sender ?? '',
    recipient: req.recipient ?? '',
    recipient_count: req.recipientCount,
    client_address: req.client.address,
    client_name: req.client.name ?? 'unknown',
    reverse_client_name: req.client.name ?? 'unknown',
    instance: '',
    sasl_method: req.saslMethod ?? '',
    sasl_username: req.saslUsername ?? '',
    size: req.size ?? 0,
    encryption_protocol: req.tls?.protocol ?? '',
    encryption_cipher: req.tls?.cipher ?? '',
    encryption_keysize: req.tls?.bits ?? 0,
  };
}
