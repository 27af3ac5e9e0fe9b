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
 * A list holds built-in names (the map in smtpd-restriction-builtins.ts: permit,
 * reject, permit_mynetworks, reject_unauth_destination, reject_rbl_client DOMAIN...),
 * access table checks (smtpd-access-checks.ts: check_client_access TABLE...),
 * check_policy_service TARGET, and functions.
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

import { ConfigError, TableError } from '../errors.js';
import { printable, SmtpReply } from '../smtp-reply.js';
import { CidrList } from '../tables/cidr.js';
import { createTable } from '../tables/create-table.js';
import type { LookupTable } from '../tables/types.js';
import { errorMessage } from '../util/error-message.js';
import { ACCESS_CHECKS, type AccessCheck } from './smtpd-access-checks.js';
import {
  type AccessReplyContext,
  accessReply,
  interpretAccessResult,
} from './smtpd-access-result.js';
import { PolicyClient } from './smtpd-policy-client.js';
import {
  BUILTIN_ARGUMENT,
  BUILTINS,
  type Builtin,
  DEFAULT_DENY,
  type Decision,
  DUNNO,
  type EvalState,
  PERMIT,
  type RestrictionEnvironment,
  type RestrictionMemo,
  type RestrictionOutcome,
  rejectWith,
  unlistedRecipient,
} from './smtpd-restriction-builtins.js';
import { policyAttributes, stageContext, stageWhat } from './smtpd-restriction-request.js';
import type {
  RestrictionFunction,
  RestrictionRequest,
  RestrictionStage,
} from './smtpd-restriction-types.js';

export type {
  RestrictionEnvironment,
  RestrictionMemo,
  RestrictionOutcome,
} from './smtpd-restriction-builtins.js';

import type { SmtpdParameters } from './smtpd-parameters.js';
import type { RestrictionEntry } from './smtpd-restriction-list.js';

type Step =
  | {
      readonly kind: 'builtin';
      readonly name: string;
      readonly fn: Builtin;
      readonly arg?: string;
    }
  | { readonly kind: 'table'; readonly check: AccessCheck; readonly table: LookupTable }
  | { readonly kind: 'policy'; readonly client: PolicyClient }
  | { readonly kind: 'function'; readonly fn: RestrictionFunction; readonly label: string };

/** The names that may appear in a restriction list. */
const RESTRICTION_NAMES: readonly string[] = [
  ...Object.keys(BUILTINS),
  ...Object.keys(ACCESS_CHECKS),
  'check_policy_service',
];

