/**
 * `postern/agents`: what Postern's delivery agents are built from, for an application
 * that writes its own agent or delivers the way local(8) and pipe(8) do. This file only
 * re-exports; the agents themselves (SmtpDeliveryAgent, LocalDeliveryAgent, ...) and
 * the DeliveryAgent contract are exported from `postern`.
 *
 * Postfix counterpart: the libraries under local(8), virtual(8) and pipe(8) —
 * mail_copy.c and deliver_flock.c/dot_lockfile.c (mbox with a dot-lock), maildir.c,
 * sys_exits.c (what a command's exit status means), log_adhoc.c (the `delay=` of a
 * delivery log line) — the user databases behind `local_recipient_maps` and
 * `virtual_uid_maps`, and smtp(8)'s MTA-STS policy (RFC 8461, a Postfix add-on).
 *
 * Does not: route or queue anything; an agent gets one DeliveryRequest and reports each
 * recipient's outcome.
 *
 * SECURITY: the mailbox writers open paths without following symbolic links and refuse
 * files that are not regular; resolveMailboxPath() keeps a mailbox inside its base
 * directory. Writing as a recipient's uid is LocalDeliveryAgent's job, not theirs.
 *
 * @example
 * ```ts
 * import { MaildirWriter, sysexit } from 'postern/agents';
 *
 * const maildir = new MaildirWriter({ hostname: 'mx.example.com' });
 * await maildir.deliver('/var/mail/ann/', Buffer.from('Subject: hi\r\n\r\n'), body());
 * sysexit(75)?.temporary; // true: EX_TEMPFAIL defers
 * ```
 *
 * @module postern/agents
 */

export type { DotLockOptions, ReleaseLock } from '../deliver/dotlock.js';
export { acquireDotLock, LockBusyError } from '../deliver/dotlock.js';
export type {
  MailboxDeliveryOptions,
  MailboxHeaders,
  MailboxOutcome,
  MailboxTarget,
} from '../deliver/mailbox-delivery.js';
export { MailboxDelivery } from '../deliver/mailbox-delivery.js';
export type { MailboxPath } from '../deliver/mailbox-path.js';
export { MailboxPathError, resolveMailboxPath } from '../deliver/mailbox-path.js';
export type { MaildirDeliveryOptions, MaildirWriterOptions } from '../deliver/maildir.js';
export { MaildirWriter } from '../deliver/maildir.js';
export type { MboxDeliveryOptions, MboxWriterOptions } from '../deliver/mbox.js';
export { MailboxRefusedError, MboxWriter } from '../deliver/mbox.js';
export { pipeAgentFromConfig } from '../deliver/pipe-agent.js';
export type { MtaStsResolverOptions } from '../deliver/smtp/mta-sts-cache.js';
export { MtaStsResolver } from '../deliver/smtp/mta-sts-cache.js';
export type { MtaStsMode, MtaStsPolicy } from '../deliver/smtp/mta-sts-policy.js';
export { MtaStsError, parseMtaStsPolicy } from '../deliver/smtp/mta-sts-policy.js';
export type { SysexitEntry } from '../deliver/sysexits.js';
export { sysexit } from '../deliver/sysexits.js';
export { formatDelay } from '../log.js';
export type { UserDatabaseSpec } from '../util/user-database.js';
export { PasswdUsers, VirtualUsers } from '../util/user-database.js';
