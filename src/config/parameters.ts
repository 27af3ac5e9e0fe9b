/**
 * Postern's main.cf: every parameter declared once, with its Postfix name, type and
 * default. `resolveParameters()` turns a user's config (JSON data or an object) into a
 * frozen, fully defaulted `Parameters` object, computing defaults that refer to other
 * parameters (`myorigin = $myhostname`) and naming the key in every error.
 *
 * Postfix counterpart: mail_params.h (VAR_/DEF_), postconf(5). Times are milliseconds
 * here; in a config they take Postfix's units (`"300s"`, `"5d"`) or a number of seconds.
 *
 * @module
 */

import { ConfigError } from '../errors.js';
import { parseTableSpec } from '../tables/create-table.js';
import type { TableSpec } from '../tables/types.js';
import {
  parseBoolean,
  parseEnum,
  parseInteger,
  parseList,
  parseString,
  parseTime,
} from './values.js';

/**
 * One token of an smtpd restriction list: a restriction name, an argument (a table such
 * as `inline:{ spam.example=REJECT }`, an RBL domain), or, in a code config, an async
 * function (receive/restriction-types.ts) or a LookupTable object as a table argument. Given as a string, a list is split at commas
 * and blanks outside `{...}`; array members are split the same way and flattened.
 */
export type RestrictionEntry =
  | string
  | ((...args: never[]) => unknown)
  | { readonly lookup: (key: string) => Promise<string | undefined> };

/**
 * Postfix's TLS security levels of the SMTP/LMTP client (TLS_README).
 *
 * @example
 * ```ts
 * const mta = new Mta({ smtpTlsSecurityLevel: 'encrypt' satisfies SmtpTlsLevel });
 * ```
 */
export type SmtpTlsLevel = 'none' | 'may' | 'encrypt' | 'verify' | 'secure' | 'dane' | 'dane-only';

/** Every SmtpTlsLevel, in order of strictness. */
export const SMTP_TLS_LEVELS: readonly SmtpTlsLevel[] = [
  'none',
  'may',
  'encrypt',
  'dane',
  'dane-only',
  'verify',
  'secure',
];

/**
 * How smtpd treats a bare LF (Postfix 3.9 smtpd_forbid_bare_newline).
 *
 * @example
 * ```ts
 * const params = resolveParameters({ smtpdForbidBareNewline: 'reject' satisfies BareNewlinePolicy });
 * ```
 */
export type BareNewlinePolicy = 'normalize' | 'note' | 'reject' | 'no';

/**
 * The resolved main parameters. Every field has Postfix's default.
 *
 * @example
 * ```ts
 * const params: Parameters = resolveParameters({ myhostname: 'mx.example.com' });
 * params.messageSizeLimit; // 10240000, Postfix's default
 * ```
 */
export interface Parameters {
  /** Postfix `myhostname`. @default the host's name (or `localhost.localdomain` if it has no dot) */
  readonly myhostname: string;
  /** Postfix `mydomain`. @default `myhostname` less its first label */
  readonly mydomain: string;
  /** Postfix `myorigin`: the domain appended to bare local parts. @default `myhostname` */
  readonly myorigin: string;
  /** Postfix `mydestination`: domains delivered locally. @default [`myhostname`, `localhost.${mydomain}`, `localhost`] */
  readonly mydestination: readonly string[];
  /**
   * Postfix `inet_interfaces`: the machine's addresses for mail, so that
   * `user@[192.0.2.1]` is local when 192.0.2.1 is one of them. `all` means every
   * address of the host's interfaces, `loopback-only` 127.0.0.1 and ::1. (Listeners bind
   * where their `listen` says.) @default ['all']
   */
  readonly inetInterfaces: readonly string[];
  /** Postfix `proxy_interfaces`: addresses of a proxy or NAT in front that also mean this machine. @default [] */
  readonly proxyInterfaces: readonly string[];
  /** Postfix `mynetworks`: trusted clients, CIDR. @default ['127.0.0.0/8', '::1/128'] */
  readonly mynetworks: readonly string[];
  /** Postfix `relay_domains`. @default [] */
  readonly relayDomains: readonly string[];
  /** Postfix `relayhost`: nexthop for the default class. @default '' (direct MX) */
  readonly relayhost: string;
  /** Postfix `mail_name`, shown in the banner and Received. @default 'Postern' */
  readonly mailName: string;
  /** Postfix `smtpd_banner`. @default `${myhostname} ESMTP ${mailName}` */
  readonly smtpdBanner: string;
  /**
   * Postfix `syslog_name`: the program name's prefix in log lines (`postern/smtpd[pid]`);
   * a listener may set its own (`postern/submission`), as master.cf's `-o syslog_name`.
   * Letters, digits and `._/-` only. @default 'postern'
   */
  readonly syslogName: string;
  /**
   * Postfix `maillog_file`: `postern serve` appends its log lines to this file instead of
   * writing them to standard output, and opens it again on SIGHUP (after logrotate moves
   * it). @default '' (standard output)
   */
  readonly maillogFile: string;

  /** Postfix `queue_directory`, the file store's directory. @default './var/queue' */
  readonly queueDirectory: string;
  /** Postfix `mail_spool_directory`; Maildir when it ends in `/`. @default './var/mail/' */
  readonly mailSpoolDirectory: string;
  /**
   * Postfix `alias_maps`: aliases(5) tables for local(8), searched with the local part.
   * A `hash:`, `texthash:` or `aliases:` path is read as an aliases(5) source file; any
   * other table spec createTable() takes works too (no `$1` substitution). Postern
   * differs from Postfix (`hash:/etc/aliases`): the host's aliases are not read unless
   * named. @default undefined (no aliases)
   */
  readonly aliasMaps: TableSpec | undefined;
  /** Postfix `forward_path`: .forward files tried in order. @default ['$home/.forward${recipient_delimiter}${extension}', '$home/.forward'] */
  readonly forwardPath: readonly string[];
  /** Postfix `forward_expansion_filter`: characters allowed in `forward_path` expansions. @default alnum and `!@%-_=+:,./` */
  readonly forwardExpansionFilter: string;
  /** Postfix `allow_mail_to_commands`: where `|command` is allowed (`alias`, `forward`, `include`). @default ['alias', 'forward'] */
  readonly allowMailToCommands: readonly string[];
  /** Postfix `allow_mail_to_files`: where `/file` is allowed (`alias`, `forward`, `include`). @default ['alias', 'forward'] */
  readonly allowMailToFiles: readonly string[];
  /** Postfix `command_expansion_filter`: characters allowed in command environment values. @default alnum and `!@%-_=+:,./` */
  readonly commandExpansionFilter: string;
  /** Postfix `command_time_limit`: local and pipe commands. @default 1000s */
  readonly commandTimeLimit: number;
  /** Postfix `export_environment`: variables passed to commands. @default ['TZ', 'MAIL_CONFIG', 'LANG'] */
  readonly exportEnvironment: readonly string[];
  /** Postfix `mailbox_command`: deliver through this command (procmail-style) instead of a mailbox. @default '' */
  readonly mailboxCommand: string;
  /** Postfix `mailbox_transport`: hand mailbox delivery to this transport (`lmtp:unix:/path`). @default '' */
  readonly mailboxTransport: string;
  /** Postfix `fallback_transport`: transport for recipients local(8) does not know. @default '' */
  readonly fallbackTransport: string;
  /** Postfix `luser_relay`: where mail for unknown local users goes (`$user`, `$local`, `$extension`, `$domain` expand). @default '' */
  readonly luserRelay: string;
  /** Postfix `home_mailbox`: mailbox relative to the home directory (`Maildir/` or `Mailbox`). @default '' */
  readonly homeMailbox: string;
  /**
   * Postern: who the local users are: `virtual` (every valid local part, no home
   * directory) or `passwd` (/etc/passwd: home directories, uid/gid). @default 'virtual'
   */
  readonly localUserDatabase: 'virtual' | 'passwd';
  /** Postfix `mailbox_size_limit` in bytes, mbox and file deliveries; 0 = none. @default 51200000 */
  readonly mailboxSizeLimit: number;
  /**
   * Postfix `default_privs`: the user whose rights local(8) uses for file and command
   * destinations that have no user of their own (root-owned aliases and :include:
   * files, a root recipient's .forward). Only used when Postern runs as root; must not
   * be root. @default 'nobody'
   */
  readonly defaultPrivs: string;
  /**
   * Postfix `max_idle`: how long a helper process that writes with a user's rights
   * waits for its next delivery before it exits. @default 100s
   */
  readonly maxIdle: number;
  /** Postfix `deliver_lock_attempts`. @default 20 */
  readonly deliverLockAttempts: number;
  /** Postfix `deliver_lock_delay`. @default 1s */
  readonly deliverLockDelay: number;
  /** Postfix `stale_lock_time`. @default 500s */
  readonly staleLockTime: number;
  /** Postfix `virtual_mailbox_base`: every virtual(8) mailbox lies below it. @default '' (virtual delivery defers until set) */
  readonly virtualMailboxBase: string;
  /** Postfix `virtual_mailbox_limit` in bytes; 0 = none. @default 51200000 */
  readonly virtualMailboxLimit: number;
  /** Postfix `virtual_minimum_uid`. @default 100 */
  readonly virtualMinimumUid: number;
  /** Postfix `virtual_uid_maps` (numeric uid per recipient; used when running as root). @default undefined */
  readonly virtualUidMaps: TableSpec | undefined;
  /** Postfix `virtual_gid_maps`. @default undefined */
  readonly virtualGidMaps: TableSpec | undefined;

