/**
 * local(8)'s parameters: mailboxes (`mailSpoolDirectory`, `homeMailbox`,
 * `mailboxCommand`, `mailboxTransport`), .forward files and what aliases and forwards may
 * name (`forwardPath`, `allowMailToCommands`, `allowMailToFiles`), unknown users
 * (`luserRelay`, `fallbackTransport`), commands (`commandTimeLimit`, `exportEnvironment`),
 * the rights of deliveries (`defaultPrivs`) and mailbox locking, which virtual(8) shares.
 *
 * Postfix counterpart: local(8)'s parameters in postconf(5).
 *
 * @module
 */

import type { CoreParameters } from '../config/core-parameters.js';
import { defineParameters, type ValuesOf } from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';
import type { RewriterParameters } from '../rewrite/rewrite-parameters.js';

/**
 * local(8)'s parameters.
 *
 * @example
 * ```ts
 * LOCAL_PARAMETERS.forwardPath.defaultText; // '["$home/.forward${recipient_delimiter}${extension}", "$home/.forward"]'
 * ```
 */
export const LOCAL_PARAMETERS = defineParameters({
  mailSpoolDirectory: param.string({
    postfix: 'mail_spool_directory',
    doc: 'Where local(8) keeps mailboxes, one per user: Maildir when it ends in `/`, else mbox files.',
    default: './var/mail/',
  }),
  forwardPath: param.list({
    postfix: 'forward_path',
    doc: 'The .forward files local(8) tries for a user, in order (`$home`, `${recipient_delimiter}`, `${extension}` expand).',
    default: ['$home/.forward${recipient_delimiter}${extension}', '$home/.forward'],
  }),
  forwardExpansionFilter: param.string({
    postfix: 'forward_expansion_filter',
    doc: 'Characters allowed in `forward_path` expansions.',
    default: '1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
  }),
  allowMailToCommands: param.list({
    postfix: 'allow_mail_to_commands',
    doc: 'Where `|command` is allowed (`alias`, `forward`, `include`).',
    default: ['alias', 'forward'],
  }),
  allowMailToFiles: param.list({
    postfix: 'allow_mail_to_files',
    doc: 'Where `/file` is allowed (`alias`, `forward`, `include`).',
    default: ['alias', 'forward'],
  }),
  commandExpansionFilter: param.string({
    postfix: 'command_expansion_filter',
    doc: 'Characters allowed in command environment values.',
    default: '1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
  }),
  commandTimeLimit: param.time({
    postfix: 'command_time_limit',
    doc: 'The time limit of a command that local(8) or a pipe transport runs.',
    default: '1000s',
  }),
  exportEnvironment: param.list({
    postfix: 'export_environment',
    doc: 'Environment variables passed to commands.',
    default: ['TZ', 'MAIL_CONFIG', 'LANG'],
  }),
  mailboxCommand: param.string({
    postfix: 'mailbox_command',
    doc: 'Deliver through this command (procmail-style) instead of a mailbox.',
    default: '',
  }),
  mailboxTransport: param.string({
    postfix: 'mailbox_transport',
    doc: 'Hand mailbox delivery to this transport (`lmtp:unix:/path`).',
    default: '',
  }),
  fallbackTransport: param.string({
    postfix: 'fallback_transport',
    doc: 'The transport for recipients local(8) does not know.',
    default: '',
  }),
  luserRelay: param.string({
    postfix: 'luser_relay',
    doc: 'Where mail for unknown local users goes (`$user`, `$local`, `$extension`, `$domain` expand).',
    default: '',
  }),
  homeMailbox: param.string({
    postfix: 'home_mailbox',
    doc: 'A mailbox relative to the home directory (`Maildir/` or `Mailbox`).',
    default: '',
  }),
  localUserDatabase: param.oneOf(['virtual', 'passwd'], {
    postfix: null,
    doc: 'Who the local users are: `virtual` (every valid local part, no home directory) or `passwd` (/etc/passwd: home directories, uid/gid).',
    default: 'virtual',
  }),
  mailboxSizeLimit: param.integer({
    postfix: 'mailbox_size_limit',
    doc: 'The largest mbox file (or file destination) a local delivery writes to, in bytes; 0 = no limit.',
    default: 51_200_000,
  }),
  defaultPrivs: param.string({
    postfix: 'default_privs',
    doc: "The user whose rights local(8) uses for file and command destinations that have no user of their own (root-owned aliases and :include: files, a root recipient's .forward). Only used when Postern runs as root; must not be root.",
    default: 'nobody',
  }),
  maxIdle: param.time({
    postfix: 'max_idle',
    doc: "How long a helper process that writes with a user's rights waits for its next delivery before it exits.",
    default: '100s',
  }),
  deliverLockAttempts: param.integer({
    postfix: 'deliver_lock_attempts',
    doc: 'How many times a mailbox lock is tried before the delivery defers.',
    default: 20,
    min: 1,
  }),
  deliverLockDelay: param.time({
    postfix: 'deliver_lock_delay',
    doc: 'The pause between two attempts to lock a mailbox.',
    default: '1s',
  }),
  staleLockTime: param.time({
    postfix: 'stale_lock_time',
    doc: 'A dot-lock file older than this is taken to be stale and removed.',
    default: '500s',
  }),
});

/**
 * What local(8) reads: its own parameters, the shared ones it needs and the alias tables.
 *
 * @example
 * ```ts
 * const local = new LocalDeliveryAgent({ params: resolveParameters() satisfies LocalParameters });
 * ```
 */
export interface LocalParameters
  extends ValuesOf<typeof LOCAL_PARAMETERS>,
    Pick<CoreParameters, 'myhostname' | 'myorigin' | 'mydestination' | 'recipientDelimiter'>,
    Pick<RewriterParameters, 'aliasMaps'> {}
