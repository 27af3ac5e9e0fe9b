/**
 * What Pickup (and `postern sendmail`, which writes the maildrop it reads) reads of the
 * main parameters. Local submission has no parameters of its own: it keeps the limits
 * the SMTP server and Cleanup enforce.
 *
 * Postfix counterpart: pickup(8) and postdrop(1), which read main.cf's shared
 * parameters only.
 *
 * @module
 */

import type { CoreParameters } from '../config/core-parameters.js';
import type { BounceParameters } from '../queue/bounce/bounce-parameters.js';
import type { SmtpdParameters } from './smtpd-parameters.js';

/**
 * What Pickup reads: the limits of local submission, and what the Bounce it runs for
 * a message it cannot queue reads.
 *
 * @example
 * ```ts
 * const pickup = new Pickup({ directory, submission, params: resolveParameters() satisfies PickupParameters });
 * ```
 */
export interface PickupParameters
  extends BounceParameters,
    Pick<
      CoreParameters,
      'lineLengthLimit' | 'allowMinUser' | 'messageSizeLimit' | 'headerSizeLimit'
    >,
    Pick<SmtpdParameters, 'smtpdRecipientLimit'> {}
