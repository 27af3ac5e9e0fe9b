/**
 * RelayPolicy: `smtpd_relay_restrictions`, the open-relay guard evaluated for every
 * RCPT TO.
 *
 * Postfix counterpart: smtpd_check.c generic_checks() and reject_unauth_destination()
 * / permit_auth_destination(), restricted to what this first cut understands:
 * `permit_mynetworks`, `permit_sasl_authenticated`, `reject_unauth_destination`,
 * `defer_unauth_destination`, `permit_auth_destination`, `permit`, `reject`, `defer`.
 * The list is read left to right; the first restriction that permits, rejects or
 * defers decides; the end of the list permits.
 *
 * A destination is authorised (SMTPD_ACCESS_README, "reject_unauth_destination") when
 * trivial-rewrite resolves the recipient to the local, virtual alias, virtual mailbox
 * or relay class and its local part has no sender-specified routing (`@`, `!`, `%`:
 * the `routed` flag) — Postfix's `allow_untrusted_routing = no`.
 *
 * Does not: access tables (`check_*_access`), DNS lists, policy services,
 * `defer_if_permit`/`defer_if_reject`, restriction classes, recipient restrictions —
 * an unknown name is refused when the policy is built, never silently skipped.
 *
 * SECURITY: Postfix's startup rule is enforced: a list without `reject`, `defer`,
 * `reject_unauth_destination` or `defer_unauth_destination` would make an open relay,
 * so the policy refuses to exist (ConfigError) rather than accept such a list.
 *
 * STANDARDS: RFC 5321 section 3.6.2 (relaying is a matter of local policy), RFC 2505
 * (anti-spam recommendations: no open relay).
 *
 * @module
 */

import type { Parameters } from '../config/parameters.js';
import { ConfigError } from '../errors.js';
import { CidrList } from '../rewrite/cidr.js';
import type { ResolveResult } from '../rewrite/types.js';
import { SmtpReply } from '../smtp-reply.js';
import type { ClientInfo } from '../types.js';

/** Postfix `reject_code` (used by `reject`). */
const REJECT_CODE = 554;
/** Postfix `defer_code` (used by `defer`). */
const DEFER_CODE = 450;

/** Restriction names this policy understands. */
export const RELAY_RESTRICTIONS = [
  'permit_mynetworks',
  'permit_sasl_authenticated',
  'permit_auth_destination',
  'reject_unauth_destination',
  'defer_unauth_destination',
  'permit',
  'reject',
  'defer',
] as const;

export type RelayRestriction = (typeof RELAY_RESTRICTIONS)[number];

const KNOWN: ReadonlySet<string> = new Set(RELAY_RESTRICTIONS);
const DEFAULT_DENY: ReadonlySet<string> = new Set([
  'reject',
  'defer',
  'reject_unauth_destination',
  'defer_unauth_destination',
]);

/** What one RCPT looks like to the policy. */
export interface RelayRequest {
  readonly client: ClientInfo;
  /** The client authenticated with SASL (always false until AUTH exists). */
  readonly saslAuthenticated: boolean;
  /** The recipient as it appears in replies (external form, without `<>`). */
  readonly recipient: string;
  /** trivial-rewrite's answer for the recipient. */
  readonly resolved: ResolveResult;
}

/** Whether a resolved recipient is one this server may accept from anybody. */
export function isAuthorizedDestination(resolved: ResolveResult): boolean {
  if (resolved.routed) return false;
  switch (resolved.addressClass) {
    case 'local':
    case 'virtual-alias':
    case 'virtual-mailbox':
    case 'relay':
      return true;
    default:
      return false;
  }
}

/** The parameters the policy reads. */
export type RelayPolicyParameters = Pick<
  Parameters,
  'smtpdRelayRestrictions' | 'mynetworks' | 'relayDomainsRejectCode'
>;

/** `smtpd_relay_restrictions`, checked once when built. */
export class RelayPolicy {
  readonly #restrictions: readonly RelayRestriction[];
  readonly #mynetworks: CidrList;
  readonly #relayCode: number;

  /**
   * @throws ConfigError when a restriction is unknown, or when the list has no
   *   default-deny restriction (it would be an open relay).
   */
  constructor(params: RelayPolicyParameters) {
    const list = params.smtpdRelayRestrictions
      .map((r) => r.trim().toLowerCase())
      .filter((r) => r !== '');
    for (const r of list) {
      if (!KNOWN.has(r)) {
        throw new ConfigError(
          `smtpdRelayRestrictions: "${r}" is not supported here; use only ${RELAY_RESTRICTIONS.join(', ')}`,
          'smtpdRelayRestrictions',
        );
      }
    }
    if (!list.some((r) => DEFAULT_DENY.has(r))) {
      throw new ConfigError(
        'smtpdRelayRestrictions: the list must contain reject, defer, reject_unauth_destination or ' +
          'defer_unauth_destination, otherwise this server is an open relay; ' +
          'add "defer_unauth_destination" (Postfix default) at the end',
        'smtpdRelayRestrictions',
      );
    }
    if (params.relayDomainsRejectCode < 500 || params.relayDomainsRejectCode > 599) {
      throw new ConfigError(
        `relayDomainsRejectCode: ${params.relayDomainsRejectCode} is not a 5xx code; use 554 (Postfix default) or another 5xx`,
        'relayDomainsRejectCode',
      );
    }
    this.#restrictions = list as RelayRestriction[];
    this.#mynetworks = new CidrList(params.mynetworks);
    this.#relayCode = params.relayDomainsRejectCode;
  }

  /** Whether `address` is in `mynetworks`. */
  inMynetworks(address: string): boolean {
    return address !== '' && this.#mynetworks.matches(address);
  }

  /**
   * Evaluates the list for one recipient. Returns undefined to permit, or the reply
   * that rejects or defers it.
   */
  check(request: RelayRequest): SmtpReply | undefined {
    const rcpt = request.recipient;
    for (const r of this.#restrictions) {
      switch (r) {
        case 'permit_mynetworks':
          if (this.inMynetworks(request.client.address)) return undefined;
          break;
        case 'permit_sasl_authenticated':
          if (request.saslAuthenticated) return undefined;
          break;
        case 'permit_auth_destination':
          if (isAuthorizedDestination(request.resolved)) return undefined;
          break;
        case 'reject_unauth_destination':
          if (!isAuthorizedDestination(request.resolved)) {
            return new SmtpReply(this.#relayCode, '5.7.1', `<${rcpt}>: Relay access denied`);
          }
          break;
        case 'defer_unauth_destination':
          if (!isAuthorizedDestination(request.resolved)) {
            // Postfix: relay_domains_reject_code - 100.
            return new SmtpReply(this.#relayCode - 100, '4.7.1', `<${rcpt}>: Relay access denied`);
          }
          break;
        case 'permit':
          return undefined;
        case 'reject':
          return new SmtpReply(
            REJECT_CODE,
            '5.7.1',
            `<${rcpt}>: Recipient address rejected: Access denied`,
          );
        case 'defer':
          return new SmtpReply(
            DEFER_CODE,
            '4.7.1',
            `<${rcpt}>: Recipient address rejected: Access denied`,
          );
      }
    }
    return undefined;
  }
}
