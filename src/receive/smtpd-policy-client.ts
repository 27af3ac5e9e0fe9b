/**
 * PolicyClient: Postfix's SMTP access policy delegation protocol, so that policy
 * servers written for Postfix (postgrey, policyd-spf, policyd-weight) work unchanged.
 *
 * Postfix counterpart: smtpd_check.c check_policy_service() and attr_clnt.c: one
 * request is `name=value` lines ended by an empty line; the reply is the same, with
 * `action=...` holding an access(5) result. Connections are kept and reused
 * (`smtpd_policy_service_max_idle`), each request has a deadline
 * (`smtpd_policy_service_timeout`), a failed request is retried on a new connection up
 * to `smtpd_policy_service_try_limit` times, and then the default action
 * (`smtpd_policy_service_default_action`, `451 4.3.5 Server configuration problem`)
 * answers.
 *
 * Targets: `inet:host:port`, `host:port`, `unix:/path` or a plain `/path`.
 *
 * Does not: Postfix's `{inet:host:port, timeout=10s, ...}` per-service overrides.
 *
 * SECURITY: attribute values sent are stripped of CR, LF and NUL (they would end the
 * request early); a reply is bounded (8 KB) and a server that sends more is dropped.
 *
 * STANDARDS: Postfix SMTPD_POLICY_README (protocol description).
 *
 * @module
 */

import net from 'node:net';

const MAX_REPLY = 8192;

/** Tunables, Postfix's smtpd_policy_service_* parameters. */
export interface PolicyClientOptions {
  readonly timeoutMs: number;
  readonly maxIdleMs: number;
  readonly tryLimit: number;
  readonly defaultAction: string;
}

/** A parsed target. */
type Target = { host: string; port: number } | { path: string };

export function parsePolicyTarget(spec: string): Target | undefined {
  let s = spec;
  if (s.startsWith('unix:')) return { path: s.slice(5) };
  if (s.startsWith('/')) return { path: s };
  if (s.startsWith('inet:')) s = s.slice(5);
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
}

/** One policy server, its connection reused across requests (serialised). */
export class PolicyClient {
  readonly #target: Target;
  readonly #options: PolicyClientOptions;
  #socket: net.Socket | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(spec: string, options: PolicyClientOptions) {
    const t = parsePolicyTarget(spec);
    if (!t) throw new Error(`"${spec}" is not inet:host:port or unix:/path`);
    this.#target = t;
    this.#options = options;
  }

  /** Sends the attributes; resolves with the `action=` value (or the default action). */
  ask(attributes: Readonly<Record<string, string | number | undefined>>): Promise<string> {
    const run = this.#chain.then(() => this.#askWithRetries(attributes));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #askWithRetries(
    attributes: Readonly<Record<string, string | number | undefined>>,
  ): Promise<string> {
    let body = '';
    for (const [k, v] of Object.entries(attributes)) {
      if (v === undefined) continue;
      body += `${k}=${String(v).replace(/[\r\n\0]/g, ' ')}\n`;
    }
    body += '\n';
    for (let attempt = 0; attempt < this.#options.tryLimit; attempt++) {
      try {
        const reply = await this.#exchange(body);
        const action = reply.get('action');
        if (action !== undefined && action.trim() !== '') return action.trim();
        this.#drop();
      } catch {
        this.#drop();
      }
    }
    return this.#options.defaultAction;
  }

  #connect(): Promise<net.Socket> {
    if (this.#socket && !this.#socket.destroyed) return Promise.resolve(this.#socket);
    return new Promise((resolve, reject) => {
      const s =
        'path' in this.#target
          ? net.connect({ path: this.#target.path })
          : net.connect({ host: this.#target.host, port: this.#target.port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error('connect timeout'));
      }, this.#options.timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.on('error', () => {});
        s.on('close', () => {
          if (this.#socket === s) this.#socket = undefined;
        });
        s.unref();
        this.#socket = s;
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
    });
  }

  async #exchange(body: string): Promise<Map<string, string>> {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    const s = await this.#connect();
    return new Promise((resolve, reject) => {
      let buf = '';
      const finish = (err: Error | undefined, result?: Map<string, string>): void => {
        clearTimeout(timer);
        s.off('data', onData);
        s.off('close', onClose);
        if (err) reject(err);
        else {
          this.#idleTimer = setTimeout(() => this.#drop(), this.#options.maxIdleMs);
          this.#idleTimer.unref();
          resolve(result ?? new Map());
        }
      };
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString('latin1');
        if (buf.length > MAX_REPLY) {
          finish(new Error('policy reply too long'));
          return;
        }
        const end = buf.indexOf('\n\n');
        if (end < 0) return;
        const attrs = new Map<string, string>();
        for (const line of buf.slice(0, end).split('\n')) {
          const eq = line.indexOf('=');
          if (eq > 0) attrs.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1));
        }
        finish(undefined, attrs);
      };
      const onClose = (): void => finish(new Error('policy server closed the connection'));
      const timer = setTimeout(
        () => finish(new Error('policy server timeout')),
        this.#options.timeoutMs,
      );
      s.on('data', onData);
      s.once('close', onClose);
      s.write(body);
    });
  }

  #drop(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  /** Closes the connection. */
  close(): void {
    this.#drop();
  }
}
