/**
 * LocalDeliveryAgent: final delivery to local users' Maildirs under
 * `mailSpoolDirectory` (first cut of local(8)).
 *
 * Postfix counterpart: local(8) with `mail_spool_directory` ending in `/` (Maildir).
 * For each recipient: the local part is lower-cased, the extension after
 * `recipientDelimiter` is removed (`user+foo` → `user`), the user name is validated,
 * and the message is written to `${mailSpoolDirectory}${user}/` with local(8)'s
 * prepended headers, in Postfix's order (mail_copy.c):
 *
 * ```
 * Return-Path: <sender>
 * X-Original-To: original recipient
 * Delivered-To: final recipient (lower-cased)
 * ```
 * A message whose headers already hold `Delivered-To: <this recipient>` bounces with
 * `5.4.6 mail forwarding loop for <rcpt>` (Postfix's loop control).
 *
 * Outcomes: `250 2.0.0 delivered to maildir` (relay `local`); an invalid user name
 * bounces `550 5.1.1 ... unknown user`; file-system trouble defers (4.2.0 when the
 * mailbox is unusable, 4.3.0 otherwise) with the error text; mbox spools (a path not
 * ending in `/`) defer with 4.3.5 because mbox delivery is not implemented yet.
 *
 * Does not (yet): aliases, .forward, commands, files, mbox, a local recipient table
 * (every valid name gets a Maildir), `mailbox_size_limit`, duplicate suppression.
 *
 * SECURITY: no path is built from an address without validation: the user name must be
 * 1..64 characters of `[a-z0-9._+=-]`, not start with `.` or `-` and hold no `..`, and
 * the resulting directory is checked to lie directly inside the spool. Anything else
 * bounces before the file system is touched. Header values written are stripped of
 * control characters.
 *
 * @module
 */

import path from 'node:path';
import type { Readable } from 'node:stream';
import { systemClock } from '../clock.js';
import type { Parameters } from '../config/parameters.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import { formatAddress, splitAddress } from '../rewrite/address.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Clock, Recipient, RecipientResult } from '../types.js';
import { ContentReadError, MaildirWriter } from './maildir.js';
import type { DeliveryAgent, DeliveryReporter, DeliveryRequest } from './types.js';

/** Options for LocalDeliveryAgent. */
export interface LocalDeliveryAgentOptions {
  /** Uses `mailSpoolDirectory`, `recipientDelimiter`, `myhostname`. */
  readonly params: Parameters;
  /** Logs under component `local`. @default silentLogger */
  readonly logger?: Logger;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** A local mailbox name that is safe as one path component. */
const USER_NAME = /^[a-z0-9_+=][a-z0-9._+=-]{0,63}$/;

/** Most header bytes scanned for Delivered-To before giving up (bounded memory). */
const LOOP_SCAN_LIMIT = 1024 * 1024;

/** Thrown by the content scan when the message already went through this recipient. */
class ForwardingLoop extends Error {}

export class LocalDeliveryAgent implements DeliveryAgent {
  readonly #params: Parameters;
  readonly #log: ComponentLogger;
  readonly #maildir: MaildirWriter;

