/**
 * Builds the SmtpReceiver of each `smtpd` listener from its resolved config: its own
 * parameters (master.cf `-o`), TLS, `maxproc`, authenticator and syslog name. Used by
 * the Mta, and by each smtpd worker process of `postern serve`, so both serve a
 * listener the same way.
 *
 * Postfix counterpart: master(8) starting smtpd(8) with a service's `-o` overrides.
 *
 * @module
 */

import type { Logger } from '../log.js';
import type { AuthBackend } from '../receive/smtpd-auth.js';
import { SmtpReceiver, type SmtpTlsOptions } from '../receive/smtpd-receiver.js';
import type { CommandCheck } from '../receive/smtpd-restriction-types.js';
import type { Rewriter } from '../rewrite/rewriter.js';
import { createTable } from '../tables/create-table.js';
import type { Clock, SubmissionPort } from '../types.js';
import type { MainParameters } from './main-parameters.js';
import type { ResolvedListener } from './mta-config.js';

/** What every SMTP listener's receiver shares. */
export interface SmtpdReceiverWiring {
  readonly params: MainParameters;
  readonly submission: SubmissionPort;
  readonly rewriter: Rewriter;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly commandCheck?: CommandCheck | undefined;
}

/**
 * The builder of a listener's SmtpReceiver, for a ListenerGroup.
 *
 * @example
 * ```ts
 * const smtpd = new ListenerGroup(network, config.smtpd, smtpdReceiverBuilder({ params, submission, rewriter, logger, clock }));
 * ```
 */
export function smtpdReceiverBuilder(
  w: SmtpdReceiverWiring,
): (l: ResolvedListener) => SmtpReceiver {
  return (l) =>
    new SmtpReceiver({
      params: l.params,
      submission: w.submission,
      rewriter: w.rewriter,
      logger: listenerLogger(w.logger, w.params, l.params),
      clock: w.clock,
      ...(w.commandCheck ? { commandCheck: w.commandCheck } : {}),
      ...(l.tls ? { tls: l.tls as SmtpTlsOptions } : {}),
      ...(l.maxproc === undefined ? {} : { processLimit: l.maxproc }),
      // A function from an .mjs config, or any table form (user → password).
      ...(l.authenticator !== undefined
        ? {
            authenticator:
              typeof l.authenticator === 'function'
                ? (l.authenticator as AuthBackend)
                : createTable(l.authenticator, 'smtpd.authenticator'),
          }
        : {}),
    });
}

/** A listener's own `syslogName` (master.cf `-o syslog_name=...`) tags its events. */
export function listenerLogger(logger: Logger, main: MainParameters, own: MainParameters): Logger {
  return own.syslogName === main.syslogName ? logger : logger.child({ syslogName: own.syslogName });
}
