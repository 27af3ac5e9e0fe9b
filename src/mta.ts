/**
 * Mta: a whole mail server from one config — Postern's master(8).
 *
 * Builds the components (QueueStore, Rewriter, Cleanup behind the Submission port,
 * QueueManager, Bounce, the delivery agents by transport name, one SmtpReceiver per
 * listener), wires them, starts them in dependency order and stops them in reverse:
 * listeners stop accepting first, in-flight SMTP transactions and deliveries finish,
 * then the store closes.
 *
 * @example
 * const mta = new Mta({ myhostname: 'mx.example.com', smtpd: [{ listen: '127.0.0.1:2525' }] });
 * await mta.start();
 * // ... later
 * await mta.stop();
 *
 * @module
 */

import { Cleanup } from './cleanup/cleanup.js';
import { systemClock } from './clock.js';
import {
  type MtaConfig,
  type ResolvedMtaConfig,
  resolveMtaConfig,
  type TransportConfig,
} from './config/mta-config.js';
import type { Parameters } from './config/parameters.js';
import { AgentRegistry } from './deliver/agent-registry.js';
import { DiscardDeliveryAgent } from './deliver/discard-agent.js';
import { ErrorDeliveryAgent } from './deliver/error-agent.js';
import { LocalDeliveryAgent } from './deliver/local-agent.js';
import type { DeliveryAgent } from './deliver/types.js';
import { ConfigError } from './errors.js';
import { Logger } from './log.js';
import { Bounce } from './queue/bounce.js';
import { FileQueueStore } from './queue/file-store.js';
import { MemoryQueueStore } from './queue/memory-store.js';
import { QueueIdGenerator } from './queue/queue-id.js';
import { QueueManager } from './queue/queue-manager.js';
import type { QueueStore } from './queue/types.js';
import { SmtpReceiver } from './receive/smtp-receiver.js';
import { Rewriter } from './rewrite/rewriter.js';
import type { Clock } from './types.js';

/** Things an embedding application (or a test) injects instead of the defaults. */
export interface MtaDependencies {
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** An address a listener is bound to. */
export interface BoundListener {
  readonly host: string;
  readonly port: number;
}

export class Mta {
  readonly config: ResolvedMtaConfig;
  readonly params: Parameters;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly store: QueueStore;
  readonly rewriter: Rewriter;
  readonly cleanup: Cleanup;
  readonly agents: AgentRegistry;
  readonly bounce: Bounce;
  readonly queueManager: QueueManager;
  readonly #receivers: SmtpReceiver[];
  #listeners: BoundListener[] = [];
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(config: MtaConfig = {}, deps: MtaDependencies = {}) {
    this.config = resolveMtaConfig(config);
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
          : new FileQueueStore({ directory: qs.directory ?? params.queueDirectory, clock, logger });
    this.rewriter = new Rewriter({ params });
    const queueIds = new QueueIdGenerator();
    this.cleanup = new Cleanup({
      params,
      store: this.store,
      rewriter: this.rewriter,
      queueIds,
      clock,
      logger,
    });
    this.bounce = new Bounce({
      submission: this.cleanup,
      store: this.store,
      params,
      clock,
      logger,
    });
    this.agents = buildAgents(this.config, params, logger, clock);
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
    });
    this.#receivers = this.config.smtpd.map(
      (l) =>
        new SmtpReceiver({
          params: l.params,
          submission: this.cleanup,
          rewriter: this.rewriter,
          logger,
          clock,
        }),
    );
  }

  /** The addresses the SMTP listeners are bound to (after `start()`). */
  get listeners(): readonly BoundListener[] {
    return this.#listeners;
  }

  /** Opens the queue, starts delivery, then opens the listeners. */
  async start(): Promise<void> {
    if (this.#state !== 'new')
      throw new Error(`Mta.start(): the MTA is ${this.#state}; create a new Mta to start again`);
    this.#state = 'starting';
    await this.store.open();
    try {
      this.queueManager.start();
      const bound: BoundListener[] = [];
      for (const [i, l] of this.config.smtpd.entries()) {
        bound.push(await this.#receivers[i]!.listen({ host: l.host, port: l.port }));
      }
      this.#listeners = bound;
    } catch (err) {
      await this.#shutdown();
      throw err;
    }
    this.#state = 'running';
    this.logger.info(
      'master',
      undefined,
      `daemon started -- version 0.1.0, listening on ${this.#listeners.map((l) => `${l.host}:${l.port}`).join(', ') || 'no SMTP port'}`,
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
    await Promise.allSettled(this.#receivers.map((r) => r.close({ graceful: true })));
    await this.queueManager.stop();
    await this.agents.close();
    await this.store.close();
  }
}

function buildAgents(
  config: ResolvedMtaConfig,
  params: Parameters,
  logger: Logger,
  clock: Clock,
): AgentRegistry {
  const registry = new AgentRegistry();
  const builtins: Record<string, TransportConfig> = {
    local: { type: 'local' },
    discard: { type: 'discard' },
    error: { type: 'error' },
    retry: { type: 'retry' },
  };
  const all: Record<string, TransportConfig> = { ...builtins, ...config.transports };
  for (const [name, t] of Object.entries(all)) {
    if (config.agents[name]) continue;
    registry.register(name, agentFor(name, t, params, logger, clock));
  }
  for (const [name, agent] of Object.entries(config.agents)) registry.register(name, agent);
  return registry;
}

function agentFor(
  name: string,
  t: TransportConfig,
  params: Parameters,
  logger: Logger,
  clock: Clock,
): DeliveryAgent {
  switch (t.type) {
    case 'local':
      return new LocalDeliveryAgent({ params, logger, clock });
    case 'discard':
      return new DiscardDeliveryAgent();
    case 'error':
      return new ErrorDeliveryAgent({ mode: 'error' });
    case 'retry':
      return new ErrorDeliveryAgent({ mode: 'retry' });
    default:
      throw new ConfigError(
        `transports.${name}: type "${t.type}" is not available in this version; use local, discard, error or retry, or give an agent in "agents"`,
        `transports.${name}.type`,
      );
  }
}
