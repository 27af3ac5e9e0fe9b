/**
 * Starts `postern serve` nodes that share one PostgreSQL queue and relay everything to
 * one sink, as the cluster tests run them: node `n` is `node-n` with myhostname
 * `node<n>.test`, an SMTP listener on a free port, and its own directory.
 *
 * @module
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type PosternProcess, startPostern } from './postern-process.js';

export interface ClusterOptions {
  /** The working directory; each node gets `node<n>/` in it. */
  readonly work: string;
  readonly count: number;
  /** The `queueStore` object every node uses. */
  readonly queueStore: object;
  /** Where every node relays. */
  readonly sinkPort: number;
  /** More config for every node. */
  readonly extra?: object;
}

/** Starts the nodes one after the other; resolves once each listens. */
export async function startClusterNodes(options: ClusterOptions): Promise<PosternProcess[]> {
  const nodes: PosternProcess[] = [];
  for (let n = 0; n < options.count; n++) {
    const dir = join(options.work, `node${n}`);
    await mkdir(dir);
    nodes.push(
      await startPostern(dir, {
        myhostname: `node${n}.test`,
        nodeId: `node-${n}`,
        queueDirectory: join(dir, 'queue'),
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueStore: options.queueStore,
        relayhost: `[127.0.0.1]:${options.sinkPort}`,
        smtpTlsSecurityLevel: 'none',
        ...options.extra,
      }),
    );
  }
  return nodes;
}
