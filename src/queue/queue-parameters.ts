/**
 * The queue's lifetimes, which both the queue manager (when to give up) and Bounce (what
 * a delay or failure notice says) read.
 *
 * Postfix counterpart: `maximal_queue_lifetime` and `bounce_queue_lifetime` in
 * postconf(5).
 *
 * @module
 */

import { defineParameters } from '../config/parameter-declaration.js';
import { param } from '../config/parameter-kinds.js';

/**
 * The queue lifetimes.
 *
 * @example
 * ```ts
 * QUEUE_PARAMETERS.maximalQueueLifetime.defaultText; // '"5d"'
 * ```
 */
export const QUEUE_PARAMETERS = defineParameters({
  maximalQueueLifetime: param.time({
    postfix: 'maximal_queue_lifetime',
    doc: 'How long a message may stay deferred before it bounces.',
    default: '5d',
  }),
  bounceQueueLifetime: param.time({
    postfix: 'bounce_queue_lifetime',
    doc: 'How long a bounce (from `<>`) may stay deferred before it is given up.',
    default: '5d',
  }),
});
