/**
 * AgentRegistry: delivery agents by transport name — Postern's master.cf.
 *
 * Postfix counterpart: the transport column of master.cf, which the queue manager
 * uses to find the delivery agent for a resolved transport. A duplicate name is a
 * configuration error (as dict_open.c refuses a second registration).
 *
 * @module
 */

import { ConfigError } from '../errors.js';
import type { DeliveryAgent } from './types.js';

/**
 * Delivery agents by transport name: Postern's master.cf. Postfix counterpart: the
 * transport column of master.cf.
 *
 * @example
 * ```ts
 * const agents = new AgentRegistry()
 *   .register('discard', new DiscardDeliveryAgent())
 *   .register('error', new ErrorDeliveryAgent());
 * agents.get('discard'); // the DiscardDeliveryAgent
 * ```
 */
export class AgentRegistry {
  readonly #agents = new Map<string, DeliveryAgent>();

  /** Registers `agent` under `name`; throws ConfigError if the name is taken. */
  register(name: string, agent: DeliveryAgent): this {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      throw new ConfigError(
        `transport name "${name}" must be letters, digits, '.', '_' or '-'`,
        'transports',
      );
    }
    if (this.#agents.has(name)) {
      throw new ConfigError(
        `transport "${name}" is registered twice; give the second one another name`,
        'transports',
      );
    }
    this.#agents.set(name, agent);
    return this;
  }

  /** The agent registered under `name`, if any. */
  get(name: string): DeliveryAgent | undefined {
    return this.#agents.get(name);
  }

  /** Whether an agent is registered under `name`. */
  has(name: string): boolean {
    return this.#agents.has(name);
  }

  /** Every registered transport name. */
  get names(): string[] {
    return [...this.#agents.keys()];
  }

  /** Closes every agent (cached connections, child processes). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#agents.values()].map((a) => a.close?.()));
  }
}
