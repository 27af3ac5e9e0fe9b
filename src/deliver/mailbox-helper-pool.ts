/**
 * MailboxHelperPool: the server's side of the mailbox helpers — one helper process per
 * set of rights, started on demand, reused, and ended after `maxIdle`.
 *
 * Postfix counterpart: master(8)'s reuse of local(8) processes (`max_idle`), with the
 * difference that a Postern helper has one user's rights for its whole life, so helpers
 * are kept per uid/gid/user. Starting Node costs tens of milliseconds; reusing a helper
 * makes a delivery with a user's rights cost a pipe round trip instead.
 *
 * At most `limit` helpers live at once: when all are taken, an idle helper of another
 * user is ended to make room, and when every helper is busy the delivery waits for one.
 * A helper serves one request at a time. A request that aborts (shutdown, a lost lease)
 * or whose content cannot be read ends its helper with SIGTERM, which makes it remove or
 * truncate what it wrote; a helper that exceeds `timeoutMs` is killed.
 *
 * Does not: choose the rights or map results to delivery outcomes (mailbox-delivery.ts),
 * switch users (mailbox-helper.ts does, in the child).
 *
 * SECURITY: the helper starts with an empty environment (no NODE_OPTIONS), in `/`, from
 * a fixed script inside the package; its uid, gid and groups are checked against the
 * READY it sends before it gets any request; everything it answers is validated
 * (mailbox-helper-protocol.ts).
 *
 * @module
 */

import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtin } from '../builtin.js';
import { PosternError } from '../errors.js';
import { errorMessage } from '../util/error-message.js';
import type { DeliveryRights } from './delivery-rights.js';
import type { TargetFile } from './forward-file.js';
import {
  DATA_CHUNK,
  encodeFrame,
  FRAME,
  type Frame,
  FrameDecoder,
  type HelperReady,
  type HelperRequest,
  type HelperResult,
  helperText,
  jsonFrame,
  parseReady,
  parseResult,
} from './mailbox-helper-protocol.js';

/**
 * A helper could not be started or failed mid-request (the delivery defers).
 *
 * @example
 * ```ts
 * if (err instanceof HelperError) return defer('4.3.0', err.message);
 * ```
 */
export class HelperError extends PosternError {
  constructor(message: string) {
    super('POSTERN_ERR_MAILBOX_HELPER', message);
    this.name = 'HelperError';
  }
}

/**
 * Options for MailboxHelperPool.
 *
 * @example
 * ```ts
 * const pool = new MailboxHelperPool({ maxIdleMs: 100_000 } satisfies MailboxHelperPoolOptions);
 * ```
 */
export interface MailboxHelperPoolOptions {
  /** Postfix `max_idle`: an idle helper ends after this many ms; 0 = after each request. */
  readonly maxIdleMs: number;
  /** Most helper processes alive at once. @default 16 */
  readonly limit?: number;
  /** Longest a request may take before its helper is killed (ms). @default 1000000 */
  readonly timeoutMs?: number;
  /** The helper script. @default the package's dist/deliver/mailbox-helper.js (or .cjs) */
  readonly helperPath?: string;
}

/** How long close() waits for a helper to end after SIGTERM before SIGKILL. */
const CLOSE_GRACE_MS = 5000;
/** Most stderr bytes kept for a helper's error message. */
const STDERR_TAIL = 2048;

const HELPER_NAMES = ['mailbox-helper.js', 'mailbox-helper.cjs'];

/**
 * The file this code was loaded from, in the ESM build, the CJS build and from source
 * alike: `import.meta` is a syntax error in CommonJS and `__dirname` is missing in ESM,
 * so V8's call sites tell.
 */
function moduleFile(): string | undefined {
  const original = Error.prepareStackTrace;
  try {
    Error.prepareStackTrace = (_error, sites) => sites;
    const sites = new Error().stack as unknown as NodeJS.CallSite[] | undefined;
    const name = Array.isArray(sites) ? sites[0]?.getFileName() : undefined;
    if (name === undefined || name === null) return undefined;
    return name.startsWith('file:') ? fileURLToPath(name) : name;
  } finally {
    Error.prepareStackTrace = original;
  }
}

