/**
 * A restriction request as the outside sees it: the `<what>` a reject text names, the
 * lookup keys of check_client_access and check_helo_access, and the attributes sent to
 * a policy server.
 *
 * Postfix counterpart: smtpd_check.c's reply texts (`<name[addr]>: Client host
 * rejected: ...`), check_domain_access() and check_addr_access() parent-domain and
 * address-prefix searches, and smtpd_check.c check_policy_service()'s attribute list
 * (SMTPD_POLICY_README).
 *
 * Does not: look anything up, decide anything.
 *
 * SECURITY: client-supplied names and addresses are made printable before they go into
 * a reply text.
 *
 * @module
 */

import net from 'node:net';
import { printable } from '../smtp-reply.js';
import type { AccessReplyContext } from './smtpd-access-result.js';
import type { SmtpdParameters } from './smtpd-parameters.js';
import type { RestrictionRequest, RestrictionStage } from './smtpd-restriction-types.js';

/** Postfix's `name[address]` of the request's client. */
export function requestNamaddr(req: RestrictionRequest): string {
  return `${printable(req.client.name ?? 'unknown')}[${printable(req.client.address)}]`;
}

/** What a reject at `stage` names: `<name[addr]>`, `<helo>`, `<address>`, `<DATA>`... */
export function stageWhat(stage: RestrictionStage, req: RestrictionRequest): string {
  switch (stage) {
    case 'client':
      return `<${requestNamaddr(req)}>`;
    case 'helo':
      return `<${printable(req.helo ?? '')}>`;
    case 'sender':
      return `<${printable(req.sender ?? '')}>`;
    case 'relay':
    case 'recipient':
      return `<${printable(req.recipient ?? '')}>`;
    case 'data':
      return '<DATA>';
    case 'end-of-data':
      return '<END-OF-MESSAGE>';
  }
}

const CLASS_NAME: Readonly<Record<RestrictionStage, string>> = {
  client: 'Client host',
  helo: 'Helo command',
  sender: 'Sender address',
  relay: 'Recipient address',
  recipient: 'Recipient address',
  data: 'Data command',
  'end-of-data': 'End-of-data',
};

/** The reply context of a stage's generic rejects (`reject`, `defer`, a table's REJECT). */
export function stageContext(
  stage: RestrictionStage,
  req: RestrictionRequest,
  p: SmtpdParameters,
): AccessReplyContext {
  return {
    what: stageWhat(stage, req),
    className: CLASS_NAME[stage],
    rejectCode: p.rejectCode,
    deferCode: p.deferCode,
  };
}

/** check_client_access keys: name and parent domains, address and its prefixes. */
export function clientKeys(name: string, address: string, pattern: boolean): string[] {
  const keys: string[] = [];
  if (name !== 'unknown' && name !== '') keys.push(...domainKeys(name.toLowerCase(), pattern));
  if (address === '') return keys;
  keys.push(address);
  if (pattern) return keys;
  if (net.isIPv4(address)) {
    const parts = address.split('.');
    for (let n = 3; n >= 1; n--) keys.push(parts.slice(0, n).join('.'));
  } else if (net.isIPv6(address)) {
    const groups = address.split(':');
    for (let n = groups.length - 1; n >= 1; n--) {
      const k = groups.slice(0, n).join(':');
      if (k !== '' && !k.endsWith(':')) keys.push(k);
    }
  }
  return keys;
}

/** A domain and its parent domains, most specific first (one key for a pattern table). */
export function domainKeys(name: string, pattern: boolean): string[] {
  if (pattern) return [name];
  const keys: string[] = [];
  let n = name.replace(/\.$/, '');
  while (n !== '') {
    keys.push(n);
    const dot = n.indexOf('.');
    if (dot < 0) break;
    n = n.slice(dot + 1);
  }
  return keys;
}

/** The request as Postfix's policy protocol names it (SMTPD_POLICY_README). */
export function policyAttributes(
  req: RestrictionRequest,
): Record<string, string | number | undefined> {
  return {
    request: 'smtpd_access_policy',
    protocol_state: req.protocolState,
    protocol_name: req.protocolName,
    helo_name: req.helo ?? '',
    queue_id: req.queueId ?? '',
    sender: req.sender ?? '',
    recipient: req.recipient ?? '',
    recipient_count: req.recipientCount,
    client_address: req.client.address,
    client_name: req.client.name ?? 'unknown',
    reverse_client_name: req.client.name ?? 'unknown',
    instance: '',
    sasl_method: req.saslMethod ?? '',
    sasl_username: req.saslUsername ?? '',
    size: req.size ?? 0,
    encryption_protocol: req.tls?.protocol ?? '',
    encryption_cipher: req.tls?.cipher ?? '',
    encryption_keysize: req.tls?.bits ?? 0,
  };
}
