/**
 * The Rewriter's parameters (trivial-rewrite): how addresses are made canonical
 * (`appendAtMyorigin`, `swapBangpath`, `allowPercentHack`...), the address classes
 * (`relayDomains`, the virtual alias and mailbox domains) with the transport of each, and
 * the tables it resolves with (`transportMaps`, `relocatedMaps`, the recipient tables
 * smtpd checks at RCPT, `aliasMaps` among them, whose `$aliasMaps` the default of
 * `localRecipientMaps` names).
 *
 * Postfix counterpart: trivial-rewrite(8) and ADDRESS_CLASS_README's parameters.
 *
 * @module
 */

import type { CoreParameters } from '../config/core-parameters.js';
import { defineParameters, type ValuesOf } from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';

/**
 * The Rewriter's parameters.
 *
 * @example
 * ```ts
 * REWRITE_PARAMETERS.defaultTransport.defaultText; // '"smtp"'
 * ```
 */
export const REWRITE_PARAMETERS = defineParameters({
  relayDomains: param.list({
    postfix: 'relay_domains',
    doc: "Domains this server relays mail to from any client (Postfix's relay domain class).",
    default: [],
  }),
  relayhost: param.string({
    postfix: 'relayhost',
    doc: "The nexthop of mail in the default class (`[host]:port`, `host`); empty = the recipient domain's MX hosts.",
    default: '',
  }),
  appendAtMyorigin: param.boolean({
    postfix: 'append_at_myorigin',
    doc: 'Append `@$myorigin` to an address without a domain.',
    default: true,
  }),
  appendDotMydomain: param.boolean({
    postfix: 'append_dot_mydomain',
    doc: 'Rewrite `user@host` as `user@host.$mydomain` (off by default since Postfix 3.0).',
    default: false,
  }),
  swapBangpath: param.boolean({
    postfix: 'swap_bangpath',
    doc: 'Rewrite `site!user` as `user@site`.',
    default: true,
  }),
  allowPercentHack: param.boolean({
    postfix: 'allow_percent_hack',
    doc: 'Rewrite `user%domain` as `user@domain`.',
    default: true,
  }),
  resolveNumericDomain: param.boolean({
    postfix: 'resolve_numeric_domain',
    doc: 'Take `user@192.0.2.1` as a domain rather than an error.',
    default: false,
  }),
  resolveNullDomain: param.boolean({
    postfix: 'resolve_null_domain',
    doc: 'Resolve `user@` (to the local class) instead of bouncing it.',
    default: false,
  }),
  emptyAddressRecipient: param.string({
    postfix: 'empty_address_recipient',
    doc: 'Where mail to `<>` goes.',
    default: 'MAILER-DAEMON',
  }),
  parentDomainMatchesSubdomains: param.list({
    postfix: 'parent_domain_matches_subdomains',
    doc: "Features where `example.com` also matches `sub.example.com` (else write `.example.com`). Names in camelCase or Postfix's.",
    default: [
      'debugPeerList',
      'fastFlushDomains',
      'mynetworks',
      'permitMboxMailCommands',
      'relayDomains',
      'smtpdAccessMaps',
    ],
  }),
  localTransport: param.string({
    postfix: 'local_transport',
    doc: "The transport of the local domain class (`mydestination`, this machine's addresses).",
    default: 'local',
  }),
  defaultTransport: param.string({
    postfix: 'default_transport',
    doc: 'The transport of the default domain class (domains this server does not handle).',
    default: 'smtp',
  }),
  relayTransport: param.string({
    postfix: 'relay_transport',
    doc: 'The transport of the relay domain class (`relayDomains`).',
    default: 'relay',
  }),
  virtualTransport: param.string({
    postfix: 'virtual_transport',
    doc: 'The transport of the virtual mailbox domain class (`virtualMailboxDomains`).',
    default: 'virtual',
  }),
  aliasMaps: param.table({
    postfix: 'alias_maps',
    doc: "Aliases(5) tables for local(8), searched with the local part. A `hash:`, `texthash:` or `aliases:` path is read as an aliases(5) source file; any other table spec createTable() takes works too (no `$1` substitution). Postern differs from Postfix (`hash:/etc/aliases`): the host's aliases are not read unless named.",
    default: undefined,
  }),
  virtualAliasDomains: param.list({
    postfix: 'virtual_alias_domains',
    doc: 'Domains whose every address must be aliased away by virtualAliasMaps (else 5.1.1). Entries: names, `.parent`, `type:name` tables (the domain is looked up as a key), `$virtualAliasMaps`.',
    default: ['$virtualAliasMaps'],
  }),
  virtualAliasMaps: param.table({
    postfix: 'virtual_alias_maps',
    doc: 'virtual(5) tables: addresses of any domain rewritten to others.',
    default: undefined,
  }),
  virtualMailboxDomains: param.list({
    postfix: 'virtual_mailbox_domains',
    doc: 'Domains whose mail virtual(8) delivers; entries as in `virtualAliasDomains`.',
    default: ['$virtualMailboxMaps'],
  }),
  virtualMailboxMaps: param.table({
    postfix: 'virtual_mailbox_maps',
    doc: "The valid virtual mailbox recipients, and for the virtual agent each one's mailbox path (`/` at the end = Maildir).",
    default: undefined,
  }),
  localRecipientMaps: param.table({
    postfix: 'local_recipient_maps',
    doc: 'The valid recipients of the local domains; smtpd refuses any other local recipient at RCPT with `550 5.1.1 ... User unknown in local recipient table`. As in Postfix, the host\'s accounts (`unix:passwd.byname`: `getent passwd`, or /etc/passwd) and the alias tables (`$aliasMaps`). `""` or `[]` (Postfix\'s `local_recipient_maps =`) accepts every local part; the embedded default that `postern serve` runs without a config does that.',
    default: ['unix:passwd.byname', '$aliasMaps'],
  }),
  relayRecipientMaps: param.table({
    postfix: 'relay_recipient_maps',
    doc: 'The valid recipients of the relay domains; none = any.',
    default: undefined,
  }),
  transportMaps: param.table({
    postfix: 'transport_maps',
    doc: 'transport(5) tables: the transport and nexthop per recipient or domain.',
    default: undefined,
  }),
  relocatedMaps: param.table({
    postfix: 'relocated_maps',
    doc: 'relocated(5) tables: recipients that have moved bounce with `5.1.6 User has moved to ...`.',
    default: undefined,
  }),
  senderDependentRelayhostMaps: param.table({
    postfix: 'sender_dependent_relayhost_maps',
    doc: 'The relayhost per sender address or domain.',
    default: undefined,
  }),
  senderDependentDefaultTransportMaps: param.table({
    postfix: 'sender_dependent_default_transport_maps',
    doc: 'The default transport per sender address or domain.',
    default: undefined,
  }),
  remoteHeaderRewriteDomain: param.string({
    postfix: 'remote_header_rewrite_domain',
    doc: 'The domain appended to unqualified header addresses of mail from remote clients (not `localHeaderRewriteClients`); empty = headers of remote mail are not rewritten at all.',
    default: '',
  }),
  lookupTableCacheTtl: param.time({
    postfix: null,
    doc: "How long results of function tables (a host app's database) are cached.",
    default: '60s',
  }),
});

/**
 * What the Rewriter reads: its own parameters and the shared ones that say who this
 * machine is.
 *
 * @example
 * ```ts
 * const rewriter = new Rewriter({ params: resolveParameters() satisfies RewriterParameters });
 * ```
 */
export interface RewriterParameters
  extends ValuesOf<typeof REWRITE_PARAMETERS>,
    Pick<
      CoreParameters,
      | 'myhostname'
      | 'mydomain'
      | 'myorigin'
      | 'mydestination'
      | 'inetInterfaces'
      | 'proxyInterfaces'
      | 'recipientDelimiter'
      | 'allowMinUser'
    > {}
