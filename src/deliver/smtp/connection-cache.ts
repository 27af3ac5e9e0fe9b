/**
 * ConnectionCache: idle SMTP/LMTP sessions kept open per destination for the next
 * delivery request.
 *
 * Postfix counterpart: scache(8) with smtp(8)'s session caching
 * (`smtp_connection_cache_time_limit` idle limit, `smtp_connection_reuse_time_limit`
 * and `smtp_connection_reuse_count_limit`). Postfix keys sessions by nexthop and by
 * server address; this cache keys them by the transport, the nexthop as written and the
 * TLS level, which is what a next request to the same place shares.
 *
 * A cached session is closed (QUIT) when its idle time ends, when the peer closes it
 * or sends anything while idle, and on `close()`. The taker sends RSET first and drops
 * the session when RSET fails (smtp_reuse.c).
 *
 * @module
 */

import type { SmtpConnection } from './smtp-connection.js';

interface Entry {
  readonly conn: SmtpConnection;
  readonly timer: NodeJS.Timeout;
}

export interface ConnectionCacheOptions {
  /** Idle time of a cached session, ms; 0 = cache nothing. */
  readonly idleMs: number;
  /** A session older than this is not reused, ms. */
  readonly reuseTimeMs: number;
  /** Messages per session; 0 = no limit. */
  readonly reuseCount: number;
  /** How a session is closed. */
  readonly close: (conn: SmtpConnection) => void;
  readonly now?: () => number;
}

export class ConnectionCache {
  readonly #opts: ConnectionCacheOptions;
  readonly #idle = new Map<string, Entry[]>();
  /** Sessions handed out again (for the reuse rate). */
  reused = 0;
  /** Sessions opened fresh. */
  opened = 0;

  constructor(options: ConnectionCacheOptions) {
    this.#opts = options;
  }

  get enabled(): boolean {
    return this.#opts.idleMs > 0;
  }

  /** An idle, healthy session for `key`, removed from the cache; undefined if none. */
  take(key: string): SmtpConnection | undefined {
    const list = this.#idle.get(key);
    while (list && list.length > 0) {
      const e = list.pop()!;
      clearTimeout(e.timer);
      if (list.length === 0) this.#idle.delete(key);
      if (!e.conn.broken) return e.conn;
    }
    return undefined;
  }

  /** Offers a session after a clean transaction; closes it if it may not be kept. */
  put(key: string, conn: SmtpConnection): void {
    const now = (this.#opts.now ?? Date.now)();
    const o = this.#opts;
    if (
      !this.enabled ||
      conn.broken ||
      now - conn.createdAt >= o.reuseTimeMs ||
      (o.reuseCount > 0 && conn.uses >= o.reuseCount)
    ) {
      o.close(conn);
      return;
    }
    const timer = setTimeout(() => {
      const list = this.#idle.get(key);
      const i = list?.findIndex((x) => x.conn === conn) ?? -1;
      if (list && i >= 0) {
        list.splice(i, 1);
        if (list.length === 0) this.#idle.delete(key);
      }
      o.close(conn);
    }, o.idleMs);
    timer.unref();
    let list = this.#idle.get(key);
    if (!list) {
      list = [];
      this.#idle.set(key, list);
    }
    list.push({ conn, timer });
  }

  /** Closes every idle session. */
  closeAll(): void {
    for (const list of this.#idle.values()) {
      for (const e of list) {
        clearTimeout(e.timer);
        this.#opts.close(e.conn);
      }
    }
    this.#idle.clear();
  }
}
