/**
 * Pickup: feeds locally submitted mail from the maildrop directory to Cleanup.
 *
 * Postfix counterpart: pickup(8). It wakes on file-system events and on a periodic
 * scan (`pickupScanInterval`, Postfix's 60 s master.cf wakeup), reads each file as
 * hostile input, submits it through the Submission port and removes the file only once
 * the message is queued. A temporary failure leaves the file for the next scan.
 *
 * Unlike Postfix, which deletes malformed maildrop files silently, Pickup moves them to
 * `maildrop/corrupt/` with a warning naming the file and the reason, so nothing a user
 * submitted disappears without a trace; the same happens to a message Cleanup rejects
 * outright (for instance too many hops), since no bounce can be sent for it yet.
 *
 * SECURITY: files are opened without following symbolic links and must be regular
 * files; sizes, the envelope and every address are bounded and validated before a
 * single byte reaches Cleanup (see maildrop-format.ts).
 *
 * @module
 */

import { constants, type FSWatcher, promises as fs, watch } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { systemClock } from '../clock.js';
import type { Parameters } from '../config/parameters.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import { formatAddress } from '../rewrite/address.js';
import type { Clock, SubmissionPort, TimerHandle } from '../types.js';
import {
  ENVELOPE_MAX,
  type MaildropEnvelope,
  parseEnvelope,
  parseTrailer,
  TRAILER_MAX,
} from './maildrop-format.js';

export interface PickupOptions {
  /** The maildrop directory (`maildropDirectory(queueDirectory)`). */
  readonly directory: string;
  readonly submission: SubmissionPort;
  readonly params: Parameters;
  /** Events carry component `pickup`. */
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Time between scans when no file-system event arrives. @default 60000 */
  readonly scanIntervalMs?: number;
  /** Files handled at once. @default 4 */
  readonly concurrency?: number;
}

/** What one file came to. */
type Outcome = 'queued' | 'retry' | 'moved' | 'gone';

/** A file that must go aside, with the reason for the log. */
class BadFile extends Error {}

export class Pickup {
  readonly #o: PickupOptions;
  readonly #log: ComponentLogger;
  readonly #clock: Clock;
  readonly #busy = new Set<string>();
  #watcher: FSWatcher | undefined;
  #timer: TimerHandle | undefined;
  #scanning: Promise<number> | undefined;
  #again = false;
  #running = false;

  constructor(options: PickupOptions) {
    this.#o = options;
    this.#log = (options.logger ?? silentLogger).for('pickup');
    this.#clock = options.clock ?? systemClock;
  }

