/**
 * A Submission port for receiver tests: records every transaction (source, sender,
 * recipients, content) and can be told to refuse opening, to refuse the commit with a
 * reply, or to apply backpressure on the content stream.
 *
 * @module
 */

import { Writable } from 'node:stream';
import { SmtpReply } from '../../src/smtp-reply.js';
import type {
  Address,
  NewRecipient,
  SenderParams,
  SubmissionAction,
  SubmissionPort,
  SubmissionResult,
  SubmissionSource,
  SubmissionTransaction,
} from '../../src/types.js';

/** One transaction as the port saw it. */
export interface RecordedTransaction {
  readonly queueId: string;
  readonly source: SubmissionSource;
  sender: Address | undefined;
  senderParams: SenderParams | undefined;
  readonly recipients: NewRecipient[];
  readonly actions: SubmissionAction[];
  readonly chunks: Buffer[];
  state: 'open' | 'committed' | 'rejected' | 'aborted';
  /** setSender was called before the first addRecipient. */
  senderBeforeRecipients: boolean;
}

export interface RecordingSubmissionOptions {
  /** Makes open() reject with this error. */
  openError?: Error;
  /** Makes commit() resolve with this (negative) reply. */
  commitReply?: SmtpReply;
  /** Content stream high-water mark in bytes (small values exercise backpressure). */
  highWaterMark?: number;
  /** Milliseconds each content write takes (forces `write()` to return false). */
  writeDelayMs?: number;
}

export class RecordingSubmission implements SubmissionPort {
  readonly transactions: RecordedTransaction[] = [];
  options: RecordingSubmissionOptions;
  #seq = 0;
  /** How many times a content write returned false. */
  backpressureEvents = 0;

  constructor(options: RecordingSubmissionOptions = {}) {
    this.options = options;
  }

  /** Transactions committed successfully. */
  get committed(): RecordedTransaction[] {
    return this.transactions.filter((t) => t.state === 'committed');
  }

  /** Content of a recorded transaction as a latin1 string (bytes preserved). */
  static text(t: RecordedTransaction): string {
    return Buffer.concat(t.chunks).toString('latin1');
  }

  async open(source: SubmissionSource): Promise<SubmissionTransaction> {
    if (this.options.openError) throw this.options.openError;
    const queueId = `TEST${String(++this.#seq).padStart(6, '0')}`;
    const rec: RecordedTransaction = {
      queueId,
      source,
      sender: undefined,
      senderParams: undefined,
      recipients: [],
      actions: [],
      chunks: [],
      state: 'open',
      senderBeforeRecipients: false,
    };
    this.transactions.push(rec);
    const opts = this.options;
    const port = this;
    const content = new Writable({
      highWaterMark: opts.highWaterMark ?? 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        rec.chunks.push(Buffer.from(chunk));
        if (opts.writeDelayMs) setTimeout(cb, opts.writeDelayMs);
        else cb();
      },
    });
    const origWrite = content.write.bind(content);
    content.write = ((chunk: Buffer, ...rest: unknown[]) => {
      const ok = (origWrite as (c: Buffer, ...r: unknown[]) => boolean)(chunk, ...rest);
      if (!ok) this.backpressureEvents++;
      return ok;
    }) as typeof content.write;
    const tx: SubmissionTransaction = {
      queueId,
      content,
      setSender(sender, params) {
        if (rec.recipients.length === 0) rec.senderBeforeRecipients = true;
        rec.sender = sender;
        rec.senderParams = params;
      },
      addRecipient(r) {
        rec.recipients.push(r);
      },
      apply(action) {
        rec.actions.push(action);
      },
      async commit(): Promise<SubmissionResult> {
        if (!content.writableEnded) content.end();
        if (!content.writableFinished)
          await new Promise<void>((resolve) => content.once('finish', resolve));
        const refusal = port.options.commitReply;
        if (refusal) {
          rec.state = 'rejected';
          return { reply: refusal };
        }
        rec.state = 'committed';
        return { reply: new SmtpReply(250, '2.0.0', `Ok: queued as ${queueId}`), queueId };
      },
      async abort() {
        if (rec.state === 'open') rec.state = 'aborted';
        content.destroy();
      },
    };
    return tx;
  }
}