  /** Postfix `message_size_limit` in bytes; 0 = none. @default 10240000 */
  readonly messageSizeLimit: number;
  /** Postfix `line_length_limit`: longest SMTP command/line read. @default 2048 */
  readonly lineLengthLimit: number;
  /** Postfix `header_size_limit`. @default 102400 */
  readonly headerSizeLimit: number;
  /** Postfix `hopcount_limit`: Received headers allowed. @default 50 */
  readonly hopcountLimit: number;

  /** Postfix `smtpd_recipient_limit`. @default 1000 */
  readonly smtpdRecipientLimit: number;
  /** Postfix `smtpd_timeout`. @default 300s */
  readonly smtpdTimeout: number;
  /** Postfix `smtpd_error_sleep_time`. @default 1s */
  readonly smtpdErrorSleepTime: number;
  /** Postfix `smtpd_soft_error_limit`. @default 10 */
  readonly smtpdSoftErrorLimit: number;
  /** Postfix `smtpd_hard_error_limit`. @default 20 */
  readonly smtpdHardErrorLimit: number;
  /** Postfix `smtpd_junk_command_limit`. @default 100 */
  readonly smtpdJunkCommandLimit: number;
  /**
   * Postfix `disable_vrfy_command`. @default true — Postern differs from Postfix here:
   * VRFY tells strangers which users exist.
   */
  readonly disableVrfyCommand: boolean;
  /** Postfix `smtpd_helo_required`. @default false */
  readonly smtpdHeloRequired: boolean;
  /** Postfix `smtpd_forbid_bare_newline`. @default 'normalize' */
  readonly smtpdForbidBareNewline: BareNewlinePolicy;
  /** Postfix `smtpd_forbid_bare_newline_reject_code`. @default 550 */
  readonly smtpdForbidBareNewlineRejectCode: number;
  /**
   * Postfix `smtpd_relay_restrictions` (first cut: `permit_mynetworks`,
   * `permit_sasl_authenticated`, `defer_unauth_destination`, `reject_unauth_destination`,
   * `permit`, `reject`, `defer`). @default ['permit_mynetworks', 'permit_sasl_authenticated', 'defer_unauth_destination']
   */
  readonly smtpdRelayRestrictions: readonly string[];
  /** Postfix `relay_domains_reject_code`. @default 554 */
  readonly relayDomainsRejectCode: number;

  /** Postfix `qmqpd_authorized_clients`: who may use QMQP (addresses, CIDR). @default [] (nobody) */
  readonly qmqpdAuthorizedClients: readonly string[];
  /** Postfix `qmqpd_timeout`. @default 300s */
  readonly qmqpdTimeout: number;
  /** Postfix `qmqpd_error_delay`: pause before a Z or D reply. @default 1s */
  readonly qmqpdErrorDelay: number;

  /**
   * Postfix `smtpd_client_restrictions`: checked at connect (or at RCPT with
   * `smtpdDelayReject`). Entries are restriction names with their arguments
   * (`check_client_access inline:{ 192.0.2.1=REJECT }`), or functions in code configs.
   * @default []
   */
  readonly smtpdClientRestrictions: readonly RestrictionEntry[];
  /** Postfix `smtpd_helo_restrictions`. @default [] */
  readonly smtpdHeloRestrictions: readonly RestrictionEntry[];
  /** Postfix `smtpd_sender_restrictions`. @default [] */
  readonly smtpdSenderRestrictions: readonly RestrictionEntry[];
  /**
   * Postfix `smtpd_recipient_restrictions`, evaluated after the relay list.
   * @default []
   */
  readonly smtpdRecipientRestrictions: readonly RestrictionEntry[];
  /** Postfix `smtpd_data_restrictions`. @default [] */
  readonly smtpdDataRestrictions: readonly RestrictionEntry[];
  /** Postfix `smtpd_end_of_data_restrictions`. @default [] */
  readonly smtpdEndOfDataRestrictions: readonly RestrictionEntry[];
  /** Postfix `smtpd_delay_reject`: client/helo/sender lists run at RCPT. @default true */
  readonly smtpdDelayReject: boolean;
  /** Postfix `smtpd_reject_unlisted_recipient`. @default true */
  readonly smtpdRejectUnlistedRecipient: boolean;
  /** Postfix `reject_code` (`reject`). @default 554 */
  readonly rejectCode: number;
  /** Postfix `defer_code` (`defer`). @default 450 */
  readonly deferCode: number;
  /** Postfix `access_map_reject_code`. @default 554 */
  readonly accessMapRejectCode: number;
  /** Postfix `access_map_defer_code`. @default 450 */
  readonly accessMapDeferCode: number;
  /** Postfix `maps_rbl_reject_code`. @default 554 */
  readonly mapsRblRejectCode: number;
  /** Postfix `unknown_client_reject_code`. @default 450 */
  readonly unknownClientRejectCode: number;
  /** Postfix `unknown_address_reject_code` (sender/recipient domain without DNS). @default 450 */
  readonly unknownAddressRejectCode: number;
  /** Postfix `invalid_hostname_reject_code`. @default 501 */
  readonly invalidHostnameRejectCode: number;
  /** Postfix `non_fqdn_reject_code`. @default 504 */
  readonly nonFqdnRejectCode: number;
  /** Postfix `unknown_local_recipient_reject_code`. @default 550 */
  readonly unknownLocalRecipientRejectCode: number;
  /** Postfix `smtpd_policy_service_timeout`. @default 100s */
  readonly smtpdPolicyServiceTimeout: number;
  /** Postfix `smtpd_policy_service_max_idle`: an idle policy connection is closed. @default 300s */
  readonly smtpdPolicyServiceMaxIdle: number;
  /** Postfix `smtpd_policy_service_try_limit`. @default 2 */
  readonly smtpdPolicyServiceTryLimit: number;
  /** Postfix `smtpd_policy_service_default_action`, used when the server cannot be asked. @default '451 4.3.5 Server configuration problem' */
  readonly smtpdPolicyServiceDefaultAction: string;
  /**
   * Postfix `smtpd_forbid_unauth_pipelining` (3.9): disconnect clients that talk before
   * the greeting or pipeline where they may not. @default true
   */
  readonly smtpdForbidUnauthPipelining: boolean;
  /** Postfix `smtpd_forbid_bare_newline_exclusions`: CIDRs exempt from `reject`. @default `mynetworks` */
  readonly smtpdForbidBareNewlineExclusions: readonly string[];
  /** Postfix `smtpd_tls_security_level`: `none`, `may` (offer STARTTLS), `encrypt` (require it). @default 'none' */
  readonly smtpdTlsSecurityLevel: 'none' | 'may' | 'encrypt';
  /** Postfix `smtpd_tls_cert_file` (PEM; may hold the chain). @default '' */
  readonly smtpdTlsCertFile: string;
  /** Postfix `smtpd_tls_key_file` (PEM). @default `smtpdTlsCertFile` */
  readonly smtpdTlsKeyFile: string;
  /** Postfix `smtpd_tls_wrappermode`: TLS from the first byte (port 465). @default false */
  readonly smtpdTlsWrappermode: boolean;
  /**
   * Postfix `smtpd_tls_auth_only`: offer AUTH only over TLS. @default true — Postern
   * differs from Postfix (default no): PLAIN and LOGIN send the password in the clear.
   */
  readonly smtpdTlsAuthOnly: boolean;
  /** Postfix `smtpd_starttls_timeout`: TLS handshake deadline. @default 300s */
  readonly smtpdStarttlsTimeout: number;
  /** Postfix `smtpd_sasl_auth_enable`. @default false */
  readonly smtpdSaslAuthEnable: boolean;
  /** Postfix `smtpd_sasl_authenticated_header`: name the SASL user in Received. @default false */
  readonly smtpdSaslAuthenticatedHeader: boolean;
  /**
   * SASL mechanisms offered, of `PLAIN`, `LOGIN` and `CRAM-MD5` (Postfix takes this list
   * from its SASL server's `mech_list`). CRAM-MD5 is off by default and needs the
   * authenticator to be a table of clear passwords. @default ['PLAIN', 'LOGIN']
   */
  readonly smtpdSaslMechanisms: readonly ('PLAIN' | 'LOGIN' | 'CRAM-MD5')[];
  /** Postfix `smtpd_authorized_xclient_hosts`: CIDRs allowed to send XCLIENT. @default [] */
  readonly smtpdAuthorizedXclientHosts: readonly string[];
  /** Postfix `smtpd_upstream_proxy_protocol`: '' or `haproxy` (PROXY v1 and v2). @default '' */
  readonly smtpdUpstreamProxyProtocol: '' | 'haproxy';
  /** Postfix `smtpd_upstream_proxy_timeout`. @default 5s */
  readonly smtpdUpstreamProxyTimeout: number;
  /**
   * CIDRs allowed to send the PROXY header (Postern addition; Postfix trusts any peer
   * of a proxy listener). Empty means any peer. @default []
   */
  readonly smtpdUpstreamProxyHosts: readonly string[];
  /** Postfix `smtpd_client_connection_count_limit` (anvil); 0 = none. @default 50 */
  readonly smtpdClientConnectionCountLimit: number;
  /** Postfix `smtpd_client_connection_rate_limit` per `anvilRateTimeUnit`; 0 = none. @default 0 */
  readonly smtpdClientConnectionRateLimit: number;
  /** Postfix `smtpd_client_message_rate_limit`; 0 = none. @default 0 */
  readonly smtpdClientMessageRateLimit: number;
  /** Postfix `smtpd_client_recipient_rate_limit`; 0 = none. @default 0 */
  readonly smtpdClientRecipientRateLimit: number;
  /** Postfix `smtpd_client_auth_rate_limit`; 0 = none. @default 0 */
  readonly smtpdClientAuthRateLimit: number;
  /** Postfix `anvil_rate_time_unit`. @default 60s */
  readonly anvilRateTimeUnit: number;
  /** Postfix `smtpd_client_event_limit_exceptions`: CIDRs exempt from anvil limits. @default `mynetworks` */
  readonly smtpdClientEventLimitExceptions: readonly string[];

