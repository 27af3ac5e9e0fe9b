/**
 * Pickup: feeds locally submitted mail from the maildrop directory to Cleanup.
 *
 * Postfix counterpart: pickup(8). It wakes on file-system events and on a periodic
 * scan (`pickupScanInterval`, Postfix's 60 s master.cf wakeup), reads each file as
 * hostile input, submits it through the Submission port and removes the file only once
 * the message is queued. A temporary failure leaves the file for the next scan; while
 * the same temporary refusal goes on (a queue outage), it is logged for the first file
 * only, and once more, with the count of files held back, when mail is queued again.
 *
 * Identity: as Postfix's pickup, the submitting user is the file's owner, from fstat()
 * of the opened file — never the `user` field written inside it. The message gets
 * `Received: by HOST (Postern, from userid UID)`, the log line `uid=UID`, and, when the
 * file names no sender, the owner's login name as sender (Cleanup makes it
 * `user@$myorigin`). A file whose `user` field names someone else is logged.
 *
 * A file that Pickup cannot accept (too many recipients, a control character in a
 * field, too big, refused by Cleanup) is returned to its sender with a non-delivery
 * notice (pickup-return.ts), as Postfix's cleanup does for pickup. Only a file that
 * cannot be read at all (no valid trailer, no envelope, no sender to name) or is not a
 * regular file goes to `maildrop/corrupt/`, with a warning naming the file and the
 * reason; Postfix deletes those silently, Postern keeps them for the operator.
 *
 * SECURITY: files are opened with O_NOFOLLOW | O_NONBLOCK and must be regular files
 * with one link (openRegularFile), so a symlink, FIFO, device or hard link planted in
 * the maildrop is moved aside without being read or waited on; names that are not
 * queue IDs are moved aside too. Sizes, the envelope and every address are bounded and
 * checked before a single byte reaches Cleanup (maildrop-checks.ts, the same checks
 * `postern sendmail` makes). A file Pickup may not read (EACCES) stays where it is and
 * is reported once.
 *
 * @module
 */

import { type FSWatcher, promises as fs, watch } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { formatAddress } from '../address/address.js';
import { systemClock } from '../clock.js';
import { PosternError, type PosternErrorOptions, SmtpError } from '../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import { isQueueId } from '../queue-id.js';
import type { Clock, SubmissionPort, TimerHandle } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { LoginNames } from '../util/login-name.js';
import { isNotRegular, openRegularFile } from '../util/safe-open.js';
import { octal } from '../util/secure-path.js';
import {
  type MaildropLimits,
  type MaildropProblem,
  maildropLimits,
  sizeProblem,
} from './maildrop-checks.js';
import { CORRUPT_DIRECTORY, ensureCorruptDirectory } from './maildrop-directory.js';
import {
  type MaildropEnvelope,
  parseTrailer,
  type ReturnInfo,
  readEnvelope,
  TRAILER_MAX,
} from './maildrop-format.js';
import type { PickupParameters } from './pickup-parameters.js';
import { returnToSender } from './pickup-return.js';

/**
 * What a Pickup is built from.
 *
 * @example
 * ```ts
 * const options: PickupOptions = { directory: '/var/spool/postern/maildrop', submission: cleanup, params };
 * ```
 */
export interface PickupOptions {
  /** The maildrop directory (`maildropDirectory(queueDirectory)`). */
  readonly directory: string;
  /** Where each picked-up message goes (Cleanup, or the Mta's Submission port). */
  readonly submission: SubmissionPort;
  /** The limits a file is checked against (`messageSizeLimit`, `smtpdRecipientLimit`, ...) and those of the notice that returns it. */
  readonly params: PickupParameters;
  /** Events carry component `pickup`. */
  readonly logger?: Logger;
  /** Times the periodic scan. @default systemClock */
  readonly clock?: Clock;
  /** Time between scans when no file-system event arrives. @default 60000 */
  readonly scanIntervalMs?: number;
  /** Files handled at once. @default 4 */
  readonly concurrency?: number;
  /** Login names of uids (tests may pass their own). @default new LoginNames() */
  readonly loginNames?: Pick<LoginNames, 'nameOf'>;
}

