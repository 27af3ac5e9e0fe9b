/**
 * Mta: a whole mail server from one config — Postern's master(8).
 *
 * Builds the components: the QueueStore (memory, file or PostgreSQL), the Rewriter,
 * Cleanup behind the Submission port (with DKIM signing and verification when
 * configured), the QueueManager, Bounce, the delivery agents by transport name (`local`,
 * `virtual`, `smtp`, `relay`, `lmtp`, `discard`, `error`, `retry`, the `transports`
 * map's entries, pipe transports among them, and the application's own agents), one
 * SmtpReceiver per `smtpd` listener and one QmqpReceiver per `qmqpd` listener, Pickup
 * for the maildrop, the queue control sockets and the metrics. It wires them, starts
 * them in dependency order and stops them in reverse: listeners stop accepting first,
 * in-flight SMTP transactions and deliveries finish, then the store closes.
 *
 * @example
 * const mta = new Mta({ myhostname: 'mx.example.com', smtpd: [{ listen: '127.0.0.1:2525' }] });
 * await mta.start();
 * // ... later
 * await mta.stop();
 *
 * @module
 */

import { Cleanup } from '../cleanup/cleanup.js';
import type { ContentFilter } from '../cleanup/content-filter.js';
import { systemClock } from '../clock.js';
import { AgentRegistry } from '../deliver/agent-registry.js';
import { DiscardDeliveryAgent } from '../deliver/discard-agent.js';
import { ErrorDeliveryAgent } from '../deliver/error-agent.js';
import { LocalDeliveryAgent } from '../deliver/local-agent.js';
import { pipeAgentFromConfig } from '../deliver/pipe-agent.js';
import { LmtpDeliveryAgent } from '../deliver/smtp/lmtp-agent.js';
import { type MtaStsResolver, SharedMtaSts } from '../deliver/smtp/mta-sts-cache.js';
import { SmtpDeliveryAgent } from '../deliver/smtp/smtp-agent.js';
import type { DeliveryAgent, TransportConfig } from '../deliver/types.js';
import { VirtualDeliveryAgent } from '../deliver/virtual-agent.js';
import { loadSigningKeys } from '../dkim/dkim-config.js';
import { MessageAuthentication } from '../dkim/message-authentication.js';
import { ConfigError, PosternError } from '../errors.js';
import { Logger } from '../log.js';
import { MtaMetrics, sessionMetrics } from '../metrics/mta-metrics.js';
import { Bounce } from '../queue/bounce/bounce.js';
import { QueueManager } from '../queue/qmgr/queue-manager.js';
import { managerOperations, QueueControlServer } from '../queue/queue-control.js';
import { FileQueueStore } from '../queue/stores/file-store.js';
import { MemoryQueueStore } from '../queue/stores/memory-store.js';
import { PostgresQueueStore } from '../queue/stores/postgres-store.js';
import { postgresStoreOptions } from '../queue/stores/postgres-store-config.js';
import type { QueueStore } from '../queue/types.js';
import { QueueIdGenerator } from '../queue-id.js';
import { maildropDirectory } from '../receive/maildrop.js';
import { prepareMaildrop } from '../receive/maildrop-directory.js';
import { Pickup } from '../receive/pickup.js';
import { QmqpReceiver } from '../receive/qmqpd-receiver.js';
import type { SmtpReceiver } from '../receive/smtpd-receiver.js';
import type { CommandCheck } from '../receive/smtpd-restriction-types.js';
import { type SubmitMessage, submitThrough } from '../receive/submit.js';
import { DnsResolver } from '../resolver.js';
import { Rewriter } from '../rewrite/rewriter.js';
import type { BoundListener, ServiceNetwork } from '../service-network.js';
import type { Clock, Connector, QueueId, Resolver, SubmissionPort } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { POSTERN_VERSION } from '../util/package-version.js';
import type { MainParameters } from './main-parameters.js';
import {
  type MtaConfig,
  queueDirectoryOf,
  type ResolvedMtaConfig,
  resolveMtaConfig,
} from './mta-config.js';
import { ListenerGroup } from './mta-listeners.js';
import { planReload } from './mta-reload.js';
import { listenerLogger, smtpdReceiverBuilder } from './smtpd-receivers.js';
import type { SmtpdService } from './smtpd-service.js';
import { TcpNetwork } from './tcp-network.js';
import { transportParameters } from './transport-parameters.js';

/**
 * Things an embedding application (or a test) injects instead of the defaults.
 *
 * @example
 * ```ts
 * const mta = new Mta({}, { clock: new ManualClock(0), logger: new Logger([console.log]), connector: new NetConnector() });
 * ```
 */