  /**
   * Postfix `local_header_rewrite_clients`: clients whose mail gets missing headers added.
   * `permit_inet_interfaces` and `permit_mynetworks` are understood, as are CIDRs.
   * @default ['permit_inet_interfaces']
   */
  readonly localHeaderRewriteClients: readonly string[];
  /** Postfix `always_add_missing_headers`. @default false */
  readonly alwaysAddMissingHeaders: boolean;
  /** Postfix `message_drop_headers`. @default ['bcc', 'content-length', 'resent-bcc', 'return-path'] */
  readonly messageDropHeaders: readonly string[];
  /** Postfix `cleanup_replace_stray_cr_lf`. @default true */
  readonly cleanupReplaceStrayCrLf: boolean;
  /**
   * Postfix `undisclosed_recipients_header`: the header added when a message from a
   * local client has no To/Cc/Bcc (Resent- variants for resent mail); empty = none.
   * @default '' (Postfix 2.8 and later)
   */
  readonly undisclosedRecipientsHeader: string;
  /**
   * Postfix `remote_header_rewrite_domain`: the domain appended to unqualified header
   * addresses of mail from remote clients (not `localHeaderRewriteClients`); empty =
   * headers of remote mail are not rewritten at all. @default ''
   */
  readonly remoteHeaderRewriteDomain: string;
  /** Postfix `header_checks` (header_checks(5)): primary headers, one logical header at a time. @default undefined */
  readonly headerChecks: TableSpec | undefined;
  /** Postfix `mime_header_checks`: MIME headers at any level; `[]` turns it off. @default `headerChecks` */
  readonly mimeHeaderChecks: TableSpec | undefined;
  /** Postfix `nested_header_checks`: headers of attached messages; `[]` turns it off. @default `headerChecks` */
  readonly nestedHeaderChecks: TableSpec | undefined;
  /** Postfix `body_checks` (body_checks(5)): one body line at a time. @default undefined */
  readonly bodyChecks: TableSpec | undefined;
  /** Postfix `body_checks_size_limit`: bytes of each body segment that body_checks see. @default 51200 */
  readonly bodyChecksSizeLimit: number;
  /** Postfix `mime_nesting_limit`. @default 100 */
  readonly mimeNestingLimit: number;
  /** Postfix `mime_boundary_length_limit`. @default 2048 */
  readonly mimeBoundaryLengthLimit: number;
  /**
   * Postfix `internal_mail_filter_classes`: which mail Postern makes itself still gets
   * content checks and the content filter: `bounce` (DSNs), `notify` (postmaster
   * notices). @default [] (none, as Postfix)
   */
  readonly internalMailFilterClasses: readonly string[];
  /** Postfix `canonical_maps` (canonical(5)). @default undefined */
  readonly canonicalMaps: TableSpec | undefined;
  /** Postfix `sender_canonical_maps`. @default undefined */
  readonly senderCanonicalMaps: TableSpec | undefined;
  /** Postfix `recipient_canonical_maps`. @default undefined */
  readonly recipientCanonicalMaps: TableSpec | undefined;
  /**
   * Postfix `canonical_classes`: `envelope_sender`, `envelope_recipient`,
   * `header_sender`, `header_recipient`. @default all four
   */
  readonly canonicalClasses: readonly string[];
  /** Postfix `masquerade_domains` (`!domain` excludes). @default [] */
  readonly masqueradeDomains: readonly string[];
  /** Postfix `masquerade_exceptions`: local parts never masqueraded. @default [] */
  readonly masqueradeExceptions: readonly string[];
  /** Postfix `masquerade_classes`. @default ['envelope_sender', 'header_sender', 'header_recipient'] */
  readonly masqueradeClasses: readonly string[];
  /** Postfix `propagate_unmatched_extensions`. @default ['canonical', 'virtual'] */
  readonly propagateUnmatchedExtensions: readonly string[];
  /** Postfix `virtual_alias_recursion_limit`. @default 1000 */
  readonly virtualAliasRecursionLimit: number;
  /** Postfix `virtual_alias_expansion_limit`. @default 1000 */
  readonly virtualAliasExpansionLimit: number;
  /** Postfix `virtual_alias_address_length_limit`. @default 1000 */
  readonly virtualAliasAddressLengthLimit: number;
  /** Postfix `always_bcc`: every message also goes here. @default '' */
  readonly alwaysBcc: string;
  /** Postfix `sender_bcc_maps`. @default undefined */
  readonly senderBccMaps: TableSpec | undefined;
  /** Postfix `recipient_bcc_maps`. @default undefined */
  readonly recipientBccMaps: TableSpec | undefined;

