/**
 * VirtualDeliveryAgent: mailboxes for many domains without local users — Postern's
 * virtual(8).
 *
 * Postfix counterpart: virtual(8). The mailbox of a recipient is
 * `virtualMailboxBase/` + the value `virtualMailboxMaps` gives for it, looked up as
 * `user+ext@domain`, `user@domain`, `@domain` (pattern tables: the whole address only;
 * never `$1` substitution). A value ending in `/` is a Maildir, anything else an mbox
 * file (dotlocked). The value is validated (mailbox-path.ts): no `..`, not absolute, no
 * control characters, and it must stay below the base. Return-Path, X-Original-To and
 * Delivered-To are prepended; a message that already carries `Delivered-To: <rcpt>`
 * bounces 5.4.6.
 *
 * Ownership: when Postern runs as root, `virtualUidMaps` / `virtualGidMaps` give the
 * numeric uid/gid of created mailboxes (same lookup order), and a uid below
 * `virtualMinimumUid` defers. Not as root, everything belongs to Postern's own user.
 *
 * Outcomes: a recipient without a mailbox bounces 5.1.1; a message larger than
 * `virtualMailboxLimit` bounces 5.2.2; a table that cannot answer, a bad table value,
 * or a file-system problem defers.
 *
 * Does not: forwarding, commands, aliases (virtual(8) has none), quotas beyond the size
 * limit.
 *
 * @module
 */

import { systemClock } from '../clock.js';
import { TableError } from '../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import { SmtpReply } from '../smtp-reply.js';
import { createTable } from '../tables/create-table.js';
import { lookupAddress } from '../tables/search-order.js';
import type { LookupTable } from '../tables/types.js';
import type { Clock, Recipient, RecipientResult } from '../types.js';
import { ContentReadError, deliveredToKey, deliveredToSet } from './mail-copy.js';
import { MailboxDelivery } from './mailbox-delivery.js';
import { MailboxPathError, resolveMailboxPath } from './mailbox-path.js';
import type { DeliveryAgent, DeliveryReporter, DeliveryRequest } from './types.js';
import type { VirtualParameters } from './virtual-parameters.js';

/**
 * Options for VirtualDeliveryAgent.
 *
 * @example
 * ```ts
 * const agent = new VirtualDeliveryAgent({
 *   params: resolveParameters({ virtualMailboxBase: '/var/mail/vhosts' }),
 *   mailboxes: new InlineTable({ 'alice@example.com': 'example.com/alice/' }),
 *   uids: new StaticTable('5000'),
 *   gids: new StaticTable('5000'),
 * } satisfies VirtualDeliveryAgentOptions);
 * ```
 */
export interface VirtualDeliveryAgentOptions {
  /** Uses virtualMailboxBase, virtualMailboxLimit, virtualMinimumUid, recipientDelimiter, locks. */
  readonly params: VirtualParameters;
  /** Overrides `params.virtualMailboxMaps`. */
  readonly mailboxes?: LookupTable;
  /** Overrides `params.virtualUidMaps`: the owner's uid per recipient. */
  readonly uids?: LookupTable;
  /** Overrides `params.virtualGidMaps`: the group's gid per recipient. */
  readonly gids?: LookupTable;
  /** Logs under component `virtual`. @default silentLogger */
  readonly logger?: Logger;
  /** @default systemClock */
  readonly clock?: Clock;
}

function tableOf(spec: unknown, key: string): LookupTable | undefined {
  if (spec === undefined) return undefined;
  return createTable(spec, key, { substitution: false });
}

/**
 * Delivers to Maildir or mbox mailboxes of virtual domains found in
 * `virtualMailboxMaps`, below `virtualMailboxBase`. Postfix counterpart: virtual(8).
 *
 * @example
 * ```ts
 * const mta = new Mta({
 *   virtualMailboxDomains: ['example.com'],
 *   virtualMailboxBase: '/var/mail/vhosts',
 *   virtualMailboxMaps: { 'alice@example.com': 'example.com/alice/' },
 * });
 * ```
 */
export class VirtualDeliveryAgent implements DeliveryAgent {
  readonly #params: VirtualParameters;
  readonly #mailboxes: LookupTable | undefined;
  readonly #uids: LookupTable | undefined;
  readonly #gids: LookupTable | undefined;
  readonly #writer: MailboxDelivery;
  readonly #log: ComponentLogger;

