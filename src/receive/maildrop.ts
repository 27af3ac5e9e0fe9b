/**
 * Maildrop: the spool directory of locally submitted mail, and MaildropSubmission, a
 * Submission port that writes one maildrop file per message.
 *
 * Postfix counterpart: postdrop(1) and the maildrop queue. `postern sendmail` and the
 * programmatic `submitToMaildrop()` write here whether or not a server runs; Pickup
 * feeds the files to Cleanup. The maildrop is not a QueueStore state: it is its own
 * trust zone, `${queueDirectory}/maildrop` whatever store is configured.
 *
 * A file becomes visible only complete: it is written under a dot-name, fsynced,
 * renamed, and the directory fsynced before `commit()` resolves. An aborted or failed
 * write leaves nothing behind. Before anything is written for good, the envelope goes
 * through the checks Pickup will make (maildrop-checks.ts).
 *
 * How local users submit, and why this way. Postfix lets every user submit through
 * postdrop, a set-group-id program writing into a maildrop only its group may enter;
 * pickup takes the submitting user from each file's owner. An npm package cannot
 * install a set-group-id binary (npm drops the bit, and a Node script cannot carry it),
 * and a UNIX-socket service cannot name its peer either: Node has no SO_PEERCRED or
 * SCM_CREDENTIALS, and learning the uid would need a native addon or racy /proc
 * walking, and it would not work while the server is stopped. So Postern keeps
 * Postfix's identity rule and drops the privileged helper, as Postfix's own maildrop
 * did before postdrop existed:
 *
 * - the maildrop is mode 3733, owned by the server's uid (queue-modes.ts): any user
 *   may create a file, no user may list the directory, and the sticky bit lets only a
 *   file's owner (or the queue owner) remove or rename it;
 * - sendmail runs as the user and creates the file itself, so the kernel makes that
 *   user its owner; Pickup takes the identity from fstat() of the open file
 *   (`Received: ... from userid UID`, `uid=UID`, the default sender), which no user can
 *   forge, and only logs the user name written inside;
 * - files are mode 0640 in a set-group-id directory: readable by their owner and the
 *   queue owner's group only, so no other user can read, alter or delete them;
 * - the per-file limit is `messageSizeLimit`, which sendmail enforces as it reads
 *   (exit 65, nothing kept) and Pickup enforces again; the files count against the
 *   submitting user's own disk quota, since that user owns them.
 *
 * SECURITY: files are created with O_EXCL | O_NOFOLLOW under a random dot-name. A
 * user who bypasses sendmail and writes files by hand gains nothing: Pickup applies
 * the same checks, attributes the file to its owner, and refuses links and special
 * files.
 *
 * @module
 */

