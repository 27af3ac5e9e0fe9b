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
  readonly Name: string;
  readonly Address: string;
}

/** Mailpit's `Attachment`. */
export interface MailpitAttachment {
  readonly PartID: string;
  readonly FileName: string;
  readonly ContentType: string;
  readonly ContentID: string;
  readonly Size: number;
  readonly Checksums: { readonly MD5: string; readonly SHA1: string; readonly SHA256: string };
}

/** Mailpit's `MessageSummary`: one row of a message list. */
export interface MailpitListItem {
  readonly ID: string;
  readonly MessageID: string;
  readonly Read: boolean;
  readonly From: MailpitAddress;
  readonly To: readonly MailpitAddress[];
  readonly Cc: readonly MailpitAddress[];
  readonly Bcc: readonly MailpitAddress[];
  readonly ReplyTo: readonly MailpitAddress[];
  readonly Subject: string;
  readonly Created: string;
  readonly Username: string;
  readonly Tags: readonly string[];
  readonly Size: number;
  readonly Attachments: number;
  readonly Snippet: string;
}

/** Mailpit's `Message`: what `GET /api/v1/message/{ID}` returns. */
export interface MailpitMessage {
  readonly ID: string;
  readonly MessageID: string;
  readonly From: MailpitAddress;
  readonly To: readonly MailpitAddress[];
  readonly Cc: readonly MailpitAddress[];
  readonly Bcc: readonly MailpitAddress[];
  readonly ReplyTo: readonly MailpitAddress[];
  readonly ReturnPath: string;
  readonly Subject: string;
  readonly ListUnsubscribe: {
    readonly Header: string;
    readonly Links: readonly string[];
    readonly Errors: string;
    readonly HeaderPost: string;
  };
  readonly Date: string;
  readonly Tags: readonly string[];
  readonly Username: string;
  readonly Text: string;
  readonly HTML: string;
  readonly Size: number;
  readonly Inline: readonly MailpitAttachment[];
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

/** A message as one row of Mailpit's message list. */
export function listItem(m: CapturedMessage, read: boolean): MailpitListItem {
  return {
    ID: m.queueId,
    MessageID: m.messageId ?? '',
    Read: read,
    From: fromOf(m),
    To: m.to.map(mailbox),
    Cc: m.cc.map(mailbox),
    Bcc: m.bcc.map(mailbox),
    ReplyTo: m.replyTo.map(mailbox),
    Subject: m.subject ?? '',
    Created: m.deliveredAt.toISOString(),
    Username: m.authUser ?? '',
    Tags: [],
    Size: m.raw.length,
    Attachments: m.attachments.filter((a) => !a.inline).length,
    Snippet: snippet(m),
  };
}

/** A message as Mailpit's message summary. */
export function messageSummary(m: CapturedMessage): MailpitMessage {
  const unsubscribe = m.headers.get('list-unsubscribe')?.[0] ?? '';
  return {
    ID: m.queueId,
    MessageID: m.messageId ?? '',
    From: fromOf(m),
    To: m.to.map(mailbox),
    Cc: m.cc.map(mailbox),
    Bcc: m.bcc.map(mailbox),
    ReplyTo: m.replyTo.map(mailbox),
    ReturnPath: m.envelope.sender,
    Subject: m.subject ?? '',
    ListUnsubscribe: {
      Header: unsubscribe,
      Links: [...unsubscribe.matchAll(/<([^>]*)>/g)].map((x) => x[1]!),
      Errors: '',
      HeaderPost: m.headers.get('list-unsubscribe-post')?.[0] ?? '',
    },
    Date: (m.date ?? m.deliveredAt).toISOString(),
    Tags: [],
    Username: m.authUser ?? '',
    Text: m.text ?? '',
    HTML: m.html ?? '',
    Size: m.raw.length,
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
