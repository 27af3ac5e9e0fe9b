/**
 * The QMQP server's parameters: who may use it and its time limits.
 *
 * Postfix counterpart: qmqpd(8)'s parameters in postconf(5).
 *
 * @module
 */

import type { CoreParameters } from '../config/core-parameters.js';
import { defineParameters, type ValuesOf } from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';

/**
 * The QMQP server's parameters.
 *
 * @example
 * ```ts
 * QMQPD_PARAMETERS.qmqpdTimeout.defaultText; // '"300s"'
 * ```
 */
export const QMQPD_PARAMETERS = defineParameters({
  qmqpdAuthorizedClients: param.list({
    postfix: 'qmqpd_authorized_clients',
    doc: 'Who may use QMQP (addresses, CIDR); empty = nobody.',
    default: [],
  }),
  qmqpdTimeout: param.time({
    postfix: 'qmqpd_timeout',
    doc: "How long the QMQP server waits for a client's request.",
    default: '300s',
  }),
  qmqpdErrorDelay: param.time({
    postfix: 'qmqpd_error_delay',
    doc: 'The pause before a Z or D reply.',
    default: '1s',
  }),
});

/**
 * What the QMQP server reads: its own parameters, the message limits Cleanup also
 * enforces, and the shared ones.
 *
 * @example
 * ```ts
 * const qmqpd = new QmqpReceiver({ params: resolveParameters() satisfies QmqpdParameters, submission });
 * ```
 */
export interface QmqpdParameters
  extends ValuesOf<typeof QMQPD_PARAMETERS>,
    Pick<
      CoreParameters,
      | 'myhostname'
      | 'lineLengthLimit'
      | 'allowMinUser'
      | 'softBounce'
      | 'defaultProcessLimit'
      | 'messageSizeLimit'
    > {}
