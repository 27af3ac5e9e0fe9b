/**
 * Captured messages in the JSON shapes of Mailpit's API v1 — the message list item
 * (`MessageSummary`), the message (`Message`), its attachments and headers — so that
 * Mailpit clients read the capture server unchanged.
 *
 * Postfix counterpart: none. Field names, nesting and formats follow Mailpit's
 * published API v1 (its Go structs' JSON): `{ Name, Address }` mailboxes, RFC 3339
 * times, attachment checksums, header keys in Go's canonical form sorted by name.
 *
 * Does not: tags (always `[]`), List-Unsubscribe validation (the header is reported,
 * the links found, no errors), text generated from HTML for `Text`.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import type { CapturedAttachment, CapturedMessage } from './captured-message.js';
import type { MailAddress } from './header-mailboxes.js';
import { htmlText } from './mailpit-search.js';

/**
 * A mailbox as Mailpit writes it.
 *
 * @example
 * ```ts
 * const from: MailpitAddress = { Name: 'Ann', Address: 'ann@example.com' };
 * ```
 */
export interface MailpitAddress {
  /** The display name; '' when there is none. */
  readonly Name: string;
  /** The address. */
  readonly Address: string;
}

/**
 * Mailpit's `Attachment`: an attached or inline part.
 *
 * @example
 * ```ts
 * const [pdf]: readonly MailpitAttachment[] = (await mailpit.getMessageSummary()).Attachments;
 * const blob = await mailpit.getMessageAttachment('latest', pdf!.PartID);
 * ```
 */
export interface MailpitAttachment {
  /** The MIME part number, for `/api/v1/message/{ID}/part/{PartID}`. */
  readonly PartID: string;
  /** The file name; '' when the part names none. */
  readonly FileName: string;
  /** The MIME type. */
  readonly ContentType: string;
  /** The Content-ID without angle brackets; '' when there is none. */
  readonly ContentID: string;
  /** Decoded size in bytes. */
  readonly Size: number;
  /** Hex digests of the decoded content. */
  readonly Checksums: {
    /** MD5. */
    readonly MD5: string;
    /** SHA-1. */
    readonly SHA1: string;
    /** SHA-256. */
    readonly SHA256: string;
  };
}

/**
 * The fields Mailpit's list rows and messages share.
 *
 * @example
 * ```ts
 * const { ID, Subject, From }: MailpitHeadline = await mailpit.getMessageSummary();
 * ```
 */
export interface MailpitHeadline {
  /** The message's ID (its queue ID). */
  readonly ID: string;
  /** The Message-ID header without angle brackets. */
  readonly MessageID: string;
  /** The From mailbox (the envelope sender when the header has none). */
  readonly From: MailpitAddress;
  /** The To mailboxes. */
  readonly To: readonly MailpitAddress[];
  /** The Cc mailboxes. */
  readonly Cc: readonly MailpitAddress[];
  /** Blind copies: envelope recipients in neither To nor Cc. */
  readonly Bcc: readonly MailpitAddress[];
  /** The Reply-To mailboxes. */
  readonly ReplyTo: readonly MailpitAddress[];
  /** The subject, decoded. */
  readonly Subject: string;
  /** The SMTP AUTH login it came under; '' when none. */
  readonly Username: string;
  /** Always empty: tags are not kept. */
  readonly Tags: readonly string[];
  /** Size in bytes, as queued. */
  readonly Size: number;
}

/**
 * Mailpit's `MessageSummary`: one row of `GET /api/v1/messages` or `/api/v1/search`.
 *
 * @example
 * ```ts
 * const { messages } = await mailpit.listMessages();
 * const row: MailpitListItem | undefined = messages[0];
 * ```
 */
export interface MailpitListItem extends MailpitHeadline {
  /** Whether the API has shown the message (`GET /api/v1/message/{ID}`) or it was marked read. */
  readonly Read: boolean;
  /** When it was accepted (RFC 3339). */
  readonly Created: string;
  /** How many attachments (inline parts not counted). */
  readonly Attachments: number;
  /** Up to 250 characters of the text. */
  readonly Snippet: string;
}

/**
 * Mailpit's `Message`: what `GET /api/v1/message/{ID}` returns.
 *
 * @example
 * ```ts
 * const message: MailpitMessage = await (await fetch(`${mta.httpUrl}/api/v1/message/latest`)).json();
 * console.log(message.Subject, message.Text);
 * ```
 */