/** Where the helper script is: next to the built package code, or in dist/ from source. */
export function locateHelper(from = moduleFile()): string {
  const names = from?.endsWith('.cjs') ? [...HELPER_NAMES].reverse() : HELPER_NAMES;
  const tried: string[] = [];
  let dir = from === undefined ? process.cwd() : path.dirname(from);
  for (let up = 0; up < 3; up++) {
    for (const sub of ['deliver', 'dist/deliver']) {
      for (const name of names) {
        const candidate = path.join(dir, sub, name);
        tried.push(candidate);
        if (existsSync(candidate)) return candidate;
      }
    }
    dir = path.dirname(dir);
  }
  throw new HelperError(
    `the mailbox helper is missing (looked for ${tried.slice(0, 4).join(', ')}...); build the package with "npm run build"`,
  );
}

function keyOf(rights: DeliveryRights): string {
  return `${rights.uid}:${rights.gid}:${rights.user ?? ''}`;
}

type State = 'idle' | 'busy' | 'ending' | 'dead';

/** One helper process. */
class Helper {
  readonly key: string;
  readonly ready: Promise<HelperReady>;
  readonly exited: Promise<void>;
  state: State = 'busy';
  idleSince = 0;
  #child: ChildProcess;
  #decoder = new FrameDecoder();
  #greeted = false;
  #stderr = '';
  #onReady!: (r: HelperReady) => void;
  #onFailure!: (e: Error) => void;
  #pending: { op: HelperRequest['op']; resolve: (r: HelperResult) => void } | undefined;
  #failure: HelperError | undefined;
  #failed!: Promise<never>;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(script: string, rights: DeliveryRights) {
    this.key = keyOf(rights);
    this.ready = new Promise<HelperReady>((resolve, reject) => {
      this.#onReady = resolve;
      this.#onFailure = reject;
    });
    this.ready.catch(() => undefined);
    const args = [script, String(rights.uid), String(rights.gid)];
    if (rights.user !== undefined) args.push(rights.user);
    this.#child = builtin('child_process').spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {},
      cwd: '/',
    });
    this.#failed = new Promise<never>((_resolve, reject) => {
      this.#child.once('error', (err) => this.#fail(`cannot start: ${err.message}`, reject));
      this.#child.once('exit', (code, signal) => {
        const how = signal ? `killed by ${signal}` : `exited with status ${code}`;
        this.#fail(how, reject);
      });
    });
    this.#failed.catch(() => undefined);
    this.exited = new Promise<void>((resolve) => {
      this.#child.once('close', () => resolve());
      this.#child.once('error', () => resolve());
    });
    this.#child.stdin?.on('error', () => undefined);
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    this.#child.stdout?.on('data', (chunk: Buffer) => this.#receive(chunk));
  }

  #fail(how: string, reject: (e: Error) => void): void {
    if (this.#failure) return;
    this.state = 'dead';
    const detail = helperText(this.#stderr.trim().split('\n').pop() ?? '', 200);
    this.#failure = new HelperError(`mailbox helper ${how}${detail === '' ? '' : `: ${detail}`}`);
    this.#onFailure(this.#failure);
    reject(this.#failure);
  }

  #receive(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.kill(errorMessage(err));
      return;
    }
    for (const frame of frames) {
      try {
        if (frame.type === FRAME.READY && !this.#greeted) {
          this.#greeted = true;
          this.#onReady(parseReady(frame.payload));
        } else if (frame.type === FRAME.RESULT && this.#pending) {
          const pending = this.#pending;
          this.#pending = undefined;
          pending.resolve(parseResult(frame.payload, pending.op));
        } else {
          throw new Error(`unexpected frame type ${frame.type}`);
        }
      } catch (err) {
        this.kill(`broke the protocol: ${errorMessage(err)}`);
        return;
      }
    }
  }

  /** Keeps the event loop alive while busy; lets it end while idle. */
  hold(on: boolean): void {
    for (const s of [this.#child.stdin, this.#child.stdout, this.#child.stderr]) {
      const handle = s as unknown as { ref?: () => void; unref?: () => void } | null;
      if (on) handle?.ref?.();
      else handle?.unref?.();
    }
    if (on) this.#child.ref();
    else this.#child.unref();
  }

  idle(maxIdleMs: number, onIdleEnd: () => void): void {
    this.state = 'idle';
    this.idleSince = Date.now();
    this.hold(false);
    this.#idleTimer = setTimeout(onIdleEnd, maxIdleMs);
    this.#idleTimer.unref();
  }

  take(): void {
    clearTimeout(this.#idleTimer);
    this.state = 'busy';
    this.hold(true);
  }

  /** Runs one request; resolves with the helper's result. @throws HelperError, or what `data` throws */
  async run(
    request: HelperRequest,
    data: AsyncIterable<Buffer> | undefined,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<HelperResult> {
    const result = new Promise<HelperResult>((resolve) => {
      this.#pending = { op: request.op, resolve };
    });
    const timer = setTimeout(() => this.kill(`took longer than ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => this.end(true);
    signal?.addEventListener('abort', onAbort, { once: true });
    // Frames go out in batches of up to DATA_CHUNK bytes: a small message is one write,
    // and the helper wakes up once for it.
    const batch: Buffer[] = [];
    let batched = 0;
    const send = async (frame: Buffer, flush: boolean): Promise<void> => {
      batch.push(frame);
      batched += frame.length;
      if (!flush && batched < DATA_CHUNK) return;
      const out = batch.length === 1 ? batch[0]! : Buffer.concat(batch);
      batch.length = 0;
      batched = 0;
      await this.#write(out);
    };
    try {
      await send(jsonFrame(FRAME.BEGIN, request), false);
      if (data) {
        try {
          for await (const chunk of data) {
            if (signal?.aborted) break;
            for (let at = 0; at < chunk.length; at += DATA_CHUNK)
              await send(encodeFrame(FRAME.DATA, chunk.subarray(at, at + DATA_CHUNK)), false);
          }
        } catch (err) {
          // The content failed: the helper must not take a truncated message as complete.
          this.end(true);
          await this.exited;
          throw err;
        }
      }
      if (signal?.aborted) this.end(true);
      else await send(encodeFrame(FRAME.END), true);
      return await Promise.race([result, this.#failed]);
    } catch (err) {
      if (signal?.aborted && err instanceof HelperError)
        return { ok: false, kind: 'aborted', message: 'delivery interrupted' };
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async #write(frame: Buffer): Promise<void> {
    if (this.#failure) throw this.#failure;
    const stdin = this.#child.stdin;
    if (!stdin || stdin.writableEnded) throw new HelperError('mailbox helper input is closed');
    if (stdin.write(frame)) return;
    await Promise.race([
      new Promise<void>((resolve) => stdin.once('drain', () => resolve())),
      this.#failed,
    ]);
  }

  /** Ends the helper: its input closes; `interrupt` also aborts the request in progress. */
  end(interrupt = false): void {
    clearTimeout(this.#idleTimer);
    if (this.state === 'dead') return;
    this.state = 'ending';
    if (interrupt) this.#child.kill('SIGTERM');
    this.#child.stdin?.end();
  }

  kill(why: string): void {
    this.#stderr += `\n${why}`;
    this.state = this.state === 'dead' ? 'dead' : 'ending';
    this.#child.kill('SIGKILL');
  }
}

/**
 * Runs mailbox writes and file reads in helper processes that have a user's rights.
 * Postfix counterpart: local(8)'s set_eugid() around each write, as separate processes.
 *
 * @example
 * ```ts
 * const pool = new MailboxHelperPool({ maxIdleMs: 100_000 });
 * const result = await pool.write(
 *   { uid: 1000, gid: 1000, user: 'alice' },
 *   { op: 'maildir', path: '/home/alice/Maildir', hostname: 'mx.example.com' },
 *   body,
 * );
 * await pool.close();
 * ```
 */
export class MailboxHelperPool {
  readonly #maxIdleMs: number;
  readonly #limit: number;
  readonly #timeoutMs: number;
  readonly #helperPath: string | undefined;
  readonly #helpers = new Set<Helper>();
  #waiters: (() => void)[] = [];
  #script: string | undefined;
  #closed = false;

  constructor(options: MailboxHelperPoolOptions) {
    this.#maxIdleMs = options.maxIdleMs;
    this.#limit = Math.max(1, options.limit ?? 16);
    this.#timeoutMs = options.timeoutMs ?? 1_000_000;
    this.#helperPath = options.helperPath;
  }

  /** Helper processes alive now. */
  get size(): number {
    return this.#helpers.size;
  }

  /**
   * Writes `data` (mailbox-ready bytes) as `rights`.
   *
   * @throws HelperError when no helper could do it; whatever `data` throws.
   */
  async write(
    rights: DeliveryRights,
    request: Extract<HelperRequest, { op: 'maildir' | 'mbox' }>,
    data: AsyncIterable<Buffer>,
    signal?: AbortSignal,
  ): Promise<HelperResult> {
    return this.#run(rights, request, data, signal);
  }

  /**
   * Reads a .forward or :include: file as `rights`.
   *
   * @throws an Error with the file-system `code` (ENOENT, EACCES...), or HelperError.
   */
  async read(rights: DeliveryRights, file: string): Promise<TargetFile> {
    const result = await this.#run(rights, { op: 'read', path: file }, undefined, undefined);
    if (result.ok && result.op === 'read') return result.file;
    if (!result.ok && result.kind === 'errno')
      throw Object.assign(new Error(result.message), { code: result.code });
    throw new HelperError(result.ok ? 'unexpected result' : result.message);
  }

  /** Ends every helper; a busy one is interrupted. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#helpers];
    for (const h of all) h.end(h.state === 'busy');
    await Promise.all(
      all.map(async (h) => {
        const grace = setTimeout(() => h.kill('did not end'), CLOSE_GRACE_MS);
        await h.exited;
        clearTimeout(grace);
      }),
    );
    this.#wake();
  }

  async #run(
    rights: DeliveryRights,
    request: HelperRequest,
    data: AsyncIterable<Buffer> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<HelperResult> {
    const helper = await this.#acquire(rights);
    try {
      return await helper.run(request, data, signal, this.#timeoutMs);
    } finally {
      this.#release(helper);
    }
  }

  async #acquire(rights: DeliveryRights): Promise<Helper> {
    const key = keyOf(rights);
    for (;;) {
      if (this.#closed) throw new HelperError('the mailbox helpers are shut down');
      const idle = [...this.#helpers].find((h) => h.key === key && h.state === 'idle');
      if (idle) {
        idle.take();
        return idle;
      }
      if (this.#helpers.size >= this.#limit) {
        const victim = [...this.#helpers]
          .filter((h) => h.state === 'idle')
          .sort((a, b) => a.idleSince - b.idleSince)[0];
        if (victim) {
          this.#forget(victim);
          victim.end();
        } else {
          await new Promise<void>((resolve) => this.#waiters.push(resolve));
          continue;
        }
      }
      this.#script ??= this.#helperPath ?? locateHelper();
      const helper = new Helper(this.#script, rights);
      this.#helpers.add(helper);
      void helper.exited.then(() => this.#forget(helper));
      helper.take();
      let ready: HelperReady;
      try {
        ready = await helper.ready;
      } catch (err) {
        this.#forget(helper);
        throw err;
      }
      if (
        ready.uid !== rights.uid ||
        ready.gid !== rights.gid ||
        !ready.groups.includes(rights.gid)
      ) {
        this.#forget(helper);
        helper.kill('wrong identity');
        throw new HelperError(
          `mailbox helper runs as uid ${ready.uid} gid ${ready.gid}, not ${rights.uid}/${rights.gid}`,
        );
      }
      return helper;
    }
  }

  #release(helper: Helper): void {
    if (helper.state === 'busy' && !this.#closed && this.#maxIdleMs > 0) {
      helper.idle(this.#maxIdleMs, () => {
        this.#forget(helper);
        helper.end();
      });
    } else if (helper.state === 'busy') {
      this.#forget(helper);
      helper.end();
    }
    this.#wake();
  }

  #forget(helper: Helper): void {
    if (this.#helpers.delete(helper)) this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
