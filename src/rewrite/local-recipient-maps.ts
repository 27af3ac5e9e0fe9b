/**
 * The `localRecipientMaps` table: who may receive mail in the local domains. Built from
 * the parameter's tables, where `$aliasMaps` (or `$alias_maps`) stands for the alias
 * tables local(8) reads.
 *
 * Postfix counterpart: `local_recipient_maps = proxy:unix:passwd.byname $alias_maps`,
 * checked by smtpd (smtpd_check.c check_rcpt_maps) so that mail for an unknown local
 * user is refused at RCPT — `550 5.1.1 <addr>: Recipient address rejected: User unknown
 * in local recipient table` — instead of bouncing later to a sender that may be forged.
 * Postern's default is the same: `["unix:passwd.byname", "$aliasMaps"]`. An empty
 * setting (`""` or `[]`, Postfix's `local_recipient_maps =`) checks nothing: every local
 * part is accepted.
 *
 * Does not: decide what happens to a listed recipient (local(8) does), or check the
 * local part's form (receive/smtpd-local-part-check.ts).
 *
 * @module
 */

import type { Logger } from '../log.js';
import { aliasTableFrom } from '../tables/alias-table.js';
import { type CreateTableOptions, createTable } from '../tables/create-table.js';
import { TableList } from '../tables/lookup-table.js';
import type { LookupTable, TableSpec } from '../tables/types.js';
import type { RewriterParameters } from './rewrite-parameters.js';

/** The names that stand for the alias tables inside localRecipientMaps. */
const ALIAS_REFERENCES: ReadonlySet<string> = new Set(['$aliasMaps', '$alias_maps']);

/**
 * Builds the localRecipientMaps table from its spec.
 *
 * @throws ConfigError naming `localRecipientMaps[i]` for a table that cannot be built
 *
 * @example
 * ```ts
 * const table = localRecipientTable(['unix:passwd.byname', '$aliasMaps'], params);
 * await table.lookup('root'); // the passwd entry of root
 * ```
 */
export function localRecipientTable(
  spec: TableSpec,
  params: Pick<RewriterParameters, 'aliasMaps'>,
  options: CreateTableOptions & { readonly logger?: Logger } = {},
): LookupTable {
  const items: readonly TableSpec[] = Array.isArray(spec) ? spec : [spec as TableSpec];
  const tables: LookupTable[] = [];
  for (const [i, item] of items.entries()) {
    if (typeof item === 'string' && ALIAS_REFERENCES.has(item.trim())) {
      const aliases = aliasTableFrom(params.aliasMaps);
      if (aliases) tables.push(aliases);
      continue;
    }
    tables.push(createTable(item, `localRecipientMaps[${i}]`, options));
  }
  if (tables.length === 0) {
    // Postfix would read an empty expansion as "check nothing"; refusing every local
    // recipient, loudly, is the safer reading of a list that named only empty tables.
    options.logger?.log(
      'warning',
      'trivial-rewrite',
      undefined,
      'localRecipientMaps names only $aliasMaps, and aliasMaps is empty: no local recipient is valid; set localRecipientMaps to "" to accept every local part',
    );
  }
  return tables.length === 1 ? tables[0]! : new TableList(tables);
}
