/**
 * The SMTP server's access policy parameters: the restriction lists of each stage,
 * `smtpdDelayReject`, the reply codes of restrictions and access tables, and the policy
 * service. A listener may override any of them, and a reload applies them to new
 * sessions.
 *
 * Postfix counterpart: smtpd(8)'s restriction and reject-code parameters in postconf(5)
 * (SMTPD_ACCESS_README).
 *
 * @module
 */

import { defineParameters } from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';
import { restrictionList } from './smtpd-restriction-list.js';

/**
 * The SMTP server's access policy parameters.
 *
 * @example
 * ```ts
 * SMTPD_ACCESS_PARAMETERS.smtpdRelayRestrictions.defaultText; // '["permit_mynetworks", "permit_sasl_authenticated", "defer_unauth_destination"]'
 * ```
 */
export const SMTPD_ACCESS_PARAMETERS = defineParameters({
  smtpdClientRestrictions: restrictionList({
    postfix: 'smtpd_client_restrictions',
    doc: 'Restrictions checked at connect (or at RCPT with `smtpdDelayReject`). Entries are restriction names with their arguments (`check_client_access inline:{ 192.0.2.1=REJECT }`), or functions in code configs.',
    default: [],
  }),
  smtpdHeloRestrictions: restrictionList({
    postfix: 'smtpd_helo_restrictions',
    doc: 'Restrictions checked at HELO/EHLO (or at RCPT with `smtpdDelayReject`).',
    default: [],
  }),
  smtpdSenderRestrictions: restrictionList({
    postfix: 'smtpd_sender_restrictions',
    doc: 'Restrictions checked at MAIL FROM (or at RCPT with `smtpdDelayReject`).',
    default: [],
  }),
  smtpdRelayRestrictions: param.list({
    postfix: 'smtpd_relay_restrictions',
    doc: 'The relay policy, checked at RCPT before `smtpdRecipientRestrictions`: `permit_mynetworks`, `permit_sasl_authenticated`, `defer_unauth_destination`, `reject_unauth_destination`, `permit`, `reject`, `defer`.',
    default: ['permit_mynetworks', 'permit_sasl_authenticated', 'defer_unauth_destination'],
  }),
  smtpdRecipientRestrictions: restrictionList({
    postfix: 'smtpd_recipient_restrictions',
    doc: 'Restrictions checked at RCPT TO, after `smtpdRelayRestrictions`.',
    default: [],
  }),
  smtpdDataRestrictions: restrictionList({
    postfix: 'smtpd_data_restrictions',
    doc: 'Restrictions checked at DATA.',
    default: [],
  }),
  smtpdEndOfDataRestrictions: restrictionList({
    postfix: 'smtpd_end_of_data_restrictions',
    doc: 'Restrictions checked after the final `.` of the message.',
    default: [],
  }),
  smtpdDelayReject: param.boolean({
    postfix: 'smtpd_delay_reject',
    doc: 'Run the client, HELO and sender restrictions at RCPT TO, so that a rejection names the recipient.',
    default: true,
  }),
  smtpdRejectUnlistedRecipient: param.boolean({
    postfix: 'smtpd_reject_unlisted_recipient',
    doc: "Refuse a recipient of a local, virtual or relay domain that is not in its domain's recipient table.",
    default: true,
  }),
  allowUntrustedRouting: param.boolean({
    postfix: 'allow_untrusted_routing',
    doc: 'Let any client send source-routed addresses (`user@host@dom`, `user%host@dom`, `host!user@dom`) to `relayDomains`.',
    default: false,
  }),
  rejectCode: param.integer({
    postfix: 'reject_code',
    doc: 'The reply code of the `reject` restriction.',
    default: 554,
    min: 400,
  }),
  deferCode: param.integer({
    postfix: 'defer_code',
    doc: 'The reply code of the `defer` restriction.',
    default: 450,
    min: 400,
  }),
  relayDomainsRejectCode: param.integer({
    postfix: 'relay_domains_reject_code',
    doc: 'The reply code when a client may not relay (`reject_unauth_destination`).',
    default: 554,
    min: 500,
  }),
  accessMapRejectCode: param.integer({
    postfix: 'access_map_reject_code',
    doc: 'The reply code when an access table says REJECT.',
    default: 554,
    min: 400,
  }),
  accessMapDeferCode: param.integer({
    postfix: 'access_map_defer_code',
    doc: 'The reply code when an access table says DEFER.',
    default: 450,
    min: 400,
  }),
  mapsRblRejectCode: param.integer({
    postfix: 'maps_rbl_reject_code',
    doc: 'The reply code when a client or domain is listed in a DNS blocklist.',
    default: 554,
    min: 400,
  }),
  unknownClientRejectCode: param.integer({
    postfix: 'unknown_client_reject_code',
    doc: "The reply code when a client's address has no name (`reject_unknown_client_hostname`).",
    default: 450,
    min: 400,
  }),
  unknownAddressRejectCode: param.integer({
    postfix: 'unknown_address_reject_code',
    doc: 'The reply code for a sender or recipient domain that has no DNS record (`reject_unknown_*_domain`).',
    default: 450,
    min: 400,
  }),
  invalidHostnameRejectCode: param.integer({
    postfix: 'invalid_hostname_reject_code',
    doc: 'The reply code for a HELO name that is not a valid host name (`reject_invalid_helo_hostname`).',
    default: 501,
    min: 400,
  }),
  nonFqdnRejectCode: param.integer({
    postfix: 'non_fqdn_reject_code',
    doc: 'The reply code for a name or address that is not fully qualified (`reject_non_fqdn_*`).',
    default: 504,
    min: 400,
  }),
  unknownLocalRecipientRejectCode: param.integer({
    postfix: 'unknown_local_recipient_reject_code',
    doc: 'The reply code for a local recipient not in `localRecipientMaps`.',
    default: 550,
    min: 400,
  }),
  smtpdPolicyServiceTimeout: param.time({
    postfix: 'smtpd_policy_service_timeout',
    doc: "How long to wait for a policy server's answer.",
    default: '100s',
  }),
  smtpdPolicyServiceMaxIdle: param.time({
    postfix: 'smtpd_policy_service_max_idle',
    doc: 'How long an idle connection to a policy server stays open.',
    default: '300s',
  }),
  smtpdPolicyServiceTryLimit: param.integer({
    postfix: 'smtpd_policy_service_try_limit',
    doc: 'How many times a policy server is asked before `smtpdPolicyServiceDefaultAction` applies.',
    default: 2,
    min: 1,
  }),
  smtpdPolicyServiceDefaultAction: param.string({
    postfix: 'smtpd_policy_service_default_action',
    doc: 'What a policy restriction does when no policy server can be asked.',
    default: '451 4.3.5 Server configuration problem',
  }),
});
