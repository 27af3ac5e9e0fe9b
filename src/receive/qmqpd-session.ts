/**
 * QmqpSession: one QMQP connection — one message, one reply, then close.
 *
 * Postfix counterpart: qmqpd(8). The request is a netstring holding the message
 * netstring, the sender netstring and one netstring per recipient; as Postfix does,
 * the outer length is read and ignored, and recipients are read until the outer `,`.
 * The reply is one netstring: `K` accepted, `Z` temporary failure, `D` permanent
 * failure, followed by text.
 *
 * Unlike Postfix, which buffers the whole message because its queue file wants the
 * sender first, the content is streamed into the Submission port as it arrives (the
 * port takes the envelope after the content), so memory does not grow with the message.
 * The Received header therefore never names the recipient (Postfix names it when there
 * is exactly one). VERP senders (`prefix@origin-@[]`) are taken without VERP.
 *
 * SECURITY: only `qmqpdAuthorizedClients` may use the service (none by default). A
 * sender that starts with `-` (unless `allowMinUser`) or holds control characters gets a
 * `D` reply (envelope-address.ts); recipients are judged later, per recipient. The
 * message netstring is bounded by `messageSizeLimit`, the envelope counts towards it
 * too, and each address by `lineLengthLimit`; any framing error gets a `D` reply and the
 * connection is closed with nothing queued.
 *
 * STANDARDS: QMQP (cr.yp.to/proto/qmqp.html), netstrings.
 *
 * @module
 */

import type { Duplex } from 'node:stream';
import { checkSenderAddress } from '../address/envelope-address.js';
import { delay } from '../clock.js';
import { PosternError } from '../errors.js';
import type { ComponentLogger } from '../log.js';
import { printable } from '../smtp-reply.js';
import type { CidrList } from '../tables/cidr.js';
import type { ClientInfo, Clock, SubmissionPort, SubmissionTransaction } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { ByteReader, UnexpectedEndError } from './byte-reader.js';
import {
  NetstringError,
  netstring,
  readNetstring,
  readNetstringEnd,
  readNetstringLength,
} from './netstring.js';
import type { QmqpdParameters } from './qmqpd-parameters.js';

/** What every QMQP session shares. */
export interface QmqpContext {
  readonly params: QmqpdParameters;
  readonly submission: SubmissionPort;
  readonly authorizedClients: CidrList;
  readonly log: ComponentLogger;
  readonly clock: Clock;
}

const COMMA = 0x2c;

/** Postfix's VERP request suffix on a QMQP sender. */
const VERP_SUFFIX = '-@[]';

/** A request that cannot be accepted: the status letter and the text for the client. */
class QmqpRefusal extends PosternError {
  constructor(
    readonly status: 'D' | 'Z',
    text: string,
  ) {
    super('POSTERN_ERR_QMQP_REFUSED', text);
  }
}

export class QmqpSession {
  readonly #ctx: QmqpContext;
  readonly #socket: Duplex;
  readonly #peer: ClientInfo;
  readonly #host: string;
  #tx: SubmissionTransaction | undefined;
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(ctx: QmqpContext, socket: Duplex, peer: ClientInfo) {
    this.#ctx = ctx;
    this.#socket = socket;
    this.#peer = peer;
    this.#host = `${peer.name ?? 'unknown'}[${peer.address}]`;
    this.done = new Promise((r) => {
      this.#resolveDone = r;
    });
  }

