/**
 * The Mta's configuration: main parameters (main.cf), listeners with per-listener
 * overrides (master.cf `-o`), the `transports` map (Postern's master.cf) and the queue
 * store. `resolveMtaConfig()` validates a config object — JSON data or an `.mjs`
 * module's export — and reports every problem at once, each naming its key (with the
 * nearest known name for a misspelt one). `defineConfig()` types a config in code.
 *
 * @module
 */

import { hostname } from 'node:os';
import type { ContentFilter } from '../cleanup/content-filter.js';
import { didYouMean } from '../config/did-you-mean.js';
import { parseInteger, parseString } from '../config/values.js';
import type { DeliveryAgent, TransportConfig, TransportType } from '../deliver/types.js';
import {
  type DkimSigningKey,
  type DkimVerificationConfig,
  parseDkimSigning,
  parseDkimVerification,
} from '../dkim/dkim-config.js';
import { ConfigError } from '../errors.js';
import type { MetricsConfig } from '../metrics/types.js';
import {
  type PostgresQueueStoreConfig,
  parsePostgresStoreConfig,
} from '../queue/stores/postgres-store-config.js';
import type { QueueStore } from '../queue/types.js';
import type { Authenticator } from '../receive/smtpd-auth.js';
import type { SmtpTlsOptions } from '../receive/smtpd-receiver.js';
import type { TableSpec } from '../tables/types.js';
import {
  isParameterName,
  MAIN_PARAMETERS,
  type MainParameterInput,
  type MainParameters,
  PARAMETER_NAMES,
} from './main-parameters.js';

/**
 * One SMTP listener: `listen` plus any main parameter to override for it.
 *
 * @example
 * ```ts
 * const submission: ListenerConfig = { listen: '0.0.0.0:587', smtpdSaslAuthEnable: true, smtpdTlsSecurityLevel: 'encrypt' };
 * const mta = new Mta({ smtpd: [{ listen: '0.0.0.0:25' }, submission] });
 * ```
 */
export interface ListenerConfig extends MainParameterInput {
  /** `host:port`, `[ipv6]:port`; port 0 picks a free port. */
  readonly listen: string;
  /**
   * Most sessions at once (master.cf `maxproc`; 0 = no limit); more connections wait for
   * a session. @default defaultProcessLimit (100)
   */
  readonly maxproc?: number;
  /**
   * SMTP only: `"wrapper"` for implicit TLS (port 465, `smtpdTlsWrappermode`), or TLS
   * options given as code (`{ cert, key }`, `{ secureContext, sni }`).
   */
  readonly tls?: 'wrapper' | SmtpTlsOptions;
  /**
   * SMTP only: the SASL backend, a table of user → password (`"texthash:/etc/postern/users"`,
   * `{ "alice": "secret" }`, a LookupTable) or a function that checks a login.
   */
  readonly authenticator?: Authenticator | TableSpec;
}

/**
 * Which QueueStore to use.
 *
 * @example
 * ```ts
 * const mta = new Mta({ queueStore: { type: 'file', directory: '/var/spool/postern' } satisfies QueueStoreConfig });
 * ```
 */
export type QueueStoreConfig =
  | { readonly type: 'file'; readonly directory?: string }
  | { readonly type: 'memory' }
  | PostgresQueueStoreConfig;

/**
 * What `new Mta(config)` and `postern serve --config FILE` take.
 *
 * @example
 * ```ts
 * const config: MtaConfig = {
 *   myhostname: 'mx.example.com',
 *   mydestination: ['example.com'],
 *   smtpd: [{ listen: '0.0.0.0:25' }],
 *   queueStore: { type: 'file', directory: './var/queue' },
 * };
 * const mta = new Mta(config);
 * ```
 */
