/**
 * The queue control protocol: how `postern queue` talks to a running server, and the
 * operations both sides share.
 *
 * Postfix counterpart: postqueue(1)/postsuper(1) talking to showq(8), qmgr(8) and
 * flush(8) through the public/ sockets. Postern's FileQueueStore is owned by one
 * process (it locks its directory), so while a server runs the CLI asks it through a
 * UNIX socket; when no server runs the queue owner's CLI opens the store itself
 * (`directQueueOperations`). There are two sockets, as Postfix has private/ and
 * public/ services:
 *
 * - `private/control.sock` (directory 0700, socket 0600): every operation, for the
 *   queue owner (and root) only; the directory keeps everyone else from connecting
 *   even in the instant between bind() and chmod();
 * - `public/showq.sock` (directory 0711, socket 0666): the listing only, for every
 *   local user, as Postfix's showq answers mailq (`authorized_mailq_users = anyone`).
 *
 * Node cannot learn a socket peer's uid, so the file system is the access control:
 * who can open the socket decides what may be asked.
 *
 * Wire format: JSON lines. A request is one line
 * `{"op":"list"|"shape"|"hold"|"release"|"delete"|"requeue"|"flush", "ids":[...]|"ALL",
 * "reason":"...", "domain":"...", "limit":N}`; the answer is one line
 * `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`. `shape` is computed
 * where the queue is and answers the table (QueueShape, `limit` = most domain rows),
 * so its answer stays small however many messages wait.
 *
 * SECURITY: a request line is at most 1 MiB; anything that is not a well-formed
 * request gets an error answer, never a crash; queue IDs are checked with isQueueId;
 * the public socket refuses every operation but `list` and takes at most
 * PUBLIC_CONNECTIONS clients at once.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ComponentLogger } from '../log.js';
import { isQueueId } from '../queue-id.js';
import type { QueueId } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import type { Mutable } from '../util/mutable.js';
import { securePath } from '../util/secure-path.js';
import type { QueueManager } from './qmgr/queue-manager.js';
import { PRIVATE_DIRECTORY_SPEC, PUBLIC_DIRECTORY_SPEC } from './queue-modes.js';
import { ShapeCounter } from './queue-views.js';
import { deferredFor, visitSummaries } from './summary.js';
import type { QueueEntry, QueueSelection, QueueStore, QueueSummary } from './types.js';

/** The owner's socket, relative to the queue directory. */
export const CONTROL_SOCKET = join('private', 'control.sock');
/** The public listing socket, relative to the queue directory. */
export const SHOWQ_SOCKET = join('public', 'showq.sock');

/**
 * Who may use a socket: the queue owner (every operation, `private/control.sock`) or
 * every local user (the listing only, `public/showq.sock`).
 *
 * @example
 * ```ts
 * const access: ControlAccess = 'public';
 * new QueueControlServer({ directory: './var/queue', operations: ops, log, access });
 * ```
 */
export type ControlAccess = 'owner' | 'public';

/** Clients the public socket serves at once; more wait in the backlog. */
const PUBLIC_CONNECTIONS = 16;

/** Longest request line the server accepts. */
const MAX_REQUEST = 1024 * 1024;
/** Longest answer the client accepts (a mailq listing of a big queue is long). */
const MAX_ANSWER = 512 * 1024 * 1024;

/**
 * Queue operations as the CLI sees them, whoever carries them out.
 *
 * @example
 * ```ts
 * const ops: QueueOperations = directQueueOperations(store);
 * console.log(formatMailq(await ops.list()));
 * await ops.hold(['4Xk9Qz1Ab3kF2'], 'review');
 * ```
 */
export interface QueueOperations {
  /** Lists messages (mailq). */
  list(limit?: number): Promise<QueueEntry[]>;
  /** Visits the summary of every message (qshape's input); each is valid during the call only. */
  forEachSummary(visit: (summary: QueueSummary) => void): Promise<void>;
  /** Puts messages on hold (postsuper -h). */
  hold(ids: QueueSelection, reason?: string): Promise<QueueId[]>;
  /** Releases held messages (postsuper -H). */
  release(ids: QueueSelection): Promise<QueueId[]>;
  /** Deletes messages (postsuper -d). */
  delete(ids: QueueSelection): Promise<QueueId[]>;
  /** Requeues messages for a new routing decision (postsuper -r). */
  requeue(ids: QueueSelection): Promise<QueueId[]>;
  /** Attempts delivery now (postqueue -f, -s domain, -i id). */
  flush(target: QueueSelection | { readonly domain: string }): Promise<QueueId[]>;
}