export interface MtaDependencies {
  /** Time for timers, backoff and logs. @default systemClock */
  readonly clock?: Clock;
  /** Where every component logs. @default silentLogger */
  readonly logger?: Logger;
  /** DNS for the SMTP client (MX, A/AAAA); default: DnsResolver. */
  readonly resolver?: Resolver;
  /** Opens the SMTP/LMTP client's connections; default: NetConnector. */
  readonly connector?: Connector;
  /**
   * The MTA-STS policy cache of every `smtp`-type transport (with `smtpMtaStsEnable`);
   * default: one built from the main parameters, shared by the transports that keep the
   * main `smtpTlsCAfile`, `smtpMtaStsCacheSize` and `smtpMtaStsFetchTimeout`.
   */
  readonly mtaSts?: MtaStsResolver;
  /** Cleanup's content-filter hook (cleanup/content-filter.ts): a custom gateway's verdict per message. */
  readonly contentFilter?: ContentFilter;
  /** Serves the SMTP and QMQP listeners instead of TCP (postern/testing's MemoryNetwork). */
  readonly network?: ServiceNetwork;
  /** Runs before every SMTP command on every listener: postern/testing's AUTH and STARTTLS faults. */
  readonly smtpdCommandCheck?: CommandCheck;
  /**
   * Serves the `smtpd` listeners elsewhere (`postern serve`'s worker processes) instead
   * of in this process; the Mta then starts, reloads and closes it in their place.
   */
  readonly smtpdService?: SmtpdService;
  /** Makes the queue IDs of the mail this process queues; default: a random node tag. */
  readonly queueIds?: QueueIdGenerator;
}

/**
 * A whole mail server wired from one config: receivers, Pickup, Cleanup, the queue, the
 * queue manager and the delivery agents. Postfix counterpart: master(8) with main.cf and
 * master.cf.
 *
 * @example
 * ```ts
 * const mta = new Mta({ myhostname: 'mx.example.com', mydestination: ['example.com'], smtpd: [{ listen: '127.0.0.1:2525' }] });
 * await mta.start();
 * const id = await mta.submit({ from: 'app@example.com', to: ['alice@example.com'], content: 'Subject: hi\n\nHello\n' });
 * await mta.stop();
 * ```
 */
