/**
 * `postern queue`: postqueue(1), postsuper(1) and qshape(1) in one command.
 *
 *   postern queue list [--limit N]            mailq listing
 *   postern queue shape [--top N]             messages by domain and age (qshape)
 *   postern queue hold ID...|ALL [--reason T] postsuper -h
 *   postern queue release ID...|ALL           postsuper -H
 *   postern queue delete ID...|ALL            postsuper -d
 *   postern queue requeue ID...|ALL           postsuper -r
 *   postern queue flush [ID...|ALL] [--destination DOMAIN]   postqueue -f / -i / -s
 *
 * Each takes `--config FILE` like `postern serve`. While a server runs on that queue
 * it is asked through its control socket (`<queue>/control.sock`); otherwise the
 * file store is opened directly (it is locked meanwhile, so a server starting then
 * waits for nothing: it fails to lock and says so). A memory queue lives only inside
 * its server process: use the API there.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import { type MtaConfig, resolveMtaConfig } from '../config/mta-config.js';
import { ConfigError } from '../errors.js';
import { FileQueueStore } from '../queue/file-store.js';
import {
  type ControlRequest,
  controlRequest,
  directQueueOperations,
  runRequest,
} from '../queue/queue-control.js';
import { isQueueId } from '../queue/queue-id.js';
import { formatMailq, formatShape, type QueueShape } from '../queue/queue-views.js';
import type { QueueEntry, QueueSelection } from '../queue/types.js';
import { loadConfigFile } from './load-config.js';

export const QUEUE_USAGE = `usage: postern queue COMMAND [ID...|ALL] [--config FILE]

  list      the queue in mailq format          [--limit N]
  shape     messages by domain and age (qshape) [--top N]
  hold      put messages on hold                [--reason TEXT]
  release   release held messages
  delete    delete messages
  requeue   requeue messages (routed afresh)
  flush     deliver deferred mail now: all, the IDs given, or [--destination DOMAIN]
`;

const COMMANDS = ['list', 'shape', 'hold', 'release', 'delete', 'requeue', 'flush'] as const;
type Command = (typeof COMMANDS)[number];

/** Thrown for bad usage (exit 64). */
export class UsageError extends Error {}

/** Runs `postern queue ...`; resolves with the text to print. */
export async function queueCommand(argv: readonly string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      limit: { type: 'string' },
      top: { type: 'string' },
      reason: { type: 'string' },
      destination: { type: 'string', short: 'd' },
    },
  });
  const [command, ...args] = positionals;
  if (!COMMANDS.includes(command as Command))
    throw new UsageError(`unknown queue command "${command ?? ''}"`);
  const req = buildRequest(command as Command, args, values);
  const config: MtaConfig = values.config ? await loadConfigFile(values.config) : {};
  const resolved = resolveMtaConfig(config);
  const qs = resolved.queueStore;
  if (!('claim' in qs) && qs.type === 'postgres') {
    // A shared queue: act on the tables directly, for every node at once.
    const { postgresQueueRequest } = await import('./db.js');
    return render(req, await postgresQueueRequest(qs, req));
  }
  if ('claim' in qs || qs.type !== 'file') {
    throw new ConfigError(
      'postern queue works on a file queue; this config uses a queue store that lives inside its server process: use the QueueManager API there',
      'queueStore',
    );
  }
  const directory = qs.directory ?? resolved.params.queueDirectory;
  const result = await viaServerOrStore(directory, req);
  return render(req, result);
}

function buildRequest(
  command: Command,
  args: readonly string[],
  values: {
    limit?: string | undefined;
    top?: string | undefined;
    reason?: string | undefined;
    destination?: string | undefined;
  },
): ControlRequest {
  const number = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number`);
    return Number(v);
  };
  let ids: QueueSelection | undefined;
  if (args.length === 1 && args[0] === 'ALL') ids = 'ALL';
  else if (args.length > 0) {
    const bad = args.find((a) => !isQueueId(a));
    if (bad !== undefined) throw new UsageError(`"${bad.slice(0, 60)}" is not a queue ID`);
    ids = args;
  }
  if (command === 'list' || command === 'shape') {
    if (ids !== undefined) throw new UsageError(`"${command}" takes no queue IDs`);
    // For shape, `limit` is the number of domain rows (--top).
    const limit = command === 'shape' ? number(values.top, 'top') : number(values.limit, 'limit');
    return { op: command, ...(limit !== undefined ? { limit } : {}) };
  }
  if (command === 'flush') {
    if (values.destination !== undefined) {
      if (ids !== undefined) throw new UsageError('give queue IDs or --destination, not both');
      return { op: 'flush', domain: values.destination };
    }
    return { op: 'flush', ids: ids ?? 'ALL' };
  }
  if (ids === undefined) throw new UsageError(`"${command}" needs queue IDs or ALL`);
  return {
    op: command,
    ids,
    ...(command === 'hold' && values.reason !== undefined ? { reason: values.reason } : {}),
  };
}

async function viaServerOrStore(directory: string, req: ControlRequest): Promise<unknown> {
  try {
    return await controlRequest(directory, req);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw err;
  }
  // No server: work on the store itself.
  const store = new FileQueueStore({ directory });
  await store.open();
  try {
    return await runRequest(directQueueOperations(store), req);
  } finally {
    await store.close();
  }
}

function render(req: ControlRequest, result: unknown): string {
  switch (req.op) {
    case 'list':
      return formatMailq(result as QueueEntry[]);
    case 'shape':
      return formatShape(result as QueueShape);
    default: {
      const ids = result as string[];
      const verb = {
        hold: 'placed on hold',
        release: 'released from hold',
        delete: 'deleted',
        requeue: 'requeued',
        flush: 'scheduled for delivery',
      }[req.op];
      return `postern queue: ${ids.length} message${ids.length === 1 ? '' : 's'} ${verb}\n`;
    }
  }
}