/** A request on the wire. */
export interface ControlRequest {
  readonly op: 'list' | 'shape' | 'hold' | 'release' | 'delete' | 'requeue' | 'flush';
  readonly ids?: QueueSelection;
  readonly reason?: string;
  readonly domain?: string;
  readonly limit?: number;
}

/**
 * Operations of a running server: the queue manager acts, the store answers views.
 *
 * @example
 * ```ts
 * const ops = managerOperations(mta.store, mta.queueManager);
 * await ops.flush({ domain: 'example.com' });
 * ```
 */
export function managerOperations(store: QueueStore, manager: QueueManager): QueueOperations {
  return {
    list: (limit) => store.list(limit === undefined ? {} : { limit }),
    forEachSummary: (visit) => visitSummaries(store, visit),
    hold: (ids, reason) => manager.hold(ids, reason),
    release: (ids) => manager.release(ids),
    delete: (ids) => manager.delete(ids),
    requeue: (ids) => manager.requeue(ids),
    flush: (target) => manager.flush(target),
  };
}

/**
 * Operations straight on a store no server is using. A flush only makes mail due:
 * it is delivered when a server next runs.
 *
 * @example
 * ```ts
 * const ops = directQueueOperations(new FileQueueStore({ directory: './var/queue' }));
 * await ops.delete('ALL');
 * ```
 */
export function directQueueOperations(store: QueueStore): QueueOperations {
  return {
    list: (limit) => store.list(limit === undefined ? {} : { limit }),
    forEachSummary: (visit) => visitSummaries(store, visit),
    hold: (ids, reason) => store.hold(ids, reason),
    release: (ids) => store.unhold(ids),
    delete: (ids) => store.delete(ids),
    requeue: (ids) => store.requeue(ids),
    flush: async (target) => {
      if (typeof target === 'object' && 'domain' in target) {
        return store.expedite(await deferredFor(store, target.domain.toLowerCase()));
      }
      return store.expedite(target);
    },
  };
}

/** Checks a decoded request; throws with a message for the client. */
export function parseRequest(value: unknown): ControlRequest {
  if (typeof value !== 'object' || value === null) throw new Error('expected a JSON object');
  const r = value as Record<string, unknown>;
  const ops = ['list', 'shape', 'hold', 'release', 'delete', 'requeue', 'flush'];
  if (typeof r.op !== 'string' || !ops.includes(r.op))
    throw new Error(`"op" must be one of ${ops.join(', ')}`);
  const out: Mutable<ControlRequest> = {
    op: r.op as ControlRequest['op'],
  };
  if (r.ids !== undefined) {
    if (r.ids === 'ALL') out.ids = 'ALL';
    else if (Array.isArray(r.ids) && r.ids.every((id) => typeof id === 'string' && isQueueId(id)))
      out.ids = r.ids as string[];
    else throw new Error('"ids" must be "ALL" or an array of queue IDs');
  }
  if (r.reason !== undefined) {
    if (typeof r.reason !== 'string' || r.reason.length > 200)
      throw new Error('"reason" must be a short string');
    out.reason = r.reason;
  }
  if (r.domain !== undefined) {
    if (typeof r.domain !== 'string' || !/^[\w.:[\]-]{1,255}$/.test(r.domain))
      throw new Error('"domain" must be a domain name');
    out.domain = r.domain;
  }
  if (r.limit !== undefined) {
    if (typeof r.limit !== 'number' || !Number.isInteger(r.limit) || r.limit < 0)
      throw new Error('"limit" must be a whole number');
    out.limit = r.limit;
  }
  return out;
}

/** Carries out one request. */
export async function runRequest(ops: QueueOperations, req: ControlRequest): Promise<unknown> {
  const ids = req.ids;
  const need = (): QueueSelection => {
    if (ids === undefined) throw new Error(`"${req.op}" needs "ids": queue IDs or "ALL"`);
    return ids;
  };
  switch (req.op) {
    case 'list':
      return ops.list(req.limit);
    case 'shape': {
      const counter = new ShapeCounter(Date.now());
      await ops.forEachSummary((s) => counter.add(s));
      return counter.shape(req.limit === undefined ? {} : { top: req.limit });
    }
    case 'hold':
      return ops.hold(need(), req.reason);
    case 'release':
      return ops.release(need());
    case 'delete':
      return ops.delete(need());
    case 'requeue':
      return ops.requeue(need());
    case 'flush':
      return ops.flush(req.domain !== undefined ? { domain: req.domain } : (ids ?? 'ALL'));
  }
}

