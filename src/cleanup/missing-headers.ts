/**
 * Missing-header repair: which clients get missing `Message-Id:`, `Date:` and `From:`
 * headers added, and the headers themselves (or their `Resent-` variants).
 *
 * Postfix counterpart: cleanup_message.c (cleanup_header_done_callback) and
 * `local_header_rewrite_clients` / `always_add_missing_headers`. Postfix's rule: when
 * the message has any `Resent-` header, the `Resent-` variants are checked and added
 * instead. The added Message-Id is `<YYYYMMDDhhmmss.QUEUEID@myhostname>` (UTC), as
 * Postfix makes it from short queue IDs; From is the envelope sender, `MAILER-DAEMON`
 * (qualified like any bare address) for the null sender.
 *
 * Clients: `permit_inet_interfaces` matches loopback (127.0.0.0/8, ::1) and any
 * submission without a client address (sendmail, pickup, the API — they come from this
 * host); `permit_mynetworks` matches `mynetworks`; `permit_sasl_authenticated` matches
 * an authenticated session; `static:all` matches everything; any other entry is an
 * address or CIDR block.
 *
 * When the message has no To: and no Cc: (Resent-To/Resent-Cc for resent mail) and
 * `undisclosedRecipientsHeader` is set, that header is added last (Postfix's
 * `undisclosed_recipients_header`, empty by default since Postfix 2.8).
 *
 * Does not: rewrite addresses inside headers, or decide anything for internal mail
 * (cleanup.ts skips it). libmime (about 12 MB resident with its character-set tables) is
 * loaded only when a display name needs RFC 2047 encoding, not when the daemon starts.
 *
 * STANDARDS: RFC 5322 sections 3.6.1 (Date), 3.6.2 (From), 3.6.4 (Message-ID),
 * 3.6.6 (Resent fields).
 *
 * @module
 */

import { createRequire } from 'node:module';
import type Libmime from 'libmime';
import { formatAddress } from '../address/address.js';
import { ConfigError } from '../errors.js';
import { CidrList } from '../tables/cidr.js';
import type { Address, QueueId, SubmissionSource } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { mailDate } from '../util/mail-date.js';
import type { CleanupParameters } from './cleanup-parameters.js';

/** Headers whose presence makes the message "resent" (Postfix's HDR_OPT_RR set). */
export const RESENT_HEADERS: ReadonlySet<string> = new Set([
  'resent-bcc',
  'resent-cc',
  'resent-date',
  'resent-from',
  'resent-message-id',
  'resent-reply-to',
  'resent-sender',
  'resent-to',
]);

/** libmime, loaded on first use: `missingHeaders` is synchronous, hence require. */
let libmime: typeof Libmime | undefined;
function loadLibmime(): typeof Libmime {
  libmime ??= createRequire(import.meta.url)('libmime') as typeof Libmime;
  return libmime;
}

const LOOPBACK = new CidrList(['127.0.0.0/8', '::1/128']);

/** Postfix `local_header_rewrite_clients`, compiled once. */
export class LocalHeaderRewriteClients {
  readonly #inetInterfaces: boolean;
  readonly #sasl: boolean;
  readonly #all: boolean;
  readonly #networks: CidrList | undefined;

  /** @throws ConfigError naming `localHeaderRewriteClients` for an entry it cannot use. */
  constructor(params: Pick<CleanupParameters, 'localHeaderRewriteClients' | 'mynetworks'>) {
    let inet = false;
    let sasl = false;
    let all = false;
    const cidrs: string[] = [];
    for (const entry of params.localHeaderRewriteClients) {
      const e = entry.trim();
      const lower = e.toLowerCase();
      if (lower === 'permit_inet_interfaces') inet = true;
      else if (lower === 'permit_mynetworks') cidrs.push(...params.mynetworks);
      else if (lower === 'permit_sasl_authenticated') sasl = true;
      else if (lower === 'static:all') all = true;
      else if (/^\[?[0-9A-Fa-f.:]+\]?(\/\d{1,3})?$/.test(e)) cidrs.push(e);
      else {
        throw new ConfigError(
          `localHeaderRewriteClients: "${entry}" is not understood; use permit_inet_interfaces, ` +
            'permit_mynetworks, permit_sasl_authenticated, static:all or an address/CIDR block',
          'localHeaderRewriteClients',
        );
      }
    }
    this.#inetInterfaces = inet;
    this.#sasl = sasl;
    this.#all = all;
    try {
      this.#networks = cidrs.length > 0 ? new CidrList(cidrs) : undefined;
    } catch (err) {
      throw new ConfigError(
        `localHeaderRewriteClients: ${errorMessage(err)}`,
        'localHeaderRewriteClients',
        { cause: err },
      );
    }
  }

