/**
 * Whether a resolved recipient exists: the check behind smtpd's
 * reject_unlisted_recipient (smtpd_reject_unlisted_recipient).
 *
 * Postfix counterpart: smtpd_check.c check_rcpt_maps() and the valid-recipient tables
 * of ADDRESS_CLASS_README: local → local_recipient_maps, virtual alias →
 * virtual_alias_maps, virtual mailbox → virtual_mailbox_maps, relay →
 * relay_recipient_maps; the default class has none.
 *
 * An address that virtualAliasMaps rewrites is always listed, whatever its class, as
 * in check_rcpt_maps(). An empty localRecipientMaps (Postfix's `local_recipient_maps
 * =`) means every local part is valid, and an unset relayRecipientMaps lets every
 * relay recipient through. The default localRecipientMaps is the host's accounts and
 * the alias tables (local-recipient-maps.ts).
 *
 * Does not: reply (the caller uses `text` with unknown_*_recipient_reject_code), or
 * check canonical maps (Postern's cleanup owns those).
 *
 * @module
 */

import { splitAddress } from '../address/address.js';
import { toAsciiDomain } from '../address/domain.js';
import { lookupAddressIdn } from '../tables/search-order.js';
import type { LookupTable } from '../tables/types.js';
import type { RewriterParameters } from './rewrite-parameters.js';
import type { AddressClass, ResolveResult } from './types.js';

/**
 * What isListedRecipient() found.
 *
 * @example
 * ```ts
 * const listed: ListedRecipient = await rewriter.isListedRecipient('nobody@example.com');
 * if (!listed.listed) console.log(`550 5.1.1 <nobody@example.com>: ${listed.text}`);
 * ```
 */
export interface ListedRecipient {
  /** The recipient exists in its class's valid-recipient table (or the class has none). */
  readonly listed: boolean;
  /**
   * The table checked, as Postfix names it in its reply: `local recipient table`,
   * `virtual alias table`, `virtual mailbox table`, `relay recipient table`; `''` when
   * no table decided (the class has none, or virtualAliasMaps lists the address).
   */
  readonly table: string;
  /** The reject text for an unlisted recipient: `User unknown in ${table}`. */
  readonly text: string;
  /** The class of the recipient's domain. */
  readonly addressClass: AddressClass;
}

/** The valid-recipient tables. */
export interface RecipientTables {
  readonly virtualAliasMaps?: LookupTable | undefined;
  readonly virtualMailboxMaps?: LookupTable | undefined;
  readonly localRecipientMaps?: LookupTable | undefined;
  readonly relayRecipientMaps?: LookupTable | undefined;
}

/**
 * Checks a resolve result against its class's table. A result with an error is
 * "listed" here: its bad syntax is reported on its own.
 *
 * @throws TableError `retry` when a table cannot answer
 */
export async function listedRecipient(
  r: ResolveResult,
  tables: RecipientTables,
  p: Pick<RewriterParameters, 'recipientDelimiter'>,
): Promise<ListedRecipient> {
  return listedRecipientNow(r, tables, p);
}

/**
 * listedRecipient(), without a promise when no table can tell (then the recipient is
 * listed): smtpd asks for every RCPT.
 *
 * @throws TableError `retry` (a rejected promise) when a table cannot answer
 */
export function listedRecipientNow(
  r: ResolveResult,
  tables: RecipientTables,
  p: Pick<RewriterParameters, 'recipientDelimiter'>,
): ListedRecipient | Promise<ListedRecipient> {
  if (r.error || !needsLookup(r.addressClass, tables)) {
    return { listed: true, table: '', text: '', addressClass: r.addressClass };
  }
  return lookedUp(r, tables, p);
}

async function lookedUp(
  r: ResolveResult,
  tables: RecipientTables,
  p: Pick<RewriterParameters, 'recipientDelimiter'>,
): Promise<ListedRecipient> {
  const answer = (listed: boolean, table: string): ListedRecipient => ({
    listed,
    table,
    text: table === '' ? '' : `User unknown in ${table}`,
    addressClass: r.addressClass,
  });
  const { local, domain } = splitAddress(r.recipient);
  const key = `${local}@${toAsciiDomain(domain) ?? domain}`;
  const find = async (table: LookupTable | undefined): Promise<boolean> =>
    table !== undefined &&
    (await lookupAddressIdn(table, key, {
      style: 'virtual',
      recipientDelimiter: p.recipientDelimiter,
      localDomain: r.addressClass === 'local',
    })) !== undefined;
  if (await find(tables.virtualAliasMaps)) return answer(true, '');
  switch (r.addressClass) {
    case 'local':
      if (!tables.localRecipientMaps) return answer(true, '');
      return answer(await find(tables.localRecipientMaps), 'local recipient table');
    case 'virtual-alias':
      return answer(false, 'virtual alias table');
    case 'virtual-mailbox':
      return answer(await find(tables.virtualMailboxMaps), 'virtual mailbox table');
    case 'relay':
      if (!tables.relayRecipientMaps) return answer(true, '');
      return answer(await find(tables.relayRecipientMaps), 'relay recipient table');
    default:
      return answer(true, '');
  }
}

/**
 * Whether any table can tell about a recipient of this class: without one (a remote
 * domain, a local one without localRecipientMaps, ...) every recipient is listed, with
 * no key to build.
 */
function needsLookup(
  addressClass: ResolveResult['addressClass'],
  tables: RecipientTables,
): boolean {
  if (tables.virtualAliasMaps) return true;
  switch (addressClass) {
    case 'local':
      return tables.localRecipientMaps !== undefined;
    case 'relay':
      return tables.relayRecipientMaps !== undefined;
    case 'virtual-alias':
    case 'virtual-mailbox':
      return true;
    default:
      return false;
  }
}
