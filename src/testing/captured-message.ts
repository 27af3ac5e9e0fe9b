/**
 * CapturedMessage: a delivered message as a test wants to look at it — envelope,
 * decoded headers, subject, text and HTML bodies, attachments and the raw bytes.
 *
 * Parsing uses mailsplit for the MIME structure (transfer encodings decoded) and
 * libmime for encoded words. It is for tests: the message is held in memory.
 *
 * @module
 */

import libmime from 'libmime';
import { type MimeNode, Splitter } from 'mailsplit';
import type { Address, QueueId } from '../types.js';

/**
 * One attachment (or inline part that is not the text or HTML body).
 *
 * @example
 * ```ts
 * const [pdf]: readonly CapturedAttachment[] = (await mta.waitForMessage()).attachments;
 * expect(pdf?.filename).toBe('invoice.pdf');
 * ```
 */
export interface CapturedAttachment {
  /** The file name from Content-Disposition or Content-Type, if any. */
  readonly filename: string | undefined;
  /** The MIME type (`application/pdf`). */
  readonly contentType: string;
  /** The decoded bytes. */
  readonly content: Buffer;
}

/**
 * A captured delivery as an object: envelope, decoded headers, text, HTML, attachments and
 * the raw bytes.
 *
 * @example
 * ```ts
 * const msg: CapturedMessage = await mta.waitForMessage('bob@example.com');
 * expect(msg.envelope.sender).toBe('alice@example.com');
 * expect(msg.headers.get('x-mailer')?.[0]).toBe('my-app');
 * expect(msg.text).toContain('Hello');
 * ```
 */
export interface CapturedMessage {
  /** The queue ID the message had. */
  readonly queueId: QueueId;
  /** The envelope as delivered (the recipients are those of this delivery). */
  readonly envelope: { readonly sender: Address; readonly recipients: readonly Address[] };
  /** Header values by lower-case name, encoded words decoded, in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  /** The Subject header, decoded. */
  readonly subject: string | undefined;
  /** The From header, decoded. */
  readonly from: string | undefined;
  /** The addresses in To. */
  readonly to: readonly string[];
  /** The text/plain body, decoded, LF line ends. */
  readonly text: string | undefined;
  /** The text/html body, decoded. */
  readonly html: string | undefined;
  /** Every other part: attachments and inline parts. */
  readonly attachments: readonly CapturedAttachment[];
  /** The message as stored (CRLF line ends). */
  readonly raw: Buffer;
  /** When the capture agent received it. */
  readonly deliveredAt: Date;
}

/** A text part as a string: its charset decoded, LF line ends, without the last line end. */
function decodeText(buf: Buffer, charset: string | false): string {
  let text: string;
  try {
    text = new TextDecoder(charset || 'utf-8').decode(buf);
  } catch {
    text = buf.toString('latin1');
  }
  return text.replace(/\r\n/g, '\n').replace(/\n$/, '');
}

/** Addresses out of an address-list header value (`"A" <a@x>, b@y`). */
function addressesOf(value: string | undefined): string[] {
  if (!value) return [];
  const out: string[] = [];
  for (const part of value.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
    const angle = /<([^>]*)>/.exec(part);
    const address = (angle ? angle[1]! : part).trim();
    if (address) out.push(address);
  }
  return out;
}

/**
 * Parses `raw` into a CapturedMessage.
 *
 * @example
 * ```ts
 * const raw = Buffer.from('From: a@example.com\r\nSubject: Hi\r\n\r\nHello\r\n');
 * const msg = await parseCapturedMessage(raw, {
 *   queueId: 'Q1',
 *   sender: 'a@example.com',
 *   recipients: ['b@example.com'],
 *   deliveredAt: new Date(),
 * });
 * msg.subject; // 'Hi'
 * ```
 */
export async function parseCapturedMessage(
  raw: Buffer,
  meta: { queueId: QueueId; sender: Address; recipients: readonly Address[]; deliveredAt: Date },
): Promise<CapturedMessage> {
  const headers = new Map<string, string[]>();
  const parts: { node: MimeNode; chunks: Buffer[]; done: Promise<void> }[] = [];
  let current: (typeof parts)[number] | undefined;
  let decoder: ReturnType<MimeNode['getDecoder']> | undefined;
  const splitter = new Splitter();

  await new Promise<void>((resolve, reject) => {
    splitter.on('data', (data: { type: string; value?: Buffer } & Partial<MimeNode>) => {
      if (data.type === 'node') {
        decoder?.end();
        decoder = undefined;
        const node = data as unknown as MimeNode & {
          headers: { getList(): { key: string; line: string }[] };
        };
        if (node.root) {
          for (const { key, line } of node.headers.getList()) {
            const decoded = libmime.decodeHeader(line);
            const value = libmime.decodeWords(String(decoded.value ?? '')).trim();
            const list = headers.get(key) ?? [];
            list.push(value);
            headers.set(key, list);
          }
        }
        if (node.multipart) return;
        const d = node.getDecoder();
        const chunks: Buffer[] = [];
        d.on('data', (c: Buffer) => chunks.push(c));
        current = { node, chunks, done: new Promise((r) => d.once('end', () => r())) };
        parts.push(current);
        decoder = d;
      } else if (data.type === 'body' && decoder && data.value) {
        decoder.write(data.value);
      }
    });
    splitter.on('end', () => {
      decoder?.end();
      resolve();
    });
    splitter.on('error', reject);
    splitter.end(raw);
  });
  await Promise.all(parts.map((p) => p.done));

  let text: string | undefined;
  let html: string | undefined;
  const attachments: CapturedAttachment[] = [];
  for (const { node, chunks } of parts) {
    const content = Buffer.concat(chunks);
    const type = node.contentType || 'text/plain';
    const isAttachment = node.disposition === 'attachment' || node.filename !== false;
    if (!isAttachment && type === 'text/plain' && text === undefined)
      text = decodeText(content, node.charset);
    else if (!isAttachment && type === 'text/html' && html === undefined)
      html = decodeText(content, node.charset);
    else {
      attachments.push({
        filename: node.filename ? libmime.decodeWords(node.filename) : undefined,
        contentType: type,
        content,
      });
    }
  }
  const first = (name: string) => headers.get(name)?.[0];
  return {
    queueId: meta.queueId,
    envelope: { sender: meta.sender, recipients: [...meta.recipients] },
    headers,
    subject: first('subject'),
    from: first('from'),
    to: addressesOf(first('to')),
    text,
    html,
    attachments,
    raw,
    deliveredAt: meta.deliveredAt,
  };
}
