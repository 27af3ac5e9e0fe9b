/**
 * CleanupEnvelope: the envelope side of one cleanup session — sender, recipients and
 * actions as they are given, and the final recipient list made at commit.
 *
 * Postfix counterpart: cleanup_envelope.c and cleanup_addr.c (cleanup_addr_sender,
 * cleanup_addr_recipient, cleanup_addr_bcc), cleanup_out_recipient.c (virtual alias
 * expansion, REDIRECT, duplicate elimination with `duplicate_filter_limit`).
 *
 * Order for each recipient, as Postfix: canonical form (trivial-rewrite, when it is
 * given) → recipient_canonical_maps, canonical_maps (`envelope_recipient` class) →
 * masquerading (if `envelope_recipient` is in masqueradeClasses) → recipient_bcc_maps
 * lookup → virtual alias expansion → duplicate filter. The sender: canonical form →
 * sender_canonical_maps, canonical_maps (`envelope_sender`) → masquerading (in the
 * default classes) → sender_bcc_maps. REDIRECT (last wins) replaces every recipient;
 * `alwaysBcc` and sender BCCs are added only when the message has a recipient; BCCs go
 * through recipient canonical mapping and virtual expansion like any recipient. BCCs
 * from a check or a receiver get NOTIFY=NEVER; always/sender/recipient BCCs keep the
 * default notification, as Postfix.
 *
 * The table work is asynchronous while the Submission contract's envelope calls are
 * not: `setSender` starts the sender's mapping at once (the missing From: header
 * waits for it), recipients are mapped at commit.
 *
 * Does not: write anything, decide the reply (the transaction does).
 *
 * SECURITY: expansion is bounded (address-mapping.ts); the duplicate filter remembers
 * at most DUPLICATE_FILTER_LIMIT recipients, beyond which duplicates are kept rather
 * than memory grown (Postfix's behaviour).
 *
 * @module
 */

import type { Address, DsnNotifyKeyword, Recipient, SenderParams } from '../types.js';
import type { Mutable } from '../util/mutable.js';
import type { AddressMapping, AddressTables } from './address-mapping.js';
import type { CleanupParameters } from './cleanup-parameters.js';

/** Postfix's `duplicate_filter_limit`: how many recipients the duplicate filter remembers. */
export const DUPLICATE_FILTER_LIMIT = 1000;

/** A recipient as given, after trivial-rewrite. */
export interface PendingRecipient {
  readonly address: Address;
  readonly originalAddress: Address;
  readonly notify?: readonly DsnNotifyKeyword[];
  readonly orcpt?: string;
}

/** The classes of a canonical/masquerade class list: every transaction of a server shares one. */
const classSets = new WeakMap<readonly string[], ReadonlySet<string>>();

function classSet(classes: readonly string[]): ReadonlySet<string> {
  let set = classSets.get(classes);
  if (set === undefined) {
    set = new Set(classes.map((c) => c.trim().toLowerCase()));
    // Keyed by the list itself: parameters are read-only once built (a reload builds new ones).
    classSets.set(classes, set);
  }
  return set;
}

/** What the envelope needs from its Cleanup. */
export interface EnvelopeContext {
  readonly params: CleanupParameters;
  readonly mapping: AddressMapping;
  readonly addressTables: AddressTables;
}

const NEVER: readonly DsnNotifyKeyword[] = ['NEVER'];

export class CleanupEnvelope {
  readonly #ctx: EnvelopeContext;
  readonly #canonSender: boolean;
  readonly #canonRecipient: boolean;
  readonly #masqSender: boolean;
  readonly #masqRecipient: boolean;

  /** The sender after trivial-rewrite, undefined until given. */
  sender: Address | undefined;
  senderParams: SenderParams = {};
  /** The mapped sender, or the mapping under way (a table to consult). */
  #mappedSender: Address | Promise<Address> | undefined;
  readonly recipients: PendingRecipient[] = [];
  hold: { reason?: string } | undefined;
  discard: { reason?: string } | undefined;
  redirect: Address | undefined;
  /** BCCs from checks and receivers (NOTIFY=NEVER). */
  readonly bccs: Address[] = [];
  filter: string | undefined;
  /** `sendmail -t`: take recipients from the headers. */
  extract = false;

  constructor(ctx: EnvelopeContext) {
    this.#ctx = ctx;
    const p = ctx.params;
    const canon = classSet(p.canonicalClasses);
    const masq = classSet(p.masqueradeClasses);
    this.#canonSender = canon.has('envelope_sender');
    this.#canonRecipient = canon.has('envelope_recipient');
    this.#masqSender = masq.has('envelope_sender');
    this.#masqRecipient = masq.has('envelope_recipient');
  }

  /** Sets the (rewritten) sender and starts its table mapping. */
  setSender(sender: Address, params: SenderParams): void {
    this.sender = sender;
    this.senderParams = params;
    if (!this.#mapsSender()) {
      this.#mappedSender = sender;
      return;
    }
    const p = this.#mapSender(sender);
    // Failures are read by whoever awaits it; never an unhandled rejection.
    p.catch(() => undefined);
    this.#mappedSender = p;
  }

