/**
 * pipe(8) argv templates and flags: `${sender}`, `${recipient}`, ... expanded into
 * argv elements, never into a shell command line.
 *
 * Postfix counterpart: pipe/pipe.c (expand_argv, the `flags=` attribute) and
 * util/mac_expand.c. Macros: `${sender}` `${recipient}` `${original_recipient}`
 * `${user}` `${extension}` `${mailbox}` `${domain}` `${nexthop}` `${size}`
 * `${queue_id}` `${envid}` `${client_address}` `${client_hostname}` `${client_port}`
 * `${client_protocol}` `${client_helo}` `${sasl_method}` `${sasl_username}`; `$name`
 * works too and `$$` is a literal `$`. An element holding a recipient macro
 * (recipient, original_recipient, user, extension, mailbox, domain) becomes one element
 * per recipient, all macros in it taken from that recipient.
 *
 * Expansion is one pass: a value that contains `$` or `${...}` (an address such as
 * `"${x}"@example.com`) is inserted as it is and never expanded again.
 *
 * Flags: `F` From_ line, `O` X-Original-To, `D` Delivered-To (and loop check), `R`
 * Return-Path, `B` blank line after the message, `X` final delivery (DSN `delivered`
 * instead of `relayed`), `.` dot-stuffing, `>` `>From ` quoting, `h` lower-case
 * domains and nexthop, `q` RFC 5321-quote local parts, `u` lower-case local parts.
 *
 * Does not: `${name?value}` / `${name:value}` conditionals, `{ ... }` grouping (a JSON
 * array already has elements with spaces).
 *
 * SECURITY: the command never goes through a shell; each expansion stays inside its
 * argv element whatever it contains (quotes, spaces, `;`, `|`, NUL is impossible in an
 * address). A value from outside (an address, a HELO name, an ENVID...) that would
 * begin an argument with `-` is refused (OptionLikeArgumentError) unless a literal `--`
 * element comes before it: `["/bin/filter", "-f", "${sender}", "--", "${recipient}"]`
 * refuses a sender `-oQ/tmp@x` but passes a recipient `-x@y` as an operand.
 *
 * @module
 */

import { formatAddress, splitAddress } from '../address/address.js';
import { ConfigError, PosternError } from '../errors.js';
import { splitExtension } from '../tables/search-order.js';
import type { Address } from '../types.js';

/**
 * pipe(8) `flags=`.
 *
 * @example
 * ```ts
 * // flags=FR.> in a transports entry:
 * const mta = new Mta({ transports: { filter: { type: 'pipe', argv: ['/usr/bin/filter'], flags: 'FR.>' } } });
 * ```
 */
export interface PipeFlags {
  /** `F`: prepend a `From sender time` line. */
  readonly fromLine: boolean;
  /** `O`: prepend `X-Original-To:`. */
  readonly originalTo: boolean;
  /** `D`: prepend `Delivered-To:`. */
  readonly deliveredTo: boolean;
  /** `R`: prepend `Return-Path:`. */
  readonly returnPath: boolean;
  /** `B`: append a blank line. */
  readonly blankLine: boolean;
  /** `X`: this is final delivery (DSN `delivered`, not `relayed`). */
  readonly finalDelivery: boolean;
  /** `.`: prepend a dot to lines that start with one. */
  readonly dotStuff: boolean;
  /** `>`: prepend `>` to lines that start with `From `. */
  readonly quoteFrom: boolean;
  /** `h`: fold the domain in `${recipient}`, `${nexthop}`... to lower case. */
  readonly foldDomain: boolean;
  /** `q`: quote white space and other special characters in address macros. */
  readonly quoteLocal: boolean;
  /** `u`: fold the local part in address macros to lower case. */
  readonly foldLocal: boolean;
}

const FLAG_LETTERS: Record<string, keyof PipeFlags> = {
  F: 'fromLine',
  O: 'originalTo',
  D: 'deliveredTo',
  R: 'returnPath',
  B: 'blankLine',
  X: 'finalDelivery',
  '.': 'dotStuff',
  '>': 'quoteFrom',
  h: 'foldDomain',
  q: 'quoteLocal',
  u: 'foldLocal',
};

/** Parses `flags=` text such as `FR.>`. @throws ConfigError on an unknown letter. */
export function parsePipeFlags(text: string, key: string): PipeFlags {
  const flags: Record<keyof PipeFlags, boolean> = {
    fromLine: false,
    originalTo: false,
    deliveredTo: false,
    returnPath: false,
    blankLine: false,
    finalDelivery: false,
    dotStuff: false,
    quoteFrom: false,
    foldDomain: false,
    quoteLocal: false,
    foldLocal: false,
  };
  for (const ch of text) {
    const name = FLAG_LETTERS[ch];
    if (name === undefined) {
      throw new ConfigError(
        `${key}: unknown pipe flag "${ch}"; use any of ${Object.keys(FLAG_LETTERS).join(' ')}`,
        key,
      );
    }
    flags[name] = true;
  }
  return flags;
}

