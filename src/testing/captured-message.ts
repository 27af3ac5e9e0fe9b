/**
 * CapturedMessage: an accepted message as a test wants to look at it — envelope,
 * decoded headers, addresses as `{ name, address }`, subject, text and HTML bodies,
 * attachments (with their MIME part numbers) and the raw bytes.
 *
 * Parsing uses mailsplit for the MIME structure (transfer encodings decoded) and
 * libmime for encoded words. It is for tests: the message is held in memory.
 *
 * @module
 */

import libmime from 'libmime';
import { type MimeNode, Splitter } from 'mailsplit';
import type { Address, QueueId } from '../types.js';
import { type MailAddress, parseMailboxes } from './header-mailboxes.js';

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
  /** The MIME part number (`2`, `1.2`), as IMAP and Mailpit's `PartID` name it. */
  readonly partId: string;
  /** The Content-ID without its angle brackets, if any (what `cid:` URLs name). */
  readonly contentId: string | undefined;
  /** Whether it is shown inside the message (an inline part with a Content-ID) rather than attached. */
  readonly inline: boolean;
}

/**
 * A message captured by the test MTA, as a test wants to look at it: envelope, header
 * fields, addresses as `{ name, address }`, text, HTML, attachments and the raw bytes.
 *
 * @example
 * ```ts
 * const msg: CapturedMessage = await mta.waitForMessage('bob@example.com');
 * expect(msg.envelope.sender).toBe('alice@example.com');
 * expect(msg.from).toEqual({ name: 'Alice', address: 'alice@example.com' });
 * expect(msg.headers.get('x-mailer')?.[0]).toBe('my-app');
 * expect(msg.text).toContain('Hello');
 * ```
 */
export interface CapturedMessage {
  /** The queue ID the message got when it was accepted; also its ID in the capture server's API. */
  readonly queueId: QueueId;
  /** The envelope of the accepted transaction: the sender and every recipient. */
  readonly envelope: { readonly sender: Address; readonly recipients: readonly Address[] };
  /** Header values by lower-case name, unfolded, encoded words decoded, in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  /** The header fields as they are in the message (names as written, values unfolded, not decoded), in order. */
  readonly rawHeaders: readonly { readonly name: string; readonly value: string }[];
  /** The Subject header, decoded. */
  readonly subject: string | undefined;
  /** The From header's (first) mailbox. */
  readonly from: MailAddress | undefined;
  /** The mailboxes in To. */
  readonly to: readonly MailAddress[];
  /** The mailboxes in Cc. */
  readonly cc: readonly MailAddress[];
  /** Blind copies: envelope recipients in neither To nor Cc, and any Bcc header's mailboxes. */
  readonly bcc: readonly MailAddress[];
  /** The mailboxes in Reply-To. */
  readonly replyTo: readonly MailAddress[];
  /** The Message-ID without its angle brackets, if any. */
  readonly messageId: string | undefined;
  /** The Date header, if it parses. */
  readonly date: Date | undefined;
  /** The text/plain body, decoded, LF line ends. */
  readonly text: string | undefined;
  /** The text/html body, decoded. */
  readonly html: string | undefined;
  /** Every other part: attachments and inline parts. */
  readonly attachments: readonly CapturedAttachment[];
  /** The message as queued (CRLF line ends, with the headers Postern added). */
  readonly raw: Buffer;
  /** The SMTP AUTH login it was sent under, if any. */
  readonly authUser: string | undefined;
  /** When it was accepted. */
  readonly deliveredAt: Date;
}

/**
 * What parseCapturedMessage() is told besides the bytes: the envelope and when.
 *
 * @example
 * ```ts
 * const meta: CaptureMeta = { queueId: 'Q1', sender: 'a@example.com', recipients: ['b@example.com'], deliveredAt: new Date() };
 * ```
 */
export interface CaptureMeta {
  /** The queue ID. */
  readonly queueId: QueueId;
  /** The envelope sender ('' for the null sender). */
  readonly sender: Address;
  /** The envelope recipients. */
  readonly recipients: readonly Address[];
  /** When it was accepted. */
  readonly deliveredAt: Date;
  /** The SMTP AUTH login, if any. */
  readonly authUser?: string | undefined;
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
  meta: CaptureMeta,
): Promise<CapturedMessage> {
  const headers = new Map<string, string[]>();
  const rawHeaders: { name: string; value: string }[] = [];
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
            const colon = line.indexOf(':');
            rawHeaders.push({
              name: (colon > 0 ? line.slice(0, colon) : key).trim(),
              value: String(decoded.value ?? ''),
            });
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
      const cid = node.headers.getFirst('content-id').trim().replace(/^<|>$/g, '');
      attachments.push({
        filename: node.filename ? libmime.decodeWords(node.filename) : undefined,
        contentType: type,
        content,
        partId: partIdOf(node),
        contentId: cid || undefined,
        inline: cid !== '' && node.disposition !== 'attachment',
      });
    }
  }
  const first = (name: string) => headers.get(name)?.[0];
  const rawFirst = (name: string) => rawHeaders.find((h) => h.name.toLowerCase() === name)?.value;
  const to = parseMailboxes(rawFirst('to'));
  const cc = parseMailboxes(rawFirst('cc'));
  const date = rawFirst('date') === undefined ? undefined : new Date(rawFirst('date')!);
  return {
    queueId: meta.queueId,
    envelope: { sender: meta.sender, recipients: [...meta.recipients] },
    headers,
    rawHeaders,
    subject: first('subject'),
    from: parseMailboxes(rawFirst('from'))[0],
    to,
    cc,
    bcc: blindCopies(parseMailboxes(rawFirst('bcc')), meta.recipients, [...to, ...cc]),
    replyTo: parseMailboxes(rawFirst('reply-to')),
    messageId: rawFirst('message-id')?.trim().replace(/^<|>$/g, '') || undefined,
    date: date && !Number.isNaN(date.getTime()) ? date : undefined,
    text,
    html,
    attachments,
    raw,
    authUser: meta.authUser,
    deliveredAt: meta.deliveredAt,
  };
}

/** The MIME part number of a node: mailsplit's IMAP-style path (`1.2`); `1` for a single part. */
function partIdOf(node: MimeNode): string {
  const nr = (node as unknown as { partNr?: (string | number)[] }).partNr ?? [];
  return nr.filter((n) => typeof n === 'number' || /^\d+$/.test(n)).join('.') || '1';
}

/** Bcc header mailboxes, then envelope recipients that no To or Cc mailbox names. */
function blindCopies(
  header: readonly MailAddress[],
  recipients: readonly Address[],
  visible: readonly MailAddress[],
): MailAddress[] {
  const seen = new Set(visible.map((m) => m.address.toLowerCase()));
  const out: MailAddress[] = [];
  for (const m of [...header, ...recipients.map((address) => ({ name: '', address }))]) {
    const key = m.address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(m);
  }
  return out;
}