  /** Postfix `append_at_myorigin`. @default true */
  readonly appendAtMyorigin: boolean;
  /** Postfix `recipient_delimiter`. @default '' */
  readonly recipientDelimiter: string;

  /** Postfix `local_transport`. @default 'local' */
  readonly localTransport: string;
  /** Postfix `default_transport`. @default 'smtp' */
  readonly defaultTransport: string;
  /** Postfix `relay_transport`. @default 'relay' */
  readonly relayTransport: string;
  /** Postfix `virtual_transport`: transport of the virtual mailbox class. @default 'virtual' */
  readonly virtualTransport: string;

  /** Postfix `swap_bangpath`: `site!user` becomes `user@site`. @default true */
  readonly swapBangpath: boolean;
  /** Postfix `allow_percent_hack`: `user%domain` becomes `user@domain`. @default true */
  readonly allowPercentHack: boolean;
  /** Postfix `append_dot_mydomain`: `user@host` becomes `user@host.$mydomain`. @default false (Postfix >= 3.0) */
  readonly appendDotMydomain: boolean;
  /** Postfix `resolve_numeric_domain`: `user@192.0.2.1` is a domain, not an error. @default false */
  readonly resolveNumericDomain: boolean;
  /** Postfix `resolve_null_domain`: `user@` resolves (to the local class) instead of bouncing. @default false */
  readonly resolveNullDomain: boolean;
  /**
   * Postfix `allow_min_user`: a sender or recipient address may start with `-`; when off,
   * SMTP, QMQP, `submit()` and `sendmail -f` refuse such a sender and recipients bounce.
   * Pipe and local commands never get such a value as an option either way. @default false
   */
  readonly allowMinUser: boolean;
  /**
   * Postfix `allow_untrusted_routing`: smtpd lets strangers send `user@host@dom`,
   * `user%host@dom`, `host!user@dom` to relayDomains. @default false
   */
  readonly allowUntrustedRouting: boolean;
  /** Postfix `empty_address_recipient`: where mail to `<>` goes. @default 'MAILER-DAEMON' */
  readonly emptyAddressRecipient: string;
  /**
   * Postfix `parent_domain_matches_subdomains`: features where `example.com` also
   * matches `sub.example.com` (else write `.example.com`). Names in camelCase or
   * Postfix's. @default ['debugPeerList', 'fastFlushDomains', 'mynetworks', 'permitMboxMailCommands', 'relayDomains', 'smtpdAccessMaps']
   */
  readonly parentDomainMatchesSubdomains: readonly string[];
  /**
   * Postfix `virtual_alias_domains`: domains whose every address must be aliased away
   * by virtualAliasMaps (else 5.1.1). Entries: names, `.parent`, `type:name` tables
   * (the domain is looked up as a key), `$virtualAliasMaps`. @default ['$virtualAliasMaps']
   */
  readonly virtualAliasDomains: readonly string[];
  /** Postfix `virtual_alias_maps` (virtual(5)). @default undefined (none) */
  readonly virtualAliasMaps: TableSpec | undefined;
  /** Postfix `virtual_mailbox_domains`, entries as virtualAliasDomains. @default ['$virtualMailboxMaps'] */
  readonly virtualMailboxDomains: readonly string[];
  /**
   * Postfix `virtual_mailbox_maps`: the valid virtual mailbox recipients, and for the
   * virtual agent each one's mailbox path (`/` at the end = Maildir). @default undefined
   */
  readonly virtualMailboxMaps: TableSpec | undefined;
  /**
   * Postfix `local_recipient_maps`: the valid recipients of the local domains; smtpd
   * refuses any other local recipient at RCPT with `550 5.1.1 ... User unknown in local
   * recipient table`. As in Postfix, the host's accounts (`unix:passwd.byname`: `getent
   * passwd`, or /etc/passwd) and the alias tables (`$aliasMaps`). `""` or `[]` (Postfix's
   * `local_recipient_maps =`) accepts every local part; the embedded default that
   * `postern serve` runs without a config does that. @default ['unix:passwd.byname', '$aliasMaps']
   */
  readonly localRecipientMaps: TableSpec | undefined;
  /** Postfix `relay_recipient_maps`: valid relay recipients; undefined = all. @default undefined */
  readonly relayRecipientMaps: TableSpec | undefined;
  /** Postfix `transport_maps` (transport(5)). @default undefined */
  readonly transportMaps: TableSpec | undefined;
  /** Postfix `relocated_maps` (relocated(5)): bounce with `5.1.6 User has moved to ...`. @default undefined */
  readonly relocatedMaps: TableSpec | undefined;
  /** Postfix `sender_dependent_relayhost_maps`, keyed by sender. @default undefined */
  readonly senderDependentRelayhostMaps: TableSpec | undefined;
  /** Postfix `sender_dependent_default_transport_maps`, keyed by sender. @default undefined */
  readonly senderDependentDefaultTransportMaps: TableSpec | undefined;
  /**
   * Postern: how long results of function tables (a host app's database) are cached.
   * @default 60s
   */
  readonly lookupTableCacheTtl: number;