  /** Whether mail from `source` gets missing headers added. */
  matches(source: SubmissionSource): boolean {
    if (this.#all) return true;
    const address = source.client?.address ?? '';
    if (this.#inetInterfaces && (address === '' || LOOPBACK.matches(address))) return true;
    if (this.#sasl && source.authUser !== undefined && source.authUser !== '') return true;
    return address !== '' && this.#networks !== undefined && this.#networks.matches(address);
  }
}

/** What the header block showed, for deciding which headers are missing. */
export interface MissingHeaderInput {
  /** Lower-cased names of the headers seen in the primary header block. */
  readonly seen: ReadonlySet<string>;
  /** The envelope sender in canonical form ('' for the null sender), if known yet. */
  readonly sender: Address | undefined;
  /** The canonical form of `MAILER-DAEMON` (used for the null sender). */
  readonly mailerDaemon: Address;
  readonly queueId: QueueId;
  /** Postfix `myhostname`. */
  readonly myhostname: string;
  /** Arrival time, ms since the epoch. */
  readonly time: number;
  /** Postfix `undisclosed_recipients_header` (`To: undisclosed-recipients:;`); '' = none. */
  readonly undisclosedRecipientsHeader?: string;
  /** `sendmail -F`: the display name for an added From: header. */
  readonly fullName?: string;
}

/** Whether the header block has any Resent- header. */
export function isResent(seen: ReadonlySet<string>): boolean {
  for (const name of seen) if (RESENT_HEADERS.has(name)) return true;
  return false;
}

/** `<YYYYMMDDhhmmss.QUEUEID@myhostname>` in UTC. */
export function makeMessageId(queueId: QueueId, myhostname: string, time: number): string {
  const d = new Date(time);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const stamp =
    p(d.getUTCFullYear(), 4) +
    p(d.getUTCMonth() + 1) +
    p(d.getUTCDate()) +
    p(d.getUTCHours()) +
    p(d.getUTCMinutes()) +
    p(d.getUTCSeconds());
  return `<${stamp}.${queueId}@${myhostname}>`;
}

/** The headers that are missing, each a complete line ending in CRLF, in Postfix's order. */
export function missingHeaders(input: MissingHeaderInput): {
  headers: string[];
  messageId?: string;
} {
  const prefix = isResent(input.seen) ? 'Resent-' : '';
  const key = prefix.toLowerCase();
  const headers: string[] = [];
  let messageId: string | undefined;
  if (!input.seen.has(`${key}message-id`)) {
    messageId = makeMessageId(input.queueId, input.myhostname, input.time);
    headers.push(`${prefix}Message-Id: ${messageId}\r\n`);
  }
  if (!input.seen.has(`${key}date`)) {
    headers.push(`${prefix}Date: ${mailDate(input.time)}\r\n`);
  }
  if (!input.seen.has(`${key}from`) && input.sender !== undefined) {
    const from = input.sender === '' ? input.mailerDaemon : input.sender;
    const address = headerSafe(formatAddress(from));
    const name = input.fullName ? displayName(input.fullName) : '';
    headers.push(`${prefix}From: ${name ? `${name} <${address}>` : address}\r\n`);
  }
  const undisclosed = input.undisclosedRecipientsHeader ?? '';
  if (undisclosed !== '' && !input.seen.has(`${key}to`) && !input.seen.has(`${key}cc`)) {
    headers.push(`${headerSafe(undisclosed)}\r\n`);
  }
  return messageId === undefined ? { headers } : { headers, messageId };
}

/**
 * A display name as RFC 5322 section 3.4 wants it: an atom sequence as is, anything with
 * specials quoted, anything non-ASCII as an RFC 2047 encoded word.
 */
function displayName(name: string): string {
  const clean = headerSafe(name).trim();
  if (!/^[\x20-\x7e]*$/.test(clean)) return loadLibmime().encodeWord(clean, 'Q');
  if (/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$/.test(clean)) return clean;
  return `"${clean.replace(/(["\\])/g, '\\$1')}"`;
}

/** An address made safe to place in a header line (no control characters). */
function headerSafe(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, '?');
}