export interface MailpitMessage extends MailpitHeadline {
  /** The envelope sender. */
  readonly ReturnPath: string;
  /** The List-Unsubscribe header and the links in it. */
  readonly ListUnsubscribe: {
    /** The header value. */
    readonly Header: string;
    /** The URLs between angle brackets. */
    readonly Links: readonly string[];
    /** Always '': the links are not validated. */
    readonly Errors: string;
    /** The List-Unsubscribe-Post header value. */
    readonly HeaderPost: string;
  };
  /** The Date header, or when it was accepted (RFC 3339). */
  readonly Date: string;
  /** The text/plain body. */
  readonly Text: string;
  /** The text/html body. */
  readonly HTML: string;
  /** Inline parts (with a Content-ID, not attachments). */
  readonly Inline: readonly MailpitAttachment[];
  /** Attachments. */
  readonly Attachments: readonly MailpitAttachment[];
}

function mailbox(m: MailAddress): MailpitAddress {
  return { Name: m.name, Address: m.address };
}

/** The From mailbox; the envelope sender when the header has none. */
function fromOf(m: CapturedMessage): MailpitAddress {
  return m.from ? mailbox(m.from) : { Name: '', Address: m.envelope.sender };
}

function snippet(m: CapturedMessage): string {
  const text = m.text ?? (m.html ? htmlText(m.html) : '');
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 250 ? `${flat.slice(0, 250)}...` : flat;
}

function attachmentOf(a: CapturedAttachment): MailpitAttachment {
  const digest = (algorithm: string) => createHash(algorithm).update(a.content).digest('hex');
  return {
    PartID: a.partId,
    FileName: a.filename ?? '',
    ContentType: a.contentType,
    ContentID: a.contentId ?? '',
    Size: a.content.length,
    Checksums: { MD5: digest('md5'), SHA1: digest('sha1'), SHA256: digest('sha256') },
  };
}

function headline(m: CapturedMessage): MailpitHeadline {
  return {
    ID: m.queueId,
    MessageID: m.messageId ?? '',
    From: fromOf(m),
    To: m.to.map(mailbox),
    Cc: m.cc.map(mailbox),
    Bcc: m.bcc.map(mailbox),
    ReplyTo: m.replyTo.map(mailbox),
    Subject: m.subject ?? '',
    Username: m.authUser ?? '',
    Tags: [],
    Size: m.raw.length,
  };
}

/** A message as one row of Mailpit's message list. */
export function listItem(m: CapturedMessage, read: boolean): MailpitListItem {
  return {
    ...headline(m),
    Read: read,
    Created: m.deliveredAt.toISOString(),
    Attachments: m.attachments.filter((a) => !a.inline).length,
    Snippet: snippet(m),
  };
}

/** A message as Mailpit's message summary. */
export function messageSummary(m: CapturedMessage): MailpitMessage {
  const unsubscribe = m.headers.get('list-unsubscribe')?.[0] ?? '';
  return {
    ...headline(m),
    ReturnPath: m.envelope.sender,
    ListUnsubscribe: {
      Header: unsubscribe,
      Links: [...unsubscribe.matchAll(/<([^>]*)>/g)].map((x) => x[1]!),
      Errors: '',
      HeaderPost: m.headers.get('list-unsubscribe-post')?.[0] ?? '',
    },
    Date: (m.date ?? m.deliveredAt).toISOString(),
    Text: m.text ?? '',
    HTML: m.html ?? '',
    Inline: m.attachments.filter((a) => a.inline).map(attachmentOf),
    Attachments: m.attachments.filter((a) => !a.inline).map(attachmentOf),
  };
}

/** Go's canonical MIME header key (`message-id` → `Message-Id`); other keys as they are. */
function canonicalKey(name: string): string {
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) return name;
  return name
    .toLowerCase()
    .replace(/(^|-)([a-z])/g, (_s, dash: string, c: string) => dash + c.toUpperCase());
}

/** The headers as Mailpit returns them: canonical keys, sorted, each with its raw values. */
export function messageHeaders(m: CapturedMessage): Record<string, string[]> {
  const map = new Map<string, string[]>();
  for (const h of m.rawHeaders) {
    const key = canonicalKey(h.name);
    const list = map.get(key) ?? [];
    list.push(h.value);
    map.set(key, list);
  }
  return Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
