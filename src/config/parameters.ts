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
import {
  parseBoolean,
  parseEnum,
  parseInteger,
  parseList,
  parseString,
  parseTime,
} from './values.js';

/** How smtpd treats a bare LF (Postfix 3.9 smtpd_forbid_bare_newline). */
export type BareNewlinePolicy = 'normalize' | 'note' | 'reject' | 'no';

/** The resolved main parameters. Every field has Postfix's default. */
export interface Parameters {
  /** Postfix `myhostname`. @default the host's name (or `localhost.localdomain` if it has no dot) */
  readonly myhostname: string;
  /** Postfix `mydomain`. @default `myhostname` less its first label */
  readonly mydomain: string;
  /** Postfix `myorigin`: the domain appended to bare local parts. @default `myhostname` */
  readonly myorigin: string;
  /** Postfix `mydestination`: domains delivered locally. @default [`myhostname`, `localhost.${mydomain}`, `localhost`] */
  readonly mydestination: readonly string[];
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

  /** Postfix `queue_directory`, the file store's directory. @default './var/queue' */
  readonly queueDirectory: string;
  /** Postfix `mail_spool_directory`; Maildir when it ends in `/`. @default './var/mail/' */
  readonly mailSpoolDirectory: string;

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
  /** Postfix `soft_bounce`: every 5xx becomes 4xx. @default false */
  readonly softBounce: boolean;
  /** Postfix `bounce_size_limit`. @default 50000 */
  readonly bounceSizeLimit: number;
  /** Postfix `double_bounce_sender`. @default 'double-bounce' */
  readonly doubleBounceSender: string;
}

type Kind =
  | { readonly type: 'string' }
  | { readonly type: 'list' }
  | { readonly type: 'time' }
  | { readonly type: 'integer'; readonly min?: number }
  | { readonly type: 'boolean' }
  | { readonly type: 'enum'; readonly choices: readonly string[] };

interface Declaration {
  readonly kind: Kind;
  /** A constant, or computed from the parameters resolved before it. */
  readonly default: unknown | ((p: Record<string, unknown>) => unknown);
}

const S = { type: 'string' } as const;
const L = { type: 'list' } as const;
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
  queueDirectory: { kind: S, default: './var/queue' },
  mailSpoolDirectory: { kind: S, default: './var/mail/' },
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
  localHeaderRewriteClients: { kind: L, default: ['permit_inet_interfaces'] },
  alwaysAddMissingHeaders: { kind: B, default: false },
  messageDropHeaders: { kind: L, default: ['bcc', 'content-length', 'resent-bcc', 'return-path'] },
  cleanupReplaceStrayCrLf: { kind: B, default: true },
  appendAtMyorigin: { kind: B, default: true },
  recipientDelimiter: { kind: S, default: '' },
  localTransport: { kind: S, default: 'local' },
  defaultTransport: { kind: S, default: 'smtp' },
  relayTransport: { kind: S, default: 'relay' },
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
  softBounce: { kind: B, default: false },
  bounceSizeLimit: { kind: I, default: 50000 },
  doubleBounceSender: { kind: S, default: 'double-bounce' },
};

/** Names of every main parameter. */
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
    case 'time':
      return parseTime(value, key);
    case 'integer':
      return parseInteger(value, key, kind.min ?? 0);
    case 'boolean':
      return parseBoolean(value, key);
    case 'enum':
      return parseEnum(value, key, kind.choices);
  }
}

/**
 * Resolves main parameters from `input` (keys that are not main parameters are
 * ignored here; the Mta config checks those). Throws ConfigError naming the key.
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

function defaultHostname(): string {
  // Deliberately not os.hostname() at module load: tests and postern/testing pass their own.
  return 'localhost.localdomain';
}

function parentDomain(host: string): string {
  const i = host.indexOf('.');
  return i > 0 && i < host.length - 1 ? host.slice(i + 1) : host;
}