export interface MtaConfig extends MainParameterInput {
  /** The JSON Schema of the config (`"node_modules/postern/config.schema.json"`); ignored. */
  readonly $schema?: string;
  /** SMTP listeners; `[{ listen: DEFAULT_LISTEN }]` when not given. */
  readonly smtpd?: readonly ListenerConfig[];
  /** QMQP listeners (none by default); clients must be in `qmqpdAuthorizedClients`. */
  readonly qmqpd?: readonly ListenerConfig[];
  /** Named transports of the built-in types (master.cf entries), beside the default ones. */
  readonly transports?: Readonly<Record<string, TransportConfig>>;
  /** The queue: a config for a built-in store, or a ready QueueStore. */
  readonly queueStore?: QueueStoreConfig | QueueStore;
  /** Agents given as code (an `.mjs` config): transport name → agent. */
  readonly agents?: Readonly<Record<string, DeliveryAgent>>;
  /** Node name for queue leases; random per process by default. */
  readonly nodeId?: string;
  /**
   * Cleanup's content-filter hook, given as code (an `.mjs` config): sees each message
   * and returns accept, reject, defer, discard or hold (see ContentFilter).
   */
  readonly contentFilter?: ContentFilter;
  /** Metrics options: `{ "listen": "127.0.0.1:9464" }` serves Prometheus text on `/metrics`. */
  readonly metrics?: MetricsConfig;
  /**
   * DKIM keys: mail from trusted clients (mynetworks, SASL, local submission) whose
   * From: domain has a key is signed before it is queued. Needs the `mailauth` package.
   */
  readonly dkimSigning?: readonly DkimSigningKey[];
  /**
   * Authentication-Results (DKIM, SPF, DMARC, ARC) on mail from other clients, and
   * optionally their DMARC policy applied. Needs the `mailauth` package.
   */
  readonly dkimVerification?: DkimVerificationConfig | boolean;
}

/**
 * Types a config written as code: every key checked, every parameter's value of its
 * kind, keys completed by the editor. Returns `config` as it is.
 *
 * @example
 * ```ts
 * // postern.config.mjs
 * import { defineConfig } from 'postern';
 * export default defineConfig({ myhostname: 'mx.example.com', smtpd: [{ listen: '0.0.0.0:25' }] });
 * ```
 */
export function defineConfig(config: MtaConfig): MtaConfig {
  return config;
}

/**
 * A listener after validation.
 *
 * @example
 * ```ts
 * for (const l of resolveMtaConfig(config).smtpd) console.log(`${l.host}:${l.port}`);
 * ```
 */
export interface ResolvedListener {
  /** The address to bind. */
  readonly host: string;
  /** The TCP port (0: a free one). */
  readonly port: number;
  /** The main parameters with this listener's overrides applied. */
  readonly params: MainParameters;
  /**
   * SMTP only: `tls` given as an object in a code config (`{ cert, key }`,
   * `{ secureContext, sni }`); `tls: "wrapper"` is turned into `smtpdTlsWrappermode`.
   */
  readonly tls?: Readonly<Record<string, unknown>>;
  /** SMTP only: the SASL backend (a function or a LookupTable of users). */
  readonly authenticator?: unknown;
  /** master.cf `maxproc`: most sessions at once (0 = no limit). */
  readonly maxproc?: number;
}

/**
 * An MtaConfig after validation, with every default filled in.
 *
 * @example
 * ```ts
 * const resolved: ResolvedMtaConfig = resolveMtaConfig({ myhostname: 'mx.example.com' });
 * resolved.smtpd[0]?.port; // 2525
 * ```
 */
export interface ResolvedMtaConfig {
  /** The main parameters. */
  readonly params: MainParameters;
  /** SMTP listeners. */
  readonly smtpd: readonly ResolvedListener[];
  /** QMQP listeners. */
  readonly qmqpd: readonly ResolvedListener[];
  /** Named transports. */
  readonly transports: Readonly<Record<string, TransportConfig>>;
  /** The queue store to use. */
  readonly queueStore: QueueStoreConfig | QueueStore;
  /** Agents given as code. */
  readonly agents: Readonly<Record<string, DeliveryAgent>>;
  /** Node name for queue leases, if given. */
  readonly nodeId: string | undefined;
  /** The content-filter hook, if given. */
  readonly contentFilter?: ContentFilter;
  /** Where the Prometheus endpoint listens (`metrics.listen`); undefined for none. */
  readonly metrics?: ResolvedMetricsConfig;
  /** DKIM signing keys, as given (read when the Mta is built). */
  readonly dkimSigning?: readonly DkimSigningKey[];
  /** Inbound authentication, if configured. */
  readonly dkimVerification?: DkimVerificationConfig;
}

/**
 * The Mta's own config keys beside the main parameters.
 *
 * @example
 * ```ts
 * MTA_CONFIG_KEYS.includes('transports'); // true
 * ```
 */
