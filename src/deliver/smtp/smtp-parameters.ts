/**
 * The SMTP and LMTP client's parameters: time limits per protocol stage, server
 * selection (`smtpMxAddressLimit`, `smtpAddressPreference`...), TLS and MTA-STS, SASL,
 * the connection cache; a `transports` entry may override any of them for its own
 * transport (master.cf `-o`).
 *
 * Postfix counterpart: smtp(8)'s `smtp_*` and `lmtp_*` parameters in postconf(5).
 *
 * @module
 */

import type { CoreParameters } from '../../config/core-parameters.js';
import { defineParameters, sameAs, type ValuesOf } from '../../config/parameter-declaration.js';
import { param } from '../../config/parameter-kinds.js';
import type { RewriterParameters } from '../../rewrite/rewrite-parameters.js';

/**
 * Postfix's TLS security levels of the SMTP/LMTP client (TLS_README), in order of
 * strictness.
 *
 * @example
 * ```ts
 * SMTP_TLS_LEVELS.indexOf('verify') > SMTP_TLS_LEVELS.indexOf('may'); // true
 * ```
 */
export const SMTP_TLS_LEVELS = [
  'none',
  'may',
  'encrypt',
  'dane',
  'dane-only',
  'verify',
  'secure',
] as const;

/**
 * A TLS security level of the SMTP/LMTP client.
 *
 * @example
 * ```ts
 * const mta = new Mta({ smtpTlsSecurityLevel: 'encrypt' satisfies SmtpTlsLevel });
 * ```
 */
export type SmtpTlsLevel = (typeof SMTP_TLS_LEVELS)[number];

/**
 * The SMTP/LMTP client's parameters.
 *
 * @example
 * ```ts
 * SMTP_PARAMETERS.smtpHeloName.defaultText; // '$myhostname'
 * ```
 */
