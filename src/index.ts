/**
 * Postern's public API. This file only re-exports.
 *
 * @module
 */

export type { CleanupOptions } from './cleanup/cleanup.js';
export { Cleanup } from './cleanup/cleanup.js';
export { ManualClock, systemClock } from './clock.js';
export type {
  ListenerConfig,
  MtaConfig,
  QueueStoreConfig,
  ResolvedListener,
  ResolvedMtaConfig,
  TransportConfig,
  TransportType,
} from './config/mta-config.js';
export { DEFAULT_LISTEN, resolveMtaConfig } from './config/mta-config.js';
export type { BareNewlinePolicy, Parameters } from './config/parameters.js';
export { PARAMETER_NAMES, resolveParameters } from './config/parameters.js';
export { AgentRegistry } from './deliver/agent-registry.js';
export { DiscardDeliveryAgent } from './deliver/discard-agent.js';
export type { ErrorDeliveryAgentOptions } from './deliver/error-agent.js';
export { ErrorDeliveryAgent } from './deliver/error-agent.js';
export type { LocalDeliveryAgentOptions } from './deliver/local-agent.js';
export { LocalDeliveryAgent } from './deliver/local-agent.js';
export type * from './deliver/types.js';
export * from './errors.js';
export type { ComponentLogger } from './log.js';
export { formatDelay, formatLogLine, Logger, silentLogger } from './log.js';
export type { BoundListener, MtaDependencies } from './mta.js';
export { Mta } from './mta.js';
export type { BounceOptions } from './queue/bounce.js';
export { Bounce } from './queue/bounce.js';
export type { FileQueueStoreOptions } from './queue/file-store.js';
export { FileQueueStore } from './queue/file-store.js';
export type { MemoryQueueStoreOptions } from './queue/memory-store.js';
export { MemoryQueueStore } from './queue/memory-store.js';
export { isQueueId, QueueIdGenerator } from './queue/queue-id.js';
export type {
  Notifier,
  QueueManagerOptions,
  RouteResolver,
  TransportLimits,
} from './queue/queue-manager.js';
export { QueueManager } from './queue/queue-manager.js';
export type * from './queue/types.js';
export type { ListenOptions, SmtpReceiverOptions } from './receive/smtp-receiver.js';
export { SmtpReceiver } from './receive/smtp-receiver.js';
export type { MailArgument } from './rewrite/address.js';
export { formatAddress, parseMailArgument, splitAddress } from './rewrite/address.js';
export { CidrList } from './rewrite/cidr.js';
export type { LookupFunction } from './rewrite/lookup-table.js';
export {
  createTable,
  FunctionTable,
  InlineTable,
  StaticTable,
  TableList,
} from './rewrite/lookup-table.js';
export type { RewriterOptions } from './rewrite/rewriter.js';
export { Rewriter } from './rewrite/rewriter.js';
export type { LookupAddressOptions, SearchStyle } from './rewrite/search-order.js';
export { lookupAddress } from './rewrite/search-order.js';
export { parseTransportSpec } from './rewrite/transport-spec.js';
export type * from './rewrite/types.js';
export { decodeXtext, encodeXtext } from './rewrite/xtext.js';
export type { ReplyClass } from './smtp-reply.js';
export { defaultEnhanced, printable, reply, SmtpReply } from './smtp-reply.js';
export * from './types.js';
