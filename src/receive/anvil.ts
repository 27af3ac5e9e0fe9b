/**
 * Anvil: per-client connection counts and event rates for the SMTP server.
 *
 * Postfix counterpart: anvil(8) and smtpd's use of it: concurrent connections per
 * client address (`smtpd_client_connection_count_limit`), and connection, message
 * (MAIL), recipient (RCPT) and AUTH rates per `anvil_rate_time_unit`. Clients in
 * `smtpd_client_event_limit_exceptions` (default `mynetworks`) are never limited.
 * A rate is counted in a fixed window that starts with the client's first event, as
 * anvil does; an idle client's entry is dropped when its window has passed.
 *
 * Does not: share counts between processes or cluster nodes (one receiver, one table).
 *
 * SECURITY: the table is bounded: entries expire, and the number of clients tracked is
 * capped (the oldest entry goes first), so a flood of source addresses cannot grow it
 * without limit.
 *
 * @module
 */

import { CidrList } from '../tables/cidr.js';
import type { Clock } from '../types.js';

export type AnvilEvent = 'connection' | 'message' | 'recipient' | 'auth';

/** The anvil limits (0 = no limit). */
export interface AnvilLimits {
  readonly connectionCount: number;
  readonly connectionRate: number;
  readonly messageRate: number;
  readonly recipientRate: number;
  readonly authRate: number;
  readonly timeUnitMs: number;
  readonly exceptions: readonly string[];
}

interface Entry {
  count: number;
  windowStart: number;
  rates: Record<AnvilEvent, number>;
}

const MAX_CLIENTS = 100_000;

/** The per-receiver anvil table. */
export class Anvil {
  readonly #limits: AnvilLimits;
  readonly #clock: Clock;
  readonly #exceptions: CidrList;
  readonly #entries = new Map<string, Entry>();

  constructor(limits: AnvilLimits, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
    this.#exceptions = new CidrList(limits.exceptions);
  }

  /** Whether any limit is on. */
  get active(): boolean {
    const l = this.#limits;
    return (
      l.connectionCount > 0 ||
      l.connectionRate > 0 ||
      l.messageRate > 0 ||
      l.recipientRate > 0 ||
      l.authRate > 0
    );
  }

  #exempt(address: string): boolean {
    return address === '' || this.#exceptions.matches(address);
  }

  #entry(address: string): Entry {
    const now = this.#clock.now();
    let e = this.#entries.get(address);
    if (!e) {
      if (this.#entries.size >= MAX_CLIENTS) this.#prune(now);
      e = {
        count: 0,
        windowStart: now,
        rates: { connection: 0, message: 0, recipient: 0, auth: 0 },
      };
      this.#entries.set(address, e);
    } else if (now - e.windowStart >= this.#limits.timeUnitMs) {
      e.windowStart = now;
      e.rates = { connection: 0, message: 0, recipient: 0, auth: 0 };
    }
    return e;
  }

  #prune(now: number): void {
    for (const [k, e] of this.#entries) {
      if (e.count === 0 && now - e.windowStart >= this.#limits.timeUnitMs) this.#entries.delete(k);
    }
    // Still full: drop the oldest idle entries.
    for (const [k, e] of this.#entries) {
      if (this.#entries.size < MAX_CLIENTS) break;
      if (e.count === 0) this.#entries.delete(k);
    }
  }

  /**
   * A new connection. Returns `count` or `rate` when it goes over a limit (the caller
   * replies 421 and hangs up; the connection is still counted until `disconnect`).
   */
  connect(address: string): 'count' | 'rate' | undefined {
    if (!this.active) return undefined;
    const e = this.#entry(address);
    e.count++;
    e.rates.connection++;
    if (this.#exempt(address)) return undefined;
    const l = this.#limits;
    if (l.connectionCount > 0 && e.count > l.connectionCount) return 'count';
    if (l.connectionRate > 0 && e.rates.connection > l.connectionRate) return 'rate';
    return undefined;
  }

  disconnect(address: string): void {
    const e = this.#entries.get(address);
    if (!e) return;
    e.count = Math.max(0, e.count - 1);
    if (e.count === 0 && this.#clock.now() - e.windowStart >= this.#limits.timeUnitMs)
      this.#entries.delete(address);
  }

  /** Counts a MAIL, RCPT or AUTH; true when it goes over its rate limit. */
  event(address: string, event: Exclude<AnvilEvent, 'connection'>): boolean {
    const l = this.#limits;
    const limit =
      event === 'message' ? l.messageRate : event === 'recipient' ? l.recipientRate : l.authRate;
    if (limit <= 0 || this.#exempt(address)) return false;
    const e = this.#entry(address);
    e.rates[event]++;
    return e.rates[event] > limit;
  }
}