/** What one file came to. */
type Outcome = 'queued' | 'returned' | 'retry' | 'moved' | 'gone';

/** A file that cannot be read at all and must go aside, with the reason for the log. */
class BadFile extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_MAILDROP_FILE', message, options);
  }
}

/** A file as read: its envelope or the problem with it, and where its parts are. */
interface ReadFile {
  readonly uid: number;
  readonly contentLength: number;
  readonly envelope: MaildropEnvelope | undefined;
  readonly problem: MaildropProblem | undefined;
  readonly returnTo: ReturnInfo | undefined;
  readonly time: number;
}

/**
 * Pickup (pickup(8)): reads the files `postern sendmail` leaves in the maildrop and
 * submits each as the user who owns it; a file is removed only once its message is
 * queued.
 *
 * @example
 * ```ts
 * const pickup = new Pickup({ directory: '/var/spool/postern/maildrop', submission: cleanup, params });
 * pickup.start();
 * // ...
 * await pickup.stop();
 * ```
 */
export class Pickup {
  readonly #o: PickupOptions;
  readonly #log: ComponentLogger;
  readonly #clock: Clock;
  readonly #limits: MaildropLimits;
  readonly #names: Pick<LoginNames, 'nameOf'>;
  readonly #busy = new Set<string>();
  /** Files already reported as unreadable (reported once, not at every scan). */
  readonly #unreadable = new Set<string>();
  /**
   * The temporary refusal files are waiting on (a queue outage), logged for the first
   * file only, and the files it held back, until one is queued again.
   */
  #waiting: { readonly reason: string; readonly files: Set<string> } | undefined;
  #watcher: FSWatcher | undefined;
  #timer: TimerHandle | undefined;
  #scanning: Promise<number> | undefined;
  #again = false;
  #running = false;

