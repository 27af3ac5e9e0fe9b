/**
 * `postern`: what an application that embeds an MTA uses. This file only re-exports.
 *
 * The root holds the Mta (master(8)), each Postfix component as a class — the receivers
 * (smtpd, qmqpd, pickup), Cleanup, the Rewriter (trivial-rewrite), the QueueManager
 * (qmgr), Bounce and the delivery agents — with the queue stores, SmtpReply, the
 * PosternError tree, the config types and parameters, logging, and the contracts
 * between the layers (the Submission port, QueueStore, DeliveryAgent, LookupTable,
 * Clock, Resolver, Connector).
 *
 * Does not hold the pieces a component is built from; those have subpaths of their own:
 * `postern/tables` (lookup tables), `postern/address` (addresses, domains, xtext),
 * `postern/agents` (mailbox writers, locks, sysexits, MTA-STS, user databases),
 * `postern/queue` (queue operations and views), `postern/metrics` (the collector and
 * the Prometheus format), `postern/dns` (the DNS resolver) and `postern/testing`.
 *
 * @module postern
 */

export type { AddressTables } from './cleanup/address-mapping.js';
export type { CleanupOptions, CleanupTables } from './cleanup/cleanup.js';
export { Cleanup } from './cleanup/cleanup.js';
export type { CleanupParameters } from './cleanup/cleanup-parameters.js';
export type { CommitStage, StagedMessage, StageVerdict } from './cleanup/commit-stage.js';
export type { CheckTables } from './cleanup/content-checks.js';
export type {
  ContentFilter,
  ContentFilterEnvelope,
  ContentFilterVerdict,
} from './cleanup/content-filter.js';
export { systemClock } from './clock.js';
export type { CoreParameters } from './config/core-parameters.js';
export type { TimeInput } from './config/parameter-kinds.js';
export { NetConnector } from './connector.js';
export { AgentRegistry } from './deliver/agent-registry.js';
export { DiscardDeliveryAgent } from './deliver/discard-agent.js';
export type { ErrorDeliveryAgentOptions } from './deliver/error-agent.js';
export { ErrorDeliveryAgent } from './deliver/error-agent.js';
export type { LocalDeliveryAgentOptions } from './deliver/local-agent.js';
export { LocalDeliveryAgent } from './deliver/local-agent.js';
export type { LocalParameters } from './deliver/local-parameters.js';
export type { PipeDeliveryAgentOptions, PipeParameters } from './deliver/pipe-agent.js';
export { PipeDeliveryAgent } from './deliver/pipe-agent.js';
export type { PipeFlags } from './deliver/pipe-argv.js';
export { LmtpDeliveryAgent } from './deliver/smtp/lmtp-agent.js';
export type { Endpoint } from './deliver/smtp/mx-resolver.js';
export { SmtpDeliveryAgent } from './deliver/smtp/smtp-agent.js';
export type { SmtpClientOptions, SmtpClientStats } from './deliver/smtp/smtp-client.js';
export type { SmtpClientParameters, SmtpTlsLevel } from './deliver/smtp/smtp-parameters.js';
export type { DaneVerifier, TlsPolicy } from './deliver/smtp/tls-policy.js';
export type {
  DeliveryAgent,
  DeliveryReporter,
  DeliveryRequest,
  DestinationStatus,
  TransportConfig,
  TransportType,
} from './deliver/types.js';
export type { VirtualDeliveryAgentOptions } from './deliver/virtual-agent.js';
export { VirtualDeliveryAgent } from './deliver/virtual-agent.js';
export type { VirtualParameters } from './deliver/virtual-parameters.js';
export type { DkimSigningKey, DkimVerificationConfig } from './dkim/dkim-config.js';
export type { PosternErrorCode, PosternErrorOptions, TableErrorKind } from './errors.js';
export {
  ConfigError,
  CorruptMessageError,
  LeaseLostError,
  PosternError,
  QueueStoreError,
  replyFor,
  SmtpError,
  TableError,
} from './errors.js';
export type { ComponentLogger, LogLineOptions } from './log.js';
export { formatLogJson, formatLogLine, Logger, silentLogger } from './log.js';
export type { MetricsConfig } from './metrics/types.js';
export { EMBEDDED_CONFIG } from './mta/embedded-config.js';
export type { MainParameterInput, MainParameters } from './mta/main-parameters.js';
export { PARAMETER_NAMES, resolveParameters } from './mta/main-parameters.js';
export type { MtaDependencies } from './mta/mta.js';
export { Mta } from './mta/mta.js';
export type {
  ListenerConfig,
  MtaConfig,
  QueueStoreConfig,
  ResolvedListener,
  ResolvedMetricsConfig,
  ResolvedMtaConfig,
} from './mta/mta-config.js';
export { DEFAULT_LISTEN, defineConfig, resolveMtaConfig } from './mta/mta-config.js';
export type { SmtpdService } from './mta/smtpd-service.js';
export type { BounceOptions } from './queue/bounce/bounce.js';
export { Bounce } from './queue/bounce/bounce.js';
export type { BounceParameters } from './queue/bounce/bounce-parameters.js';
export type { QmgrParameters } from './queue/qmgr/qmgr-parameters.js';
export type {
  Notifier,
  QueueManagerOptions,
  RouteResolver,
  TransportLimits,
} from './queue/qmgr/queue-manager.js';
export { QueueManager } from './queue/qmgr/queue-manager.js';
export type {
  FileQueueJournalOptions,
  FileQueueStoreOptions,
} from './queue/stores/file-store.js';
export { FileQueueStore } from './queue/stores/file-store.js';
export type { GroupCommitStats } from './queue/stores/journal/group-commit.js';
export type { JournalStats } from './queue/stores/journal/journal.js';
export type { MemoryQueueStoreOptions } from './queue/stores/memory-store.js';
export { MemoryQueueStore } from './queue/stores/memory-store.js';
export type { PostgresQueueStoreOptions } from './queue/stores/postgres-store.js';
export { PostgresQueueStore } from './queue/stores/postgres-store.js';
export type { PostgresQueueStoreConfig } from './queue/stores/postgres-store-config.js';
export type {
  ClaimedMessage,
  ClaimOptions,
  DestinationSlot,
  Lease,
  MessageRecord,
  MessageWriter,
  NewMessageRecord,
  QueueCounts,
  QueueEntry,
  QueueNode,
  QueueSelection,
  QueueState,
  QueueStore,
  QueueSummary,
  RecipientOutcome,
  ReleaseTarget,
  StoredOutcome,
  StoredRecipient,
  StoredRecipientState,
} from './queue/types.js';
export { QueueIdGenerator } from './queue-id.js';
export type { PickupOptions } from './receive/pickup.js';
export { Pickup } from './receive/pickup.js';
export type { PickupParameters } from './receive/pickup-parameters.js';
export type { QmqpdParameters } from './receive/qmqpd-parameters.js';
export type { QmqpReceiverOptions } from './receive/qmqpd-receiver.js';
export { QmqpReceiver } from './receive/qmqpd-receiver.js';
export type { AuthBackend, Authenticator, AuthSessionInfo } from './receive/smtpd-auth.js';
export type { BareNewlinePolicy, SmtpdParameters } from './receive/smtpd-parameters.js';
export type {
  ListenOptions,
  SmtpReceiverOptions,
  SmtpTlsOptions,
} from './receive/smtpd-receiver.js';
export { SmtpReceiver } from './receive/smtpd-receiver.js';
export type { RestrictionEntry } from './receive/smtpd-restriction-list.js';
export type {
  CommandCheck,
  RestrictionFunction,
  RestrictionRequest,
  RestrictionResult,
  RestrictionStage,
  SmtpCommand,
} from './receive/smtpd-restriction-types.js';
export type { SubmitMessage } from './receive/submit.js';
export type { RewriterParameters } from './rewrite/rewrite-parameters.js';
export type { ListedRecipient, RewriterOptions, RewriterTables } from './rewrite/rewriter.js';
export { Rewriter } from './rewrite/rewriter.js';
export type { AddressClass, ResolveResult } from './rewrite/types.js';
export type { BoundListener, NetworkBinding, ServiceNetwork } from './service-network.js';
export type { ReplyClass } from './smtp-reply.js';
export { defaultEnhanced, printable, reply, SmtpReply } from './smtp-reply.js';
export type { LookupTable, TableFlags, TableSpec } from './tables/types.js';
export type * from './types.js';
export type { LocalUser, UserDatabase } from './util/user-database.js';