  start(): void {
    const socket = this.#socket;
    socket.on('error', () => {});
    const timeout = this.#ctx.clock.setTimeout(() => {
      this.#ctx.log.info(
        undefined,
        `timeout after ${this.#tx ? 'message' : 'connect'} from ${this.#host}`,
      );
      socket.destroy();
    }, this.#ctx.params.qmqpdTimeout);
    socket.once('close', () => timeout.cancel());
    this.#ctx.log.info(undefined, `connect from ${this.#host}`);
    this.#run()
      .catch((err: unknown) => {
        this.#ctx.log.error(undefined, `${this.#host}: ${errorMessage(err)}`);
      })
      .finally(() => {
        timeout.cancel();
        this.#ctx.log.info(undefined, `disconnect from ${this.#host}`);
        this.#resolveDone();
      });
  }

  /** Drops the connection (server shutdown); an unfinished message is aborted. */
  destroy(): void {
    this.#socket.destroy();
  }

  async #run(): Promise<void> {
    const { params } = this.#ctx;
    if (!this.#ctx.authorizedClients.matches(this.#peer.address)) {
      this.#ctx.log.warning(
        undefined,
        `${this.#host}: not authorized to use the QMQP service (qmqpdAuthorizedClients)`,
      );
      await this.#reply('D', `Error: ${this.#host} is not authorized to use this service`);
      return;
    }
    const reader = new ByteReader(this.#socket);
    const sizeLimit =
      params.messageSizeLimit > 0 ? params.messageSizeLimit : Number.MAX_SAFE_INTEGER;
    try {
      // The outer length is read and ignored; the inner netstrings frame everything.
      await readNetstringLength(reader, Number.MAX_SAFE_INTEGER, 'message');
      const contentLength = await readNetstringLength(reader, sizeLimit, 'message content');
      const tx = await this.#ctx.submission.open({
        component: 'qmqpd',
        protocol: 'QMQP',
        client: this.#peer,
      });
      this.#tx = tx;
      try {
        await reader.pipeExact(contentLength, tx.content, 'message content');
      } catch (err) {
        throw err instanceof UnexpectedEndError
          ? new NetstringError('format', 'message content')
          : err;
      }
      await readNetstringEnd(reader, 'message content');

      // The envelope counts towards the size limit, as in Postfix.
      let budget = sizeLimit - contentLength;
      const address = async (what: string): Promise<string> => {
        const raw = await readNetstring(
          reader,
          Math.min(params.lineLengthLimit, Math.max(0, budget)),
          what,
        );
        budget -= raw.length;
        const text = raw.toString('utf8');
        if (/[\x00-\x1f\x7f]/.test(text) || text.includes('\ufffd')) {
          throw new QmqpRefusal('D', `Error: bad ${what} syntax`);
        }
        return text;
      };
      let sender = await address('sender address');
      if (sender.endsWith(VERP_SUFFIX)) sender = sender.slice(0, -VERP_SUFFIX.length);
      const bad = checkSenderAddress(sender, params);
      if (bad) throw new QmqpRefusal('D', `Error: bad sender address syntax: ${bad.reason}`);
      tx.setSender(sender, { smtputf8: !/^[\x00-\x7f]*$/.test(sender) });
      let count = 0;
      while ((await reader.peek()) !== COMMA) {
        if ((await reader.peek()) === undefined)
          throw new NetstringError('format', 'recipient address');
        tx.addRecipient({ address: await address('recipient address') });
        count++;
      }
      await reader.readByte();

      const result = await tx.commit();
      this.#tx = undefined;
      if (result.reply.positive) {
        this.#ctx.log.info(result.queueId, `client=${this.#host}, nrcpt=${count}`);
        await this.#reply('K', result.reply.text);
      } else {
        const status = result.reply.transient || params.softBounce ? 'Z' : 'D';
        await this.#reply(status, result.reply.text);
      }
    } catch (err) {
      await this.#tx?.abort();
      this.#tx = undefined;
      if (err instanceof NetstringError || err instanceof QmqpRefusal) {
        this.#ctx.log.warning(undefined, `${this.#host}: ${err.message}`);
        const status = err instanceof QmqpRefusal ? err.status : 'D';
        await this.#reply(
          params.softBounce ? 'Z' : status,
          `Error: ${err.message.replace(/^Error: /, '')}`,
        );
        return;
      }
      if (err instanceof UnexpectedEndError) return; // the client went away
      await this.#reply('Z', 'Error: internal error, try again later');
      throw err;
    }
  }

  /** Sends the one reply (after qmqpdErrorDelay for failures) and closes. */
  async #reply(status: 'K' | 'Z' | 'D', text: string): Promise<void> {
    if (status !== 'K' && this.#ctx.params.qmqpdErrorDelay > 0) {
      await delay(this.#ctx.clock, this.#ctx.params.qmqpdErrorDelay).done;
    }
    const socket = this.#socket;
    if (socket.destroyed) return;
    // One reply, then the connection is over: whatever the client still sends is dropped.
    socket.resume();
    socket.end(netstring(`${status}${printable(text)}`), () => socket.destroy());
  }
}