  constructor(options: LocalDeliveryAgentOptions) {
    this.#params = options.params;
    this.#log = (options.logger ?? silentLogger).for('local');
    this.#maildir = new MaildirWriter({
      hostname: options.params.myhostname,
      clock: options.clock ?? systemClock,
    });
  }

  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    for (const recipient of request.recipients) {
      // Unreported recipients are deferred by the caller when we stop early.
      if (request.signal.aborted) return;
      reporter.recipient(recipient.id, await this.#deliverOne(request, recipient));
    }
  }

  /** The user name for `address`, or undefined when it cannot name a mailbox. */
  mailboxName(address: string): string | undefined {
    let user = splitAddress(address).local.toLowerCase();
    const delimiters = this.#params.recipientDelimiter;
    if (delimiters !== '') {
      let cut = -1;
      for (const d of delimiters) {
        const i = user.indexOf(d.toLowerCase());
        if (i > 0 && (cut < 0 || i < cut)) cut = i;
      }
      if (cut > 0) user = user.slice(0, cut);
    }
    if (!USER_NAME.test(user) || user.includes('..')) return undefined;
    return user;
  }

  async #deliverOne(request: DeliveryRequest, recipient: Recipient): Promise<RecipientResult> {
    const rcpt = formatAddress(recipient.address);
    const user = this.mailboxName(recipient.address);
    if (user === undefined) {
      const shown = splitAddress(recipient.address).local.slice(0, 64);
      return bounced(
        550,
        '5.1.1',
        `<${rcpt}>: unknown user: "${shown}" is not a valid local mailbox name`,
      );
    }

    const spool = this.#params.mailSpoolDirectory;
    if (!spool.endsWith('/')) {
      return deferred(
        451,
        '4.3.5',
        `mbox delivery is not supported yet: set mailSpoolDirectory to a directory ending in "/" for Maildir delivery (now "${spool}")`,
      );
    }
    const root = path.resolve(spool);
    const dir = path.resolve(root, user);
    if (path.dirname(dir) !== root || path.basename(dir) !== user) {
      // Unreachable with a validated name; kept as a last line of defence.
      return bounced(550, '5.1.1', `<${rcpt}>: unknown user: "${user}" does not name a mailbox`);
    }

    const deliveredTo = headerValue(rcpt.toLowerCase());
    const head = Buffer.from(
      `Return-Path: <${headerValue(formatAddress(request.sender))}>\r\n` +
        `X-Original-To: ${headerValue(formatAddress(recipient.originalAddress))}\r\n` +
        `Delivered-To: ${deliveredTo}\r\n`,
      'utf8',
    );

    let content: Readable | undefined;
    try {
      try {
        content = request.openContent();
      } catch (err) {
        throw new ContentReadError(err);
      }
      // The scan decodes bytes as latin1; compare against the same form of the address.
      const body = loopChecked(
        content,
        asciiLower(Buffer.from(deliveredTo, 'utf8').toString('latin1')),
      );
      await this.#maildir.deliver(dir, head, body, request.signal);
      return {
        status: 'sent',
        reply: new SmtpReply(250, '2.0.0', 'delivered to maildir'),
        relay: 'local',
      };
    } catch (err) {
      if (err instanceof ForwardingLoop) {
        return bounced(554, '5.4.6', `mail forwarding loop for ${rcpt}`);
      }
      if (request.signal.aborted) {
        return deferred(451, '4.3.0', 'delivery interrupted; will retry');
      }
      if (err instanceof ContentReadError) {
        this.#log.warning(request.queueId, err.message);
        return deferred(451, '4.3.0', err.message);
      }
      const e = err as NodeJS.ErrnoException;
      const text = `maildir delivery failed: ${e.message ?? String(err)}`;
      this.#log.warning(request.queueId, `${rcpt}: ${text}`);
      const mailboxProblem = ['EACCES', 'EPERM', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EROFS'].includes(
        e.code ?? '',
      );
      return mailboxProblem ? deferred(450, '4.2.0', text) : deferred(451, '4.3.0', text);
    } finally {
      content?.destroy();
    }
  }
}

function bounced(code: number, enhanced: string, text: string): RecipientResult {
  return { status: 'bounced', reply: new SmtpReply(code, enhanced, text), relay: 'local' };
}

function deferred(code: number, enhanced: string, text: string): RecipientResult {
  return { status: 'deferred', reply: new SmtpReply(code, enhanced, text), relay: 'local' };
}

/** Lower-cases A-Z only, so byte strings compare the same whatever they encode. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** A value made safe for a header line: no control characters. */
function headerValue(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, '?');
}

/**
 * Passes the content through, scanning its header block for `Delivered-To:` equal to
 * `target` (latin1 form, A-Z lower-cased); throws ForwardingLoop when found. Read errors become
 * ContentReadError.
 */
async function* loopChecked(content: Readable, target: string): AsyncGenerator<Buffer> {
  let scanning = true;
  let pending = '';
  let current = '';
  let scanned = 0;
  const finishHeader = (): void => {
    const colon = current.indexOf(':');
    if (colon > 0 && current.slice(0, colon).trim().toLowerCase() === 'delivered-to') {
      if (asciiLower(current.slice(colon + 1).trim()) === target) throw new ForwardingLoop();
    }
    current = '';
  };
  const iterator = content[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<unknown>;
    try {
      next = await iterator.next();
    } catch (err) {
      throw new ContentReadError(err);
    }
    if (next.done) break;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(String(next.value));
    if (scanning) {
      scanned += chunk.length;
      pending += chunk.toString('latin1');
      let start = 0;
      let nl = pending.indexOf('\n');
      while (scanning && nl >= 0) {
        const line = pending.slice(start, pending[nl - 1] === '\r' ? nl - 1 : nl);
        start = nl + 1;
        if (line === '') {
          finishHeader();
          scanning = false;
        } else if (line[0] === ' ' || line[0] === '\t') {
          current += line;
        } else {
          finishHeader();
          current = line;
        }
        nl = pending.indexOf('\n', start);
      }
      pending = pending.slice(start);
      if (scanned > LOOP_SCAN_LIMIT) scanning = false;
      if (!scanning) {
        pending = '';
        current = '';
      }
    }
    yield chunk;
  }
  if (scanning) finishHeader();
}
