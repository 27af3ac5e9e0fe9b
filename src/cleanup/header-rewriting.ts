/**
 * HeaderRewriting: addresses in sender and recipient headers (From, Sender, To, Cc,
 * Reply-To, Resent-*...) brought to canonical form and through canonical_maps and
 * masquerade_domains, as Cleanup does for the envelope.
 *
 * Postfix counterpart: cleanup_message.c (cleanup_rewrite_sender,
 * cleanup_rewrite_recip) with cleanup_addr.c's classes: `header_sender` and
 * `header_recipient` in `canonical_classes` / `masquerade_classes`. The context
 * decides how much happens (Postfix's `local_header_rewrite_clients`):
 * - local clients: unqualified addresses get `@$myorigin` (trivial-rewrite's local
 *   context), then canonical maps and masquerading;
 * - remote clients: with `remoteHeaderRewriteDomain` empty (the default) headers are
 *   left exactly as they came; otherwise unqualified addresses get
 *   `@$remoteHeaderRewriteDomain`, then canonical maps and masquerading.
 * A header is rewritten only when one of its addresses changes; everything but the
 * addr-spec (display names, comments, folding) is kept byte for byte.
 *
 * Does not: rewrite headers that are not valid UTF-8 (they pass unchanged), or
 * anything in MIME part headers or attached messages (Postfix neither).
 *
 * SECURITY: the new address is formatted with formatAddress() and reduced to
 * printable text; a header only ever grows by the length of its new addresses and
 * stays one logical header.
 *
 * @module
 */

import { isUtf8 } from 'node:buffer';
import { formatAddress } from '../address/address.js';
import type { Address, QueueId } from '../types.js';
import type { AddressMapping } from './address-mapping.js';
import type { CleanupParameters } from './cleanup-parameters.js';
import {
  findAddresses,
  type HeaderAddress,
  RECIPIENT_HEADERS,
  replaceAddresses,
  SENDER_HEADERS,
} from './header-addresses.js';
import type { HeaderField } from './header-parser.js';

/** What HeaderRewriting needs. */
export interface HeaderRewritingOptions {
  readonly params: CleanupParameters;
  readonly mapping: AddressMapping;
  /** trivial-rewrite's canonical form (local context). */
  readonly rewrite: (address: Address) => Address;
}

export class HeaderRewriting {
  readonly #o: HeaderRewritingOptions;
  readonly #canonSender: boolean;
  readonly #canonRecipient: boolean;
  readonly #masqSender: boolean;
  readonly #masqRecipient: boolean;

  constructor(options: HeaderRewritingOptions) {
    this.#o = options;
    const canon = new Set(options.params.canonicalClasses.map((c) => c.trim().toLowerCase()));
    const masq = new Set(options.params.masqueradeClasses.map((c) => c.trim().toLowerCase()));
    this.#canonSender = canon.has('header_sender');
    this.#canonRecipient = canon.has('header_recipient');
    this.#masqSender = masq.has('header_sender');
    this.#masqRecipient = masq.has('header_recipient');
  }

  /** Whether headers of mail in this context are rewritten at all. */
  applies(local: boolean): boolean {
    return local || this.#o.params.remoteHeaderRewriteDomain !== '';
  }

  /**
   * The header with its addresses rewritten, or undefined when nothing changed (or the
   * header holds no addresses). Without a promise when no canonical table is to be
   * consulted (most headers, and every header when there are no canonical maps).
   * @throws TableError when a canonical table cannot answer
   */
  rewrite(
    field: HeaderField,
    local: boolean,
    queueId?: QueueId,
  ): Promise<Buffer | undefined> | Buffer | undefined {
    const kind = SENDER_HEADERS.has(field.lowerName)
      ? 'sender'
      : RECIPIENT_HEADERS.has(field.lowerName)
        ? 'recipient'
        : undefined;
    if (kind === undefined || !this.applies(local) || !isUtf8(field.raw)) return undefined;
    const canon = kind === 'sender' ? this.#canonSender : this.#canonRecipient;
    const parts = addressesOf(field);
    if (canon && this.#o.mapping.hasCanonical(kind))
      return this.#rewriteAddresses(parts, kind, local, queueId);
    // Most headers keep their addresses: then no list of new ones is made.
    const found = parts.found;
    let next: Address[] | undefined;
    for (let i = 0; i < found.length; i++) {
      const a = found[i]!;
      if (!a.replaceable) continue;
      const mapped = this.#mapped(a.address, kind, local);
      if (mapped === a.address) continue;
      next ??= found.map((f) => f.address);
      next[i] = mapped;
    }
    return next === undefined ? undefined : rebuilt(parts, next);
  }

  async #rewriteAddresses(
    parts: HeaderParts,
    kind: 'sender' | 'recipient',
    local: boolean,
    queueId: QueueId | undefined,
  ): Promise<Buffer | undefined> {
    const { mapping } = this.#o;
    const next: Address[] = [];
    for (const a of parts.found) {
      if (!a.replaceable) {
        next.push('');
        continue;
      }
      const canonical = this.#canonicalForm(a.address, local);
      next.push(
        canonical === undefined
          ? a.address
          : this.#masked(await mapping.canonical(canonical, kind, queueId), kind),
      );
    }
    return rebuilt(parts, next);
  }

  /** The address in canonical form, masqueraded: what it becomes without a canonical table. */
  #mapped(address: Address, kind: 'sender' | 'recipient', local: boolean): Address {
    const canonical = this.#canonicalForm(address, local);
    return canonical === undefined ? address : this.#masked(canonical, kind);
  }

  /** trivial-rewrite's canonical form; undefined when the address is to stay as it is. */
  #canonicalForm(address: Address, local: boolean): Address | undefined {
    const { params, rewrite } = this.#o;
    let addr = address;
    if (!local && !addr.includes('@')) addr = `${addr}@${params.remoteHeaderRewriteDomain}`;
    try {
      addr = rewrite(addr);
    } catch {
      return undefined;
    }
    return addr === '' ? undefined : addr;
  }

  #masked(address: Address, kind: 'sender' | 'recipient'): Address {
    const masq = kind === 'sender' ? this.#masqSender : this.#masqRecipient;
    return masq ? this.#o.mapping.masquerade(address) : address;
  }
}

/** A header as text: where its value starts, and the addresses found in the value. */
interface HeaderParts {
  readonly raw: string;
  readonly colon: number;
  readonly value: string;
  readonly found: readonly HeaderAddress[];
}

function addressesOf(field: HeaderField): HeaderParts {
  const raw = field.raw.toString('utf8');
  const colon = raw.indexOf(':');
  const value = raw.slice(colon + 1);
  return { raw, colon, value, found: findAddresses(value) };
}

/**
 * The header with each replaceable address that changed put in its place (`next[i]`
 * for `found[i]`), or undefined when none did.
 */
function rebuilt(
  { raw, colon, value, found }: HeaderParts,
  next: readonly Address[],
): Buffer | undefined {
  const replacements: { start: number; end: number; text: string }[] = [];
  for (let i = 0; i < found.length; i++) {
    const a = found[i]!;
    if (!a.replaceable || next[i] === a.address) continue;
    const text = formatAddress(next[i]!).replace(/[\x00-\x1f\x7f]/g, '?');
    replacements.push({ start: a.start, end: a.end, text });
  }
  if (replacements.length === 0) return undefined;
  return Buffer.from(raw.slice(0, colon + 1) + replaceAddresses(value, replacements), 'utf8');
}