export const MTA_CONFIG_KEYS = [
  'smtpd',
  'qmqpd',
  'transports',
  'queueStore',
  'agents',
  'nodeId',
  'metrics',
  'contentFilter',
  'dkimSigning',
  'dkimVerification',
] as const;
const OWN_KEYS: ReadonlySet<string> = new Set(MTA_CONFIG_KEYS);
/** The built-in transport types a `transports` entry may name. */
export const TRANSPORT_TYPES: readonly TransportType[] = [
  'local',
  'discard',
  'error',
  'retry',
  'smtp',
  'lmtp',
  'virtual',
  'pipe',
];

/**
 * The default SMTP listener of the embedded MTA.
 *
 * @example
 * ```ts
 * new Mta({ smtpd: [{ listen: DEFAULT_LISTEN }] }); // the same as new Mta()
 * ```
 */
export const DEFAULT_LISTEN = '127.0.0.1:2525';

/** Parses `host:port` / `[v6]:port`. */
export function parseListen(value: unknown, key: string): { host: string; port: number } {
  const text = parseString(value, key);
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new ConfigError(
      `${key}: "${text}" is not "host:port" (e.g. "127.0.0.1:2525" or "[::1]:2525")`,
      key,
    );
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function isStore(value: unknown): value is QueueStore {
  return (
    typeof value === 'object' && value !== null && typeof (value as QueueStore).claim === 'function'
  );
}

function defaultHostname(): string {
  const name = hostname();
  return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(name)
    ? name
    : `${name.replace(/[^A-Za-z0-9-]/g, '') || 'localhost'}.localdomain`;
}

/** Runs `step`; a ConfigError it throws joins `problems` and the result is undefined. */
function collect<T>(problems: ConfigError[], step: () => T): T | undefined {
  try {
    return step();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    return undefined;
  }
}

/**
 * The problem of an unknown key: `what` says where it is, and the nearest known name
 * follows when there is one.
 */
function unknownKey(
  key: string,
  what: string,
  name: string,
  known: Iterable<string>,
  hint: string,
): ConfigError {
  const guess = didYouMean(name, known);
  const mean = guess === undefined ? '' : `; did you mean "${guess}"?`;
  return new ConfigError(`${what} "${name}"${mean} (${hint})`, key);
}

const LISTENER_KEYS = ['listen', 'maxproc', 'tls', 'authenticator'];

/** Listeners of one service (`smtpd`, `qmqpd`): each `listen` plus main parameter overrides. */
function resolveListeners(
  service: string,
  value: unknown,
  main: { readonly input: Record<string, unknown>; readonly problems: readonly ConfigError[] },
  params: MainParameters,
  problems: ConfigError[],
): ResolvedListener[] {
  if (!Array.isArray(value)) {
    problems.push(
      new ConfigError(
        `${service}: expected an array of listeners such as [{ "listen": "127.0.0.1:2525" }]`,
        service,
      ),
    );
    return [];
  }
  const mainProblems = new Set(main.problems.map((p) => p.message));
  const out: ResolvedListener[] = [];
  value.forEach((l: unknown, i) => {
    const key = `${service}[${i}]`;
    if (typeof l !== 'object' || l === null) {
      problems.push(new ConfigError(`${key}: expected an object with "listen"`, key));
      return;
    }
    const { listen, tls, authenticator, maxproc, ...overrides } = l as Record<string, unknown>;
    const address = collect(problems, () => parseListen(listen, `${key}.listen`));
    if (tls === 'wrapper') overrides.smtpdTlsWrappermode = true;
    else if (tls !== undefined && (typeof tls !== 'object' || tls === null)) {
      problems.push(
        new ConfigError(
          `${key}.tls: expected "wrapper" (implicit TLS, port 465) or an object such as { cert, key }`,
          `${key}.tls`,
        ),
      );
    }
    for (const k of Object.keys(overrides)) {
      if (isParameterName(k)) continue;
      problems.push(
        unknownKey(
          `${key}.${k}`,
          `${key}: unknown key`,
          k,
          [...LISTENER_KEYS, ...PARAMETER_NAMES],
          'a listener takes "listen", "maxproc", "tls", "authenticator" and main parameter overrides',
        ),
      );
      delete overrides[k];
    }
    const own: ConfigError[] = [];
    const listenerParams = Object.keys(overrides).length
      ? MAIN_PARAMETERS.resolve(
          { ...main.input, ...overrides },
          { problems: own, keyOf: (n) => (n in overrides ? `${key}.${n}` : n) },
        )
      : params;
    // The main parameters' own problems are reported once, not again for each listener.
    problems.push(...own.filter((p) => !mainProblems.has(p.message)));
    const limit = collect(problems, () =>
      maxproc === undefined ? undefined : parseInteger(maxproc, `${key}.maxproc`, 0),
    );
    if (address === undefined) return;
    out.push({
      host: address.host,
      port: address.port,
      params: listenerParams,
      ...(typeof tls === 'object' && tls !== null ? { tls: tls as Record<string, unknown> } : {}),
      ...(authenticator !== undefined ? { authenticator } : {}),
      ...(limit !== undefined ? { maxproc: limit } : {}),
    });
  });
  return out;
}

/**
 * The address of the metrics endpoint after validation.
 *
 * @example
 * ```ts
 * resolveMtaConfig({ metrics: { listen: '127.0.0.1:9464' } }).metrics; // { host: '127.0.0.1', port: 9464 }
 * ```
 */
export interface ResolvedMetricsConfig {
  /** Numeric address or name to bind. */
  readonly host: string;
  /** TCP port; 0 picks a free one. */
  readonly port: number;
}

/** The `metrics` key: `{ "listen": "host:port" }`, or nothing. */
function resolveMetricsConfig(value: unknown): ResolvedMetricsConfig | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(
      'metrics: expected an object such as { "listen": "127.0.0.1:9464" }',
      'metrics',
    );
  const { listen, ...rest } = value as Record<string, unknown>;
  const unknownKey = Object.keys(rest)[0];
  if (unknownKey !== undefined)
    throw new ConfigError(
      `metrics: unknown key "${unknownKey}"; metrics takes "listen"`,
      `metrics.${unknownKey}`,
    );
  return listen === undefined ? undefined : parseListen(listen, 'metrics.listen');
}