const PARAM_OF: Record<RestrictionStage, keyof SmtpdParameters> = {
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
const CONFIG_ERROR: Decision = rejectWith(
  new SmtpReply(451, '4.3.5', 'Server configuration error'),
);
const NO_STEPS: readonly Step[] = [];
/** A list that permitted with no action: one shared outcome (nobody changes an outcome). */
const PERMITTED: RestrictionOutcome = Object.freeze({ actions: Object.freeze([]) });

/** The outcome of a list from its decision and what its steps collected. */
function outcomeOf(r: Decision, state: EvalState): RestrictionOutcome {
  if (r.kind === 'reply') {
    let reply = r.reply;
    if (state.deferIfReject && reply.permanent) reply = reply.toTransient();
    return { reply, disconnect: r.disconnect, actions: [] };
  }
  if (state.deferIfPermit) return { reply: state.deferIfPermit, actions: [] };
  return state.actions.length === 0 ? PERMITTED : { actions: state.actions };
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
      const builtin = Object.hasOwn(BUILTINS, name) ? BUILTINS[name] : undefined;
      const needs = Object.hasOwn(BUILTIN_ARGUMENT, name) ? BUILTIN_ARGUMENT[name] : undefined;
      if (builtin && needs === undefined) {
        steps.push({ kind: 'builtin', name, fn: builtin });
        continue;
      }
      const check = Object.hasOwn(ACCESS_CHECKS, name) ? ACCESS_CHECKS[name] : undefined;
      if (builtin || check || name === 'check_policy_service') {
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
        } else if (builtin) {
          if (typeof arg !== 'string') throw new ConfigError(`${key}: ${name} takes ${needs}`, key);
          if (!this.#env.resolver) throw new ConfigError(`${key}: ${name} needs a resolver`, key);
          steps.push({ kind: 'builtin', name, fn: builtin, arg });
        } else if (check) {
          steps.push({ kind: 'table', check, table: this.#table(arg, key) });
        }
        continue;
      }
      throw new ConfigError(
        `${key}: "${e}" is not a restriction this server knows; use one of ${RESTRICTION_NAMES.join(', ')}, or a function`,
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
    return this.evaluateNow(stage, request, memo);
  }

  /**
   * evaluate(), without a promise when no step of the list had to wait (built-ins such
   * as permit_mynetworks and reject_unauth_destination answer at once): a list runs for
   * every RCPT.
   */
  evaluateNow(
    stage: RestrictionStage,
    request: RestrictionRequest,
    memo: RestrictionMemo,
  ): RestrictionOutcome | Promise<RestrictionOutcome> {
    const steps = this.#lists.get(stage) ?? NO_STEPS;
    if (steps.length === 0) return PERMITTED;
    const state: EvalState = { actions: [], deferIfPermit: undefined, deferIfReject: false };
    const r = this.#run(steps, stage, request, memo, state, 0, 0);
    return r instanceof Promise ? r.then((d) => outcomeOf(d, state)) : outcomeOf(r, state);
  }

  /**
   * Postfix's reject_unlisted_recipient, which smtpd_reject_unlisted_recipient runs
   * after the lists; without a promise when there was nothing to look up.
   */
  unlistedRecipientNow(req: RestrictionRequest): Decision | Promise<Decision> {
    return unlistedRecipient(this.#env, req);
  }

  /** The steps from `from` on; a promise only once a step has to wait. */
  #run(
    steps: readonly Step[],
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
    depth: number,
    from: number,
  ): Decision | Promise<Decision> {
    for (let i = from; i < steps.length; i++) {
      let d: Decision | Promise<Decision>;
      try {
        d = this.#step(steps[i]!, stage, req, memo, state, depth);
      } catch (err) {
        d = this.#failed(err, stage, req, state);
      }
      if (d instanceof Promise) return this.#resume(d, steps, stage, req, memo, state, depth, i);
      if (d.kind !== 'dunno') return d;
    }
    return DUNNO;
  }

  /** Waits for step `at`, then runs the rest. */
  async #resume(
    pending: Promise<Decision>,
    steps: readonly Step[],
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
    depth: number,
    at: number,
  ): Promise<Decision> {
    let d: Decision;
    try {
      d = await pending;
    } catch (err) {
      d = this.#failed(err, stage, req, state);
    }
    if (d.kind !== 'dunno') return d;
    return this.#run(steps, stage, req, memo, state, depth, at + 1);
  }

  /** A step that threw: a config error answers 451 4.3.5; anything else defers if the rest permits. */
  #failed(
    err: unknown,
    stage: RestrictionStage,
    req: RestrictionRequest,
    state: EvalState,
  ): Decision {
    if (err instanceof TableError && err.kind === 'config') {
      this.#env.log.warning(undefined, `${stageWhat(stage, req)}: ${err.message}`);
      return CONFIG_ERROR;
    }
    // A temporary table failure or a throwing hook: defer if the rest permits.
    this.#env.log.warning(
      undefined,
      `${stageWhat(stage, req)}: restriction failed: ${errorMessage(err)}`,
    );
    state.deferIfPermit ??= new SmtpReply(
      451,
      '4.3.0',
      `${stageWhat(stage, req)}: Temporary lookup failure`,
    );
    return DUNNO;
  }

  #step(
    step: Step,
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
    depth: number,
  ): Decision | Promise<Decision> {
    if (step.kind !== 'builtin') return this.#waitingStep(step, stage, req, memo, state, depth);
    return step.fn({
      env: this.#env,
      mynetworks: this.#mynetworks,
      stage,
      req,
      memo,
      state,
      arg: step.arg,
    });
  }

  /** Functions, tables and policy services: what may have to wait. */
  async #waitingStep(
    step: Exclude<Step, { kind: 'builtin' }>,
    stage: RestrictionStage,
    req: RestrictionRequest,
    memo: RestrictionMemo,
    state: EvalState,
    depth: number,
  ): Promise<Decision> {
    switch (step.kind) {
      case 'function': {
        const value = await step.fn(req);
        if (value === undefined || value === null) return DUNNO;
        if (value instanceof SmtpReply) {
          if (value.code < 400) return PERMIT;
          return {
            kind: 'reply',
            reply: value,
            disconnect: value.code === 421 || value.code === 521,
          };
        }
        const ctx = stageContext(stage, req, this.#env.params);
        return this.#interpret(String(value), ctx, stage, req, memo, state, depth);
      }
      case 'table': {
        const hit = await step.check(step.table, req, this.#env);
        if (!hit) return DUNNO;
        return this.#interpret(hit.value, hit.ctx, stage, req, memo, state, depth);
      }
      case 'policy': {
        const action = await step.client.ask(policyAttributes(req));
        const ctx = stageContext(stage, req, this.#env.params);
        return this.#interpret(action, ctx, stage, req, memo, state, depth);
      }
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
        return PERMIT;
      case 'dunno':
        if (v.action) state.actions.push(v.action);
        if (v.log) this.#env.log.info(req.queueId, `${v.log}: ${stageWhat(stage, req)}`);
        return DUNNO;
      case 'reply':
        return { kind: 'reply', reply: v.reply, disconnect: v.disconnect };
      case 'defer-if-permit':
        state.deferIfPermit ??= accessReply(this.#env.params.deferCode, '4.7.1', ctx, v.text);
        return DUNNO;
      case 'defer-if-reject':
        state.deferIfReject = true;
        return DUNNO;
      case 'restrictions': {
        if (depth >= MAX_NESTING) {
          this.#env.log.warning(
            undefined,
            `restriction nesting too deep at "${printable(value).slice(0, 60)}"`,
          );
          return CONFIG_ERROR;
        }
        let steps: Step[];
        try {
          steps = this.#compile(v.names, 'access table result');
        } catch (err) {
          this.#env.log.warning(undefined, errorMessage(err));
          return CONFIG_ERROR;
        }
        return this.#run(steps, stage, req, memo, state, depth + 1, 0);
      }
    }
  }
}