  constructor(options: VirtualDeliveryAgentOptions) {
    const p = options.params;
    this.#params = p;
    this.#mailboxes = options.mailboxes ?? tableOf(p.virtualMailboxMaps, 'virtualMailboxMaps');
    this.#uids = options.uids ?? tableOf(p.virtualUidMaps, 'virtualUidMaps');
    this.#gids = options.gids ?? tableOf(p.virtualGidMaps, 'virtualGidMaps');
    this.#log = (options.logger ?? silentLogger).for('virtual');
    this.#writer = new MailboxDelivery({
      hostname: p.myhostname,
      sizeLimit: p.virtualMailboxLimit,
      lock: {
        attempts: p.deliverLockAttempts,
        delayMs: p.deliverLockDelay,
        staleMs: p.staleLockTime,
      },
      clock: options.clock ?? systemClock,
    });
  }

  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    let seen: Set<string>;
    try {
      seen = await deliveredToSet(request.openContent());
    } catch (err) {
      const text =
        err instanceof ContentReadError ? err.message : new ContentReadError(err).message;
      const reply = new SmtpReply(451, '4.3.0', text);
      for (const r of request.recipients)
        reporter.recipient(r.id, { status: 'deferred', reply, relay: 'virtual' });
      return;
    }
    for (const recipient of request.recipients) {
      if (request.signal.aborted) return;
      const r = await this.#deliverOne(request, recipient, seen);
      if (r.status !== 'sent')
        this.#log.info(request.queueId, `${recipient.address}: ${r.reply.text}`);
      reporter.recipient(recipient.id, r);
    }
  }

  async #lookup(table: LookupTable | undefined, address: string): Promise<string | undefined> {
    if (!table) return undefined;
    const found = await lookupAddress(table, address, {
      style: 'virtual',
      recipientDelimiter: this.#params.recipientDelimiter,
    });
    return found?.value;
  }

  async #deliverOne(
    request: DeliveryRequest,
    recipient: Recipient,
    seen: ReadonlySet<string>,
  ): Promise<RecipientResult> {
    const p = this.#params;
    const rcpt = recipient.address;
    if (seen.has(deliveredToKey(rcpt)))
      return result('bounced', 554, '5.4.6', `mail forwarding loop for ${rcpt}`);
    if (p.virtualMailboxBase === '') {
      return result(
        'deferred',
        451,
        '4.3.5',
        'virtual delivery is not configured: set virtualMailboxBase to the directory that holds the mailboxes',
      );
    }
    let value: string | undefined;
    let uid: number | undefined;
    let gid: number | undefined;
    try {
      value = await this.#lookup(this.#mailboxes, rcpt);
      if (value === undefined)
        return result(
          'bounced',
          550,
          '5.1.1',
          `<${rcpt}>: unknown user: no mailbox for this address`,
        );
      if (process.getuid?.() === 0) {
        const u = await this.#lookup(this.#uids, rcpt);
        const g = await this.#lookup(this.#gids, rcpt);
        if (
          u === undefined ||
          !/^\d+$/.test(u.trim()) ||
          g === undefined ||
          !/^\d+$/.test(g.trim())
        ) {
          return result(
            'deferred',
            451,
            '4.3.5',
            `no numeric uid/gid for ${rcpt} in virtualUidMaps/virtualGidMaps`,
          );
        }
        uid = Number(u.trim());
        gid = Number(g.trim());
        if (uid < p.virtualMinimumUid) {
          return result(
            'deferred',
            451,
            '4.3.5',
            `uid ${uid} for ${rcpt} is below virtualMinimumUid (${p.virtualMinimumUid})`,
          );
        }
      }
    } catch (err) {
      if (err instanceof TableError)
        return result('deferred', 451, '4.3.0', `table lookup failed: ${err.message}`);
      throw err;
    }
    let target: ReturnType<typeof resolveMailboxPath>;
    try {
      target = resolveMailboxPath(p.virtualMailboxBase, value.trim());
    } catch (err) {
      if (err instanceof MailboxPathError) {
        this.#log.warning(
          request.queueId,
          `virtualMailboxMaps value for ${rcpt} refused: ${err.message}`,
        );
        return result('deferred', 451, '4.3.5', `mailbox path for ${rcpt} refused: ${err.message}`);
      }
      throw err;
    }
    const outcome = await this.#writer.write(
      request,
      { ...target, ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }) },
      { returnPath: request.sender, originalTo: recipient.originalAddress, deliveredTo: rcpt },
    );
    return { ...outcome, relay: 'virtual' };
  }
}

function result(
  status: RecipientResult['status'],
  code: number,
  enhanced: string,
  text: string,
): RecipientResult {
  return { status, reply: new SmtpReply(code, enhanced, text), relay: 'virtual' };
}