  /**
   * The sender after canonical maps and masquerading; undefined when none was given. A
   * promise only when a table was to be consulted.
   * @throws TableError / ExpansionLimitError from the tables (as the promise's rejection)
   */
  mappedSenderNow(): Address | undefined | Promise<Address | undefined> {
    return this.#mappedSender;
  }

  /** Whether canonical maps or masquerading can change the sender. */
  #mapsSender(): boolean {
    const { mapping, params } = this.#ctx;
    return (
      (this.#canonSender && mapping.hasCanonical('sender')) ||
      (this.#masqSender && params.masqueradeDomains.length > 0)
    );
  }

  /**
   * The final recipients with ids 0..n-1; a promise only when a table, masquerade,
   * redirect or BCC applies.
   * @throws TableError `retry` or ExpansionLimitError (as the promise's rejection): the
   *   message must be deferred
   */
  finalRecipientsNow(): Recipient[] | Promise<Recipient[]> {
    if (this.#mapsRecipients()) return this.#finalRecipients();
    // Nothing to map: the recipients as given, less duplicates (one recipient, the usual
    // SMTP message, has none).
    if (this.recipients.length <= 1) return numbered(this.recipients);
    const out: PendingRecipient[] = [];
    const add = duplicateFilter(out);
    for (const r of this.recipients) add(r);
    return numbered(out);
  }

  async #finalRecipients(): Promise<Recipient[]> {
    const { mapping, addressTables: tables, params } = this.#ctx;
    const out: PendingRecipient[] = [];
    const add = duplicateFilter(out);
    const expand = async (r: PendingRecipient): Promise<void> => {
      for (const address of await mapping.expandVirtual(r.address)) add({ ...r, address });
    };

    const bccs: { address: Address; notify?: readonly DsnNotifyKeyword[] }[] = [];
    const mapped: PendingRecipient[] = [];
    for (const r of this.recipients) {
      const address = await this.#mapRecipient(r.address);
      mapped.push({ ...r, address });
      for (const b of await mapping.bccFor(tables.recipientBccMaps, address))
        bccs.push({ address: b });
    }
    if (this.redirect !== undefined) {
      const to = await this.#mapRecipient(this.redirect);
      for (const r of mapped) await expand({ ...r, address: to });
    } else {
      for (const r of mapped) await expand(r);
    }
    if (out.length > 0) {
      if (params.alwaysBcc !== '') bccs.push({ address: params.alwaysBcc });
      const sender = await this.#mappedSender;
      if (sender !== undefined && sender !== '') {
        for (const b of await mapping.bccFor(tables.senderBccMaps, sender))
          bccs.push({ address: b });
      }
    }
    for (const address of this.bccs) bccs.push({ address, notify: NEVER });
    for (const b of bccs) {
      const address = await this.#mapRecipient(b.address);
      await expand({
        address,
        originalAddress: b.address,
        ...(b.notify ? { notify: b.notify } : {}),
      });
    }
    return numbered(out);
  }

  /** Whether any table, masquerade, redirect or BCC can change the recipient list. */
  #mapsRecipients(): boolean {
    const { addressTables: tables, params } = this.#ctx;
    return (
      this.redirect !== undefined ||
      this.bccs.length > 0 ||
      params.alwaysBcc !== '' ||
      tables.virtualAliasMaps !== undefined ||
      tables.recipientBccMaps !== undefined ||
      tables.senderBccMaps !== undefined ||
      (this.#canonRecipient && this.#ctx.mapping.hasCanonical('recipient')) ||
      (this.#masqRecipient && params.masqueradeDomains.length > 0)
    );
  }

  async #mapSender(sender: Address): Promise<Address> {
    const { mapping } = this.#ctx;
    let addr = sender;
    if (this.#canonSender) addr = await mapping.canonical(addr, 'sender');
    if (this.#masqSender) addr = mapping.masquerade(addr);
    return addr;
  }

  async #mapRecipient(address: Address): Promise<Address> {
    const { mapping } = this.#ctx;
    let addr = address;
    if (this.#canonRecipient) addr = await mapping.canonical(addr, 'recipient');
    if (this.#masqRecipient) addr = mapping.masquerade(addr);
    return addr;
  }
}

/**
 * Adds a recipient to `out` unless the same address with the same NOTIFY is there
 * already (among the first DUPLICATE_FILTER_LIMIT remembered).
 */
function duplicateFilter(out: PendingRecipient[]): (r: PendingRecipient) => void {
  const seen = new Set<string>();
  return (r) => {
    const key = `${r.address}\n${r.notify ? [...r.notify].sort().join(',') : ''}`;
    if (seen.has(key)) return;
    if (seen.size < DUPLICATE_FILTER_LIMIT) seen.add(key);
    out.push(r);
  };
}

/** The final recipients with their ids 0..n-1. */
function numbered(list: readonly PendingRecipient[]): Recipient[] {
  const out: Recipient[] = [];
  for (let id = 0; id < list.length; id++) {
    const r = list[id]!;
    const rcpt: Mutable<Recipient> = {
      id,
      address: r.address,
      originalAddress: r.originalAddress,
    };
    if (r.notify) rcpt.notify = [...r.notify];
    if (r.orcpt !== undefined) rcpt.orcpt = r.orcpt;
    out.push(rcpt);
  }
  return out;
}
