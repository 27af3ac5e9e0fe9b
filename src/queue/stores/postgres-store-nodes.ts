/**
 * The nodes sharing a PostgreSQL queue, as an operator looks at them: each node's
 * heartbeat age, whether it is alive, and the mail it holds under leases — a table
 * for `postern db status`, rows for the metrics, and the qshape of held mail by node
 * for `postern queue shape`.
 *
 * Postfix counterpart: none (one host, one qmgr); the nearest is qshape(1) of the
 * active queue.
 *
 * A node is one open store (one `nodes` row per session): a node restarted under the
 * same name shows its old, dead entry until that has no leases left and is a day old.
 *
 * Does not do: take anything over (the claims do), or judge a node by anything but
 * its heartbeat.
 *
 * @module
 */

import { formatShape, ShapeCounter } from '../queue-views.js';
import type { QueueNode, QueueSummary } from '../types.js';

/** What the queries need: a pool or a client. */
export interface NodeQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

/** Every node with its heartbeat age and what it holds; `s` is the quoted schema. */
export async function nodeStatus(
  db: NodeQueryable,
  s: string,
  nodeTimeoutMs: number,
): Promise<QueueNode[]> {
  const { rows } = await db.query(
    `SELECT n.node, extract(epoch FROM n.started_at) * 1000 AS started,
       extract(epoch FROM clock_timestamp() - n.heartbeat_at) AS age,
       count(DISTINCT m.queue_id) AS messages, count(r.id) AS recipients
     FROM ${s}.nodes n
     LEFT JOIN ${s}.messages m ON m.state = 'active' AND m.lease_session = n.session
     LEFT JOIN ${s}.recipients r ON r.queue_id = m.queue_id AND r.state = 'pending'
     GROUP BY n.session ORDER BY n.node, n.started_at`,
  );
  return rows.map((row) => {
    const age = Math.max(0, Number(row.age));
    return {
      node: row.node as string,
      heartbeatAge: Math.round(age * 10) / 10,
      alive: age * 1000 < nodeTimeoutMs,
      startedAt: Math.round(Number(row.started)),
      leasedMessages: Number(row.messages),
      leasedRecipients: Number(row.recipients),
    };
  });
}

/** The nodes as a table (`postern db status`). */
export function formatNodes(nodes: readonly QueueNode[]): string {
  if (nodes.length === 0) return 'no node has this queue open\n';
  const head = ['node', 'state', 'heartbeat', 'started', 'messages', 'recipients'];
  const rows = nodes.map((n) => [
    n.node,
    n.alive ? 'alive' : 'dead',
    `${n.heartbeatAge.toFixed(1)} s ago`,
    new Date(n.startedAt).toISOString().replace(/\.\d+Z$/, 'Z'),
    String(n.leasedMessages),
    String(n.leasedRecipients),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i >= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const dead = nodes.filter((n) => !n.alive && n.leasedMessages > 0);
  const note =
    dead.length > 0 ? 'dead nodes hold mail: a live node takes it over within one heartbeat\n' : '';
  return `${[line(head), ...rows.map(line)].join('\n')}\n(messages and recipients: held under a lease now)\n${note}`;
}

/**
 * The qshape of the mail held under leases, with one row per node instead of per
 * domain (`postern queue shape` on a PostgreSQL queue).
 */
export async function shapeByNode(db: NodeQueryable, s: string, now: number): Promise<string> {
  const { rows } = await db.query(
    `SELECT coalesce(n.node, m.lease_owner, '(none)') AS node, m.arrival_time
     FROM ${s}.messages m LEFT JOIN ${s}.nodes n ON n.session = m.lease_session
     WHERE m.state = 'active'`,
  );
  const counter = new ShapeCounter(now);
  for (const row of rows) {
    const summary: QueueSummary = {
      queueId: '',
      state: 'active',
      arrivalTime: Number(row.arrival_time),
      size: 0,
      sender: '',
      domains: [row.node as string],
      pending: 0,
    };
    counter.add(summary);
  }
  return `\nactive mail by node (held under a lease):\n${formatShape(counter.shape())}`;
}