  /**
   * Postfix `default_process_limit`: most SMTP sessions of one listener at once (a
   * listener's `maxproc` overrides it), and most deliveries in flight. A connection
   * beyond the limit waits, with no greeting yet, as in Postfix's listen backlog.
   * @default 100
   */
  readonly defaultProcessLimit: number;
  /** Postfix `qmgr_message_active_limit`. @default 20000 */
  readonly qmgrMessageActiveLimit: number;
  /** Postfix `queue_run_delay`. @default 300s */
  readonly queueRunDelay: number;
  /** Postfix `minimal_backoff_time`. @default 300s */
  readonly minimalBackoffTime: number;
  /** Postfix `maximal_backoff_time`. @default 4000s */
  readonly maximalBackoffTime: number;
  /** Postfix `maximal_queue_lifetime`. @default 5d */
  readonly maximalQueueLifetime: number;
  /** Postfix `bounce_queue_lifetime`. @default 5d */
  readonly bounceQueueLifetime: number;
  /** Postfix `default_destination_concurrency_limit`. @default 20 */
  readonly defaultDestinationConcurrencyLimit: number;
  /** Postfix `local_destination_concurrency_limit`. @default 2 */
  readonly localDestinationConcurrencyLimit: number;
  /** Postfix `default_destination_recipient_limit`. @default 50 */
  readonly defaultDestinationRecipientLimit: number;
  /** Postfix `local_destination_recipient_limit`. @default 1 */
  readonly localDestinationRecipientLimit: number;
  /** Postfix `initial_destination_concurrency`: a destination's first concurrency window. @default 5 */
  readonly initialDestinationConcurrency: number;
  /**
   * Postfix `default_destination_concurrency_positive_feedback`: window growth per
   * delivery without a connection or handshake failure. @default 1
   */
  readonly defaultDestinationConcurrencyPositiveFeedback: number;
  /**
   * Postfix `default_destination_concurrency_negative_feedback`: window shrink per
   * connection or handshake failure. @default 1
   */
  readonly defaultDestinationConcurrencyNegativeFeedback: number;
  /**
   * Postfix `default_destination_concurrency_failed_cohort_limit`: failed pseudo-cohorts
   * after which a destination is dead (its mail deferred without connection attempts).
   * @default 1
   */
  readonly defaultDestinationConcurrencyFailedCohortLimit: number;
  /** Postfix `default_destination_rate_delay`: pause between deliveries to one destination. @default 0s */
  readonly defaultDestinationRateDelay: number;
  /** Postfix `qmgr_message_recipient_limit`: recipients held in the active window. @default 20000 */
  readonly qmgrMessageRecipientLimit: number;
  /** Postfix `defer_transports`: transports whose mail stays queued. @default [] */
  readonly deferTransports: readonly string[];
  /** Postfix `delay_warning_time`: when a delay notice is sent; 0 = never. @default 0h */
  readonly delayWarningTime: number;
  /** Postfix `soft_bounce`: every 5xx becomes 4xx. @default false */
  readonly softBounce: boolean;
  /** Postfix `bounce_size_limit`. @default 50000 */
  readonly bounceSizeLimit: number;
  /** Postfix `double_bounce_sender`. @default 'double-bounce' */
  readonly doubleBounceSender: string;
  /** Postfix `2bounce_notice_recipient`: who gets undeliverable notices. @default 'postmaster' */
  readonly '2bounceNoticeRecipient': string;
  /** Postfix `bounce_notice_recipient`: who gets copies of non-delivery notices (class `bounce`). @default 'postmaster' */
  readonly bounceNoticeRecipient: string;
  /** Postfix `delay_notice_recipient`: who gets copies of delay notices (class `delay`). @default 'postmaster' */
  readonly delayNoticeRecipient: string;
  /** Postfix `error_notice_recipient`: who gets `resource`/`software` notices. @default 'postmaster' */
  readonly errorNoticeRecipient: string;
  /**
   * Postfix `notify_classes`: problems reported to the postmaster — `bounce` (a copy of
   * each non-delivery notice, headers only), `2bounce` (undeliverable notices), `delay`
   * (a copy of each delay notice); `policy`, `protocol`, `resource`, `software` (a
   * transcript of the SMTP session to `errorNoticeRecipient`). Postfix's default is
   * `resource, software`, which drops undeliverable notices; Postern adds `2bounce` so
   * a failed notice reaches the postmaster unless the operator says otherwise.
   * @default ['resource', 'software', '2bounce']
   */
  readonly notifyClasses: readonly string[];
  /** Postfix `smtp_connect_timeout`. @default 30s */
  readonly smtpConnectTimeout: number;
  /** Postfix `smtp_helo_timeout`: the greeting and the EHLO/HELO reply. @default 300s */
  readonly smtpHeloTimeout: number;
  /** Postfix `smtp_starttls_timeout`: STARTTLS reply and TLS handshake. @default 300s */
  readonly smtpStarttlsTimeout: number;
  /** Postfix `smtp_mail_timeout`. @default 300s */
  readonly smtpMailTimeout: number;
  /** Postfix `smtp_rcpt_timeout`. @default 300s */
  readonly smtpRcptTimeout: number;
  /** Postfix `smtp_data_init_timeout`: the reply to DATA. @default 120s */
  readonly smtpDataInitTimeout: number;
  /** Postfix `smtp_data_xfer_timeout`: no progress while sending the body. @default 180s */
  readonly smtpDataXferTimeout: number;
  /** Postfix `smtp_data_done_timeout`: the reply to the final ".". @default 600s */
  readonly smtpDataDoneTimeout: number;
  /** Postfix `smtp_rset_timeout`. @default 20s */
  readonly smtpRsetTimeout: number;
  /** Postfix `smtp_quit_timeout`. @default 300s */
  readonly smtpQuitTimeout: number;
  /** Postfix `smtp_skip_quit_response`. @default true */
  readonly smtpSkipQuitResponse: boolean;
  /** Postfix `smtp_helo_name`. @default `myhostname` */
  readonly smtpHeloName: string;
  /** Postfix `smtp_always_send_ehlo`. @default true */
  readonly smtpAlwaysSendEhlo: boolean;
  /** Postfix `smtp_skip_4xx_greeting`: a 4xx greeting moves on to the next server. @default true */
  readonly smtpSkip4xxGreeting: boolean;
  /** Postfix `smtp_skip_5xx_greeting`: a 5xx greeting moves on (else it bounces). @default true */
  readonly smtpSkip5xxGreeting: boolean;
  /** Postfix `smtp_line_length_limit`: longer lines are folded with CRLF SPACE; 0 = never. @default 998 */
  readonly smtpLineLengthLimit: number;
  /** Postfix `smtp_mx_address_limit`: server addresses tried per delivery; 0 = no limit. @default 5 */
  readonly smtpMxAddressLimit: number;
  /** Postfix `smtp_mx_session_limit`: sessions (greeted servers) per delivery; 0 = no limit. @default 2 */
  readonly smtpMxSessionLimit: number;
  /** Postfix `smtp_address_preference`: `any`, `ipv4` or `ipv6`. @default 'any' */
  readonly smtpAddressPreference: 'any' | 'ipv4' | 'ipv6';
  /** Postfix `smtp_randomize_addresses`: shuffle MX hosts of equal preference. @default true */
  readonly smtpRandomizeAddresses: boolean;
  /** Postfix `smtp_defer_if_no_mx_address_found`. @default false */
  readonly smtpDeferIfNoMxAddressFound: boolean;
  /** Postfix `smtp_bind_address`: IPv4 source address of outgoing connections. @default '' */
  readonly smtpBindAddress: string;
  /** Postfix `smtp_bind_address6`: IPv6 source address of outgoing connections. @default '' */
  readonly smtpBindAddress6: string;
  /**
   * Postfix `smtp_tls_security_level`: `none`, `may`, `encrypt`, `verify`, `secure`,
   * `dane`, `dane-only` (the DANE levels need a DANE verifier given to the agent).
   * @default 'may' (Postfix 3.11)
   */
  readonly smtpTlsSecurityLevel: SmtpTlsLevel;
  /**
   * Postfix `smtp_tls_policy_maps`: nexthop (`example.com`, `[mx.example.com]:587`) →
   * `level [match=name:name]`, e.g. `secure match=.example.com`. Any table spec
   * createTable() takes. @default undefined
   */
  readonly smtpTlsPolicyMaps: unknown;
  /** Postfix `smtp_tls_CAfile`: PEM file of trusted CAs for verify/secure; '' = Node's bundle. @default '' */
  readonly smtpTlsCAfile: string;
  /**
   * MTA-STS (RFC 8461) for mail sent through MX look-ups: a domain's `enforce` policy
   * limits delivery to its listed MX hosts over TLS with a verified certificate, else the
   * mail defers; `testing` only logs. An `smtpTlsPolicyMaps` entry for the destination
   * wins. Postfix has no such parameter (postfix-mta-sts-resolver does it there).
   * @default false
   */
  readonly smtpMtaStsEnable: boolean;
  /** Domains whose MTA-STS policy is kept in memory (least recently used dropped first). @default 10000 */
  readonly smtpMtaStsCacheSize: number;
  /** Time limit of one MTA-STS policy fetch over HTTPS. @default 10s */
  readonly smtpMtaStsFetchTimeout: number;
  /** Postfix `smtp_sasl_auth_enable`. @default false */
  readonly smtpSaslAuthEnable: boolean;
  /**
   * Postfix `smtp_sasl_password_maps`: nexthop (`[relay.example.com]:587`, then the host
   * name, then the domain) → `user:password`. Any table spec createTable() takes.
   * @default undefined
   */
  readonly smtpSaslPasswordMaps: unknown;
  /** Postfix `smtp_sasl_security_options` (plaintext session). @default ['noplaintext', 'noanonymous'] */
  readonly smtpSaslSecurityOptions: readonly string[];
  /** Postfix `smtp_sasl_tls_security_options` (TLS session). @default ['noanonymous'] */
  readonly smtpSaslTlsSecurityOptions: readonly string[];
  /** Postfix `smtp_connection_cache_time_limit`: idle time of a cached session; 0 = no cache. @default 2s */
  readonly smtpConnectionCacheTimeLimit: number;
  /** Postfix `smtp_connection_reuse_count_limit`: messages per session; 0 = no limit. @default 0 */
  readonly smtpConnectionReuseCountLimit: number;
  /** Postfix `smtp_connection_reuse_time_limit`. @default 300s */
  readonly smtpConnectionReuseTimeLimit: number;
  /** Postfix `disable_mime_output_conversion`: send 8-bit mail as is to servers without 8BITMIME. @default false */
  readonly disableMimeOutputConversion: boolean;
  /** Postfix `lmtp_connect_timeout`; 0 = the system's. @default 0s */
  readonly lmtpConnectTimeout: number;
  /** Postfix `lmtp_lhlo_timeout`. @default 300s */
  readonly lmtpLhloTimeout: number;
  /** Postfix `lmtp_lhlo_name`. @default `myhostname` */
  readonly lmtpLhloName: string;
  /** Postfix `lmtp_tls_security_level`. @default 'none' */
  readonly lmtpTlsSecurityLevel: SmtpTlsLevel;
  /** Postfix `lmtp_sasl_auth_enable`. @default false */
  readonly lmtpSaslAuthEnable: boolean;
  /** Postfix `lmtp_cache_connection`. @default true */
  readonly lmtpCacheConnection: boolean;
}

