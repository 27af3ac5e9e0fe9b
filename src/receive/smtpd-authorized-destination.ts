/**
 * Which recipients a server may accept from anybody: Postfix's "authorized
 * destination" test behind permit_auth_destination, reject_unauth_destination and
 * defer_unauth_destination.
 *
 * Postfix counterpart: smtpd_check.c permit_auth_destination(). A recipient is an
 * authorized destination when trivial-rewrite puts it in a final class (local, virtual
 * alias, virtual mailbox) or in relay_domains, and its local part holds no
 * sender-specified routing (`@`, `!`, `%`) — the ROUTED flag — which would otherwise let
 * `user%elsewhere@ourdomain` turn the server into an open relay.
 *
 * @module
 */

import type { ResolveResult } from '../rewrite/types.js';

/** Whether a resolved recipient is one this server may accept from anybody. */
export function isAuthorizedDestination(resolved: ResolveResult): boolean {
  if (resolved.routed) return false;
  switch (resolved.addressClass) {
    case 'local':
    case 'virtual-alias':
    case 'virtual-mailbox':
    case 'relay':
      return true;
    default:
      return false;
  }
}
