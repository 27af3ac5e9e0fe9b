/**
 * The SMTP server's session parameters: the banner, time and error limits, pipelining
 * and bare newlines, TLS, AUTH, XCLIENT and PROXY, and the per-client limits (anvil). A
 * listener may override any of them (master.cf `-o`), and a reload applies them to new
 * sessions. The access policy's parameters are in smtpd-access-parameters.ts.
 *
 * Postfix counterpart: smtpd(8)'s parameters in postconf(5).
 *
 * @module
 */

import type { CoreParameters } from '../config/core-parameters.js';
import {
  defineParameters,
  expand,
  sameAs,
  type ValuesOf,
} from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';
import type { BounceParameters } from '../queue/bounce/bounce-parameters.js';
import type { SMTPD_ACCESS_PARAMETERS } from './smtpd-access-parameters.js';

/**
 * What the SMTP server does with a bare LF (Postfix 3.9 `smtpd_forbid_bare_newline`).
 *
 * @example
 * ```ts
 * const mta = new Mta({ smtpdForbidBareNewline: 'reject' satisfies BareNewlinePolicy });
 * ```
 */
export type BareNewlinePolicy = 'normalize' | 'note' | 'reject' | 'no';

const BARE_NEWLINE_POLICIES: readonly BareNewlinePolicy[] = ['normalize', 'note', 'reject', 'no'];

/**
 * The SMTP server's session parameters.
 *
 * @example
 * ```ts
 * SMTPD_PARAMETERS.smtpdBanner.defaultText; // '$myhostname ESMTP $mailName'
 * ```
 */
