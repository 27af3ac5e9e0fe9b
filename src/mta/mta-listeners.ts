/**
 * ListenerGroup: the listeners of one service (smtpd or qmqpd) — a receiver and a bound
 * address per listener — and their replacement on reload.
 *
 * Postfix counterpart: master(8)'s inet services across `postfix reload`: the
 * listening socket stays open, new connections go to processes started with the new
 * configuration, processes already serving a client finish under the old one, a
 * service removed from master.cf stops listening and a new one starts.
 *
 * Each binding's handler looks up the receiver of its slot when a connection arrives,
 * so replacing a receiver never closes the socket. Listeners are matched by the
 * address they were configured with (`host:port` as written, port 0 included, in
 * order), so a `127.0.0.1:0` listener keeps the port it got.
 *
 * Does not: decide what a reload may change (mta-reload.ts does), or time out draining
 * receivers (their own timeouts end idle sessions).
 *
 * @module
 */

import type { Duplex } from 'node:stream';
import type { BoundListener, NetworkBinding, ServiceNetwork } from '../service-network.js';
import type { ClientInfo } from '../types.js';
import type { ResolvedListener } from './mta-config.js';

/** What a listener group needs of a receiver (SmtpReceiver, QmqpReceiver). */
export interface GroupReceiver {
  handle(socket: Duplex, peer: ClientInfo): void;
  close(options?: { graceful?: boolean }): Promise<void>;
  readonly sessionCount: number;
}

/** How often a replaced receiver is asked whether its last session has ended. */
const DRAIN_POLL_MS = 1000;

interface Slot<R extends GroupReceiver> {
  config: ResolvedListener;
  receiver: R;
  binding: NetworkBinding | undefined;
}

/**
 * The listeners of one service.
 *
 * @example
 * ```ts
 * const smtpd = new ListenerGroup(network, config.smtpd, (l) => new SmtpReceiver({ params: l.params, submission, rewriter }));
 * await smtpd.start();
 * await smtpd.replace(next.smtpd);
 * await smtpd.close();
 * ```
 */
export class ListenerGroup<R extends GroupReceiver> {
  readonly #network: ServiceNetwork;
  readonly #build: (listener: ResolvedListener) => R;
  #slots: Slot<R>[];
  /** Replaced receivers whose sessions are still open, with the way to end them now. */
  readonly #draining = new Map<R, { done: Promise<void>; stop: () => void }>();

  /** Builds every receiver now (so config errors surface before anything listens). */
  constructor(
    network: ServiceNetwork,
    listeners: readonly ResolvedListener[],
    build: (listener: ResolvedListener) => R,
  ) {
    this.#network = network;
    this.#build = build;
    this.#slots = listeners.map((config) => ({
      config,
      receiver: build(config),
      binding: undefined,
    }));
  }

  /** The receivers, in listener order. */
  get receivers(): readonly R[] {
    return this.#slots.map((s) => s.receiver);
  }

  /** The listeners' configs, in order. */
  get configs(): readonly ResolvedListener[] {
    return this.#slots.map((s) => s.config);
  }

  /** The bound addresses, in order (empty before start()). */
  get bound(): readonly BoundListener[] {
    return this.#slots.flatMap((s) =>
      s.binding ? [{ host: s.binding.host, port: s.binding.port }] : [],
    );
  }

  /** Binds every listener; on a failure closes what it bound and rejects. */
  async start(): Promise<void> {
    try {
      for (const slot of this.#slots) slot.binding = await this.#bind(slot);
    } catch (err) {
      await this.#unbind(this.#slots);
      throw err;
    }
  }

  /**
   * Runs `listeners` instead: new receivers for all (built first: a build error changes
   * nothing), the same socket for an address listened on before, new sockets for new
   * addresses, removed addresses closed. Old receivers finish their sessions in the
   * background. Rejects, changing nothing, when a build or a new bind fails.
   */
  async replace(listeners: readonly ResolvedListener[]): Promise<void> {
    const next: Slot<R>[] = [];
    try {
      for (const config of listeners)
        next.push({ config, receiver: this.#build(config), binding: undefined });
    } catch (err) {
      for (const slot of next) this.#drain(slot.receiver);
      throw err;
    }
    const unmatched = [...this.#slots];
    const reuse = next.map((slot) => {
      const i = unmatched.findIndex((old) => sameAddress(old.config, slot.config));
      return i >= 0 ? unmatched.splice(i, 1)[0] : undefined;
    });
    const bound: Slot<R>[] = [];
    try {
      for (const [k, slot] of next.entries()) {
        if (reuse[k]) continue;
        slot.binding = await this.#bind(slot);
        bound.push(slot);
      }
    } catch (err) {
      await this.#unbind(bound);
      for (const slot of next) this.#drain(slot.receiver);
      throw err;
    }
    // A kept socket's handler reads its slot's receiver: swap the receiver in that slot.
    this.#slots = next.map((slot, k) => {
      const old = reuse[k];
      if (!old) return slot;
      this.#drain(old.receiver);
      old.receiver = slot.receiver;
      old.config = slot.config;
      return old;
    });
    await this.#unbind(unmatched);
    for (const old of unmatched) this.#drain(old.receiver);
  }

  /** Stops listening, ends sessions gracefully (replaced receivers' too) and waits for them. */
  async close(): Promise<void> {
    await this.#unbind(this.#slots);
    const draining = [...this.#draining.values()];
    for (const d of draining) d.stop();
    await Promise.allSettled([
      ...this.#slots.map((s) => s.receiver.close({ graceful: true })),
      ...draining.map((d) => d.done),
    ]);
  }

  /** Sessions still open on receivers a reload replaced. */
  get drainingSessions(): number {
    let n = 0;
    for (const r of this.#draining.keys()) n += r.sessionCount;
    return n;
  }

  /** Sessions open on each listener, old receivers' included. */
  sessionCount(index: number): number {
    return this.#slots[index]?.receiver.sessionCount ?? 0;
  }

  #bind(slot: Slot<R>): Promise<NetworkBinding> {
    const { host, port } = slot.config;
    return this.#network.listen({ host, port }, (socket, peer) =>
      slot.receiver.handle(socket, peer),
    );
  }

  async #unbind(slots: readonly Slot<R>[]): Promise<void> {
    await Promise.allSettled(slots.map((s) => s.binding?.close()));
    for (const s of slots) s.binding = undefined;
  }

  /**
   * Lets a replaced receiver's sessions end on their own (the client quits, or the
   * receiver's timeouts end it), as an old smtpd process does after `postfix reload`;
   * then closes it. close() of the group ends them at once instead.
   */
  #drain(receiver: R): void {
    let timer: NodeJS.Timeout | undefined;
    let stopNow!: () => void;
    const stopped = new Promise<void>((resolve) => {
      stopNow = resolve;
    });
    const idle = async (): Promise<void> => {
      while (receiver.sessionCount > 0) {
        const waited = await Promise.race([
          stopped.then(() => 'stop' as const),
          new Promise<'tick'>((resolve) => {
            timer = setTimeout(() => resolve('tick'), DRAIN_POLL_MS);
            timer.unref();
          }),
        ]);
        clearTimeout(timer);
        if (waited === 'stop') break;
      }
    };
    const done = idle()
      .then(() => receiver.close({ graceful: true }))
      .catch(() => undefined)
      .finally(() => this.#draining.delete(receiver));
    this.#draining.set(receiver, { done, stop: stopNow });
  }
}

function sameAddress(a: ResolvedListener, b: ResolvedListener): boolean {
  return a.host === b.host && a.port === b.port;
}
