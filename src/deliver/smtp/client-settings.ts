/**
 * ClientSettings: what one SMTP or LMTP client needs from the main parameters, picked
 * once when the agent is built.
 *
 * Postfix counterpart: smtp.c's variable table, where smtp(8) and lmtp(8) read the
 * `smtp_*` or `lmtp_*` flavour of each parameter. Here LMTP has its own connect
 * timeout, LHLO name and timeout, TLS level, SASL switch and connection caching, and
 * shares every other setting with SMTP.
 *
 * @module
 */

import type { AddressPreference } from './mx-resolver.js';
import type { SmtpClientParameters, SmtpTlsLevel } from './smtp-parameters.js';

/** Per-phase timeouts in milliseconds (0 = none). */
export interface ClientTimeouts {
  readonly connect: number;
  readonly helo: number;
  readonly starttls: number;
  readonly mail: number;
  readonly rcpt: number;
  readonly dataInit: number;
  readonly dataXfer: number;
  readonly dataDone: number;
  readonly rset: number;
  readonly quit: number;
}

export interface ClientSettings {
  readonly protocol: 'smtp' | 'lmtp';
  /** Component name in logs: `smtp` or `lmtp`. */
  readonly component: string;
  readonly myhostname: string;
  /** EHLO / LHLO argument. */
  readonly heloName: string;
  readonly defaultPort: number;
  readonly timeouts: ClientTimeouts;
  readonly skipQuitResponse: boolean;
  readonly alwaysSendEhlo: boolean;
  readonly skip4xxGreeting: boolean;
  readonly skip5xxGreeting: boolean;
  readonly lineLengthLimit: number;
  readonly mxAddressLimit: number;
  readonly mxSessionLimit: number;
  readonly addressPreference: AddressPreference;
  readonly randomizeAddresses: boolean;
  readonly deferIfNoMxAddressFound: boolean;
  readonly bindAddress: string;
  readonly bindAddress6: string;
  readonly tlsSecurityLevel: SmtpTlsLevel;
  readonly tlsPolicyMaps: unknown;
  readonly tlsCAfile: string;
  /** MTA-STS for MX destinations; always false for LMTP. */
  readonly mtaStsEnable: boolean;
  /** Domains whose MTA-STS policy is cached. */
  readonly mtaStsCacheSize: number;
  /** Time limit of one MTA-STS policy fetch, in ms. */
  readonly mtaStsFetchTimeout: number;
  /** `relayhost` as configured: mail to it never gets MTA-STS. */
  readonly relayhost: string;
  readonly saslAuthEnable: boolean;
  readonly saslPasswordMaps: unknown;
  readonly saslSecurityOptions: readonly string[];
  readonly saslTlsSecurityOptions: readonly string[];
  /** Idle time of a cached session; 0 = no caching. */
  readonly cacheTimeLimit: number;
  readonly reuseCountLimit: number;
  readonly reuseTimeLimit: number;
  readonly mimeOutputConversion: boolean;
}

/** Settings of the `smtp` (or, with `'lmtp'`, the `lmtp`) client. */
export function clientSettings(p: SmtpClientParameters, protocol: 'smtp' | 'lmtp'): ClientSettings {
  const lmtp = protocol === 'lmtp';
  return Object.freeze({
    protocol,
    component: protocol,
    myhostname: p.myhostname,
    heloName: lmtp ? p.lmtpLhloName : p.smtpHeloName,
    defaultPort: lmtp ? 24 : 25,
    timeouts: Object.freeze({
      connect: lmtp ? p.lmtpConnectTimeout : p.smtpConnectTimeout,
      helo: lmtp ? p.lmtpLhloTimeout : p.smtpHeloTimeout,
      starttls: p.smtpStarttlsTimeout,
      mail: p.smtpMailTimeout,
      rcpt: p.smtpRcptTimeout,
      dataInit: p.smtpDataInitTimeout,
      dataXfer: p.smtpDataXferTimeout,
      dataDone: p.smtpDataDoneTimeout,
      rset: p.smtpRsetTimeout,
      quit: p.smtpQuitTimeout,
    }),
    // lmtp_skip_quit_response defaults to no: a mailbox server may still be writing.
    skipQuitResponse: lmtp ? false : p.smtpSkipQuitResponse,
    alwaysSendEhlo: p.smtpAlwaysSendEhlo,
    skip4xxGreeting: p.smtpSkip4xxGreeting,
    skip5xxGreeting: p.smtpSkip5xxGreeting,
    lineLengthLimit: p.smtpLineLengthLimit,
    mxAddressLimit: p.smtpMxAddressLimit,
    mxSessionLimit: p.smtpMxSessionLimit,
    addressPreference: p.smtpAddressPreference,
    randomizeAddresses: p.smtpRandomizeAddresses,
    deferIfNoMxAddressFound: p.smtpDeferIfNoMxAddressFound,
    bindAddress: p.smtpBindAddress,
    bindAddress6: p.smtpBindAddress6,
    tlsSecurityLevel: lmtp ? p.lmtpTlsSecurityLevel : p.smtpTlsSecurityLevel,
    tlsPolicyMaps: p.smtpTlsPolicyMaps,
    tlsCAfile: p.smtpTlsCAfile,
    // RFC 8461 is about SMTP to MX hosts; an LMTP server is a local mailbox store.
    mtaStsEnable: lmtp ? false : p.smtpMtaStsEnable,
    mtaStsCacheSize: p.smtpMtaStsCacheSize,
    mtaStsFetchTimeout: p.smtpMtaStsFetchTimeout,
    relayhost: p.relayhost,
    saslAuthEnable: lmtp ? p.lmtpSaslAuthEnable : p.smtpSaslAuthEnable,
    saslPasswordMaps: p.smtpSaslPasswordMaps,
    saslSecurityOptions: p.smtpSaslSecurityOptions,
    saslTlsSecurityOptions: p.smtpSaslTlsSecurityOptions,
    cacheTimeLimit: lmtp && !p.lmtpCacheConnection ? 0 : p.smtpConnectionCacheTimeLimit,
    reuseCountLimit: p.smtpConnectionReuseCountLimit,
    reuseTimeLimit: p.smtpConnectionReuseTimeLimit,
    mimeOutputConversion: !p.disableMimeOutputConversion,
  });
}
