/**
 * Parses Postfix `transport:nexthop` strings, as found in `local_transport`,
 * `default_transport`, `relay_transport`, transport(5) table values, FILTER actions and
 * `content_filter`.
 *
 * Postfix counterpart: the `transport:nexthop` split in resolve.c and transport.c.
 *
 * Does not: interpret the nexthop (`[host]:port`, lists, `error:` text) — that is the
 * delivery agent's business — nor merge a result with a class default (rewriter.ts).
 *
 * STANDARDS: none; transport(5) "RESULT FORMAT".
 *
 * @module
 */

import { ConfigError } from '../errors.js';

/** A parsed `transport:nexthop`. */
export interface TransportSpec {
  /** The transport name; `''` means "keep the transport the address class gives". */
  readonly transport: string;
  /** The nexthop; `undefined` when none was given (the class default applies). */
  readonly nexthop: string | undefined;
}

/**
 * Splits at the first `:` — the nexthop itself may contain colons (`[mx]:2525`,
 * `[ipv6:2001:db8::1]`, `error:5.1.1 text: more`).
 *
 * - `smtp` → `{ transport: 'smtp', nexthop: undefined }`
 * - `smtp:[mx.example.com]:2525` → `{ transport: 'smtp', nexthop: '[mx.example.com]:2525' }`
 * - `error:5.1.1 no such user` → `{ transport: 'error', nexthop: '5.1.1 no such user' }`
 * - `:[relay]` → `{ transport: '', nexthop: '[relay]' }`; `smtp:` and `:` give no nexthop.
 *
 * @throws ConfigError when the transport name holds white space or control characters
 *   (usually a missing `:` as in `error 5.1.1 text`)
 *
 * @example
 * ```ts
 * parseTransportSpec('smtp:[mx.example.com]:2525'); // { transport: 'smtp', nexthop: '[mx.example.com]:2525' }
 * ```
 */
export function parseTransportSpec(spec: string): TransportSpec {
  const text = spec.trim();
  const colon = text.indexOf(':');
  const transport = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1).trim();
  if (/[\s\x00-\x1f\x7f]/.test(transport)) {
    throw new ConfigError(
      `"${transport.replace(/[\x00-\x1f\x7f]/g, '?')}" is not a transport name; write transport:nexthop, e.g. "smtp:[relay.example.com]:587" or "error:5.1.1 text"`,
    );
  }
  return { transport, nexthop: rest === '' ? undefined : rest };
}

/** The inverse of parseTransportSpec. */
export function formatTransportSpec(spec: TransportSpec): string {
  return spec.nexthop === undefined ? spec.transport : `${spec.transport}:${spec.nexthop}`;
}
