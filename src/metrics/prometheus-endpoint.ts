/**
 * PrometheusEndpoint: a plain node:http server that answers `GET /metrics` with the
 * metrics in Prometheus text format, and `GET /healthz` with the health check: 200 and
 * `ok` lines, or 503 and what is wrong (for a load balancer, a container runtime or
 * Kubernetes probes).
 *
 * Postfix counterpart: none.
 *
 * Does not: authenticate or encrypt (bind it to a loopback or management address, or
 * put a proxy in front), or serve anything but `/metrics` and `/healthz` (404) and
 * GET/HEAD (405).
 *
 * SECURITY: the answers hold counts, transport names and check results only — no
 * addresses, no message data; request bodies are never read.
 *
 * @module
 */

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtin } from '../builtin.js';
import type { BoundListener } from '../service-network.js';
import { errorMessage } from '../util/error-message.js';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus-format.js';
import type { HealthStatus } from './types.js';

/** Serves `render()`'s text on `GET /metrics` and `health()` on `GET /healthz`. */
export class PrometheusEndpoint {
  readonly #server: Server;
  #address: BoundListener | undefined;

  constructor(render: () => Promise<string>, health?: () => Promise<HealthStatus>) {
    this.#server = builtin('http').createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/metrics' && !(path === '/healthz' && health)) {
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('not found; try /metrics or /healthz\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end();
        return;
      }
      if (path === '/healthz' && health) {
        health().then(
          (h) => {
            const body = Object.entries(h.checks)
              .map(([name, result]) => `${name}: ${result}\n`)
              .join('');
            res.writeHead(h.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' });
            res.end(req.method === 'HEAD' ? undefined : body);
          },
          (err: unknown) => {
            res
              .writeHead(503, { 'content-type': 'text/plain' })
              .end(`health check failed: ${errorMessage(err)}\n`);
          },
        );
        return;
      }
      render().then(
        (text) => {
          res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          res
            .writeHead(500, { 'content-type': 'text/plain' })
            .end(`cannot collect metrics: ${errorMessage(err)}\n`);
        },
      );
    });
  }

  /** The bound address, after `listen()`. */
  get address(): BoundListener | undefined {
    return this.#address;
  }

  /** Binds `host:port` (port 0: a free one); resolves with the bound address. */
  listen(address: BoundListener): Promise<BoundListener> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          Object.assign(
            new Error(
              `metrics.listen: cannot listen on ${address.host}:${address.port}: ${err.message}; choose a free port or another address`,
            ),
            { cause: err },
          ),
        );
      };
      this.#server.once('error', onError);
      this.#server.listen(address.port, address.host, () => {
        this.#server.off('error', onError);
        const info = this.#server.address() as AddressInfo;
        this.#address = { host: info.address, port: info.port };
        resolve(this.#address);
      });
    });
  }

  /** Stops listening and closes idle keep-alive connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }
}
