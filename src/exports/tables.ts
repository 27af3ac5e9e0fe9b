/**
 * `postern/tables`: lookup tables, the dict layer every table-driven parameter reads
 * (aliases, transport, virtual, canonical, relocated, access, TLS policy, header and
 * body checks). This file only re-exports.
 *
 * Postfix counterpart: the dict_* types behind `type:name` (texthash, regexp, pcre,
 * cidr, static, inline, ...), the search orders of transport(5), access(5) and
 * virtual(5), the domain and network lists of `mydestination` and `mynetworks`, and
 * the parsers of aliases(5), transport(5) and header_checks(5) values.
 *
 * Each table is a LookupTable (exported from `postern`): a lookup gives a value,
 * `undefined` for not found, or throws a TableError of kind `retry` (the mail waits) or
 * `config`. A parameter takes a table as a `type:name` string, an inline object or any
 * LookupTable, so most applications never need this subpath: it is for code that builds
 * a table itself or looks keys up the way Postfix does.
 *
 * @example
 * ```ts
 * import { createTable, lookupAddress } from 'postern/tables';
 *
 * const access = createTable({ 'spam.example': 'REJECT' }, 'smtpdSenderRestrictions');
 * await lookupAddress(access, 'bob@spam.example', { style: 'access' });
 * // { key: 'spam.example', value: 'REJECT' }
 * ```
 *
 * @module postern/tables
 */

export type { CheckAction } from '../cleanup/check-action.js';
export { parseCheckAction } from '../cleanup/check-action.js';
export { parseTransportSpec } from '../rewrite/transport-spec.js';
export type { AliasTarget, ParsedAliases } from '../tables/alias-table.js';
export {
  AliasTable,
  aliasTableFrom,
  parseAliases,
  parseAliasTargets,
} from '../tables/alias-table.js';
export { CidrList } from '../tables/cidr.js';
export { CidrTable } from '../tables/cidr-table.js';
export type { CreateTableOptions } from '../tables/create-table.js';
export { createTable, parseTableSpec, SUPPORTED_TABLE_TYPES } from '../tables/create-table.js';
export { DomainList } from '../tables/domain-list.js';
export type { FunctionCacheOptions, LookupFunction } from '../tables/lookup-table.js';
export { FunctionTable, InlineTable, StaticTable, TableList } from '../tables/lookup-table.js';
export type { RegexpDialect, RegexpTableOptions } from '../tables/regexp-table.js';
export { RegexpTable } from '../tables/regexp-table.js';
export type { LookupAddressOptions, SearchStyle } from '../tables/search-order.js';
export { lookupAddress } from '../tables/search-order.js';
export type { FileSourceOptions } from '../tables/table-source.js';
export { TextTable } from '../tables/text-table.js';
