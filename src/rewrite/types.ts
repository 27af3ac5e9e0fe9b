/**
 * Rewrite layer contracts: the Rewriter's resolve result (trivial-rewrite's reply) and
 * Postfix's address classes.
 *
 * Postfix counterpart: resolve_clnt.h (RESOLVE_REPLY: transport, nexthop, recipient,
 * flags).
 *
 * @module
 */

import type { Address } from '../types.js';

/**
 * Postfix's address classes (ADDRESS_CLASS_README).
 *
 * @example
 * ```ts
 * const { addressClass }: { addressClass: AddressClass } = await rewriter.resolve('alice@example.com');
 * ```
 */
export type AddressClass = 'local' | 'virtual-alias' | 'virtual-mailbox' | 'relay' | 'default';

/**
 * trivial-rewrite's resolve reply.
 *
 * @example
 * ```ts
 * const r: ResolveResult = await rewriter.resolve('bob@example.net');
 * console.log(r.transport, r.nexthop); // 'smtp' 'example.net'
 * ```
 */
export interface ResolveResult {
  /**
   * The class of the recipient's domain (local, virtual alias, virtual mailbox, relay, default).
   */
  readonly addressClass: AddressClass;
  /** Transport name: `local`, `smtp`, `relay`, `virtual`, `error`, `discard`... */
  readonly transport: string;
  /** Nexthop: a domain, `[host]:port`, or the reason text for `error`/`discard`. */
  readonly nexthop: string;
  /** The recipient in canonical form (what the agent delivers to). */
  readonly recipient: Address;
  /** The local part has sender-specified routing (`@`, `!`, `%`): relay control treats it as foreign. */
  readonly routed: boolean;
  /** The address is unusable (bad syntax, `-user`): bounce with `reply`. */
  readonly error?: { readonly code: number; readonly enhanced: string; readonly text: string };
}