type Kind =
  | { readonly type: 'string' }
  | { readonly type: 'list' }
  | { readonly type: 'restrictions' }
  | { readonly type: 'time' }
  | { readonly type: 'integer'; readonly min?: number }
  | { readonly type: 'boolean' }
  | { readonly type: 'enum'; readonly choices: readonly string[] }
  /** A list whose every item is one of `choices` (upper-cased). */
  | { readonly type: 'enumList'; readonly choices: readonly string[] }
  /** A table spec, kept as given; its consumer passes it to createTable(). */
  | { readonly type: 'table' };

interface Declaration {
  readonly kind: Kind;
  /** A constant, or computed from the parameters resolved before it. */
  readonly default: unknown | ((p: Record<string, unknown>) => unknown);
}

const S = { type: 'string' } as const;
const L = { type: 'list' } as const;
const R = { type: 'restrictions' } as const;
/** A lookup table spec (tables/types.ts TableSpec), default undefined = no table. */
const TB = { type: 'table' } as const;
const T = { type: 'time' } as const;
const I = { type: 'integer' } as const;
const B = { type: 'boolean' } as const;

/** Declaration order matters: computed defaults read parameters declared above them. */
const DECLARATIONS: Record<keyof Parameters, Declaration> = {
  myhostname: { kind: S, default: () => defaultHostname() },
  mydomain: {
    kind: S,
    default: (p: Record<string, unknown>) => parentDomain(String(p.myhostname)),
  },
  myorigin: { kind: S, default: (p: Record<string, unknown>) => p.myhostname },
  inetInterfaces: { kind: L, default: ['all'] },
  proxyInterfaces: { kind: L, default: [] },
  mydestination: {
    kind: L,
    default: (p: Record<string, unknown>) => [
      p.myhostname,
      `localhost.${String(p.mydomain)}`,
      'localhost',
    ],
  },
  mynetworks: { kind: L, default: ['127.0.0.0/8', '::1/128'] },
  relayDomains: { kind: L, default: [] },
  relayhost: { kind: S, default: '' },
  mailName: { kind: S, default: 'Postern' },
  smtpdBanner: {
    kind: S,
    default: (p: Record<string, unknown>) => `${String(p.myhostname)} ESMTP ${String(p.mailName)}`,
  },
  syslogName: { kind: S, default: 'postern' },
  maillogFile: { kind: S, default: '' },
  queueDirectory: { kind: S, default: './var/queue' },
  mailSpoolDirectory: { kind: S, default: './var/mail/' },
  aliasMaps: { kind: { type: 'table' }, default: undefined },
  forwardPath: {
    kind: L,
    default: ['$home/.forward${recipient_delimiter}${extension}', '$home/.forward'],
  },
  forwardExpansionFilter: {
    kind: S,
    default: '1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
  },
  allowMailToCommands: { kind: L, default: ['alias', 'forward'] },
  allowMailToFiles: { kind: L, default: ['alias', 'forward'] },
  commandExpansionFilter: {
    kind: S,
    default: '1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
  },
  commandTimeLimit: { kind: T, default: 1_000_000 },
  exportEnvironment: { kind: L, default: ['TZ', 'MAIL_CONFIG', 'LANG'] },
  mailboxCommand: { kind: S, default: '' },
  mailboxTransport: { kind: S, default: '' },
  fallbackTransport: { kind: S, default: '' },
  luserRelay: { kind: S, default: '' },
  homeMailbox: { kind: S, default: '' },
  localUserDatabase: { kind: { type: 'enum', choices: ['virtual', 'passwd'] }, default: 'virtual' },
  mailboxSizeLimit: { kind: I, default: 51_200_000 },
  defaultPrivs: { kind: S, default: 'nobody' },
  maxIdle: { kind: T, default: 100_000 },
  deliverLockAttempts: { kind: { type: 'integer', min: 1 }, default: 20 },
  deliverLockDelay: { kind: T, default: 1000 },
  staleLockTime: { kind: T, default: 500_000 },
  virtualMailboxBase: { kind: S, default: '' },
  virtualMailboxLimit: { kind: I, default: 51_200_000 },
  virtualMinimumUid: { kind: I, default: 100 },
  virtualUidMaps: { kind: { type: 'table' }, default: undefined },
  virtualGidMaps: { kind: { type: 'table' }, default: undefined },
  messageSizeLimit: { kind: I, default: 10240000 },
  lineLengthLimit: { kind: { type: 'integer', min: 512 }, default: 2048 },
  headerSizeLimit: { kind: I, default: 102400 },
  hopcountLimit: { kind: { type: 'integer', min: 1 }, default: 50 },
  smtpdRecipientLimit: { kind: { type: 'integer', min: 1 }, default: 1000 },
  smtpdTimeout: { kind: T, default: 300_000 },
  smtpdErrorSleepTime: { kind: T, default: 1000 },
  smtpdSoftErrorLimit: { kind: I, default: 10 },
  smtpdHardErrorLimit: { kind: { type: 'integer', min: 1 }, default: 20 },
  smtpdJunkCommandLimit: { kind: { type: 'integer', min: 1 }, default: 100 },
  disableVrfyCommand: { kind: B, default: true },
  smtpdHeloRequired: { kind: B, default: false },
  smtpdForbidBareNewline: {
    kind: { type: 'enum', choices: ['normalize', 'note', 'reject', 'no'] },
    default: 'normalize',
  },
  smtpdForbidBareNewlineRejectCode: { kind: { type: 'integer', min: 400 }, default: 550 },
  smtpdRelayRestrictions: {
    kind: L,
    default: ['permit_mynetworks', 'permit_sasl_authenticated', 'defer_unauth_destination'],
  },
  relayDomainsRejectCode: { kind: { type: 'integer', min: 500 }, default: 554 },
  qmqpdAuthorizedClients: { kind: L, default: [] },
  qmqpdTimeout: { kind: T, default: 300_000 },
  qmqpdErrorDelay: { kind: T, default: 1000 },
  smtpdClientRestrictions: { kind: R, default: [] },
  smtpdHeloRestrictions: { kind: R, default: [] },
  smtpdSenderRestrictions: { kind: R, default: [] },
  smtpdRecipientRestrictions: { kind: R, default: [] },
  smtpdDataRestrictions: { kind: R, default: [] },
  smtpdEndOfDataRestrictions: { kind: R, default: [] },
  smtpdDelayReject: { kind: B, default: true },
  smtpdRejectUnlistedRecipient: { kind: B, default: true },
  rejectCode: { kind: { type: 'integer', min: 400 }, default: 554 },
  deferCode: { kind: { type: 'integer', min: 400 }, default: 450 },
  accessMapRejectCode: { kind: { type: 'integer', min: 400 }, default: 554 },
  accessMapDeferCode: { kind: { type: 'integer', min: 400 }, default: 450 },
  mapsRblRejectCode: { kind: { type: 'integer', min: 400 }, default: 554 },
  unknownClientRejectCode: { kind: { type: 'integer', min: 400 }, default: 450 },
  unknownAddressRejectCode: { kind: { type: 'integer', min: 400 }, default: 450 },
  invalidHostnameRejectCode: { kind: { type: 'integer', min: 400 }, default: 501 },
  nonFqdnRejectCode: { kind: { type: 'integer', min: 400 }, default: 504 },
  unknownLocalRecipientRejectCode: { kind: { type: 'integer', min: 400 }, default: 550 },
  smtpdPolicyServiceTimeout: { kind: T, default: 100_000 },
  smtpdPolicyServiceMaxIdle: { kind: T, default: 300_000 },
  smtpdPolicyServiceTryLimit: { kind: { type: 'integer', min: 1 }, default: 2 },
  smtpdPolicyServiceDefaultAction: { kind: S, default: '451 4.3.5 Server configuration problem' },
  smtpdForbidUnauthPipelining: { kind: B, default: true },
  smtpdForbidBareNewlineExclusions: {
    kind: L,
    default: (p: Record<string, unknown>) => p.mynetworks,
  },
  smtpdTlsSecurityLevel: {
    kind: { type: 'enum', choices: ['none', 'may', 'encrypt'] },
    default: 'none',
  },
  smtpdTlsCertFile: { kind: S, default: '' },
  smtpdTlsKeyFile: { kind: S, default: (p: Record<string, unknown>) => p.smtpdTlsCertFile },
  smtpdTlsWrappermode: { kind: B, default: false },
  smtpdTlsAuthOnly: { kind: B, default: true },
  smtpdStarttlsTimeout: { kind: T, default: 300_000 },
  smtpdSaslAuthEnable: { kind: B, default: false },
  smtpdSaslAuthenticatedHeader: { kind: B, default: false },
  smtpdSaslMechanisms: {
    kind: { type: 'enumList', choices: ['PLAIN', 'LOGIN', 'CRAM-MD5'] },
    default: ['PLAIN', 'LOGIN'],
  },
  smtpdAuthorizedXclientHosts: { kind: L, default: [] },
  smtpdUpstreamProxyProtocol: { kind: { type: 'enum', choices: ['', 'haproxy'] }, default: '' },
  smtpdUpstreamProxyTimeout: { kind: T, default: 5_000 },
  smtpdUpstreamProxyHosts: { kind: L, default: [] },
  smtpdClientConnectionCountLimit: { kind: I, default: 50 },
  smtpdClientConnectionRateLimit: { kind: I, default: 0 },
  smtpdClientMessageRateLimit: { kind: I, default: 0 },
  smtpdClientRecipientRateLimit: { kind: I, default: 0 },
  smtpdClientAuthRateLimit: { kind: I, default: 0 },
  anvilRateTimeUnit: { kind: T, default: 60_000 },
  smtpdClientEventLimitExceptions: {
    kind: L,
    default: (p: Record<string, unknown>) => p.mynetworks,
  },
  localHeaderRewriteClients: { kind: L, default: ['permit_inet_interfaces'] },
  alwaysAddMissingHeaders: { kind: B, default: false },
  messageDropHeaders: { kind: L, default: ['bcc', 'content-length', 'resent-bcc', 'return-path'] },
  cleanupReplaceStrayCrLf: { kind: B, default: true },
  undisclosedRecipientsHeader: { kind: S, default: '' },
  remoteHeaderRewriteDomain: { kind: S, default: '' },
  headerChecks: { kind: TB, default: undefined },
  mimeHeaderChecks: { kind: TB, default: (p: Record<string, unknown>) => p.headerChecks },
  nestedHeaderChecks: { kind: TB, default: (p: Record<string, unknown>) => p.headerChecks },
  bodyChecks: { kind: TB, default: undefined },
  bodyChecksSizeLimit: { kind: I, default: 51200 },
  mimeNestingLimit: { kind: I, default: 100 },
  mimeBoundaryLengthLimit: { kind: { type: 'integer', min: 1 }, default: 2048 },
  internalMailFilterClasses: { kind: L, default: [] },
  canonicalMaps: { kind: TB, default: undefined },
  senderCanonicalMaps: { kind: TB, default: undefined },
  recipientCanonicalMaps: { kind: TB, default: undefined },
  canonicalClasses: {
    kind: L,
    default: ['envelope_sender', 'envelope_recipient', 'header_sender', 'header_recipient'],
  },
  masqueradeDomains: { kind: L, default: [] },
  masqueradeExceptions: { kind: L, default: [] },
  masqueradeClasses: {
    kind: L,
    default: ['envelope_sender', 'header_sender', 'header_recipient'],
  },
  propagateUnmatchedExtensions: { kind: L, default: ['canonical', 'virtual'] },
  virtualAliasRecursionLimit: { kind: { type: 'integer', min: 1 }, default: 1000 },
  virtualAliasExpansionLimit: { kind: { type: 'integer', min: 1 }, default: 1000 },
  virtualAliasAddressLengthLimit: { kind: { type: 'integer', min: 1 }, default: 1000 },
  alwaysBcc: { kind: S, default: '' },
  senderBccMaps: { kind: TB, default: undefined },
  recipientBccMaps: { kind: TB, default: undefined },
  appendAtMyorigin: { kind: B, default: true },
  recipientDelimiter: { kind: S, default: '' },
  localTransport: { kind: S, default: 'local' },
  defaultTransport: { kind: S, default: 'smtp' },
  relayTransport: { kind: S, default: 'relay' },
  virtualTransport: { kind: S, default: 'virtual' },
  swapBangpath: { kind: B, default: true },
  allowPercentHack: { kind: B, default: true },
  appendDotMydomain: { kind: B, default: false },
  resolveNumericDomain: { kind: B, default: false },
  resolveNullDomain: { kind: B, default: false },
  allowMinUser: { kind: B, default: false },
  allowUntrustedRouting: { kind: B, default: false },
  emptyAddressRecipient: { kind: S, default: 'MAILER-DAEMON' },
  parentDomainMatchesSubdomains: {
    kind: L,
    default: [
      'debugPeerList',
      'fastFlushDomains',
      'mynetworks',
      'permitMboxMailCommands',
      'relayDomains',
      'smtpdAccessMaps',
    ],
  },
  virtualAliasDomains: { kind: L, default: ['$virtualAliasMaps'] },
  virtualAliasMaps: { kind: TB, default: undefined },
  virtualMailboxDomains: { kind: L, default: ['$virtualMailboxMaps'] },
  virtualMailboxMaps: { kind: TB, default: undefined },
  localRecipientMaps: { kind: TB, default: ['unix:passwd.byname', '$aliasMaps'] },
  relayRecipientMaps: { kind: TB, default: undefined },
  transportMaps: { kind: TB, default: undefined },
  relocatedMaps: { kind: TB, default: undefined },
  senderDependentRelayhostMaps: { kind: TB, default: undefined },
  senderDependentDefaultTransportMaps: { kind: TB, default: undefined },
  lookupTableCacheTtl: { kind: T, default: 60_000 },
  defaultProcessLimit: { kind: { type: 'integer', min: 1 }, default: 100 },
  qmgrMessageActiveLimit: { kind: { type: 'integer', min: 1 }, default: 20000 },
  queueRunDelay: { kind: T, default: 300_000 },
  minimalBackoffTime: { kind: T, default: 300_000 },
  maximalBackoffTime: { kind: T, default: 4_000_000 },
  maximalQueueLifetime: { kind: T, default: 5 * 86_400_000 },
  bounceQueueLifetime: { kind: T, default: 5 * 86_400_000 },
  defaultDestinationConcurrencyLimit: { kind: { type: 'integer', min: 1 }, default: 20 },
  localDestinationConcurrencyLimit: { kind: { type: 'integer', min: 1 }, default: 2 },
  defaultDestinationRecipientLimit: { kind: { type: 'integer', min: 1 }, default: 50 },
  localDestinationRecipientLimit: { kind: { type: 'integer', min: 1 }, default: 1 },
  initialDestinationConcurrency: { kind: { type: 'integer', min: 1 }, default: 5 },
  defaultDestinationConcurrencyPositiveFeedback: { kind: I, default: 1 },
  defaultDestinationConcurrencyNegativeFeedback: { kind: I, default: 1 },
  defaultDestinationConcurrencyFailedCohortLimit: { kind: { type: 'integer', min: 1 }, default: 1 },
  defaultDestinationRateDelay: { kind: T, default: 0 },
  qmgrMessageRecipientLimit: { kind: { type: 'integer', min: 1 }, default: 20000 },
  deferTransports: { kind: L, default: [] },
  delayWarningTime: { kind: T, default: 0 },
  softBounce: { kind: B, default: false },
  bounceSizeLimit: { kind: I, default: 50000 },
  doubleBounceSender: { kind: S, default: 'double-bounce' },
  '2bounceNoticeRecipient': { kind: S, default: 'postmaster' },
  bounceNoticeRecipient: { kind: S, default: 'postmaster' },
  delayNoticeRecipient: { kind: S, default: 'postmaster' },
  errorNoticeRecipient: { kind: S, default: 'postmaster' },
  notifyClasses: { kind: L, default: ['resource', 'software', '2bounce'] },
  smtpConnectTimeout: { kind: T, default: 30_000 },
  smtpHeloTimeout: { kind: T, default: 300_000 },
  smtpStarttlsTimeout: { kind: T, default: 300_000 },
  smtpMailTimeout: { kind: T, default: 300_000 },
  smtpRcptTimeout: { kind: T, default: 300_000 },
  smtpDataInitTimeout: { kind: T, default: 120_000 },
  smtpDataXferTimeout: { kind: T, default: 180_000 },
  smtpDataDoneTimeout: { kind: T, default: 600_000 },
  smtpRsetTimeout: { kind: T, default: 20_000 },
  smtpQuitTimeout: { kind: T, default: 300_000 },
  smtpSkipQuitResponse: { kind: B, default: true },
  smtpHeloName: { kind: S, default: (p: Record<string, unknown>) => p.myhostname },
  smtpAlwaysSendEhlo: { kind: B, default: true },
  smtpSkip4xxGreeting: { kind: B, default: true },
  smtpSkip5xxGreeting: { kind: B, default: true },
  smtpLineLengthLimit: { kind: I, default: 998 },
  smtpMxAddressLimit: { kind: I, default: 5 },
  smtpMxSessionLimit: { kind: I, default: 2 },
  smtpAddressPreference: {
    kind: { type: 'enum', choices: ['any', 'ipv4', 'ipv6'] },
    default: 'any',
  },
  smtpRandomizeAddresses: { kind: B, default: true },
  smtpDeferIfNoMxAddressFound: { kind: B, default: false },
  smtpBindAddress: { kind: S, default: '' },
  smtpBindAddress6: { kind: S, default: '' },
  smtpTlsSecurityLevel: { kind: { type: 'enum', choices: SMTP_TLS_LEVELS }, default: 'may' },
  smtpTlsPolicyMaps: { kind: { type: 'table' }, default: undefined },
  smtpTlsCAfile: { kind: S, default: '' },
  smtpMtaStsEnable: { kind: B, default: false },
  smtpMtaStsCacheSize: { kind: { type: 'integer', min: 1 }, default: 10_000 },
  smtpMtaStsFetchTimeout: { kind: T, default: 10_000 },
  smtpSaslAuthEnable: { kind: B, default: false },
  smtpSaslPasswordMaps: { kind: { type: 'table' }, default: undefined },
  smtpSaslSecurityOptions: { kind: L, default: ['noplaintext', 'noanonymous'] },
  smtpSaslTlsSecurityOptions: { kind: L, default: ['noanonymous'] },
  smtpConnectionCacheTimeLimit: { kind: T, default: 2_000 },
  smtpConnectionReuseCountLimit: { kind: I, default: 0 },
  smtpConnectionReuseTimeLimit: { kind: T, default: 300_000 },
  disableMimeOutputConversion: { kind: B, default: false },
  lmtpConnectTimeout: { kind: T, default: 0 },
  lmtpLhloTimeout: { kind: T, default: 300_000 },
  lmtpLhloName: { kind: S, default: (p: Record<string, unknown>) => p.myhostname },
  lmtpTlsSecurityLevel: { kind: { type: 'enum', choices: SMTP_TLS_LEVELS }, default: 'none' },
  lmtpSaslAuthEnable: { kind: B, default: false },
  lmtpCacheConnection: { kind: B, default: true },
};

