/**
 * Postern's public API. This file only re-exports.
 *
 * @module
 */

export type { MailArgument } from './address/address.js';
export { formatAddress, parseMailArgument, splitAddress } from './address/address.js';
export {
  domainInfo,
  isValidDomain,
  toAsciiDomain,
  toUnicodeDomain,
} from './address/domain.js';
export { decodeXtext, encodeXtext } from './address/xtext.js';
export type { AddressTables } from './cleanup/address-mapping.js';
export type { CheckAction } from './cleanup/check-action.js';
export { parseCheckAction } from './cleanup/check-action.js';
export type { CleanupOptions, CleanupTables } from './cleanup/cleanup.js';
export { Cleanup } from './cleanup/cleanup.js';
export type { CommitStage, StagedMessage, StageVerdict } from './cleanup/commit-stage.js';
export type { CheckTables } from './cleanup/content-checks.js';
export type {
  ContentFilter,
  ContentFilterEnvelope,
  ContentFilterVerdict,
} from './cleanup/content-filter.js';
export { ManualClock, systemClock } from './clock.js';
export type { BareNewlinePolicy, Parameters, SmtpTlsLevel } from './config/parameters.js';
export { PARAMETER_NAMES, resolveParameters } from './config/parameters.js';
export { NetConnector } from './connector.js';
export { AgentRegistry } from './deliver/agent-registry.js';
export { DiscardDeliveryAgent } from './deliver/discard-agent.js';
export type { DotLockOptions, ReleaseLock } from './deliver/dotlock.js';
export { acquireDotLock, LockBusyError } from './deliver/dotlock.js';
export type { ErrorDeliveryAgentOptions } from './deliver/error-agent.js';
export { ErrorDeliveryAgent } from './deliver/error-agent.js';
export type { LocalDeliveryAgentOptions } from './deliver/local-agent.js';
export { aliasTableFrom, LocalDeliveryAgent } from './deliver/local-agent.js';
export type {
  MailboxDeliveryOptions,
  MailboxHeaders,
  MailboxOutcome,
  MailboxTarget,
} from './deliver/mailbox-delivery.js';
export { MailboxDelivery } from './deliver/mailbox-delivery.js';
export type { MailboxPath } from './deliver/mailbox-path.js';
export { MailboxPathError, resolveMailboxPath } from './deliver/mailbox-path.js';
export type { MaildirDeliveryOptions, MaildirWriterOptions } from './deliver/maildir.js';
export { MaildirWriter } from './deliver/maildir.js';
export type { MboxDeliveryOptions, MboxWriterOptions } from './deliver/mbox.js';
export { MailboxRefusedError, MboxWriter } from './deliver/mbox.js';
export type { PipeDeliveryAgentOptions } from './deliver/pipe-agent.js';
export { PipeDeliveryAgent, pipeAgentFromConfig } from './deliver/pipe-agent.js';
export type { PipeFlags } from './deliver/pipe-argv.js';
export { LmtpDeliveryAgent } from './deliver/smtp/lmtp-agent.js';
export type { MtaStsResolverOptions } from './deliver/smtp/mta-sts-cache.js';
export { MtaStsResolver } from './deliver/smtp/mta-sts-cache.js';
export type { MtaStsMode, MtaStsPolicy } from './deliver/smtp/mta-sts-policy.js';
export { MtaStsError, parseMtaStsPolicy } from './deliver/smtp/mta-sts-policy.js';
export type { Endpoint } from './deliver/smtp/mx-resolver.js';
export { SmtpDeliveryAgent } from './deliver/smtp/smtp-agent.js';
export type { SmtpClientOptions, SmtpClientStats } from './deliver/smtp/smtp-client.js';
export type { DaneVerifier, TlsPolicy } from './deliver/smtp/tls-policy.js';
export type { SysexitEntry } from './deliver/sysexits.js';
export { sysexit } from './deliver/sysexits.js';
export type * from './deliver/types.js';
export type { TransportConfig, TransportType } from './deliver/types.js';
export type { VirtualDeliveryAgentOptions } from './deliver/virtual-agent.js';
export { VirtualDeliveryAgent } from './deliver/virtual-agent.js';
export type { DkimSigningKey, DkimVerificationConfig } from './dkim/dkim-config.js';
export * from './errors.js';
export type { ComponentLogger, LogLineOptions } from './log.js';
export { formatDelay, formatLogJson, formatLogLine, Logger, silentLogger } from './log.js';
export { DELAY_BUCKETS } from './metrics/delay-histogram.js';
export type { RejectCount } from './metrics/log-counters.js';
export type { MtaMetricsOptions } from './metrics/mta-metrics.js';
export { MtaMetrics } from './metrics/mta-metrics.js';
export { formatPrometheus, PROMETHEUS_CONTENT_TYPE } from './metrics/prometheus-format.js';
export type * from './metrics/types.js';
export { EMBEDDED_CONFIG } from './mta/embedded-config.js';
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
export { DEFAULT_LISTEN, resolveMtaConfig } from './mta/mta-config.js';
export type { BounceOptions } from './queue/bounce/bounce.js';
export { Bounce } from './queue/bounce/bounce.js';
export type {
  Notifier,
  QueueManagerOptions,
  RouteResolver,
  TransportLimits,
} from './queue/qmgr/queue-manager.js';
export { QueueManager } from './queue/qmgr/queue-manager.js';
export type { DestinationView } from './queue/qmgr/scheduler.js';
export type { ControlAccess, QueueOperations } from './queue/queue-control.js';
export {
  directQueueOperations,
  managerOperations,
  QueueControlServer,
} from './queue/queue-control.js';
export type { QueueShape, QueueShapeRow } from './queue/queue-views.js';
export { formatMailq, formatShape, queueShape, ShapeCounter } from './queue/queue-views.js';
export type { FileQueueStoreOptions } from './queue/stores/file-store.js';
export { FileQueueStore } from './queue/stores/file-store.js';
export type { MemoryQueueStoreOptions } from './queue/stores/memory-store.js';
export { MemoryQueueStore } from './queue/stores/memory-store.js';
export type * from './queue/types.js';
export { isQueueId, QueueIdGenerator } from './queue-id.js';
export type { AuthBackend, Authenticator, AuthSessionInfo } from './receive/smtpd-auth.js';
export type {
  ListenOptions,
  SmtpReceiverOptions,
  SmtpTlsOptions,
} from './receive/smtpd-receiver.js';
export { SmtpReceiver } from './receive/smtpd-receiver.js';
export type {
  CommandCheck,
  RestrictionFunction,
  RestrictionRequest,
  RestrictionResult,
  RestrictionStage,
  SmtpCommand,
} from './receive/smtpd-restriction-types.js';
export type { DnsResolverOptions } from './resolver.js';
export { DnsResolver, isDnsNoData, isDnsNotFound, isDnsTemporary } from './resolver.js';
export type { ListedRecipient, RewriterOptions, RewriterTables } from './rewrite/rewriter.js';
export { Rewriter } from './rewrite/rewriter.js';
export { parseTransportSpec } from './rewrite/transport-spec.js';
export type * from './rewrite/types.js';
export type { BoundListener, NetworkBinding, ServiceNetwork } from './service-network.js';
export type { ReplyClass } from './smtp-reply.js';
export { defaultEnhanced, printable, reply, SmtpReply } from './smtp-reply.js';
export type { AliasTarget } from './tables/alias-table.js';
export { AliasTable, parseAliases, parseAliasTargets } from './tables/alias-table.js';
export { CidrList } from './tables/cidr.js';
export { CidrTable } from './tables/cidr-table.js';
export type { CreateTableOptions } from './tables/create-table.js';
export { createTable, parseTableSpec, SUPPORTED_TABLE_TYPES } from './tables/create-table.js';
export { DomainList } from './tables/domain-list.js';
export type { FunctionCacheOptions, LookupFunction } from './tables/lookup-table.js';
export { FunctionTable, InlineTable, StaticTable, TableList } from './tables/lookup-table.js';
export type { RegexpDialect, RegexpTableOptions } from './tables/regexp-table.js';
export { RegexpTable } from './tables/regexp-table.js';
export type { LookupAddressOptions, SearchStyle } from './tables/search-order.js';
export { lookupAddress } from './tables/search-order.js';
export type { FileSourceOptions } from './tables/table-source.js';
export { TextTable } from './tables/text-table.js';
export type * from './tables/types.js';
export * from './types.js';
export type { LocalUser, UserDatabase, UserDatabaseSpec } from './util/user-database.js';
export { PasswdUsers, VirtualUsers } from './util/user-database.js';