export class Mta {
  /** The running configuration (after a reload: what the reload applied). */
  get config(): ResolvedMtaConfig {
    return this.#config;
  }
  /** The main parameters. */
  readonly params: MainParameters;
  /** The logger every component writes to. */
  readonly logger: Logger;
  /** The clock every component uses. */
  readonly clock: Clock;
  /** The queue store. */
  readonly store: QueueStore;
  /** trivial-rewrite: address rewriting and resolution. */
  readonly rewriter: Rewriter;
  /** Cleanup: the Submission port into the queue. */
  readonly cleanup: Cleanup;
  /** Delivery agents by transport name. */
  readonly agents: AgentRegistry;
  /** Makes bounce, delay and success notices. */
  readonly bounce: Bounce;
  /** The queue manager (qmgr) that schedules deliveries. */
  readonly queueManager: QueueManager;
  /** Counters and gauges: `await mta.metrics.snapshot()`, events, the Prometheus endpoint. */
  readonly metrics: MtaMetrics;
  /** DKIM signing and inbound authentication, when configured (Cleanup's commit stage). */
  readonly #authentication: MessageAuthentication | undefined;
  /** Cleanup's Submission port, counting what each receiver queues. */
  readonly #received: SubmissionPort;
  #config: ResolvedMtaConfig;
  readonly #smtpd: ListenerGroup<SmtpReceiver>;
  readonly #smtpdService: SmtpdService | undefined;
  #smtpdServiceBound: readonly BoundListener[] = [];
  /** `postern queue` answers through these while a file queue is served. */
  readonly #controls: QueueControlServer[] = [];
  readonly #qmqpd: ListenerGroup<QmqpReceiver>;
  readonly #pickup: Pickup;
  /** The maildrop directory Pickup reads (`postern sendmail` writes there). */
  readonly maildropDirectory: string;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(config: MtaConfig = {}, deps: MtaDependencies = {}) {
    this.#config = resolveMtaConfig(config);
    this.params = this.config.params;
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? new Logger([], () => this.clock.now());
    const logger = this.logger;
    const clock = this.clock;
    const params = this.params;

    const qs = this.config.queueStore;
    this.store =
      'claim' in qs
        ? qs
        : qs.type === 'memory'
          ? new MemoryQueueStore({ clock, logger })
          : qs.type === 'postgres'
            ? new PostgresQueueStore(
                postgresStoreOptions(qs, {
                  clock,
                  logger,
                  ...(this.config.nodeId ? { node: this.config.nodeId } : {}),
                }),
              )
            : new FileQueueStore({
                directory: qs.directory ?? params.queueDirectory,
                clock,
                logger,
              });
    this.maildropDirectory = maildropDirectory(queueDirectoryOf(this.config));
    const network = deps.network ?? new TcpNetwork(logger.for('master'));
    this.metrics = new MtaMetrics({
      logger,
      store: this.store,
      now: () => clock.now(),
      health: () => ({ mta: this.#state === 'running' ? 'ok' : this.#state }),
      sessions: () => [
        ...this.#smtpd.configs.map((l, i) =>
          sessionMetrics(
            'smtpd',
            this.listeners[i] ?? l,
            this.#smtpdService?.sessionCount?.(i) ?? this.#smtpd.sessionCount(i),
          ),
        ),
        ...this.#qmqpd.configs.map((l, i) =>
          sessionMetrics('qmqpd', this.#qmqpd.bound[i] ?? l, this.#qmqpd.sessionCount(i)),
        ),
      ],
    });
    // Builds transportMaps, relocatedMaps, virtual*Maps... from the parameters.
    this.rewriter = new Rewriter({ params, logger });
    const queueIds = deps.queueIds ?? new QueueIdGenerator();
    const { dkimSigning, dkimVerification } = this.config;
    if ((dkimSigning || dkimVerification) && this.store instanceof PostgresQueueStore)
      throw new ConfigError(
        'dkimSigning and dkimVerification need a queue store that can read back a message being written (the file or memory store); PostgresQueueStore cannot yet',
        dkimSigning ? 'dkimSigning' : 'dkimVerification',
      );
    this.#authentication =
      dkimSigning || dkimVerification
        ? new MessageAuthentication({
            params,
            ...(dkimSigning ? { signing: loadSigningKeys(dkimSigning) } : {}),
            ...(dkimVerification ? { verification: dkimVerification } : {}),
            resolver: deps.resolver ?? new DnsResolver(),
            clock,
            log: logger.for('cleanup'),
          })
        : undefined;
    this.cleanup = new Cleanup({
      params,
      store: this.store,
      rewriter: this.rewriter,
      queueIds,
      clock,
      logger,
      // One virtual_alias_maps table for the address class (Rewriter) and expansion (Cleanup).
      ...(this.rewriter.tables.virtualAliasMaps
        ? { tables: { virtualAliasMaps: this.rewriter.tables.virtualAliasMaps } }
        : {}),
      ...((deps.contentFilter ?? this.config.contentFilter)
        ? { contentFilter: deps.contentFilter ?? this.config.contentFilter }
        : {}),
      ...(this.#authentication ? { commitStage: this.#authentication } : {}),
    });
    this.#received = this.metrics.countReceived(this.cleanup);
    this.bounce = new Bounce({
      submission: this.cleanup,
      store: this.store,
      params,
      clock,
      logger,
    });
    this.agents = buildAgents(this.config, params, logger, clock, deps, this.cleanup);
    this.queueManager = new QueueManager({
      store: this.store,
      resolver: this.rewriter,
      agents: this.agents,
      bounce: this.bounce,
      params,
      transports: this.config.transports,
      clock,
      logger,
      ...(this.config.nodeId ? { owner: this.config.nodeId } : {}),
      processLimit: params.defaultProcessLimit,
    });
    this.#smtpd = new ListenerGroup(
      network,
      this.config.smtpd,
      smtpdReceiverBuilder({
        params,
        submission: this.#received,
        rewriter: this.rewriter,
        logger,
        clock,
        commandCheck: deps.smtpdCommandCheck,
      }),
    );
    this.#smtpdService = deps.smtpdService;
    this.#pickup = new Pickup({
      directory: this.maildropDirectory,
      submission: this.#received,
      params,
      logger,
      clock,
    });
    this.#qmqpd = new ListenerGroup(
      network,
      this.config.qmqpd,
      (l) =>
        new QmqpReceiver({
          params: l.params,
          submission: this.#received,
          logger: listenerLogger(logger, params, l.params),
          clock,
          ...(l.maxproc === undefined ? {} : { processLimit: l.maxproc }),
        }),
    );
  }

  /** The addresses the QMQP listeners are bound to (after `start()`). */
  get qmqpListeners(): readonly BoundListener[] {
    return this.#qmqpd.bound;
  }

  /** The addresses the SMTP listeners are bound to (after `start()`). */
  get listeners(): readonly BoundListener[] {
    return this.#smtpdService ? this.#smtpdServiceBound : this.#smtpd.bound;
  }

  /** Opens the queue, starts delivery, then opens the listeners. */
  async start(): Promise<void> {
    if (this.#state !== 'new')
      throw new Error(`Mta.start(): the MTA is ${this.#state}; create a new Mta to start again`);
    this.#state = 'starting';
    // A missing optional package is a config error: say so before anything opens.
    try {
      await this.#authentication?.ready();
    } catch (err) {
      this.#state = 'new';
      throw err;
    }
    await this.store.open();
    try {
      this.queueManager.start();
      // With the file store the maildrop lives in the queue directory, so make it now and
      // let Pickup watch it from the start; elsewhere it is created by the first sendmail.
      // Either way its owner and mode are checked (and fixed) before Pickup reads it.
      await prepareMaildrop(this.maildropDirectory, this.logger.for('postfix-script'), {
        create: this.store instanceof FileQueueStore,
      });
      this.#pickup.start();
      if (this.store instanceof FileQueueStore) {
        const operations = managerOperations(this.store, this.queueManager);
        const log = this.logger.for('postqueue');
        for (const access of ['owner', 'public'] as const) {
          const control = new QueueControlServer({
            directory: this.store.directory,
            operations,
            log,
            access,
          });
          await control.listen().then(
            () => this.#controls.push(control),
            (err: unknown) => {
              if (PosternError.is(err)) throw err; // a socket directory not to be trusted
              // Queue commands then work only while the server is stopped; delivery goes on.
              this.logger.warning(
                'master',
                undefined,
                `cannot open the queue ${access === 'owner' ? 'control' : 'listing'} socket: ${errorMessage(err)}`,
              );
            },
          );
        }
      }
      if (this.#smtpdService) this.#smtpdServiceBound = await this.#smtpdService.start(this.store);
      else await this.#smtpd.start();
      await this.#qmqpd.start();
      if (this.config.metrics) await this.metrics.serve(this.config.metrics);
    } catch (err) {
      await this.#shutdown();
      throw err;
    }
    this.#state = 'running';
    this.logger.info(
      'master',
      undefined,
      `daemon started -- version ${POSTERN_VERSION}, listening on ${listening(this.listeners, this.#qmqpd.bound)}`,
    );
  }

  /**
   * Queues a message from code, through Cleanup like any received mail. Resolves with
   * the queue ID once it is durable; rejects with SmtpError when it is refused.
   */
  submit(message: SubmitMessage): Promise<QueueId> {
    if (this.#state !== 'running')
      return Promise.reject(
        new Error(`Mta.submit(): the MTA is ${this.#state}; call start() first`),
      );
    return submitThrough(
      this.#received,
      message,
      { component: 'api', protocol: 'local' },
      this.params,
    );
  }

  /**
   * Applies a new config to the running Mta, as `postfix reload` (mta-reload.ts says
   * what can change): listeners, `smtpd*`/`qmqpd*` parameters, TLS certificates and
   * SASL tables take effect for new connections; anything else that changed is named
   * in a warning and needs a restart. Rejects, changing nothing, when the config does
   * not validate or a new listener cannot bind.
   */
  async reload(config: MtaConfig): Promise<void> {
    if (this.#state !== 'running')
      throw new Error(`Mta.reload(): the MTA is ${this.#state}; reload a running MTA`);
    const plan = planReload(this.#config, resolveMtaConfig(config));
    if (!this.#smtpdService) await this.#smtpd.replace(plan.smtpd);
    try {
      await this.#qmqpd.replace(plan.qmqpd);
    } catch (err) {
      // Keep the two services consistent with the config they were built from.
      this.#config = { ...plan.config, qmqpd: this.#config.qmqpd };
      throw err;
    }
    this.#config = plan.config;
    if (this.#smtpdService) this.#smtpdServiceBound = await this.#smtpdService.reload();
    const what = plan.changed.length ? `; changed: ${plan.changed.join(', ')}` : '';
    this.logger.info(
      'master',
      undefined,
      `reload: listening on ${listening(this.listeners, this.#qmqpd.bound)}${what}`,
    );
    if (plan.restart.length)
      this.logger.warning(
        'master',
        undefined,
        `reload: ${plan.restart.join(', ')} changed; restart postern serve to apply ${plan.restart.length === 1 ? 'it' : 'them'} (the running values stay)`,
      );
  }

  /** Stops accepting, finishes what is in flight, closes the queue. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    this.#state = 'stopping';
    await this.#shutdown();
    this.#state = 'stopped';
    this.logger.info('master', undefined, 'terminating on signal or request');
  }

  async #shutdown(): Promise<void> {
    await Promise.allSettled([
      this.#smtpdService ? this.#smtpdService.close() : this.#smtpd.close(),
      this.#qmqpd.close(),
    ]);
    await this.#pickup.stop();
    await Promise.allSettled(this.#controls.splice(0).map((c) => c.close()));
    await this.queueManager.stop();
    await this.agents.close();
    await this.cleanup.close();
    await this.store.close();
    await this.metrics.close();
  }
}

/** `127.0.0.1:2525, qmqp 127.0.0.1:6028` for the log. */
function listening(smtpd: readonly BoundListener[], qmqpd: readonly BoundListener[]): string {
  const at = (l: BoundListener): string =>
    `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
  return (
    (smtpd.map(at).join(', ') || 'no SMTP port') + qmqpd.map((l) => `, qmqp ${at(l)}`).join('')
  );
}

function buildAgents(
  config: ResolvedMtaConfig,
  params: MainParameters,
  logger: Logger,
  clock: Clock,
  deps: MtaDependencies,
  submission?: SubmissionPort,
): AgentRegistry {
  const registry = new AgentRegistry();
  const wiring: AgentWiring = {
    ...(submission ? { submission } : {}),
    transports: (n) => registry.get(n),
    // One MTA-STS policy cache for smtp, relay and the like: each policy fetched once.
    mtaSts: new SharedMtaSts({
      params,
      logger: logger.for('smtp'),
      clock,
      ...(deps.resolver ? { resolver: deps.resolver } : {}),
      ...(deps.mtaSts ? { policies: deps.mtaSts } : {}),
    }),
  };
  const builtins: Record<string, TransportConfig> = {
    local: { type: 'local' },
    discard: { type: 'discard' },
    error: { type: 'error' },
    retry: { type: 'retry' },
    smtp: { type: 'smtp' },
    relay: { type: 'smtp' },
    lmtp: { type: 'lmtp' },
    virtual: { type: 'virtual' },
  };
  const all: Record<string, TransportConfig> = { ...builtins, ...config.transports };
  for (const [name, t] of Object.entries(all)) {
    if (config.agents[name]) continue;
    registry.register(name, agentFor(name, t, params, logger, clock, deps, wiring));
  }
  for (const [name, agent] of Object.entries(config.agents)) registry.register(name, agent);
  return registry;
}

/** What agents share with the rest of the MTA: re-submission and other transports for
 * local(8), the MTA-STS policy cache for smtp(8). */
interface AgentWiring {
  readonly submission?: SubmissionPort;
  readonly transports?: (name: string) => DeliveryAgent | undefined;
  readonly mtaSts?: SharedMtaSts;
}

function agentFor(
  name: string,
  t: TransportConfig,
  params: MainParameters,
  logger: Logger,
  clock: Clock,
  deps: MtaDependencies,
  wiring: AgentWiring = {},
): DeliveryAgent {
  switch (t.type) {
    case 'local':
      return new LocalDeliveryAgent({
        params,
        logger,
        clock,
        ...(wiring.submission ? { submission: wiring.submission } : {}),
        ...(wiring.transports ? { transports: wiring.transports } : {}),
      });
    case 'virtual':
      return new VirtualDeliveryAgent({ params, logger, clock });
    case 'pipe':
      return pipeAgentFromConfig(name, t, params, logger, clock);
    case 'discard':
      return new DiscardDeliveryAgent();
    case 'error':
      return new ErrorDeliveryAgent({ mode: 'error' });
    case 'retry':
      return new ErrorDeliveryAgent({ mode: 'retry' });
    case 'smtp':
    case 'lmtp': {
      const p = transportParameters(params, t, `transports.${name}`);
      const mtaSts = t.type === 'smtp' ? wiring.mtaSts?.for(p) : undefined;
      const options = {
        params: p,
        logger,
        ...(deps.resolver ? { resolver: deps.resolver } : {}),
        ...(deps.connector ? { connector: deps.connector } : {}),
        ...(mtaSts ? { mtaSts } : {}),
      };
      return t.type === 'smtp' ? new SmtpDeliveryAgent(options) : new LmtpDeliveryAgent(options);
    }
    default:
      throw new ConfigError(
        `transports.${name}: type "${t.type}" is not available in this version; use local, discard, error or retry, or give an agent in "agents"`,
        `transports.${name}.type`,
      );
  }
}