/**
 * Names of every main parameter.
 *
 * @example
 * ```ts
 * PARAMETER_NAMES.includes('relayhost'); // true
 * ```
 */
export const PARAMETER_NAMES: readonly (keyof Parameters)[] = Object.keys(
  DECLARATIONS,
) as (keyof Parameters)[];

/** Whether `key` is a main parameter. */
export function isParameterName(key: string): key is keyof Parameters {
  return Object.hasOwn(DECLARATIONS, key);
}

function parseValue(kind: Kind, value: unknown, key: string): unknown {
  switch (kind.type) {
    case 'string':
      return parseString(value, key);
    case 'list':
      return parseList(value, key);
    case 'restrictions':
      return parseRestrictionList(value, key);
    case 'time':
      return parseTime(value, key);
    case 'integer':
      return parseInteger(value, key, kind.min ?? 0);
    case 'boolean':
      return parseBoolean(value, key);
    case 'enum':
      return parseEnum(value, key, kind.choices);
    case 'enumList':
      return parseList(value, key).map((v) => parseEnum(v.toUpperCase(), key, kind.choices));
    case 'table':
      // Shape only: createTable() opens files when the Mta is built.
      return parseTableSpec(value, key);
  }
}

/**
 * Resolves main parameters from `input` (keys that are not main parameters are
 * ignored here; the Mta config checks those). Throws ConfigError naming the key.
 *
 * @example
 * ```ts
 * const params = resolveParameters({ myhostname: 'mx.example.com', mynetworks: ['10.0.0.0/8'] });
 * params.mydestination; // ['mx.example.com', 'localhost.example.com', 'localhost']
 * ```
 */
