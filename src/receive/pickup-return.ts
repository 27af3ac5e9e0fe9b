/**
 * Returns a maildrop file that Pickup cannot accept to its sender: a non-delivery
 * notice through the normal Bounce service, with the reason for every recipient and
 * the message (or its headers) attached.
 *
 * Postfix counterpart: pickup(8) asking cleanup(8) to bounce (CLEANUP_FLAG_BOUNCE) and
 * cleanup_bounce.c, which marks every recipient bounced so that bounce(8) sends one
 * notice. Postfix does this for what cleanup refuses and silently deletes a file whose
 * records are malformed; Postern returns both to the sender whenever one can be named,
 * so a user learns that a message did not go, and keeps `maildrop/corrupt/` for files
 * that cannot be read at all.
 *
 * Each recipient (the first 100 of a longer list) gets a `status=bounced` log line and
 * a place in the notice, and Bounce logs the notice as it does for the queue (`ID: sender non-delivery notification: NEWID`). The notice goes
 * through Cleanup like all mail, so a null sender makes it a postmaster notice, and the
 * double-bounce sender gets none.
 *
 * Does not do: decide what is acceptable (maildrop-checks.ts) or read the envelope
 * (maildrop-format.ts). The file is left for the caller to remove once the notice is
 * queued.
 *
 * SECURITY: the attached content is read from the open descriptor, bounded by the file
 * layout, converted to CRLF line ends, and cut to the header block (at most
 * `headerSizeLimit` bytes) whenever Bounce returns headers only.
 *
 * @module
 */

import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { Bounce } from '../queue/bounce/bounce.js';
import { logDelivery } from '../queue/qmgr/stored-outcome.js';
import type { MessageRecord, StoredRecipient } from '../queue/types.js';
import type { Clock, DsnNotifyKeyword, DsnRet, QueueId, SubmissionPort } from '../types.js';
import type { MaildropProblem } from './maildrop-checks.js';
import type { PickupParameters } from './pickup-parameters.js';

/** A refused maildrop message, as far as it is known. */
export interface RefusedMessage {
  /** The maildrop file's name (a queue ID). */
  readonly queueId: QueueId;
  /** Where the notice goes ('' sends it to the postmaster). */
  readonly sender: string;
  readonly recipients: readonly {
    readonly address: string;
    readonly notify?: readonly DsnNotifyKeyword[];
    readonly orcpt?: string;
  }[];
  readonly ret?: DsnRet;
  readonly envid?: string;
  /** Submission time, ms. */
  readonly time: number;
  /** The submitting uid, for the Received-less record's source. */
  readonly uid: number;
  /** The open maildrop file and the length of its content part. */
  readonly handle: FileHandle;
  readonly contentLength: number;
}

/** What returnToSender needs from Pickup. */
export interface ReturnOptions {
  readonly submission: SubmissionPort;
  readonly params: PickupParameters;
  readonly clock: Clock;
  readonly logger: Logger;
}

const CHUNK = 64 * 1024;
/** Recipients named in one notice (and logged): a hostile file may list thousands. */
const NOTICE_RECIPIENTS = 100;

/**
 * Queues the non-delivery notice for `message`; resolves with its queue ID (undefined
 * when none was owed, e.g. every recipient asked NOTIFY=NEVER). Rejects when the
 * notice could not be queued: with an SmtpError whose reply is permanent when Cleanup
 * refused it (it will never go), with anything else when it may go later.
 */
