/**
 * Postern's public API. This file only re-exports.
 *
 * @module
 */

export * from './types.js';
export { SmtpReply, reply, printable, defaultEnhanced } from './smtp-reply.js';
export * from './errors.js';
export { Logger, formatLogLine, formatDelay } from './log.js';
export type { ComponentLogger } from './log.js';
export { systemClock, ManualClock } from './clock.js';
export { QueueIdGenerator, isQueueId } from './queue/queue-id.js';
export type * from './queue/types.js';
export type * from './deliver/types.js';
export type * from './rewrite/types.js';
export { resolveParameters, PARAMETER_NAMES } from './config/parameters.js';
export type { Parameters, BareNewlinePolicy } from './config/parameters.js';
