/**
 * RecipientTracker: the per-recipient bookkeeping of one delivery request in the
 * SMTP/LMTP client — final outcomes go to the reporter the moment they are known;
 * soft failures are held, because the next server may still take the recipient.
 *
 * Postfix counterpart: smtp_trouble.c (smtp_rcpt_fail, smtp_bulk_fail with
 * SMTP_THROTTLE / final-server logic) and the `SMTP_RCPT_*` marks of smtp_rcpt.c.
 *
 * @module
 */

import type { SmtpReply } from '../../smtp-reply.js';
import type { Recipient, RecipientResult } from '../../types.js';
import type { DeliveryReporter } from '../types.js';

export class RecipientTracker {
  readonly #reporter: DeliveryReporter;
  readonly #pending = new Map<number, Recipient>();
  readonly #soft = new Map<number, RecipientResult>();

  constructor(recipients: readonly Recipient[], reporter: DeliveryReporter) {
    this.#reporter = reporter;
    for (const r of recipients) this.#pending.set(r.id, r);
  }

  /** Recipients without a final outcome, in request order. */
  get pending(): Recipient[] {
    return [...this.#pending.values()];
  }

  get done(): boolean {
    return this.#pending.size === 0;
  }

  /** Reports a final outcome (sent or bounced) now. */
  final(r: Recipient, result: RecipientResult): void {
    if (!this.#pending.delete(r.id)) return;
    this.#soft.delete(r.id);
    this.#reporter.recipient(r.id, result);
  }

  /** Remembers a soft failure; the recipient stays pending for the next server. */
  soft(r: Recipient, result: RecipientResult): void {
    if (this.#pending.has(r.id)) {
      this.#soft.set(r.id, { ...result, status: 'deferred', reply: result.reply.toTransient() });
    }
  }

  /** Soft-fails every pending recipient with the same reply. */
  softAll(reply: SmtpReply, relay: string | undefined): void {
    for (const r of this.#pending.values()) {
      this.#soft.set(r.id, {
        status: 'deferred',
        reply: reply.toTransient(),
        ...(relay ? { relay } : {}),
      });
    }
  }

  /** Bounces every pending recipient. */
  bounceAll(reply: SmtpReply, relay: string | undefined, remoteMta?: string): void {
    for (const r of this.pending) {
      this.final(r, {
        status: 'bounced',
        reply,
        ...(relay ? { relay } : {}),
        ...(remoteMta ? { remoteMta } : {}),
      });
    }
  }

  /** Defers what is still pending: its own soft failure, else `fallback`. */
  finish(fallback: SmtpReply, relay: string | undefined): void {
    for (const r of this.pending) {
      const held = this.#soft.get(r.id);
      this.#pending.delete(r.id);
      this.#reporter.recipient(
        r.id,
        held ?? { status: 'deferred', reply: fallback.toTransient(), ...(relay ? { relay } : {}) },
      );
    }
  }
}