import { constants, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { builtin } from '../builtin.js';
import { systemClock } from '../clock.js';
import { silentLogger } from '../log.js';
import { MAILDROP_FILE_MODE } from '../queue/queue-modes.js';
import { QueueIdGenerator } from '../queue-id.js';
import { SmtpReply } from '../smtp-reply.js';
import type {
  Address,
  Clock,
  NewRecipient,
  SenderParams,
  SubmissionAction,
  SubmissionPort,
  SubmissionResult,
  SubmissionSource,
  SubmissionTransaction,
} from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { fsyncDirectory } from '../util/fsync.js';
import { envelopeProblem, maildropLimits, sizeProblem } from './maildrop-checks.js';
import { prepareMaildrop } from './maildrop-directory.js';
import { type MaildropEnvelope, maildropTrailer } from './maildrop-format.js';

/** The maildrop directory of a queue directory. */
export function maildropDirectory(queueDirectory: string): string {
  return join(queueDirectory, 'maildrop');
}

export interface MaildropSubmissionOptions {
  /**
   * The maildrop directory. When neither it nor its queue directory exists, both are
   * made (as the server would make them); a queue directory of another user is never
   * written into.
   */
  readonly directory: string;
  /** Largest content accepted (Postfix message_size_limit); 0 = none. */
  readonly messageSizeLimit: number;
  /** Most recipients in one message (smtpdRecipientLimit, as Pickup reads it). @default 1000 */
  readonly recipientLimit?: number;
  /** Longest address in bytes (lineLengthLimit, as Pickup reads it). @default 2048 */
  readonly addressLengthLimit?: number;
  /** An address may start with `-` (allowMinUser, as Pickup reads it). @default false */
  readonly allowMinUser?: boolean;
  /** The submitting user's login name (written for the record; Pickup trusts the file's owner). */
  readonly user: string;
  readonly clock?: Clock;
}

/** The limits a MaildropSubmission holds its messages to, as Pickup will. */
function limitsOf(o: MaildropSubmissionOptions) {
  return maildropLimits({
    lineLengthLimit: o.addressLengthLimit ?? 2048,
    allowMinUser: o.allowMinUser ?? false,
    smtpdRecipientLimit: o.recipientLimit ?? 1000,
    messageSizeLimit: o.messageSizeLimit,
  });
}

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Writes maildrop files through the Submission port's transaction shape. */
export class MaildropSubmission implements SubmissionPort {
  readonly #options: MaildropSubmissionOptions;
  readonly #ids = new QueueIdGenerator();

  constructor(options: MaildropSubmissionOptions) {
    this.#options = options;
  }

  async open(_source: SubmissionSource): Promise<MaildropTransaction> {
    const id = this.#ids.next();
    const temp = join(
      this.#options.directory,
      `.${id}.${builtin('crypto').randomBytes(8).toString('hex')}`,
    );
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(temp, CREATE, MAILDROP_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.#makeDirectory();
      handle = await fs.open(temp, CREATE, MAILDROP_FILE_MODE);
    }
    try {
      // The umask may have taken the group's read bit, which a server not run as root needs.
      await handle.chmod(MAILDROP_FILE_MODE);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fs.unlink(temp).catch(() => undefined);
      throw err;
    }
    return new MaildropTransaction(id, temp, handle, this.#options);
  }

  /** No maildrop: make it, unless its queue directory exists and belongs to someone else. */
  async #makeDirectory(): Promise<void> {
    const queue = dirname(this.#options.directory);
    const st = await fs.lstat(queue).catch(() => undefined);
    const euid = process.geteuid?.();
    if (st && euid !== undefined && st.uid !== euid) {
      throw Object.assign(
        new Error(
          `there is no maildrop in ${queue}; the server makes it when it starts (postern serve), and only its owner (uid ${st.uid}) may create it`,
        ),
        { code: 'ENOENT' },
      );
    }
    await prepareMaildrop(this.#options.directory, silentLogger.for('sendmail'), {
      create: true,
    });
  }
}

/** One maildrop file being written. */
export class MaildropTransaction implements SubmissionTransaction {
  readonly queueId: string;
  readonly content: Writable;
  readonly #temp: string;
  readonly #handle: fs.FileHandle;
  readonly #options: MaildropSubmissionOptions;
  #sender: Address | undefined;
  #params: SenderParams = {};
  readonly #recipients: NewRecipient[] = [];
  #extract = false;
  #size = 0;
  #failure: SmtpReply | undefined;
  #done = false;
  #renamed = false;
  #ended: Promise<void>;

  constructor(id: string, temp: string, handle: fs.FileHandle, options: MaildropSubmissionOptions) {
    this.queueId = id;
    this.#temp = temp;
    this.#handle = handle;
    this.#options = options;
    const limit =
      options.messageSizeLimit > 0 ? options.messageSizeLimit : Number.POSITIVE_INFINITY;
    this.content = new Writable({
      write: (chunk: Buffer, _enc, callback) => {
        if (this.#failure) return callback();
        this.#size += chunk.length;
        if (this.#size > limit) {
          this.#failure = sizeProblem(this.#size, limitsOf(options))!.reply;
          return callback();
        }
        this.#handle.write(chunk).then(
          () => callback(),
          (err: Error) => {
            this.#failure = new SmtpReply(
              451,
              '4.3.0',
              `Error: maildrop write error: ${err.message}`,
            );
            callback();
          },
        );
      },
    });
    this.#ended = new Promise((resolve) => this.content.once('finish', resolve));
  }

  /** `undefined` leaves the sender out: Pickup uses the file owner's login name. */
  setSender(sender: Address | undefined, params: SenderParams = {}): void {
    this.#sender = sender;
    this.#params = params;
  }

  addRecipient(recipient: NewRecipient): void {
    this.#recipients.push(recipient);
  }

  /** Only `extractRecipients` is kept (Pickup passes it on); the rest belong to Cleanup. */
  apply(action: SubmissionAction): void {
    if (action.type === 'extractRecipients') this.#extract = true;
  }

  async commit(): Promise<SubmissionResult> {
    if (this.#done) throw new Error('maildrop transaction already committed or aborted');
    if (!this.content.writableEnded) this.content.end();
    await this.#ended;
    this.#done = true;
    // No sender set: the default sender, which Pickup takes from the file's owner.
    const failure =
      this.#failure ??
      envelopeProblem(
        {
          sender: this.#sender,
          recipients: this.#recipients,
          extractRecipients: this.#extract,
          fullName: this.#params.fullName,
          envid: this.#params.envid,
          user: this.#options.user,
        },
        limitsOf(this.#options),
      )?.reply;
    if (failure) {
      await this.#discard();
      return { reply: failure };
    }
    const envelope: MaildropEnvelope = {
      ...(this.#sender !== undefined ? { sender: this.#sender } : {}),
      recipients: this.#recipients.map((r) => ({
        address: r.address,
        ...(r.notify ? { notify: r.notify } : {}),
        ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
      })),
      ...(this.#extract ? { extractRecipients: true } : {}),
      user: this.#options.user,
      time: (this.#options.clock ?? systemClock).now(),
      ...(this.#params.envid !== undefined ? { envid: this.#params.envid } : {}),
      ...(this.#params.ret !== undefined ? { ret: this.#params.ret } : {}),
      ...(this.#params.fullName ? { fullName: this.#params.fullName } : {}),
    };
    try {
      const json = `${JSON.stringify(envelope)}\n`;
      await this.#handle.write(json + maildropTrailer(this.#size, Buffer.byteLength(json)));
      await this.#handle.sync();
      await this.#handle.close();
      await fs.rename(this.#temp, join(this.#options.directory, this.queueId));
      this.#renamed = true;
      await fsyncDirectory(this.#options.directory).catch((err: NodeJS.ErrnoException) => {
        // Other users may not open the maildrop (mode 3733); the file itself is synced,
        // and the rename is as durable as the file system makes it, as with postdrop.
        if (err.code !== 'EACCES') throw err;
      });
    } catch (err) {
      await this.#discard();
      return {
        reply: new SmtpReply(451, '4.3.0', `Error: maildrop write error: ${errorMessage(err)}`),
      };
    }
    return {
      reply: SmtpReply.clean(250, '2.0.0', `Ok: queued as ${this.queueId}`),
      queueId: this.queueId,
    };
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.content.destroy();
    await this.#discard();
  }

  async #discard(): Promise<void> {
    await this.#handle.close().catch(() => {});
    const path = this.#renamed ? join(this.#options.directory, this.queueId) : this.#temp;
    await fs.unlink(path).catch(() => {});
  }
}