const RECIPIENT_MACROS = new Set([
  'recipient',
  'original_recipient',
  'user',
  'extension',
  'mailbox',
  'domain',
]);
const MESSAGE_MACROS = new Set([
  'sender',
  'nexthop',
  'size',
  'queue_id',
  'envid',
  'client_address',
  'client_hostname',
  'client_port',
  'client_protocol',
  'client_helo',
  'sasl_method',
  'sasl_username',
]);

/** `$$`, `${name}` or `$name`. */
const MACRO = /\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** Message-wide values. Undefined values expand to ''. */
export interface ArgvMessage {
  readonly sender: Address;
  readonly nexthop: string;
  readonly size: number;
  readonly queueId: string;
  readonly envid?: string;
  readonly clientAddress?: string;
  readonly clientHostname?: string;
  readonly clientPort?: number;
  readonly clientProtocol?: string;
  readonly clientHelo?: string;
  readonly saslMethod?: string;
  readonly saslUsername?: string;
}

/** One recipient as the macros see it. */
export interface ArgvRecipient {
  readonly address: Address;
  readonly originalAddress: Address;
}

/** Settings that shape values. */
export interface ArgvSettings {
  readonly flags: PipeFlags;
  /** Postfix `recipient_delimiter`. */
  readonly recipientDelimiter: string;
  /** pipe(8) `null_sender`. @default 'MAILER-DAEMON' */
  readonly nullSender?: string;
}

/**
 * Checks an argv template: a non-empty array of strings (the first names the program,
 * found on the command's PATH `/usr/bin:/bin` unless absolute) whose macros are all
 * known.
 *
 * @throws ConfigError naming `key`.
 */
export function parseArgvTemplate(value: unknown, key: string): string[] {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((v) => typeof v === 'string') ||
    value[0] === ''
  ) {
    throw new ConfigError(
      `${key}: expected an array such as ["/usr/local/bin/filter", "-f", "\${sender}", "--", "\${recipient}"]`,
      key,
    );
  }
  for (const element of value as string[]) {
    for (const m of element.matchAll(MACRO)) {
      if (m[0] === '$$') continue;
      const name = (m[1] ?? m[2] ?? '').trim();
      if (!RECIPIENT_MACROS.has(name) && !MESSAGE_MACROS.has(name)) {
        throw new ConfigError(
          `${key}: unknown macro "${m[0]}" in "${element}"; known: ${[...MESSAGE_MACROS, ...RECIPIENT_MACROS].map((n) => `\${${n}}`).join(' ')} and $$`,
          key,
        );
      }
    }
  }
  return [...(value as string[])];
}

function shapeAddress(address: Address, settings: ArgvSettings): string {
  if (address === '') return '';
  const { local, domain } = splitAddress(address);
  const l = settings.flags.foldLocal ? local.toLowerCase() : local;
  const d = settings.flags.foldDomain ? domain.toLowerCase() : domain;
  const joined = address.includes('@') ? `${l}@${d}` : l;
  return settings.flags.quoteLocal ? formatAddress(joined) : joined;
}

function recipientValue(name: string, r: ArgvRecipient, settings: ArgvSettings): string {
  const { local, domain } = splitAddress(r.address);
  const l = settings.flags.foldLocal ? local.toLowerCase() : local;
  const split = splitExtension(l, settings.recipientDelimiter);
  switch (name) {
    case 'recipient':
      return shapeAddress(r.address, settings);
    case 'original_recipient':
      return shapeAddress(r.originalAddress, settings);
    case 'mailbox':
      return l;
    case 'user':
      return split ? split.user : l;
    case 'extension':
      return split ? split.extension.slice(1) : '';
    case 'domain':
      return settings.flags.foldDomain ? domain.toLowerCase() : domain;
    default:
      return '';
  }
}

function messageValue(name: string, m: ArgvMessage, settings: ArgvSettings): string {
  switch (name) {
    case 'sender':
      return m.sender === ''
        ? (settings.nullSender ?? 'MAILER-DAEMON')
        : shapeAddress(m.sender, settings);
    case 'nexthop':
      return settings.flags.foldDomain ? m.nexthop.toLowerCase() : m.nexthop;
    case 'size':
      return String(m.size);
    case 'queue_id':
      return m.queueId;
    case 'envid':
      return m.envid ?? '';
    case 'client_address':
      return m.clientAddress ?? '';
    case 'client_hostname':
      return m.clientHostname ?? '';
    case 'client_port':
      return m.clientPort === undefined ? '' : String(m.clientPort);
    case 'client_protocol':
      return m.clientProtocol ?? '';
    case 'client_helo':
      return m.clientHelo ?? '';
    case 'sasl_method':
      return m.saslMethod ?? '';
    case 'sasl_username':
      return m.saslUsername ?? '';
    default:
      return '';
  }
}

