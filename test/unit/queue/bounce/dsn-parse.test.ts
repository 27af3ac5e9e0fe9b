import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../../src/mta/main-parameters.js';
import { type DsnKind, dsnMessage } from '../../../../src/queue/bounce/dsn-message.js';
import type { MessageRecord, StoredRecipient } from '../../../../src/queue/types.js';

const { Splitter } = createRequire(import.meta.url)('mailsplit') as {
  Splitter: new () => Transform;
};

const T0 = Date.parse('2026-01-05T10:00:00Z');
const ORIGINAL =
  'From: a@example.org\r\nTo: b@example.net\r\nSubject: hello\r\nMessage-Id: <x@example.org>\r\n\r\nbody line\r\n';

/** Python's email package: parses stdin and prints what it found as JSON. */
const PY = `
import sys, json, email
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.compat32)
out = {"type": m.get_content_type(), "report": m.get_param("report-type"), "multipart": m.is_multipart(),
       "defects": [type(d).__name__ for d in m.defects], "parts": []}
for p in m.get_payload():
    e = {"type": p.get_content_type(), "defects": [type(d).__name__ for d in p.defects]}
    if p.get_content_type() == "message/delivery-status":
        e["groups"] = [dict(g.items()) for g in p.get_payload()]
    elif p.get_content_type() in ("message/rfc822",):
        e["subject"] = p.get_payload()[0]["Subject"]
    else:
        e["text"] = p.get_payload(decode=True).decode("utf-8", "replace")
    out["parts"].append(e)
print(json.dumps(out))
`;

interface PyParsed {
  type: string;
  report: string;
  multipart: boolean;
  defects: string[];
  parts: {
    type: string;
    defects: string[];
    groups?: Record<string, string>[];
    subject?: string;
    text?: string;
  }[];
}

function record(recipients: StoredRecipient[], extra: Partial<MessageRecord> = {}): MessageRecord {
  return {
    formatVersion: 1,
    queueId: '8DynAAAAAATest0',
    sender: 'sender@example.org',
    recipients,
    envid: 'ENV-42',
    bodyType: '7BIT',
    smtputf8: false,
    eightBit: false,
    size: Buffer.byteLength(ORIGINAL),
    headerSize: ORIGINAL.indexOf('\r\n\r\n') + 4,
    arrivalTime: T0,
    warnTime: 0,
    source: { component: 'smtpd', protocol: 'ESMTP' },
    ...extra,
  };
}

const failed: StoredRecipient = {
  id: 1,
  address: 'nobody@example.net',
  originalAddress: 'alias@example.net',
  orcpt: 'rfc822;Nobody@Example.NET',
  state: 'bounced',
  last: {
    status: 'bounced',
    code: 550,
    enhanced: '5.1.1',
    text: 'user unknown',
    remoteMta: 'dns; mx.example.net',
    relay: 'mx.example.net[192.0.2.1]:25',
    time: T0 + 1000,
  },
};
const delayed: StoredRecipient = {
  id: 2,
  address: 'slow@example.com',
  originalAddress: 'slow@example.com',
  state: 'pending',
  last: {
    status: 'deferred',
    code: 451,
    enhanced: '4.4.1',
    text: 'connect to example.com: Connection refused',
    time: T0 + 2000,
  },
};
const delivered: StoredRecipient = {
  id: 3,
  address: 'ok@example.com',
  originalAddress: 'ok@example.com',
  notify: ['SUCCESS'],
  state: 'sent',
  last: {
    status: 'sent',
    code: 250,
    enhanced: '2.0.0',
    text: 'queued as 123',
    action: 'relayed',
    remoteMta: 'dns; mx.example.com',
    time: T0 + 3000,
  },
};