export const SMTPD_PARAMETERS = defineParameters({
  smtpdBanner: param.string({
    postfix: 'smtpd_banner',
    doc: 'The text after `220` in the SMTP greeting.',
    default: expand('$myhostname ESMTP $mailName'),
  }),
  smtpdRecipientLimit: param.integer({
    postfix: 'smtpd_recipient_limit',
    doc: 'The most recipients the SMTP server (and sendmail) accepts for one message.',
    default: 1000,
    min: 1,
  }),
  smtpdTimeout: param.time({
    postfix: 'smtpd_timeout',
    doc: 'How long the SMTP server waits for the client to send a command or data, or to take a reply.',
    default: '300s',
  }),
  smtpdErrorSleepTime: param.time({
    postfix: 'smtpd_error_sleep_time',
    doc: 'The pause before the SMTP server replies to a client that has made errors.',
    default: '1s',
  }),
  smtpdSoftErrorLimit: param.integer({
    postfix: 'smtpd_soft_error_limit',
    doc: 'Errors a client may make before every reply is delayed by `smtpdErrorSleepTime`.',
    default: 10,
  }),
  smtpdHardErrorLimit: param.integer({
    postfix: 'smtpd_hard_error_limit',
    doc: 'Errors a client may make before the SMTP server disconnects it.',
    default: 20,
    min: 1,
  }),
  smtpdJunkCommandLimit: param.integer({
    postfix: 'smtpd_junk_command_limit',
    doc: 'Commands that change nothing (NOOP, VRFY, ETRN, RSET) a client may send before they count as errors.',
    default: 100,
    min: 1,
  }),
  disableVrfyCommand: param.boolean({
    postfix: 'disable_vrfy_command',
    doc: 'Refuse the VRFY command. Postern differs from Postfix (default no) here: VRFY tells strangers which users exist.',
    default: true,
  }),
  smtpdHeloRequired: param.boolean({
    postfix: 'smtpd_helo_required',
    doc: 'Require HELO or EHLO before MAIL FROM.',
    default: false,
  }),
  smtpdForbidUnauthPipelining: param.boolean({
    postfix: 'smtpd_forbid_unauth_pipelining',
    doc: 'Disconnect clients that talk before the greeting or pipeline commands where they may not (Postfix 3.9).',
    default: true,
  }),
  smtpdForbidBareNewline: param.oneOf(BARE_NEWLINE_POLICIES, {
    postfix: 'smtpd_forbid_bare_newline',
    doc: 'What the SMTP server does with a bare LF in DATA: `normalize` (store it as CRLF; only CRLF.CRLF ends the message), `note` (the same, and log it), `reject` (refuse the message, except from `smtpdForbidBareNewlineExclusions`), `no` (any `.` line ends the message: vulnerable to SMTP smuggling).',
    default: 'normalize',
  }),
  smtpdForbidBareNewlineRejectCode: param.integer({
    postfix: 'smtpd_forbid_bare_newline_reject_code',
    doc: 'The reply code when `smtpdForbidBareNewline` is `reject`.',
    default: 550,
    min: 400,
  }),
  smtpdForbidBareNewlineExclusions: param.list({
    postfix: 'smtpd_forbid_bare_newline_exclusions',
    doc: 'Clients (CIDR) exempt from `smtpdForbidBareNewline: reject`.',
    default: sameAs('mynetworks'),
  }),
  smtpdTlsSecurityLevel: param.oneOf(['none', 'may', 'encrypt'], {
    postfix: 'smtpd_tls_security_level',
    doc: "The SMTP server's TLS: `none`, `may` (offer STARTTLS), `encrypt` (require it).",
    default: 'none',
  }),
  smtpdTlsCertFile: param.string({
    postfix: 'smtpd_tls_cert_file',
    doc: "The SMTP server's certificate, PEM (it may hold the chain).",
    default: '',
  }),
  smtpdTlsKeyFile: param.string({
    postfix: 'smtpd_tls_key_file',
    doc: "The SMTP server's private key, PEM.",
    default: sameAs('smtpdTlsCertFile'),
  }),
  smtpdTlsWrappermode: param.boolean({
    postfix: 'smtpd_tls_wrappermode',
    doc: 'TLS from the first byte (port 465) instead of STARTTLS.',
    default: false,
  }),
  smtpdTlsAuthOnly: param.boolean({
    postfix: 'smtpd_tls_auth_only',
    doc: 'Offer AUTH only over TLS. Postern differs from Postfix (default no): PLAIN and LOGIN send the password in the clear.',
    default: true,
  }),
  smtpdStarttlsTimeout: param.time({
    postfix: 'smtpd_starttls_timeout',
    doc: 'The time limit of the TLS handshake.',
    default: '300s',
  }),
  smtpdSaslAuthEnable: param.boolean({
    postfix: 'smtpd_sasl_auth_enable',
    doc: 'Offer SMTP AUTH (RFC 4954) to clients.',
    default: false,
  }),
  smtpdSaslMechanisms: param.someOf(['PLAIN', 'LOGIN', 'CRAM-MD5'], {
    postfix: null,
    doc: "SASL mechanisms offered, of `PLAIN`, `LOGIN` and `CRAM-MD5` (Postfix takes this list from its SASL server's `mech_list`). CRAM-MD5 is off by default and needs the authenticator to be a table of clear passwords.",
    default: ['PLAIN', 'LOGIN'],
  }),
  smtpdAuthorizedXclientHosts: param.list({
    postfix: 'smtpd_authorized_xclient_hosts',
    doc: 'Clients (CIDR) allowed to send XCLIENT.',
    default: [],
  }),
  smtpdUpstreamProxyProtocol: param.oneOf(['', 'haproxy'], {
    postfix: 'smtpd_upstream_proxy_protocol',
    doc: 'The protocol of a proxy in front of the SMTP server: empty (none) or `haproxy` (PROXY v1 and v2).',
    default: '',
  }),
  smtpdUpstreamProxyTimeout: param.time({
    postfix: 'smtpd_upstream_proxy_timeout',
    doc: 'How long to wait for the PROXY header of a proxy in front.',
    default: '5s',
  }),
  smtpdUpstreamProxyHosts: param.list({
    postfix: null,
    doc: 'CIDRs allowed to send the PROXY header (Postern addition; Postfix trusts any peer of a proxy listener). Empty means any peer.',
    default: [],
  }),
  smtpdClientConnectionCountLimit: param.integer({
    postfix: 'smtpd_client_connection_count_limit',
    doc: 'The most sessions one client may have open at once (anvil); 0 = no limit.',
    default: 50,
  }),
  smtpdClientConnectionRateLimit: param.integer({
    postfix: 'smtpd_client_connection_rate_limit',
    doc: 'The most connections one client may open per `anvilRateTimeUnit`; 0 = no limit.',
    default: 0,
  }),
  smtpdClientMessageRateLimit: param.integer({
    postfix: 'smtpd_client_message_rate_limit',
    doc: 'The most messages one client may send per `anvilRateTimeUnit`; 0 = no limit.',
    default: 0,
  }),
  smtpdClientRecipientRateLimit: param.integer({
    postfix: 'smtpd_client_recipient_rate_limit',
    doc: 'The most recipients one client may send per `anvilRateTimeUnit`; 0 = no limit.',
    default: 0,
  }),
  smtpdClientAuthRateLimit: param.integer({
    postfix: 'smtpd_client_auth_rate_limit',
    doc: 'The most AUTH attempts one client may make per `anvilRateTimeUnit`; 0 = no limit.',
    default: 0,
  }),
  anvilRateTimeUnit: param.time({
    postfix: 'anvil_rate_time_unit',
    doc: 'The time unit of the client rate limits (`smtpdClient*RateLimit`).',
    default: '60s',
  }),
  smtpdClientEventLimitExceptions: param.list({
    postfix: 'smtpd_client_event_limit_exceptions',
    doc: 'Clients (CIDR) exempt from the anvil limits.',
    default: sameAs('mynetworks'),
  }),
});

/**
 * What the SMTP server reads: its session and access policy parameters, the message
 * limits Cleanup also enforces, the postmaster notices it sends, and the shared ones.
 *
 * @example
 * ```ts
 * const receiver = new SmtpReceiver({ params: resolveParameters() satisfies SmtpdParameters, submission, rewriter });
 * ```
 */
export interface SmtpdParameters
  extends ValuesOf<typeof SMTPD_PARAMETERS>,
    ValuesOf<typeof SMTPD_ACCESS_PARAMETERS>,
    Pick<
      CoreParameters,
      | 'myhostname'
      | 'myorigin'
      | 'mynetworks'
      | 'mailName'
      | 'lineLengthLimit'
      | 'recipientDelimiter'
      | 'allowMinUser'
      | 'softBounce'
      | 'defaultProcessLimit'
      | 'messageSizeLimit'
    >,
    Pick<
      BounceParameters,
      'notifyClasses' | 'bounceNoticeRecipient' | 'errorNoticeRecipient' | 'doubleBounceSender'
    > {}
