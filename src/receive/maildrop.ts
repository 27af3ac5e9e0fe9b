/**
 * Maildrop: the spool directory of locally submitted mail, and MaildropSubmission, a
 * Submission port that writes one maildrop file per message.
 *
 * Postfix counterpart: postdrop(1) and the maildrop queue. `postern sendmail` and the
 * programmatic `submit()` write here whether or not a server runs; Pickup feeds the
 * files to Cleanup. The maildrop is not a QueueStore state: it is its own trust zone,
 * `${queueDirectory}/maildrop` whatever store is configured.
 *
 * A file becomes visible only complete: it is written under a dot-name, fsynced,
 * renamed, and the directory fsynced before `commit()` resolves. An aborted or failed
 * write leaves nothing behind.
 *
 * SECURITY: files are created 0600 with O_EXCL. On a host where several users submit,
 * the operator makes the directory mode 1733 (as Postfix's maildrop once was): users
 * can drop files but not list or remove others'. Pickup treats every file as hostile.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { systemClock } from '../clock.js';
import { QueueIdGenerator } from '../queue/queue-id.js';
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
import { fsyncDirectory } from '../util/fsync.js';
import { type MaildropEnvelope, maildropTrailer } from './maildrop-format.js';

/** The maildrop directory of a queue directory. */
export function maildropDirectory(queueDirectory: string): string {
  return join(queueDirectory, 'maildrop');
}

export interface MaildropSubmissionOptions {
  /** The maildrop directory (created 0700 if missing). */
  readonly directory: string;
  /** Largest content accepted (Postfix message_size_limit); 0 = none. */
  readonly messageSizeLimit: number;
  /** The submitting user's login name. */
  readonly user: string;
  readonly clock?: Clock;
}

/** Writes maildrop files through the Submission port's transaction shape. */
export class MaildropSubmission implements SubmissionPort {
  readonly #options: MaildropSubmissionOptions;
  readonly #ids = new QueueIdGenerator();

  constructor(options: MaildropSubmissionOptions) {
    this.#options = options;
  }

  async open(_source: SubmissionSource): Promise<SubmissionTransaction> {
    await fs.mkdir(this.#options.directory, { recursive: true, mode: 0o700 });
    const id = this.#ids.next();
    const temp = join(this.#options.directory, `.${id}.${randomBytes(4).toString('hex')}`);
    const handle = await fs.open(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
      0o600,
    );
    return new MaildropTransaction(id, temp, handle, this.#options);
  }
}

class MaildropTransaction implements SubmissionTransaction {
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
          this.#failure = new SmtpReply(552, '5.3.4', 'Error: message file too big');
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

  setSender(sender: Address, params: SenderParams = {}): void {
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
    const failure =
      this.#failure ??
      (this.#sender === undefined
        ? new SmtpReply(503, '5.5.1', 'Error: no sender specified')
        : this.#recipients.length === 0 && !this.#extract
          ? new SmtpReply(550, '5.1.0', 'Error: no recipients specified')
          : undefined);
    if (failure) {
      await this.#discard();
      return { reply: failure };
    }
    const envelope: MaildropEnvelope = {
      sender: this.#sender!,
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
      await fsyncDirectory(this.#options.directory);
    } catch (err) {
      await this.#discard();
      return {
        reply: new SmtpReply(
          451,
          '4.3.0',
          `Error: maildrop write error: ${(err as Error).message}`,
        ),
      };
    }
    return {
      reply: new SmtpReply(250, '2.0.0', `Ok: queued as ${this.queueId}`),
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
    await fs.unlink(this.#temp).catch(() => {});
  }
}
