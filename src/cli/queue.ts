/**
 * `postern queue`: postqueue(1), postsuper(1) and qshape(1) in one command.
 *
 *   postern queue list [--limit N] [--json]   mailq listing (--json: postqueue -j)
 *   postern queue shape [--top N]             messages by domain and age (qshape)
 *   postern queue hold ID...|ALL [--reason T] postsuper -h
 *   postern queue release ID...|ALL           postsuper -H
 *   postern queue delete ID...|ALL            postsuper -d
 *   postern queue requeue ID...|ALL           postsuper -r
 *   postern queue flush [ID...|ALL] [--destination DOMAIN]   postqueue -f / -i / -s
 *
 * Each takes `--config FILE` like `postern serve`, or the file `POSTERN_CONFIG` names
 * (as `postern sendmail` does). While a server runs on that queue it is asked through
 * its control socket (`<queue>/private/control.sock`); otherwise the file store is
 * opened directly (it is locked meanwhile, so a server starting then waits for nothing:
 * it fails to lock and says so). A memory queue lives only inside its server process:
 * use the API there.
 *
 * Who may do what, as postqueue(1) and postsuper(1): every operation but `list` is for
 * the queue owner (the uid that owns the queue directory) and root, and says so with
 * exit 77 to anyone else. Others may `list` while a server runs (it answers on
 * `public/showq.sock`); with the server stopped they get "Queue report unavailable -
 * mail system is down" (exit 69), since the queue files are not theirs to read.
 *
 * No command creates a queue: where the configured queue directory holds no queue,
 * the command says so and exits 69.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, PosternError, type PosternErrorOptions } from '../errors.js';
import { type MtaConfig, resolveMtaConfig } from '../mta/mta-config.js';
import { formatPostqueueJson } from '../queue/postqueue-json.js';
import {
  type ControlRequest,
  controlRequest,
  directQueueOperations,
  runRequest,
} from '../queue/queue-control.js';
import { formatMailq, formatShape, type QueueShape } from '../queue/queue-views.js';
import { FileQueueStore } from '../queue/stores/file-store.js';
import type { QueueEntry, QueueSelection } from '../queue/types.js';
import { isQueueId } from '../queue-id.js';
import { errorMessage } from '../util/error-message.js';
import { loadConfigFile } from './load-config.js';

export const QUEUE_USAGE = `usage: postern queue COMMAND [ID...|ALL] [--config FILE]

  list      the queue in mailq format          [--limit N] [--json: postqueue -j lines]
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
export class UsageError extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_USAGE', message, options);
  }
}

/** A queue command that cannot be done here, with its sysexits code. */
export class QueueCommandError extends PosternError {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super('POSTERN_ERR_QUEUE_COMMAND', message);
    this.exitCode = exitCode;
  }
}

const EX_USAGE = 64;
const EX_UNAVAILABLE = 69;
const EX_TEMPFAIL = 75;
const EX_NOPERM = 77;
const EX_CONFIG = 78;

/** The exit code for an error `postern queue` throws; undefined for a bug (exit 70). */
export function queueExitCode(err: unknown): number | undefined {
  if (err instanceof QueueCommandError) return err.exitCode;
  if (err instanceof UsageError) return EX_USAGE;
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return EX_USAGE;
  if (PosternError.is(err)) return err.code === 'POSTERN_ERR_CONFIG' ? EX_CONFIG : EX_TEMPFAIL;
  return undefined;
}

/**
 * Runs `postern queue ...`; resolves with the text to print. Throws UsageError,
 * QueueCommandError or a PosternError (see queueExitCode).
 */
export async function queueCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      limit: { type: 'string' },
      top: { type: 'string' },
      reason: { type: 'string' },
      destination: { type: 'string', short: 'd' },
      json: { type: 'boolean', short: 'j' },
    },
  });
  const [command, ...args] = positionals;
  if (!COMMANDS.includes(command as Command))
    throw new UsageError(`unknown queue command "${command ?? ''}"`);
  if (values.json && command !== 'list') throw new UsageError('--json goes with "list"');
  const req = buildRequest(command as Command, args, values);
  const file = values.config ?? env.POSTERN_CONFIG;
  const config: MtaConfig = file ? await loadConfigFile(file) : {};
  const resolved = resolveMtaConfig(config);
  const qs = resolved.queueStore;
  if (!('claim' in qs) && qs.type === 'postgres') {
    // A shared queue: act on the tables directly, for every node at once.
    const { postgresQueueRequest, postgresShapeByNode } = await import('./db.js');
    const text = render(req, await postgresQueueRequest(qs, req), values.json);
    return req.op === 'shape' ? text + (await postgresShapeByNode(qs)) : text;
  }
  if ('claim' in qs || qs.type !== 'file') {
    throw new ConfigError(
      'postern queue works on a file queue; this config uses a queue store that lives inside its server process: use the QueueManager API there',
      'queueStore',
    );
  }
  const directory = qs.directory ?? resolved.params.queueDirectory;
  const from = file
    ? `configured in ${file}`
    : 'the default; give --config FILE or set POSTERN_CONFIG';
  const result = await viaServerOrStore(directory, req, from);
  return render(req, result, values.json);
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

async function viaServerOrStore(
  directory: string,
  req: ControlRequest,
  from: string,
): Promise<unknown> {
  const st = await fs.stat(directory).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (!st?.isDirectory()) {
    throw new QueueCommandError(
      EX_UNAVAILABLE,
      `there is no queue at ${directory} (${from}); nothing was changed or created`,
    );
  }
  const euid = process.geteuid?.();
  const owner = euid === undefined || euid === 0 || euid === st.uid;
  if (!owner && req.op !== 'list') {
    throw new QueueCommandError(
      EX_NOPERM,
      `"${req.op}" is reserved for the owner of the queue ${directory} (uid ${st.uid}) and root; you are uid ${euid}`,
    );
  }
  try {
    return await controlRequest(directory, req, owner ? 'owner' : 'public');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new QueueCommandError(
        EX_UNAVAILABLE,
        `cannot connect to the queue's ${owner ? 'control' : 'listing'} socket under ${directory}: ${errorMessage(err)}`,
      );
    }
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw err;
  }
  if (!owner) {
    // The queue files are the owner's: only a running server may show them to others.
    throw new QueueCommandError(
      EX_UNAVAILABLE,
      `Queue report unavailable - mail system is down (no server answers on ${join(directory, 'public')})`,
    );
  }
  // No server: work on the store itself, if there is one.
  const hasStore = await fs.stat(join(directory, 'incoming')).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!hasStore) {
    throw new QueueCommandError(
      EX_UNAVAILABLE,
      `there is no queue at ${directory} (${from}): no server has run there yet; nothing was changed or created`,
    );
  }
  const store = new FileQueueStore({ directory });
  await store.open();
  try {
    return await runRequest(directQueueOperations(store), req);
  } finally {
    await store.close();
  }
}

function render(req: ControlRequest, result: unknown, json = false): string {
  switch (req.op) {
    case 'list':
      return json
        ? formatPostqueueJson(result as QueueEntry[])
        : formatMailq(result as QueueEntry[]);
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