export async function returnToSender(
  message: RefusedMessage,
  problem: MaildropProblem,
  options: ReturnOptions,
): Promise<QueueId | undefined> {
  const { params, clock, logger } = options;
  const now = clock.now();
  // A message refused for its size comes back as headers only, whatever bounceSizeLimit says.
  const headersOnly =
    message.ret === 'HDRS' ||
    problem.field === 'size' ||
    (params.bounceSizeLimit > 0 && message.contentLength > params.bounceSizeLimit);
  const reply = problem.reply;
  const listed = message.recipients.slice(0, NOTICE_RECIPIENTS);
  const recipients: StoredRecipient[] = listed.map((r, id) => ({
    id,
    address: r.address,
    originalAddress: r.address,
    ...(r.notify ? { notify: r.notify } : {}),
    ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
    state: 'bounced',
    last: {
      status: 'bounced',
      code: reply.code,
      enhanced: reply.enhanced,
      text: reply.text,
      relay: 'none',
      time: now,
    },
  }));
  const record: MessageRecord = {
    formatVersion: 1,
    queueId: message.queueId,
    sender: message.sender,
    recipients,
    ...(message.envid !== undefined ? { envid: message.envid } : {}),
    ...(headersOnly ? { ret: 'HDRS' as const } : message.ret ? { ret: message.ret } : {}),
    bodyType: '7BIT',
    smtputf8: false,
    // Cleanup finds 8-bit data in the notice itself.
    eightBit: false,
    size: message.contentLength,
    headerSize: 0,
    arrivalTime: message.time,
    warnTime: 0,
    source: { component: 'pickup', protocol: 'local', localUser: String(message.uid) },
  };
  for (const r of recipients) logDelivery(logger, 'pickup', record, r, r.last!);
  if (message.recipients.length > listed.length) {
    logger.info(
      'pickup',
      message.queueId,
      `${message.recipients.length - listed.length} more recipients not listed in the notice`,
    );
  }
  const bounce = new Bounce({
    submission: options.submission,
    store: {
      openContent: () =>
        Readable.from(
          maildropContent(
            message.handle,
            message.contentLength,
            headersOnly ? params.headerSizeLimit : undefined,
          ),
        ),
    },
    params,
    clock,
    logger,
  });
  return bounce.notify(record, recipients, 'failure');
}

/**
 * The content part of a maildrop file with CRLF line ends; with `headerLimit`, only the
 * header block (ending with its empty line, at most that many bytes).
 */
async function* maildropContent(
  handle: FileHandle,
  length: number,
  headerLimit: number | undefined,
): AsyncGenerator<Buffer> {
  let position = 0;
  let previous = -1; // the last byte read, to see a CR that ends the previous chunk
  let lineLength = 0; // bytes of the current line so far, CR excluded
  let sent = 0;
  while (position < length) {
    const want = Math.min(CHUNK, length - position);
    const buffer = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(buffer, 0, want, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    const chunk = buffer.subarray(0, bytesRead);
    const parts: Buffer[] = [];
    let start = 0;
    let ended = false;
    for (let lf = chunk.indexOf(0x0a); lf >= 0; lf = chunk.indexOf(0x0a, start)) {
      const before = lf > 0 ? chunk[lf - 1]! : previous;
      const text = chunk.subarray(start, before === 0x0d && lf > 0 ? lf - 1 : lf);
      lineLength += text.length;
      parts.push(text, CRLF);
      start = lf + 1;
      if (headerLimit !== undefined && lineLength === 0) {
        ended = true; // the empty line that ends the header block
        break;
      }
      lineLength = 0;
    }
    if (!ended && start < chunk.length) {
      // The rest of a line; a CR at the very end may yet be the first half of a CRLF.
      const rest = chunk.subarray(start);
      const cr = rest[rest.length - 1] === 0x0d;
      const text = cr ? rest.subarray(0, -1) : rest;
      lineLength += text.length;
      parts.push(text);
      if (cr && position >= length) parts.push(CRLF);
    }
    previous = chunk[chunk.length - 1]!;
    const out = Buffer.concat(parts);
    if (headerLimit !== undefined && sent + out.length > headerLimit) {
      // A header block without an end in sight: cut it and end it.
      yield Buffer.concat([out.subarray(0, Math.max(0, headerLimit - sent)), CRLF, CRLF]);
      return;
    }
    sent += out.length;
    yield out;
    if (ended) return;
  }
}

const CRLF = Buffer.from('\r\n');