/** The `transports` key: name → `{ type, ... }`, every transport checked. */
function resolveTransports(
  value: unknown,
  problems: ConfigError[],
): Record<string, TransportConfig> {
  const transports: Record<string, TransportConfig> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(
      new ConfigError(
        'transports: expected an object of transport name → { "type": ... }',
        'transports',
      ),
    );
    return transports;
  }
  for (const [name, t] of Object.entries(value as Record<string, unknown>)) {
    const key = `transports.${name}`;
    if (typeof t !== 'object' || t === null) {
      problems.push(new ConfigError(`${key}: expected an object with "type"`, key));
      continue;
    }
    const type = (t as { type?: unknown }).type;
    if (!TRANSPORT_TYPES.includes(type as TransportType)) {
      problems.push(
        new ConfigError(
          `${key}.type: expected one of ${TRANSPORT_TYPES.join(', ')}, got ${JSON.stringify(type)}`,
          `${key}.type`,
        ),
      );
      continue;
    }
    const tc = t as TransportConfig;
    const before = problems.length;
    for (const limit of ['destinationConcurrencyLimit', 'destinationRecipientLimit'] as const) {
      if (tc[limit] !== undefined)
        collect(problems, () => parseInteger(tc[limit], `${key}.${limit}`, 1));
    }
    if (problems.length === before) transports[name] = tc;
  }
  return transports;
}

/** The `queueStore` key: a built-in store's config or a ready QueueStore. */
function resolveQueueStore(value: unknown, queueDirectory: string): QueueStoreConfig | QueueStore {
  const type =
    typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : '';
  if (value === undefined) return { type: 'file', directory: queueDirectory };
  if (isStore(value)) return value;
  if (type === 'memory') return { type: 'memory' };
  if (type === 'file') {
    const dir = (value as { directory?: unknown }).directory;
    return {
      type: 'file',
      directory: dir === undefined ? queueDirectory : parseString(dir, 'queueStore.directory'),
    };
  }
  if (type === 'postgres') return parsePostgresStoreConfig(value as object);
  throw new ConfigError(
    'queueStore: expected { "type": "file", "directory": "..." }, { "type": "memory" } or { "type": "postgres", "url": "postgres://..." }',
    'queueStore',
  );
}