export const SMTP_PARAMETERS = defineParameters({
  smtpConnectTimeout: param.time({
    postfix: 'smtp_connect_timeout',
    doc: "How long the SMTP client waits for a TCP connection; 0 = the system's time limit.",
    default: '30s',
  }),
  smtpHeloTimeout: param.time({
    postfix: 'smtp_helo_timeout',
    doc: 'How long the SMTP client waits for the greeting and the EHLO/HELO reply.',
    default: '300s',
  }),
  smtpStarttlsTimeout: param.time({
    postfix: 'smtp_starttls_timeout',
    doc: 'How long the SMTP client waits for the STARTTLS reply and the TLS handshake.',
    default: '300s',
  }),
  smtpMailTimeout: param.time({
    postfix: 'smtp_mail_timeout',
    doc: 'How long the SMTP client waits for the reply to MAIL FROM.',
    default: '300s',
  }),
  smtpRcptTimeout: param.time({
    postfix: 'smtp_rcpt_timeout',
    doc: 'How long the SMTP client waits for the reply to RCPT TO.',
    default: '300s',
  }),
  smtpDataInitTimeout: param.time({
    postfix: 'smtp_data_init_timeout',
    doc: 'How long the SMTP client waits for the reply to DATA.',
    default: '120s',
  }),
  smtpDataXferTimeout: param.time({
    postfix: 'smtp_data_xfer_timeout',
    doc: 'How long the SMTP client waits while it cannot send more of the body.',
    default: '180s',
  }),
  smtpDataDoneTimeout: param.time({
    postfix: 'smtp_data_done_timeout',
    doc: 'How long the SMTP client waits for the reply to the final `.`.',
    default: '600s',
  }),
  smtpRsetTimeout: param.time({
    postfix: 'smtp_rset_timeout',
    doc: 'How long the SMTP client waits for the reply to RSET.',
    default: '20s',
  }),
  smtpQuitTimeout: param.time({
    postfix: 'smtp_quit_timeout',
    doc: 'How long the SMTP client waits for the reply to QUIT.',
    default: '300s',
  }),
  smtpSkipQuitResponse: param.boolean({
    postfix: 'smtp_skip_quit_response',
    doc: 'Close the connection after QUIT without waiting for the reply.',
    default: true,
  }),
  smtpHeloName: param.string({
    postfix: 'smtp_helo_name',
    doc: 'The name the SMTP client sends in EHLO/HELO.',
    default: sameAs('myhostname'),
  }),
  smtpAlwaysSendEhlo: param.boolean({
    postfix: 'smtp_always_send_ehlo',
    doc: "Start with EHLO even when the server's greeting does not say ESMTP.",
    default: true,
  }),
  smtpSkip4xxGreeting: param.boolean({
    postfix: 'smtp_skip_4xx_greeting',
    doc: 'On a 4xx greeting, move on to the next server.',
    default: true,
  }),
  smtpSkip5xxGreeting: param.boolean({
    postfix: 'smtp_skip_5xx_greeting',
    doc: 'On a 5xx greeting, move on to the next server (else the mail bounces).',
    default: true,
  }),
  smtpLineLengthLimit: param.integer({
    postfix: 'smtp_line_length_limit',
    doc: 'Longer lines are folded with CRLF SPACE; 0 = never.',
    default: 998,
  }),
  smtpMxAddressLimit: param.integer({
    postfix: 'smtp_mx_address_limit',
    doc: 'The most server addresses tried per delivery; 0 = no limit.',
    default: 5,
  }),
  smtpMxSessionLimit: param.integer({
    postfix: 'smtp_mx_session_limit',
    doc: 'The most sessions (greeted servers) per delivery; 0 = no limit.',
    default: 2,
  }),
  smtpAddressPreference: param.oneOf(['any', 'ipv4', 'ipv6'], {
    postfix: 'smtp_address_preference',
    doc: 'Which addresses of a server the SMTP client tries first: `any`, `ipv4` or `ipv6`.',
    default: 'any',
  }),
  smtpRandomizeAddresses: param.boolean({
    postfix: 'smtp_randomize_addresses',
    doc: 'Shuffle MX hosts of equal preference.',
    default: true,
  }),
  smtpDeferIfNoMxAddressFound: param.boolean({
    postfix: 'smtp_defer_if_no_mx_address_found',
    doc: 'Defer instead of bouncing when no MX host has an address.',
    default: false,
  }),
  smtpBindAddress: param.string({
    postfix: 'smtp_bind_address',
    doc: 'The IPv4 source address of outgoing connections.',
    default: '',
  }),
  smtpBindAddress6: param.string({
    postfix: 'smtp_bind_address6',
    doc: 'The IPv6 source address of outgoing connections.',
    default: '',
  }),
  smtpTlsSecurityLevel: param.oneOf(SMTP_TLS_LEVELS, {
    postfix: 'smtp_tls_security_level',
    doc: "The SMTP client's TLS security level: `none`, `may`, `encrypt`, `verify`, `secure`, `dane`, `dane-only` (the DANE levels need a DANE verifier given to the agent); the default is Postfix 3.11's.",
    default: 'may',
  }),
  smtpTlsPolicyMaps: param.table({
    postfix: 'smtp_tls_policy_maps',
    doc: 'The TLS policy per nexthop (`example.com`, `[mx.example.com]:587`): `level [match=name:name]`, e.g. `secure match=.example.com`. Any table spec createTable() takes.',
    default: undefined,
  }),
  smtpTlsCAfile: param.string({
    postfix: 'smtp_tls_CAfile',
    doc: "A PEM file of the CAs trusted at `verify`/`secure`; empty = Node's bundle.",
    default: '',
  }),
  smtpMtaStsEnable: param.boolean({
    postfix: null,
    doc: "MTA-STS (RFC 8461) for mail sent through MX look-ups: a domain's `enforce` policy limits delivery to its listed MX hosts over TLS with a verified certificate, else the mail defers; `testing` only logs. An `smtpTlsPolicyMaps` entry for the destination wins. Postfix has no such parameter (postfix-mta-sts-resolver does it there).",
    default: false,
  }),
  smtpMtaStsCacheSize: param.integer({
    postfix: null,
    doc: 'Domains whose MTA-STS policy is kept in memory (least recently used dropped first).',
    default: 10_000,
    min: 1,
  }),
  smtpMtaStsFetchTimeout: param.time({
    postfix: null,
    doc: 'Time limit of one MTA-STS policy fetch over HTTPS.',
    default: '10s',
  }),
  smtpSaslAuthEnable: param.boolean({
    postfix: 'smtp_sasl_auth_enable',
    doc: 'Authenticate to servers with the credentials in `smtpSaslPasswordMaps`.',
    default: false,
  }),
  smtpSaslPasswordMaps: param.table({
    postfix: 'smtp_sasl_password_maps',
    doc: 'Credentials per nexthop (`[relay.example.com]:587`, then the host name, then the domain): `user:password`. Any table spec createTable() takes.',
    default: undefined,
  }),
  smtpSaslSecurityOptions: param.list({
    postfix: 'smtp_sasl_security_options',
    doc: 'The SASL mechanisms the SMTP client refuses over a plaintext session.',
    default: ['noplaintext', 'noanonymous'],
  }),
  smtpSaslTlsSecurityOptions: param.list({
    postfix: 'smtp_sasl_tls_security_options',
    doc: 'The SASL mechanisms the SMTP client refuses over TLS.',
    default: ['noanonymous'],
  }),
  smtpConnectionCacheTimeLimit: param.time({
    postfix: 'smtp_connection_cache_time_limit',
    doc: 'How long an idle session is kept for the next delivery; 0 = no cache.',
    default: '2s',
  }),
  smtpConnectionReuseCountLimit: param.integer({
    postfix: 'smtp_connection_reuse_count_limit',
    doc: 'The most messages per session; 0 = no limit.',
    default: 0,
  }),
  smtpConnectionReuseTimeLimit: param.time({
    postfix: 'smtp_connection_reuse_time_limit',
    doc: 'How long a cached session may be reused for further messages.',
    default: '300s',
  }),
  disableMimeOutputConversion: param.boolean({
    postfix: 'disable_mime_output_conversion',
    doc: 'Send 8-bit mail as is to servers without 8BITMIME.',
    default: false,
  }),
  lmtpConnectTimeout: param.time({
    postfix: 'lmtp_connect_timeout',
    doc: "How long the LMTP client waits for a connection; 0 = the system's time limit.",
    default: '0s',
  }),
  lmtpLhloTimeout: param.time({
    postfix: 'lmtp_lhlo_timeout',
    doc: 'How long the LMTP client waits for the greeting and the LHLO reply.',
    default: '300s',
  }),
  lmtpLhloName: param.string({
    postfix: 'lmtp_lhlo_name',
    doc: 'The name the LMTP client sends in LHLO.',
    default: sameAs('myhostname'),
  }),
  lmtpTlsSecurityLevel: param.oneOf(SMTP_TLS_LEVELS, {
    postfix: 'lmtp_tls_security_level',
    doc: "The LMTP client's TLS security level (as `smtpTlsSecurityLevel`).",
    default: 'none',
  }),
  lmtpSaslAuthEnable: param.boolean({
    postfix: 'lmtp_sasl_auth_enable',
    doc: 'Authenticate to LMTP servers with the credentials in `smtpSaslPasswordMaps`.',
    default: false,
  }),
  lmtpCacheConnection: param.boolean({
    postfix: 'lmtp_cache_connection',
    doc: 'Keep LMTP sessions open for the next delivery.',
    default: true,
  }),
});

/**
 * What the SMTP and LMTP client reads: its own parameters, the relayhost and the shared
 * ones it needs.
 *
 * @example
 * ```ts
 * const smtp = new SmtpDeliveryAgent({ params: resolveParameters() satisfies SmtpClientParameters });
 * ```
 */
export interface SmtpClientParameters
  extends ValuesOf<typeof SMTP_PARAMETERS>,
    Pick<CoreParameters, 'myhostname'>,
    Pick<RewriterParameters, 'relayhost'> {}