/** Reads newline-terminated lines from a socket, at most `max` characters each. */
function onLines(socket: Socket, max: number, fn: (line: string) => void): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      fn(line);
      nl = buffer.indexOf('\n');
    }
    if (buffer.length > max) {
      buffer = '';
      if (!socket.writableEnded)
        socket.end(`${JSON.stringify({ ok: false, error: 'line too long' })}\n`);
      socket.destroy();
    }
  });
}

/** The path of the socket for `access` in `directory`. */
export function controlSocketPath(directory: string, access: ControlAccess = 'owner'): string {
  return join(directory, access === 'owner' ? CONTROL_SOCKET : SHOWQ_SOCKET);
}

/**
 * The server side: answers requests on `<queueDirectory>/private/control.sock`, or
 * with `access: 'public'` the listing only on `<queueDirectory>/public/showq.sock`.
 *
 * @example
 * ```ts
 * const server = new QueueControlServer({ directory: './var/queue', operations: ops, log: logger.for('postqueue') });
 * await server.listen();
 * await server.close();
 * ```
 */
export class QueueControlServer {
  /** The control socket's path. */
  readonly path: string;
  readonly #ops: QueueOperations;
  readonly #log: ComponentLogger;
  readonly #access: ControlAccess;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(options: {
    directory: string;
    operations: QueueOperations;
    log: ComponentLogger;
    /** @default 'owner' */
    access?: ControlAccess;
  }) {
    this.#access = options.access ?? 'owner';
    this.path = controlSocketPath(options.directory, this.#access);
    this.#ops = options.operations;
    this.#log = options.log;
  }

  /**
   * Starts listening; a stale socket file (the store lock proves it stale) is replaced.
   * The socket's directory is made, or checked and fixed, first.
   *
   * @throws ConfigError when that directory belongs to someone else
   */
  async listen(): Promise<void> {
    const publicSocket = this.#access === 'public';
    await securePath(
      join(this.path, '..'),
      publicSocket ? PUBLIC_DIRECTORY_SPEC : PRIVATE_DIRECTORY_SPEC,
      this.#log,
      { create: true },
    );
    await fs.unlink(this.path).catch(() => undefined);
    const server = createServer((socket) => this.#serve(socket));
    if (publicSocket) server.maxConnections = PUBLIC_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await fs.chmod(this.path, publicSocket ? 0o666 : 0o600);
    server.on('error', (err) => this.#log.warning(undefined, `control socket: ${err.message}`));
    this.#server = server;
  }

  /** Stops listening and removes the socket file. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fs.unlink(this.path).catch(() => undefined);
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    let chain = Promise.resolve();
    onLines(socket, MAX_REQUEST, (line) => {
      chain = chain.then(async () => {
        let answer: unknown;
        try {
          const req = parseRequest(JSON.parse(line));
          if (this.#access === 'public' && req.op !== 'list')
            throw new Error(`"${req.op}" is for the queue owner: use the control socket`);
          answer = { ok: true, result: await runRequest(this.#ops, req) };
        } catch (err) {
          answer = { ok: false, error: errorMessage(err) };
        }
        if (!socket.destroyed) socket.write(`${JSON.stringify(answer)}\n`);
      });
    });
  }
}

/**
 * The client side: sends one request and resolves with the result. Rejects with an
 * Error whose `code` is `ENOENT`/`ECONNREFUSED` when no server listens, `EACCES` when
 * the caller may not use that socket.
 */
export function controlRequest(
  directory: string,
  req: ControlRequest,
  access: ControlAccess = 'owner',
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(controlSocketPath(directory, access));
    let settled = false;
    socket.on('error', (err) => {
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    onLines(socket, MAX_ANSWER, (line) => {
      if (settled) return;
      settled = true;
      socket.end();
      try {
        const answer = JSON.parse(line) as { ok: boolean; result?: unknown; error?: string };
        if (answer.ok) resolve(answer.result);
        else reject(new Error(answer.error ?? 'the server refused the request'));
      } catch (err) {
        reject(err);
      }
    });
    socket.on('close', () => {
      if (!settled) {
        settled = true;
        reject(new Error('the server closed the control connection without an answer'));
      }
    });
  });
}