async function build(kind: DsnKind, rcpts: StoredRecipient[]): Promise<Buffer> {
  const params = resolveParameters({ myhostname: 'mx.example.test' });
  const chunks: Buffer[] = [];
  for await (const c of dsnMessage({
    kind,
    record: record(rcpts),
    recipients: rcpts,
    to: 'sender@example.org',
    queueId: '8DynBBBBBBTest0',
    params,
    now: T0 + 3600_000,
    openContent: () => Readable.from([Buffer.from(ORIGINAL)]),
  }))
    chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function python(message: Buffer): PyParsed {
  return JSON.parse(execFileSync('python3', ['-c', PY], { input: message }).toString()) as PyParsed;
}

async function mailsplitTypes(message: Buffer): Promise<string[]> {
  const types: string[] = [];
  const splitter = new Splitter();
  const done = (async () => {
    for await (const item of splitter as AsyncIterable<{
      type: string;
      contentType?: string | false;
    }>)
      if (item.type === 'node') types.push(item.contentType || '');
  })();
  await pipeline(Readable.from([message]), splitter as unknown as NodeJS.WritableStream);
  await done;
  return types;
}

describe('DSN messages parse as RFC 3464 reports (Python email, mailsplit)', () => {
  it('failed: Action failed, Status 5.1.1, ORCPT, Remote-MTA, smtp Diagnostic-Code, original attached', async () => {
    const msg = await build('failure', [failed]);
    const p = python(msg);
    expect(p).toMatchObject({
      type: 'multipart/report',
      report: 'delivery-status',
      multipart: true,
      defects: [],
    });
    expect(p.parts.map((x) => x.type)).toEqual([
      'text/plain',
      'message/delivery-status',
      'message/rfc822',
    ]);
    const [head, rcpt] = p.parts[1]!.groups!;
    expect(head).toMatchObject({
      'Reporting-MTA': 'dns; mx.example.test',
      'Original-Envelope-Id': 'ENV-42',
      'X-Postern-Queue-ID': '8DynAAAAAATest0',
      'X-Postern-Sender': 'rfc822; sender@example.org',
      'Arrival-Date': 'Mon, 5 Jan 2026 10:00:00 +0000 (UTC)',
    });
    expect(rcpt).toEqual({
      'Final-Recipient': 'rfc822; nobody@example.net',
      'Original-Recipient': 'rfc822;Nobody@Example.NET',
      Action: 'failed',
      Status: '5.1.1',
      'Remote-MTA': 'dns; mx.example.net',
      'Diagnostic-Code': 'smtp; 550 5.1.1 user unknown',
    });
    expect(p.parts[2]!.subject).toBe('hello');
    expect(p.parts[0]!.text).toContain('This is the mail system at host mx.example.test.');
    expect(p.parts[0]!.text).toContain('<nobody@example.net> (expanded from <alias@example.net>)');
    expect(await mailsplitTypes(msg)).toEqual([
      'multipart/report',
      'text/plain',
      'message/delivery-status',
      'message/rfc822',
    ]);
  });

  it('delayed: Action delayed, X-Postern diagnostic, Will-Retry-Until, headers only', async () => {
    const msg = await build('delay', [delayed]);
    const p = python(msg);
    expect(p.defects).toEqual([]);
    expect(p.parts.map((x) => x.type)).toEqual([
      'text/plain',
      'message/delivery-status',
      'text/rfc822-headers',
    ]);
    const rcpt = p.parts[1]!.groups![1]!;
    expect(rcpt).toEqual({
      'Final-Recipient': 'rfc822; slow@example.com',
      'Original-Recipient': 'rfc822; slow@example.com',
      Action: 'delayed',
      Status: '4.4.1',
      'Diagnostic-Code': 'X-Postern; connect to example.com: Connection refused',
      'Will-Retry-Until': 'Sat, 10 Jan 2026 10:00:00 +0000 (UTC)',
    });
    expect(p.parts[2]!.text).toContain('Subject: hello');
    expect(p.parts[2]!.text).not.toContain('body line');
    expect(await mailsplitTypes(msg)).toContain('text/rfc822-headers');
  });

  it('delivered: Action relayed as the agent said, Status 2.0.0', async () => {
    const msg = await build('success', [delivered]);
    const p = python(msg);
    expect(p.defects).toEqual([]);
    const rcpt = p.parts[1]!.groups![1]!;
    expect(rcpt).toMatchObject({
      Action: 'relayed',
      Status: '2.0.0',
      'Remote-MTA': 'dns; mx.example.com',
    });
    expect(p.parts[0]!.text).toContain('NOTIFY=SUCCESS');
    expect(await mailsplitTypes(msg)).toEqual([
      'multipart/report',
      'text/plain',
      'message/delivery-status',
      'text/rfc822-headers',
    ]);
  });
});