/**
 * Expands `template` for one message and its recipients into the argv to execute.
 *
 * @throws OptionLikeArgumentError when a value from outside (an address, the client's
 *   HELO name, an ENVID...) would begin an argv element with `-` before a literal `--`
 *   element: the command would take it for an option. `recipient` names the recipient
 *   whose value it was (undefined for a message-wide value such as `${sender}`).
 */
export function expandArgv(
  template: readonly string[],
  message: ArgvMessage,
  recipients: readonly ArgvRecipient[],
  settings: ArgvSettings,
): string[] {
  const out: string[] = [];
  let operands = false;
  for (const [index, element] of template.entries()) {
    const perRecipient = [...element.matchAll(MACRO)].some((m) =>
      RECIPIENT_MACROS.has((m[1] ?? m[2] ?? '').trim()),
    );
    const macroValue = (name: string, r: ArgvRecipient | undefined): string => {
      if (RECIPIENT_MACROS.has(name)) return r ? recipientValue(name, r, settings) : '';
      return messageValue(name, message, settings);
    };
    const check = index > 0 && !operands;
    const expandWith = (r: ArgvRecipient | undefined): string =>
      expandElement(
        element,
        (name) => macroValue(name, r),
        check ? { template, index, r } : undefined,
      );
    if (perRecipient) for (const r of recipients) out.push(expandWith(r));
    else out.push(expandWith(undefined));
    // After a literal `--`, every element is an operand, whatever it starts with.
    if (index > 0 && element === '--') operands = true;
  }
  return out;
}

/**
 * Macros whose values come from outside the mail system: a sender or recipient, the
 * client's names, its ENVID, its SASL login. Such a value never starts an option.
 */
const UNTRUSTED_MACROS: ReadonlySet<string> = new Set([
  ...RECIPIENT_MACROS,
  'sender',
  'envid',
  'client_hostname',
  'client_helo',
  'sasl_method',
  'sasl_username',
]);

/**
 * A value from outside would begin an argv element with `-`. Postfix counterpart: the
 * protection `allow_min_user = no` gives pipe(8) commands; Postern checks here as well,
 * whatever way the mail came in, because a template may name values (an extension, a
 * HELO name) that no entry check sees.
 *
 * @example
 * ```ts
 * try {
 *   expandArgv(['/bin/archive', '${sender}'], { sender: '-oQ/x@example.org', nexthop: 'x', size: 1, queueId: 'Q' }, [], settings);
 * } catch (err) {
 *   if (err instanceof OptionLikeArgumentError) console.log(err.message);
 * }
 * ```
 */
export class OptionLikeArgumentError extends PosternError {
  constructor(
    /** The macro name (`sender`, `recipient`, `extension`...). */
    readonly macro: string,
    /** Its value, which starts with `-`. */
    readonly value: string,
    /** The recipient whose value it is; undefined for a message-wide macro. */
    readonly recipient: ArgvRecipient | undefined,
    /** 0-based position of the element in the template. */
    readonly position: number,
    /** The command (argv[0] of the template). */
    readonly command: string,
  ) {
    super(
      'POSTERN_ERR_OPTION_LIKE_ARGUMENT',
      `\${${macro}} would start argument ${position} of ${command} with "-" (${value.slice(0, 100)}), which the command could take for an option; put a "--" element before it in argv`,
    );
    this.name = 'OptionLikeArgumentError';
  }
}

/**
 * One element with its macros replaced. With `guard`, the first character of the result
 * must not be a `-` that came from an untrusted value.
 */
function expandElement(
  element: string,
  macroValue: (name: string) => string,
  guard: { template: readonly string[]; index: number; r: ArgvRecipient | undefined } | undefined,
): string {
  let out = '';
  let last = 0;
  for (const m of element.matchAll(MACRO)) {
    out += element.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[0] === '$$') {
      out += '$';
      continue;
    }
    const name = (m[1] ?? m[2] ?? '').trim();
    const value = macroValue(name);
    if (guard && out === '' && value.startsWith('-') && UNTRUSTED_MACROS.has(name)) {
      throw new OptionLikeArgumentError(
        name,
        value,
        RECIPIENT_MACROS.has(name) ? guard.r : undefined,
        guard.index,
        guard.template[0] ?? '',
      );
    }
    out += value;
  }
  return out + element.slice(last);
}
