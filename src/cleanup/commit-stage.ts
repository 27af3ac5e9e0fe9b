/**
 * CommitStage: the last look at a message before Cleanup commits it — after header
 * processing, the checks and the content filter, with the whole message written —
 * for work that needs the final header block and the body hash: DKIM signing and
 * inbound authentication (DKIM, SPF, DMARC, ARC).
 *
 * Postfix counterpart: the end-of-message stage of a Milter (OpenDKIM, OpenDMARC) on
 * cleanup's side (cleanup_milter.c): the milter reads the message, then inserts header
 * fields, deletes some, rejects, or quarantines (HOLD); cleanup then commits.
 *
 * Contract: `run()` gets the message as written so far — `open()` returns a fresh
 * stream on every call, so the stage can read it more than once — and answers keep,
 * prepend (header lines put at the top, optionally dropping some header fields, and
 * optionally holding the message), or reply (a 4xx/5xx the client gets: the message is
 * not queued). A stage that throws defers the message (when in doubt, defer). Cleanup
 * writes the queue file again for a prepend (queue-file-rewrite.ts); the stage never
 * touches the store. It runs only for a message that would otherwise be queued.
 *
 * Does not: run for a store whose writer cannot re-read what it holds
 * (MessageWriter.openWritten): such a message is deferred, with the reason logged.
 *
 * @module
 */

import type { Readable } from 'node:stream';
import type { ComponentLogger } from '../log.js';
import type { MessageWriter, QueueStore } from '../queue/types.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Address, QueueId, SubmissionSource } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { type RewrittenQueueFile, rewriteQueueFile } from './queue-file-rewrite.js';

/**
 * A message as the commit stage sees it.
 *
 * @example
 * ```ts
 * const stream = await message.open();
 * ```
 */
export interface StagedMessage {
  /** The message's queue ID (for log lines). */
  readonly queueId: QueueId;
  /** Who submitted it: the client, its HELO, SASL login, TLS (trust decisions, SPF). */
  readonly source: SubmissionSource;
  /** The envelope sender as the client gave it (canonical form); `''` for the null sender. */
  readonly sender: Address | undefined;
  /** Bytes of the header block (the empty line included). */
  readonly headerSize: number;
  /** The message as written (headers and body, CRLF); a fresh stream on every call. */
  open(): Promise<Readable>;
}

/**
 * What the stage wants done.
 *
 * @example
 * ```ts
 * const verdict: StageVerdict = { action: 'prepend', headers: ['DKIM-Signature: v=1; ...'] };
 * ```
 */
export type StageVerdict =
  | { readonly action: 'keep' }
  | {
      readonly action: 'prepend';
      /** Header fields (folded with CRLF + blank where long, no final CRLF) for the top of the header block. */
      readonly headers: readonly string[];
      /** Leave out existing header fields it matches (the field's text, lines joined). */
      readonly dropHeader?: (field: string) => boolean;
      /** Queue the message on hold with this reason (a quarantine). */
      readonly hold?: string;
    }
  | { readonly action: 'reply'; readonly reply: SmtpReply };

/**
 * A stage Cleanup runs before it commits.
 *
 * @example
 * ```ts
 * const stage: CommitStage = { run: async () => ({ action: 'keep' }) };
 * const cleanup = new Cleanup({ params, store, rewriter, queueIds, commitStage: stage });
 * ```
 */
export interface CommitStage {
  /** Looks at the message and answers what to do; throwing defers it. */
  run(message: StagedMessage): Promise<StageVerdict>;
}

/** What the transaction does next. */
export interface StageOutcome {
  /** Fail the commit with this reply. */
  readonly reply?: SmtpReply;
  /** Hold the message with this reason. */
  readonly hold?: string;
  /** The new queue file to commit instead. */
  readonly rewritten?: RewrittenQueueFile;
}

/** The queue file as it stands before the commit. */
export interface StageIo {
  readonly writer: MessageWriter;
  readonly store: QueueStore;
  readonly log: ComponentLogger;
  readonly replaceStrayCr: boolean;
}

const DEFER = new SmtpReply(451, '4.3.0', 'Error: message authentication failed, try again later');

/** Runs `stage` on the message and carries out its verdict. */
export async function runCommitStage(
  stage: CommitStage,
  message: Omit<StagedMessage, 'open'>,
  io: StageIo,
): Promise<StageOutcome> {
  const writer = io.writer;
  const reread = writer.openWritten?.bind(writer);
  if (!reread) {
    io.log.warning(
      message.queueId,
      'message authentication needs a queue store that can re-read a message being written (file or memory): deferring',
    );
    return { reply: DEFER };
  }
  let verdict: StageVerdict;
  try {
    verdict = await stage.run({ ...message, open: reread });
  } catch (err) {
    io.log.warning(message.queueId, `message authentication failed: ${errorMessage(err)}`);
    return { reply: DEFER };
  }
  if (verdict.action === 'keep') return {};
  if (verdict.action === 'reply') return { reply: verdict.reply };
  let content: Readable;
  try {
    content = await reread();
  } catch (err) {
    io.log.warning(message.queueId, `cannot read the message back: ${errorMessage(err)}`);
    return { reply: DEFER };
  }
  // CRLF line ends, and every line after the first a continuation: a stage cannot add
  // more fields than it names.
  const head = verdict.headers.map((h) => {
    const field = h
      .replace(/\0/g, '')
      .replace(/\r?\n/g, '\r\n')
      .replace(/(\r\n)+$/, '')
      .replace(/\r\n(?![ \t])/g, '\r\n ');
    return Buffer.from(`${field}\r\n`, 'utf8');
  });
  const result = await rewriteQueueFile({
    store: io.store,
    queueId: message.queueId,
    old: writer,
    head,
    content,
    contentHeaderBytes: message.headerSize,
    ...(verdict.dropHeader ? { dropHeader: verdict.dropHeader } : {}),
    // The client's size was checked; a few added header lines do not make it too big.
    messageSizeLimit: 0,
    replaceStrayCr: io.replaceStrayCr,
  });
  if (result.kind !== 'rewritten') {
    io.log.warning(
      message.queueId,
      `message authentication headers not added: ${result.kind === 'failed' ? result.reason : 'too big'}`,
    );
    return { reply: DEFER };
  }
  return {
    rewritten: result,
    ...(verdict.hold !== undefined ? { hold: verdict.hold } : {}),
  };
}
