/**
 * Cleanup's parameters: the hop limit (`hopcountLimit`; the size limits every receiver
 * shares are core parameters), which headers are added or dropped, the content checks
 * (`headerChecks`, `bodyChecks` and their MIME limits), address mapping (canonical,
 * masquerading, virtual alias expansion limits, BCC) and what the Received header says.
 *
 * Postfix counterpart: cleanup(8)'s parameters in postconf(5).
 *
 * @module
 */

import type { CoreParameters } from '../config/core-parameters.js';
import { defineParameters, sameAs, type ValuesOf } from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';
import type { RewriterParameters } from '../rewrite/rewrite-parameters.js';

/**
 * Cleanup's parameters.
 *
 * @example
 * ```ts
 * CLEANUP_PARAMETERS.mimeHeaderChecks.defaultText; // '$headerChecks'
 * ```
 */
export const CLEANUP_PARAMETERS = defineParameters({
  hopcountLimit: param.integer({
    postfix: 'hopcount_limit',
    doc: 'The most Received headers a message may carry before it bounces as a mail loop.',
    default: 50,
    min: 1,
  }),
  localHeaderRewriteClients: param.list({
    postfix: 'local_header_rewrite_clients',
    doc: 'Clients whose mail gets missing headers added. `permit_inet_interfaces` and `permit_mynetworks` are understood, as are CIDRs.',
    default: ['permit_inet_interfaces'],
  }),
  alwaysAddMissingHeaders: param.boolean({
    postfix: 'always_add_missing_headers',
    doc: 'Add the missing From, To, Date and Message-ID headers to mail from any client, not only `localHeaderRewriteClients`.',
    default: false,
  }),
  messageDropHeaders: param.list({
    postfix: 'message_drop_headers',
    doc: 'Headers removed from every message.',
    default: ['bcc', 'content-length', 'resent-bcc', 'return-path'],
  }),
  cleanupReplaceStrayCrLf: param.boolean({
    postfix: 'cleanup_replace_stray_cr_lf',
    doc: 'Replace a CR or LF that is not part of a line ending with a space, so that no later hop sees it as one.',
    default: true,
  }),
  undisclosedRecipientsHeader: param.string({
    postfix: 'undisclosed_recipients_header',
    doc: 'The header added when a message from a local client has no To/Cc/Bcc (Resent- variants for resent mail); empty = none.',
    default: '',
  }),
  headerChecks: param.table({
    postfix: 'header_checks',
    doc: 'header_checks(5) tables for the primary headers, one logical header at a time.',
    default: undefined,
  }),
  mimeHeaderChecks: param.table({
    postfix: 'mime_header_checks',
    doc: 'Checks for MIME headers at any level; `[]` turns them off.',
    default: sameAs('headerChecks'),
  }),
  nestedHeaderChecks: param.table({
    postfix: 'nested_header_checks',
    doc: 'Checks for the headers of attached messages; `[]` turns them off.',
    default: sameAs('headerChecks'),
  }),
  bodyChecks: param.table({
    postfix: 'body_checks',
    doc: 'body_checks(5) tables, applied to one body line at a time.',
    default: undefined,
  }),
  bodyChecksSizeLimit: param.integer({
    postfix: 'body_checks_size_limit',
    doc: 'How many bytes of each body part body_checks see.',
    default: 51200,
  }),
  mimeNestingLimit: param.integer({
    postfix: 'mime_nesting_limit',
    doc: 'The deepest MIME nesting Cleanup inspects.',
    default: 100,
  }),
  mimeBoundaryLengthLimit: param.integer({
    postfix: 'mime_boundary_length_limit',
    doc: 'The longest MIME boundary string Cleanup recognises.',
    default: 2048,
    min: 1,
  }),
  internalMailFilterClasses: param.list({
    postfix: 'internal_mail_filter_classes',
    doc: 'Which mail Postern makes itself still gets content checks and the content filter: `bounce` (DSNs), `notify` (postmaster notices).',
    default: [],
  }),
  canonicalMaps: param.table({
    postfix: 'canonical_maps',
    doc: 'canonical(5) tables for sender and recipient addresses, in the envelope and the headers.',
    default: undefined,
  }),
  senderCanonicalMaps: param.table({
    postfix: 'sender_canonical_maps',
    doc: 'canonical(5) tables for sender addresses only, searched before `canonicalMaps`.',
    default: undefined,
  }),
  recipientCanonicalMaps: param.table({
    postfix: 'recipient_canonical_maps',
    doc: 'canonical(5) tables for recipient addresses only, searched before `canonicalMaps`.',
    default: undefined,
  }),
  canonicalClasses: param.list({
    postfix: 'canonical_classes',
    doc: 'Which addresses the canonical tables rewrite: `envelope_sender`, `envelope_recipient`, `header_sender`, `header_recipient`.',
    default: ['envelope_sender', 'envelope_recipient', 'header_sender', 'header_recipient'],
  }),
  masqueradeDomains: param.list({
    postfix: 'masquerade_domains',
    doc: 'Domains whose subdomains are hidden in addresses (`sub.example.com` becomes `example.com`); `!domain` excludes one.',
    default: [],
  }),
  masqueradeExceptions: param.list({
    postfix: 'masquerade_exceptions',
    doc: 'Local parts that are never masqueraded.',
    default: [],
  }),
  masqueradeClasses: param.list({
    postfix: 'masquerade_classes',
    doc: 'Which addresses `masqueradeDomains` rewrites: `envelope_sender`, `envelope_recipient`, `header_sender`, `header_recipient`.',
    default: ['envelope_sender', 'header_sender', 'header_recipient'],
  }),
  propagateUnmatchedExtensions: param.list({
    postfix: 'propagate_unmatched_extensions',
    doc: 'Where an address extension (`user+ext`) carries over to the result of a mapping that did not match with it: `canonical`, `virtual`, `alias`, `forward`, `include`, `generic`.',
    default: ['canonical', 'virtual'],
  }),
  virtualAliasRecursionLimit: param.integer({
    postfix: 'virtual_alias_recursion_limit',
    doc: 'How deep virtual alias expansion may nest.',
    default: 1000,
    min: 1,
  }),
  virtualAliasExpansionLimit: param.integer({
    postfix: 'virtual_alias_expansion_limit',
    doc: 'The most addresses one virtual alias expansion may give.',
    default: 1000,
    min: 1,
  }),
  virtualAliasAddressLengthLimit: param.integer({
    postfix: 'virtual_alias_address_length_limit',
    doc: 'The longest address virtual alias expansion keeps.',
    default: 1000,
    min: 1,
  }),
  alwaysBcc: param.string({
    postfix: 'always_bcc',
    doc: 'An address that gets a blind copy of every message; empty = none.',
    default: '',
  }),
  senderBccMaps: param.table({
    postfix: 'sender_bcc_maps',
    doc: 'Per sender: an address that gets a blind copy of the message.',
    default: undefined,
  }),
  recipientBccMaps: param.table({
    postfix: 'recipient_bcc_maps',
    doc: 'Per recipient: an address that gets a blind copy of the message.',
    default: undefined,
  }),
  smtpdSaslAuthenticatedHeader: param.boolean({
    postfix: 'smtpd_sasl_authenticated_header',
    doc: 'Name the SASL user in the Received header.',
    default: false,
  }),
});

/**
 * What Cleanup reads: its own parameters, the address rules it shares with the
 * Rewriter and the shared ones it needs.
 *
 * @example
 * ```ts
 * const cleanup = new Cleanup({ params: resolveParameters() satisfies CleanupParameters, store, rewriter });
 * ```
 */
export interface CleanupParameters
  extends ValuesOf<typeof CLEANUP_PARAMETERS>,
    Pick<
      CoreParameters,
      | 'myhostname'
      | 'myorigin'
      | 'mynetworks'
      | 'mailName'
      | 'recipientDelimiter'
      | 'messageSizeLimit'
      | 'headerSizeLimit'
    >,
    Pick<RewriterParameters, 'virtualAliasMaps' | 'remoteHeaderRewriteDomain'> {}
