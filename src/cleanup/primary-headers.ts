/**
 * PrimaryHeaders: what Cleanup does with each logical header of the primary header
 * block — header_checks (or mime_header_checks for MIME headers) and their line edits,
 * the names seen (for missing-header repair), `messageDropHeaders`, address rewriting,
 * the hop count, and the addresses `sendmail -t` takes as recipients.
 *
 * Postfix counterpart: cleanup_message.c cleanup_header_callback(): checks run first
 * (a header they delete is not "seen"), then the header is recorded, dropped if it is
 * in message_drop_headers (after the checks saw it), and its addresses rewritten
 * (cleanup_rewrite_sender / _recip). A REPLACE result is a header like any other from
 * there on. CLEANUP_FLAG_EXTRACT collects To/Cc/Bcc, or only the Resent- ones when
 * the message has Resent- headers.
 *
 * Does not: parse the header block (header-parser.ts), write output (the transaction
 * owns the writer), or add headers (missing-headers.ts).
 *
 * SECURITY: at most EXTRACT_LIMIT addresses are collected; a header longer than
 * `headerSizeLimit` has already been cut by the parser and is reported once.
 *
 * @module
 */

import type { ComponentLogger } from '../log.js';
import type { Address, QueueId } from '../types.js';
import { type CheckClass, type ContentChecks, isMimeHeader } from './content-checks.js';
import { findAddresses } from './header-addresses.js';
import type { HeaderField } from './header-parser.js';
import type { HeaderRewriting } from './header-rewriting.js';
import { isResent } from './missing-headers.js';

/** Most recipients taken from headers for `sendmail -t`. */
export const EXTRACT_LIMIT = 10_000;

/** The transaction's side. */
export interface PrimaryHeadersHost {
  readonly queueId: QueueId;
  readonly log: ComponentLogger;
  readonly headerSizeLimit: number;
  readonly dropHeaders: ReadonlySet<string>;
  readonly rewriting: HeaderRewriting;
  /** Whether the message comes from a local client (header rewriting context). */
  readonly localContext: boolean;
  readonly checks: ContentChecks | undefined;
  /** Collect `sendmail -t` recipients. */
  extracting(): boolean;
  /** Inspection or writing stopped (a check rejected, a failure). */
  stopped(): boolean;
  /** Writes a header line (already CRLF-terminated). */
  write(data: Buffer): void;
  /** One Received header more. */
  countHop(): void;
  /** A table failed: defer the message. */
  tableFailed(what: string, err: unknown): void;
}

export class PrimaryHeaders {
  readonly #h: PrimaryHeadersHost;
  /** Lower-cased names of the headers kept (for missing-header repair). */
  readonly seen = new Set<string>();
  /** The Content-Type value, for MIME tracking of the body. */
  contentType: string | undefined;
  readonly #extracted: { normal: Address[]; resent: Address[] } = { normal: [], resent: [] };
  #truncationLogged = false;

  constructor(host: PrimaryHeadersHost) {
    this.#h = host;
  }

  /**
   * Processes one logical header of the primary block; a promise only when there was
   * something to wait for (header checks, address rewriting).
   */
  header(input: HeaderField): Promise<void> | undefined {
    const h = this.#h;
    this.#note(input);
    if (h.checks?.active) return this.#checked(input);
    return this.#finish(input, input.raw);
  }

  /** What is noted of every header as it arrives. */
  #note(field: HeaderField): void {
    const h = this.#h;
    if (field.lowerName === 'received') h.countHop();
    if (field.truncated && !this.#truncationLogged) {
      this.#truncationLogged = true;
      h.log.warning(
        h.queueId,
        `header ${field.name} longer than headerSizeLimit ${h.headerSizeLimit}: excess discarded`,
      );
    }
    if (field.lowerName === 'content-type') this.contentType = field.value;
  }

  /** header_checks / mime_header_checks first, then the rest. */
  async #checked(input: HeaderField): Promise<void> {
    const h = this.#h;
    let field = input;
    let raw = field.raw;
    if (h.checks) {
      const where: CheckClass = isMimeHeader(field.lowerName) ? 'mime-header' : 'header';
      const edit = await h.checks.check(where, unfold(raw));
      if (h.stopped()) return;
      if (edit?.kind === 'ignore' || edit?.kind === 'strip') return;
      if (edit?.kind === 'prepend') h.write(Buffer.from(`${edit.text}\r\n`, 'utf8'));
      if (edit?.kind === 'replace') {
        raw = Buffer.from(`${edit.text}\r\n`, 'utf8');
        const colon = edit.text.indexOf(':');
        const name = colon > 0 ? edit.text.slice(0, colon).trim() : '';
        field = {
          name,
          lowerName: name.toLowerCase(),
          raw,
          value: colon > 0 ? edit.text.slice(colon + 1).trim() : edit.text,
          truncated: false,
        };
      }
    }
    await this.#finish(field, raw);
  }

  /** Notes the header, rewrites its addresses if it has any to rewrite, and writes it. */
  #finish(field: HeaderField, raw: Buffer): Promise<void> | undefined {
    const h = this.#h;
    this.seen.add(field.lowerName);
    if (field.lowerName === 'message-id') h.log.info(h.queueId, `message-id=${field.value}`);
    if (h.extracting()) this.#extract(field);
    if (h.dropHeaders.has(field.lowerName)) return undefined;
    let pending: Promise<Buffer | undefined> | Buffer | undefined;
    try {
      pending = h.rewriting.rewrite(field, h.localContext, h.queueId);
    } catch (err) {
      h.tableFailed('header address rewriting', err);
      return undefined;
    }
    if (pending === undefined || Buffer.isBuffer(pending)) {
      h.write(pending ?? raw);
      return undefined;
    }
    return pending.then(
      (rewritten) => h.write(rewritten ?? raw),
      (err: unknown) => h.tableFailed('header address rewriting', err),
    );
  }

  /** The `sendmail -t` recipients: Resent- ones when the message is resent. */
  extractedRecipients(): readonly Address[] {
    return isResent(this.seen) ? this.#extracted.resent : this.#extracted.normal;
  }

  #extract(field: HeaderField): void {
    const n = field.lowerName;
    const list =
      n === 'to' || n === 'cc' || n === 'bcc'
        ? this.#extracted.normal
        : n === 'resent-to' || n === 'resent-cc' || n === 'resent-bcc'
          ? this.#extracted.resent
          : undefined;
    if (!list) return;
    for (const a of findAddresses(field.value)) {
      if (list.length >= EXTRACT_LIMIT) {
        this.#h.log.warning(
          this.#h.queueId,
          `more than ${EXTRACT_LIMIT} header recipients: the rest ignored`,
        );
        return;
      }
      list.push(a.address);
    }
  }
}

/** A logical header as one line: its CRLFs removed (RFC 5322 section 2.2.3 unfolding). */
function unfold(raw: Buffer): string {
  return raw.toString('utf8').replace(/\r?\n/g, '');
}