export function resolveParameters(input: Readonly<Record<string, unknown>> = {}): Parameters {
  const out: Record<string, unknown> = {};
  for (const key of PARAMETER_NAMES) {
    const decl = DECLARATIONS[key];
    const given = input[key];
    if (given !== undefined) {
      out[key] = parseValue(decl.kind, given, key);
    } else {
      out[key] = typeof decl.default === 'function' ? decl.default(out) : decl.default;
    }
  }
  const p = out as unknown as Parameters;
  validate(p);
  return Object.freeze(p);
}

function validate(p: Parameters): void {
  if (!/^[A-Za-z0-9.-]+$/.test(p.myhostname) || p.myhostname.startsWith('.')) {
    throw new ConfigError(
      `myhostname: "${p.myhostname}" is not a valid host name; set a fully qualified name`,
      'myhostname',
    );
  }
  if (!/^[A-Za-z0-9._/-]+$/.test(p.syslogName)) {
    throw new ConfigError(
      `syslogName: "${p.syslogName}" cannot be a log line's program name; use letters, digits and "._/-" (e.g. "postern/submission")`,
      'syslogName',
    );
  }
  if (p.minimalBackoffTime > p.maximalBackoffTime) {
    throw new ConfigError(
      'minimalBackoffTime is greater than maximalBackoffTime; make the minimum the smaller one',
      'minimalBackoffTime',
    );
  }
  for (const net of p.mynetworks) {
    if (!/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(net)) {
      throw new ConfigError(
        `mynetworks: "${net}" is not an address or CIDR block such as "192.0.2.0/24"`,
        'mynetworks',
      );
    }
  }
}

/** Splits restriction-list text at commas and blanks outside braces. */
function splitRestrictionText(text: string, key: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const c of text) {
    if (c === '{') depth++;
    else if (c === '}') depth--;
    if (depth < 0) throw new ConfigError(`${key}: unbalanced "}" in "${text}"`, key);
    if (depth === 0 && (c === ',' || c === ' ' || c === '\t' || c === '\n' || c === '\r')) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (depth !== 0) throw new ConfigError(`${key}: unbalanced "{" in "${text}"`, key);
  if (cur !== '') out.push(cur);
  return out;
}

function parseRestrictionList(value: unknown, key: string): RestrictionEntry[] {
  const items = Array.isArray(value) ? value : [value];
  const out: RestrictionEntry[] = [];
  for (const item of items) {
    if (
      typeof item === 'function' ||
      (typeof item === 'object' &&
        item !== null &&
        typeof (item as { lookup?: unknown }).lookup === 'function')
    )
      out.push(item as RestrictionEntry);
    else if (typeof item === 'string') out.push(...splitRestrictionText(item, key));
    else
      throw new ConfigError(
        `${key}: expected restriction names (a string or an array of strings and functions), got ${JSON.stringify(item)}`,
        key,
      );
  }
  return out;
}

function defaultHostname(): string {
  // Deliberately not os.hostname() at module load: tests and postern/testing pass their own.
  return 'localhost.localdomain';
}

function parentDomain(host: string): string {
  const i = host.indexOf('.');
  return i > 0 && i < host.length - 1 ? host.slice(i + 1) : host;
}