  constructor(options: PickupOptions) {
    this.#o = options;
    this.#log = (options.logger ?? silentLogger).for('pickup');
    this.#clock = options.clock ?? systemClock;
    this.#limits = maildropLimits(options.params);
    this.#names = options.loginNames ?? new LoginNames();
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
        this.#log.warning(undefined, `cannot read ${this.#o.directory}: ${errorMessage(err)}`);
      }
      return 0;
    }
    this.#watch();
    // Dot-names are files still being written; the writer renames them when complete.
    const todo = names
      .filter((n) => !n.startsWith('.') && n !== CORRUPT_DIRECTORY && !this.#busy.has(n))
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
    if (!isQueueId(name)) return this.#moveAside(name, 'not a maildrop file name');
    const path = join(this.#o.directory, name);
    let opened: Awaited<ReturnType<typeof openRegularFile>>;
    try {
      opened = await openRegularFile(path);
    } catch (err) {
      if (isNotRegular(err)) return this.#moveAside(name, `a ${err.kind}, not a maildrop file`);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'gone';
      if (code === 'EACCES') return this.#unreadableFile(name, path);
      this.#log.warning(undefined, `${name}: cannot open: ${errorMessage(err)}; will try again`);
      return 'retry';
    }
    const { handle } = opened;
    this.#unreadable.delete(name);
    try {
      const file = await this.#read(handle, opened.stat.uid, opened.stat.size, opened.stat.mtimeMs);
      if (file.envelope && !file.problem) return await this.#submit(name, handle, file);
      return await this.#refuse(name, handle, file);
    } catch (err) {
      if (err instanceof BadFile) return this.#moveAside(name, err.message);
      if (err instanceof SmtpError && err.reply.transient)
        return this.#deferred(name, err.reply.toString());
      this.#log.warning(undefined, `${name}: ${errorMessage(err)}; will try again`);
      return 'retry';
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** A file this process may not read: left in place (it is the owner's), said once. */
  async #unreadableFile(name: string, path: string): Promise<Outcome> {
    if (!this.#unreadable.has(name)) {
      if (this.#unreadable.size >= 10_000) this.#unreadable.clear();
      this.#unreadable.add(name);
      const st = await fs.lstat(path).catch(() => undefined);
      this.#log.warning(
        undefined,
        `${name}: not readable by uid ${process.geteuid?.() ?? '?'} (owner uid ${st?.uid ?? '?'}, mode ${st ? octal(st.mode) : '?'}); ` +
          'left in the maildrop. Run the server as root, or as a member of the maildrop group, to take mail from other users',
      );
    }
    return 'retry';
  }

  async #read(
    handle: fs.FileHandle,
    uid: number,
    size: number,
    mtimeMs: number,
  ): Promise<ReadFile> {
    const tailLength = Math.min(size, TRAILER_MAX);
    const tail = Buffer.alloc(tailLength);
    await handle.read(tail, 0, tailLength, size - tailLength);
    const layout = parseTrailer(tail, size);
    if (!layout) throw new BadFile('truncated or not a maildrop file (no valid trailer)');
    const json = Buffer.alloc(layout.envelopeLength);
    await handle.read(json, 0, layout.envelopeLength, layout.envelopeOffset);
    const reading = readEnvelope(json.toString('utf8'), this.#limits);
    const tooBig = sizeProblem(layout.contentLength, this.#limits);
    const envelope = reading.envelope;
    const returnTo: ReturnInfo | undefined = envelope
      ? {
          sender: envelope.sender,
          recipients: envelope.recipients.map((r) => r.address),
          ...(envelope.ret ? { ret: envelope.ret } : {}),
          ...(envelope.envid !== undefined ? { envid: envelope.envid } : {}),
        }
      : reading.returnTo;
    return {
      uid,
      contentLength: layout.contentLength,
      envelope,
      problem: reading.problem ?? tooBig,
      returnTo,
      time: envelope?.time ?? mtimeMs,
    };
  }

  /** The sender of a file: as written, or the owner's login name by default. */
  async #senderOf(file: ReadFile): Promise<string | undefined> {
    const written = file.envelope ? file.envelope.sender : file.returnTo?.sender;
    if (written !== undefined) return written;
    return this.#names.nameOf(file.uid);
  }

  async #submit(name: string, handle: fs.FileHandle, file: ReadFile): Promise<Outcome> {
    const env = file.envelope!;
    const owner = await this.#names.nameOf(file.uid);
    if (env.user !== (owner ?? String(file.uid))) {
      this.#log.warning(
        undefined,
        `${name}: the file says it is from user "${env.user}", but uid ${file.uid}${owner ? ` (${owner})` : ''} wrote it; the message is attributed to uid ${file.uid}`,
      );
    }
    const sender = env.sender ?? owner;
    if (sender === undefined) {
      throw new BadFile(`names no sender, and uid ${file.uid} has no login name to use instead`);
    }
    const tx = await this.#o.submission.open({
      component: 'pickup',
      protocol: 'local',
      localUser: String(file.uid),
    });
    try {
      tx.setSender(sender, {
        ...(env.envid !== undefined ? { envid: env.envid } : {}),
        ...(env.ret !== undefined ? { ret: env.ret } : {}),
        ...(env.fullName ? { fullName: env.fullName } : {}),
      });
      if (env.extractRecipients) tx.apply({ type: 'extractRecipients' });
      for (const r of env.recipients) tx.addRecipient(r);
      if (file.contentLength > 0) {
        await pipeline(
          handle.createReadStream({ start: 0, end: file.contentLength - 1, autoClose: false }),
          tx.content,
        );
      }
      const result = await tx.commit();
      if (result.reply.positive) {
        await fs.unlink(join(this.#o.directory, name));
        this.#log.info(result.queueId, `uid=${file.uid} from=<${formatAddress(sender)}>`, {
          uid: file.uid,
        });
        this.#resumed();
        return 'queued';
      }
      if (result.reply.transient) return this.#deferred(name, result.reply.toString());
      // Refused by Cleanup (hops, a content check...): back to the sender, as Postfix does.
      return await this.#refuse(name, handle, {
        ...file,
        problem: {
          field: 'envelope',
          text: `rejected: ${result.reply.toString()}`,
          reply: result.reply,
        },
      });
    } catch (err) {
      await tx.abort();
      throw err;
    }
  }

  /** Returns a file that cannot be accepted to its sender, or moves it aside. */
  async #refuse(name: string, handle: fs.FileHandle, file: ReadFile): Promise<Outcome> {
    const problem = file.problem!;
    const sender = file.returnTo ? await this.#senderOf(file) : undefined;
    if (!file.returnTo || sender === undefined)
      return this.#moveAside(name, `${problem.text}; no sender to return it to`);
    if (file.returnTo.recipients.length === 0)
      return this.#moveAside(name, `${problem.text}; no recipient to report`);
    const recipients = file.envelope
      ? file.envelope.recipients
      : file.returnTo.recipients.map((address) => ({ address }));
    this.#log.warning(
      name,
      `uid=${file.uid} from=<${formatAddress(sender)}>: ${problem.text}; returning it to the sender`,
    );
    let notice: string | undefined;
    try {
      notice = await returnToSender(
        {
          queueId: name,
          sender,
          recipients,
          ...(file.returnTo.ret ? { ret: file.returnTo.ret } : {}),
          ...(file.returnTo.envid !== undefined ? { envid: file.returnTo.envid } : {}),
          time: file.time,
          uid: file.uid,
          handle,
          contentLength: file.contentLength,
        },
        problem,
        {
          submission: this.#o.submission,
          params: this.#o.params,
          clock: this.#clock,
          logger: this.#o.logger ?? silentLogger,
        },
      );
    } catch (err) {
      // Cleanup refused the notice itself: it will never go, so keep the file aside.
      if (err instanceof SmtpError && err.reply.permanent)
        return this.#moveAside(
          name,
          `${problem.text}; the notice to <${formatAddress(sender)}> was refused: ${err.reply.toString()}`,
        );
      throw err;
    }
    await fs.unlink(join(this.#o.directory, name));
    this.#log.info(name, `removed${notice ? '' : ' (no notice owed)'}`);
    if (notice) this.#resumed();
    return 'returned';
  }

  /**
   * A file refused for now: left for a later scan. While the same refusal goes on (the
   * queue database is down, say), only the first file is logged, not each file at
   * every scan.
   */
  #deferred(name: string, reason: string): Outcome {
    if (this.#waiting?.reason !== reason) {
      this.#waiting = { reason, files: new Set() };
      this.#log.warning(
        undefined,
        `${name}: ${reason}; will try again (other files refused the same way are not logged until mail is queued again)`,
      );
    }
    if (this.#waiting.files.size < 100_000) this.#waiting.files.add(name);
    return 'retry';
  }

  /** A file was queued: a refusal that held files back is over. */
  #resumed(): void {
    const waiting = this.#waiting;
    if (!waiting) return;
    this.#waiting = undefined;
    const n = waiting.files.size;
    this.#log.info(
      undefined,
      `mail is queued again; ${n} maildrop file${n === 1 ? '' : 's'} had to wait (${waiting.reason})`,
    );
  }

  async #moveAside(name: string, reason: string): Promise<Outcome> {
    const corrupt = join(this.#o.directory, CORRUPT_DIRECTORY);
    try {
      await ensureCorruptDirectory(corrupt);
      await fs.rename(join(this.#o.directory, name), join(corrupt, name));
      this.#log.warning(undefined, `${name}: ${reason}; moved to ${corrupt}`);
      return 'moved';
    } catch (err) {
      this.#log.error(
        undefined,
        `${name}: ${reason}; could not move it aside: ${errorMessage(err)}`,
      );
      return 'retry';
    }
  }
}