/** The `agents` key: transport name → DeliveryAgent. */
function resolveAgents(value: unknown): Record<string, DeliveryAgent> {
  const agents = (value ?? {}) as Record<string, DeliveryAgent>;
  if (
    typeof agents !== 'object' ||
    Object.values(agents).some((a) => typeof a?.deliver !== 'function')
  ) {
    throw new ConfigError(
      'agents: expected an object of transport name → DeliveryAgent (an object with deliver())',
      'agents',
    );
  }
  return agents;
}

/**
 * Validates `input` and fills in defaults. Throws one ConfigError naming every problem
 * (its `problems` list them, each with its key; a misspelt key names the nearest known).
 *
 * @example
 * ```ts
 * try {
 *   resolveMtaConfig({ smtpd: [{ listen: 'nowhere' }], smtpdBaner: 'hi' });
 * } catch (err) {
 *   if (err instanceof ConfigError) for (const p of err.problems) console.error(p.key, p.message);
 * }
 * ```
 */
export function resolveMtaConfig(input: unknown = {}): ResolvedMtaConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError('the configuration must be an object of parameter names and values');
  }
  const config = input as Record<string, unknown>;
  const problems: ConfigError[] = [];
  for (const key of Object.keys(config)) {
    if (OWN_KEYS.has(key) || isParameterName(key)) continue;
    if (key === '$schema' && typeof config[key] === 'string') continue;
    problems.push(
      unknownKey(
        key,
        'unknown configuration key',
        key,
        [...MTA_CONFIG_KEYS, ...PARAMETER_NAMES],
        `parameter names are Postfix's in camelCase, e.g. "myhostname", "messageSizeLimit"`,
      ),
    );
  }
  const mainInput: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) if (isParameterName(k)) mainInput[k] = v;
  if (mainInput.myhostname === undefined) mainInput.myhostname = defaultHostname();
  const params = MAIN_PARAMETERS.resolve(mainInput, { problems });
  const main = { input: mainInput, problems: [...problems] };

  const smtpd = resolveListeners(
    'smtpd',
    config.smtpd ?? [{ listen: DEFAULT_LISTEN }],
    main,
    params,
    problems,
  );
  const qmqpd = resolveListeners('qmqpd', config.qmqpd ?? [], main, params, problems);
  const transports = resolveTransports(config.transports ?? {}, problems);
  const queueStore = collect(problems, () =>
    resolveQueueStore(config.queueStore, params.queueDirectory),
  );
  const agents = collect(problems, () => resolveAgents(config.agents)) ?? {};
  const nodeId = collect(problems, () =>
    config.nodeId === undefined ? undefined : parseString(config.nodeId, 'nodeId'),
  );
  const metrics = collect(problems, () => resolveMetricsConfig(config.metrics));
  const dkimSigning = collect(problems, () => parseDkimSigning(config.dkimSigning));
  const dkimVerification = collect(problems, () => parseDkimVerification(config.dkimVerification));
  const contentFilter = config.contentFilter;
  if (contentFilter !== undefined && typeof contentFilter !== 'function') {
    problems.push(
      new ConfigError(
        'contentFilter: expected a function (envelope, message) => Promise<verdict>; give it from an .mjs config',
        'contentFilter',
      ),
    );
  }
  if (problems.length > 0 || queueStore === undefined) throw ConfigError.of(problems);
  return {
    params,
    smtpd,
    qmqpd,
    transports,
    queueStore,
    agents,
    nodeId,
    ...(metrics ? { metrics } : {}),
    ...(contentFilter ? { contentFilter: contentFilter as ContentFilter } : {}),
    ...(dkimSigning?.length ? { dkimSigning } : {}),
    ...(dkimVerification ? { dkimVerification } : {}),
  };
}

/**
 * The queue directory the maildrop of `config` lives in: the file store's directory,
 * or `queueDirectory` with any other store. `postern serve`, `postern sendmail` and
 * `postern queue` all find it here.
 */
export function queueDirectoryOf(config: ResolvedMtaConfig): string {
  const qs = config.queueStore;
  if ('claim' in qs || qs.type !== 'file') return config.params.queueDirectory;
  return qs.directory ?? config.params.queueDirectory;
}