  /** Starts watching and scanning. A missing directory is looked for at every scan. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#tick();
  }

  /** Stops watching; resolves when files being handled are done. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#timer?.cancel();
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#scanning;
  }

  #tick(): void {
    this.#timer = this.#clock.setTimeout(() => {
      if (!this.#running) return;
      this.#tick();
      void this.scan();
    }, this.#o.scanIntervalMs ?? 60_000);
    void this.scan();
  }

  #watch(): void {
    if (this.#watcher || !this.#running) return;
    try {
      this.#watcher = watch(this.#o.directory, { persistent: false }, () => void this.scan());
      this.#watcher.on('error', () => {
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      // The directory does not exist yet: the periodic scan looks again.
    }
  }

  /** Handles every complete file now; resolves with the number queued. */
  scan(): Promise<number> {
    if (this.#scanning) {
      this.#again = true;
      return this.#scanning;
    }
    this.#scanning = this.#scanAll().finally(() => {
      this.#scanning = undefined;
      if (this.#again && this.#running) {
        this.#again = false;
        void this.scan();
      }
    });
    return this.#scanning;
  }

  async #scanAll(): Promise<number> {
    let names: string[];
    try {
      names = await fs.readdir(this.#o.directory);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#log.warning(undefined, `cannot read ${this.#o.directory}: ${(err as Error).message}`);
      }
      return 0;
    }
    this.#watch();
    // Dot-names are files still being written; the writer renames them when complete.
    const todo = names
      .filter((n) => !n.startsWith('.') && n !== 'corrupt' && !this.#busy.has(n))
      .sort();
    let queued = 0;
    const workers = Array.from({ length: Math.max(1, this.#o.concurrency ?? 4) }, async () => {
      for (let name = todo.shift(); name !== undefined; name = todo.shift()) {
        this.#busy.add(name);
        try {
          if ((await this.#handle(name)) === 'queued') queued++;
        } finally {
          this.#busy.delete(name);
        }
      }
    });
    await Promise.all(workers);
    return queued;
  }

  async #handle(name: string): Promise<Outcome> {
    const path = join(this.#o.directory, name);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(
        path,
        constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'gone';
      if (code === 'ELOOP') return this.#moveAside(name, 'a symbolic link, not a maildrop file');
      if (code === 'EISDIR') return 'gone';
      this.#log.warning(
        undefined,
        `${name}: cannot open: ${(err as Error).message}; will try again`,
      );
      return 'retry';
    }
    try {
      const { envelope, contentLength } = await this.#read(handle);
      return await this.#submit(name, handle, envelope, contentLength);
    } catch (err) {
      if (err instanceof BadFile) return this.#moveAside(name, err.message);
      this.#log.warning(undefined, `${name}: ${(err as Error).message}; will try again`);
      return 'retry';
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async #read(
    handle: fs.FileHandle,
  ): Promise<{ envelope: MaildropEnvelope; contentLength: number }> {
    const st = await handle.stat();
    if (!st.isFile()) throw new BadFile('not a regular file');
    const { params } = this.#o;
    const sizeLimit =
      params.messageSizeLimit > 0 ? params.messageSizeLimit : Number.MAX_SAFE_INTEGER;
    if (st.size > sizeLimit + ENVELOPE_MAX + TRAILER_MAX)
      throw new BadFile(`file of ${st.size} bytes is larger than messageSizeLimit allows`);
    const tailLength = Math.min(st.size, TRAILER_MAX);
    const tail = Buffer.alloc(tailLength);
    await handle.read(tail, 0, tailLength, st.size - tailLength);
    const layout = parseTrailer(tail, st.size);
    if (!layout) throw new BadFile('truncated or not a maildrop file (no valid trailer)');
    if (layout.contentLength > sizeLimit) {
      throw new BadFile(
        `message of ${layout.contentLength} bytes exceeds messageSizeLimit (${params.messageSizeLimit})`,
      );
    }
    const json = Buffer.alloc(layout.envelopeLength);
    await handle.read(json, 0, layout.envelopeLength, layout.envelopeOffset);
    try {
      const envelope = parseEnvelope(json.toString('utf8'), {
        addressLength: params.lineLengthLimit,
        recipients: params.smtpdRecipientLimit,
      });
      return { envelope, contentLength: layout.contentLength };
    } catch (err) {
      throw new BadFile(`bad envelope: ${(err as Error).message}`);
    }
  }

  async #submit(
    name: string,
    handle: fs.FileHandle,
    env: MaildropEnvelope,
    contentLength: number,
  ): Promise<Outcome> {
    const tx = await this.#o.submission.open({
      component: 'pickup',
      protocol: 'local',
      localUser: env.user,
    });
    try {
      tx.setSender(env.sender, {
        ...(env.envid !== undefined ? { envid: env.envid } : {}),
        ...(env.ret !== undefined ? { ret: env.ret } : {}),
        ...(env.fullName ? { fullName: env.fullName } : {}),
      });
      if (env.extractRecipients) tx.apply({ type: 'extractRecipients' });
      for (const r of env.recipients) tx.addRecipient(r);
      if (contentLength > 0) {
        await pipeline(
          handle.createReadStream({ start: 0, end: contentLength - 1, autoClose: false }),
          tx.content,
        );
      }
      const result = await tx.commit();
      if (result.reply.positive) {
        await fs.unlink(join(this.#o.directory, name));
        this.#log.info(result.queueId, `uid=${env.user} from=<${formatAddress(env.sender)}>`);
        return 'queued';
      }
      if (result.reply.transient) {
        this.#log.warning(undefined, `${name}: ${result.reply.toString()}; will try again`);
        return 'retry';
      }
      return this.#moveAside(name, `rejected: ${result.reply.toString()}`);
    } catch (err) {
      await tx.abort();
      throw err;
    }
  }

  async #moveAside(name: string, reason: string): Promise<Outcome> {
    const corrupt = join(this.#o.directory, 'corrupt');
    try {
      await fs.mkdir(corrupt, { recursive: true, mode: 0o700 });
      await fs.rename(join(this.#o.directory, name), join(corrupt, name));
      this.#log.warning(undefined, `${name}: ${reason}; moved to ${corrupt}`);
      return 'moved';
    } catch (err) {
      this.#log.error(
        undefined,
        `${name}: ${reason}; could not move it aside: ${(err as Error).message}`,
      );
      return 'retry';
    }
  }
}
