/**
 * The package's public surface, name by name: what `postern` and each subpath export at
 * run time. The root stays what an embedding application uses (at most 45 names); the
 * pieces components are built from live behind subpaths; every name has one home. A
 * name added to or dropped from an entry point fails here until this list says so, so
 * the surface changes on purpose, not by accident.
 *
 * The entry points are loaded from src/ as tsup bundles them; the published files are
 * checked the same way in test/interop/package-exports.test.ts.
 */
import { describe, expect, it } from 'vitest';
import * as address from '../../src/exports/address.js';
import * as agents from '../../src/exports/agents.js';
import * as dns from '../../src/exports/dns.js';
import * as metrics from '../../src/exports/metrics.js';
import * as queue from '../../src/exports/queue.js';
import * as tables from '../../src/exports/tables.js';
import * as root from '../../src/index.js';
import * as testing from '../../src/testing/index.js';

const ROOT_LIMIT = 45;

/** Each entry point's runtime names, sorted as `Object.keys(...).sort()` sorts them. */
const SURFACE: Record<string, readonly string[]> = {
  postern: [
    'AgentRegistry',
    'Bounce',
    'Cleanup',
    'ConfigError',
    'CorruptMessageError',
    'DEFAULT_LISTEN',
    'DiscardDeliveryAgent',
    'EMBEDDED_CONFIG',
    'ErrorDeliveryAgent',
    'FileQueueStore',
    'LeaseLostError',
    'LmtpDeliveryAgent',
    'LocalDeliveryAgent',
    'Logger',
    'MemoryQueueStore',
    'Mta',
    'NetConnector',
    'PARAMETER_NAMES',
    'Pickup',
    'PipeDeliveryAgent',
    'PosternError',
    'PostgresQueueStore',
    'QmqpReceiver',
    'QueueIdGenerator',
    'QueueManager',
    'QueueStoreError',
    'Rewriter',
    'SmtpDeliveryAgent',
    'SmtpError',
    'SmtpReceiver',
    'SmtpReply',
    'TableError',
    'VirtualDeliveryAgent',
    'defaultEnhanced',
    'defineConfig',
    'formatLogJson',
    'formatLogLine',
    'printable',
    'reply',
    'replyFor',
    'resolveMtaConfig',
    'resolveParameters',
    'silentLogger',
    'systemClock',
  ],
  'postern/address': [
    'decodeXtext',
    'domainInfo',
    'encodeXtext',
    'formatAddress',
    'isValidDomain',
    'parseMailArgument',
    'splitAddress',
    'toAsciiDomain',
    'toUnicodeDomain',
  ],
  'postern/agents': [
    'LockBusyError',
    'MailboxDelivery',
    'MailboxPathError',
    'MailboxRefusedError',
    'MaildirWriter',
    'MboxWriter',
    'MtaStsError',
    'MtaStsResolver',
    'PasswdUsers',
    'VirtualUsers',
    'acquireDotLock',
    'formatDelay',
    'parseMtaStsPolicy',
    'pipeAgentFromConfig',
    'resolveMailboxPath',
    'sysexit',
  ],
  'postern/dns': ['DnsResolver', 'isDnsNoData', 'isDnsNotFound', 'isDnsTemporary'],
  'postern/metrics': ['DELAY_BUCKETS', 'MtaMetrics', 'PROMETHEUS_CONTENT_TYPE', 'formatPrometheus'],
  'postern/queue': [
    'QueueControlServer',
    'ShapeCounter',
    'directQueueOperations',
    'formatMailq',
    'formatShape',
    'isQueueId',
    'managerOperations',
    'queueShape',
  ],
  'postern/tables': [
    'AliasTable',
    'CidrList',
    'CidrTable',
    'DomainList',
    'FunctionTable',
    'InlineTable',
    'RegexpTable',
    'SUPPORTED_TABLE_TYPES',
    'StaticTable',
    'TableList',
    'TextTable',
    'aliasTableFrom',
    'createTable',
    'lookupAddress',
    'parseAliasTargets',
    'parseAliases',
    'parseCheckAction',
    'parseTableSpec',
    'parseTransportSpec',
  ],
  'postern/testing': [
    'CaptureAgent',
    'ManualClock',
    'MemoryNetwork',
    'MemorySocket',
    'createTestMta',
    'createTestSmtpServer',
    'parseCapturedMessage',
  ],
};

const MODULES: Record<string, Record<string, unknown>> = {
  postern: root,
  'postern/address': address,
  'postern/agents': agents,
  'postern/dns': dns,
  'postern/metrics': metrics,
  'postern/queue': queue,
  'postern/tables': tables,
  'postern/testing': testing,
};

describe('the public surface', () => {
  it.each(Object.keys(SURFACE))('%s exports exactly its listed runtime names', (entry) => {
    expect(Object.keys(MODULES[entry]!).sort()).toEqual(SURFACE[entry]);
  });

  it(`the root exports at most ${ROOT_LIMIT} runtime names`, () => {
    expect(Object.keys(root).length).toBeLessThanOrEqual(ROOT_LIMIT);
  });

  it('every runtime name has one home', () => {
    const homes = new Map<string, string[]>();
    for (const [entry, mod] of Object.entries(MODULES)) {
      for (const name of Object.keys(mod)) homes.set(name, [...(homes.get(name) ?? []), entry]);
    }
    const shared = [...homes].filter(([, entries]) => entries.length > 1);
    expect(shared).toEqual([]);
  });

  it('the components the README names are exported from the root', () => {
    for (const name of [
      'Mta',
      'SmtpReceiver',
      'QmqpReceiver',
      'Pickup',
      'Cleanup',
      'Rewriter',
      'QueueManager',
      'Bounce',
      'SmtpDeliveryAgent',
      'LmtpDeliveryAgent',
      'LocalDeliveryAgent',
      'VirtualDeliveryAgent',
      'PipeDeliveryAgent',
      'DiscardDeliveryAgent',
      'ErrorDeliveryAgent',
      'MemoryQueueStore',
      'FileQueueStore',
      'PostgresQueueStore',
    ]) {
      expect(typeof (root as Record<string, unknown>)[name], name).toBe('function');
    }
  });
});
