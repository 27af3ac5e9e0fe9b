import { createRequire } from 'node:module';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Cleanup } from '../../../../src/cleanup/cleanup.js';
import { ManualClock } from '../../../../src/clock.js';
import { Logger } from '../../../../src/log.js';
import { resolveParameters } from '../../../../src/mta/main-parameters.js';
import { Bounce, wantsNotice } from '../../../../src/queue/bounce/bounce.js';
import { MemoryQueueStore } from '../../../../src/queue/stores/memory-store.js';
import type {
  MessageRecord,
  QueueStore,
  StoredOutcome,
  StoredRecipient,
} from '../../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../../src/queue-id.js';
import { Rewriter } from '../../../../src/rewrite/rewriter.js';
import type { LogEvent, NewRecipient, SenderParams } from '../../../../src/types.js';

interface SplitNode {
  type: 'node' | 'data' | 'body';
  contentType?: string | false;
  headers?: { getFirst(key: string): string; get(key: string): string[] };
  value?: Buffer;
}
const { Splitter } = createRequire(import.meta.url)('mailsplit') as {
  Splitter: new () => Transform;
};

interface Part {
  contentType: string;
  headers: { getFirst(key: string): string; get(key: string): string[] };
  body: string;
}

/** Parses a message into its MIME nodes with their bodies. */
async function mimeParts(message: Buffer): Promise<Part[]> {
  const parts: Part[] = [];
  const splitter = new Splitter();
  const done = (async () => {
    for await (const item of splitter as AsyncIterable<SplitNode>) {
      if (item.type === 'node')
        parts.push({ contentType: item.contentType || '', headers: item.headers!, body: '' });
      else if (item.type === 'body') parts[parts.length - 1]!.body += item.value!.toString('utf8');
    }
  })();
  await pipeline(Readable.from([message]), splitter as unknown as NodeJS.WritableStream);
  await done;
  return parts;
}

/** RFC 3464 fields of a delivery-status body: the per-message group, then one per recipient. */
function statusGroups(body: string): Record<string, string>[] {
  return body
    .split(/\r?\n\r?\n/)
    .map((g) => g.trim())
    .filter(Boolean)
    .map((g) => {
      const fields: Record<string, string> = {};
      for (const l of g.split(/\r?\n/)) {
        const i = l.indexOf(':');
        fields[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      return fields;
    });
}

const T0 = Date.parse('2026-11-29T12:00:00Z');
const ORIGINAL =
  'Subject: the original\r\nFrom: alice@example.org\r\nMessage-ID: <orig@example.org>\r\n\r\nOriginal body line.\r\n';

async function setup(overrides: Record<string, unknown> = {}) {
  const params = resolveParameters({
    myhostname: 'mx.example.com',
    mydomain: 'example.com',
    myorigin: 'example.com',
    ...overrides,
  });
  const store: QueueStore = new MemoryQueueStore();
  await store.open();
  const clock = new ManualClock(T0);
  const logs: LogEvent[] = [];
  const logger = new Logger([(e) => logs.push(e)], () => clock.now());
  const cleanup = new Cleanup({
    params,
    store,
    rewriter: new Rewriter({ params }),
    queueIds: new QueueIdGenerator('TEST0'),
    clock,
    logger,
  });
  const bounce = new Bounce({ submission: cleanup, store, params, clock, logger });

  /** Queues an original message and claims it, as the QueueManager would hold it. */
  async function original(
    sender: string,
    recipients: NewRecipient[],
    content = ORIGINAL,
    sp: SenderParams = {},
  ): Promise<MessageRecord> {
    const tx = await cleanup.open({
      component: 'smtpd',
      protocol: 'ESMTP',
      client: { address: '192.0.2.1', name: 'c.example.net' },
      helo: 'c',
    });
    tx.setSender(sender, sp);
    for (const r of recipients) tx.addRecipient(r);
    await pipeline(Readable.from([Buffer.from(content)]), tx.content);
    const result = await tx.commit();
    expect(result.reply.code).toBe(250);
    const [claimed] = await store.claim({
      owner: 'qmgr',
      limit: 1,
      now: clock.now(),
      leaseMs: 60_000,
    });
    return claimed!.record;
  }

  /** The notice just queued: envelope and raw content. */
  async function notice(): Promise<{ record: MessageRecord; raw: Buffer }> {
    const [claimed] = await store.claim({
      owner: 'reader',
      limit: 1,
      now: clock.now(),
      leaseMs: 60_000,
    });
    const chunks: Buffer[] = [];
    for await (const c of store.openContent(claimed!.record.queueId)) chunks.push(c as Buffer);
    return { record: claimed!.record, raw: Buffer.concat(chunks) };
  }

  return { params, store, clock, logs, bounce, original, notice };
}

function failed(
  r: StoredRecipient | MessageRecord['recipients'][number],
  last: Partial<StoredOutcome> = {},
): StoredRecipient {
  return {
    ...r,
    state: 'bounced',
    last: {
      status: 'bounced',
      code: 550,
      enhanced: '5.1.1',
      text: 'user unknown',
      time: T0,
      relay: 'local',
      ...last,
    },
  };
}

describe('Bounce: failure notices', () => {
  it('sends an RFC 3464 report that parses back, with the original attached', async () => {
    const s = await setup();
    const rec = await s.original('alice@example.org', [
      {
        address: 'bob@example.net',
        originalAddress: 'Bob@Example.NET',
        orcpt: 'rfc822;Bob@Example.NET',
      },
      { address: 'carol@example.net' },
    ]);
    const bob = failed(rec.recipients[0]!, {
      remoteMta: 'dns; mx.example.net',
      text: 'No such user here',
      relay: 'mx.example.net[192.0.2.9]:25',
    });
    const carol = failed(rec.recipients[1]!, {
      code: 451,
      enhanced: '4.4.7',
      text: 'message expired',
    });
    const id = await s.bounce.notify(rec, [bob, carol], 'failure');
    expect(id).toBeDefined();
    expect(
      s.logs.some(
        (l) =>
          l.component === 'bounce' &&
          l.queueId === rec.queueId &&
          l.text === `sender non-delivery notification: ${id}`,
      ),
    ).toBe(true);

    const { record, raw } = await s.notice();
    expect(record.queueId).toBe(id);
    expect(record.sender).toBe('');
    expect(record.recipients.map((r) => r.address)).toEqual(['alice@example.org']);
    expect(record.source).toMatchObject({ component: 'bounce', internal: true });
    // Internal mail: no Received header of its own.
    expect(raw.toString().startsWith('From: Mail Delivery System')).toBe(true);

    const parts = await mimeParts(raw);
    const top = parts[0]!;
    expect(top.contentType).toBe('multipart/report');
    expect(top.headers.getFirst('from')).toBe('Mail Delivery System <MAILER-DAEMON@example.com>');
    expect(top.headers.getFirst('subject')).toBe('Undelivered Mail Returned to Sender');
    expect(top.headers.getFirst('to')).toBe('alice@example.org');
    expect(top.headers.getFirst('auto-submitted')).toBe('auto-replied');
    expect(top.headers.getFirst('mime-version')).toBe('1.0');
    expect(top.headers.getFirst('message-id')).toBe(`<20261129120000.${id}@mx.example.com>`);
    expect(top.headers.getFirst('date')).toBe('Sun, 29 Nov 2026 12:00:00 +0000 (UTC)');
    const ctype = top.headers.getFirst('content-type');
    expect(ctype).toContain('report-type=delivery-status');
    expect(ctype).toContain(`boundary="${rec.queueId}.${T0 / 1000}/mx.example.com"`);

    const [text, report, attached] = parts.slice(1);
    expect(text!.contentType).toBe('text/plain');
    expect(text!.headers.getFirst('content-description')).toBe('Notification');
    expect(text!.body).toContain('This is the mail system at host mx.example.com.');
    expect(text!.body).toContain(
      '<bob@example.net> (expanded from <Bob@Example.NET>): host mx.example.net said: 550 5.1.1 No such user here',
    );
    expect(text!.body).toContain('<carol@example.net>: message expired');

    expect(report!.contentType).toBe('message/delivery-status');
    const groups = statusGroups(report!.body);
    expect(groups[0]).toEqual({
      'reporting-mta': 'dns; mx.example.com',
      'x-postern-queue-id': rec.queueId,
      'x-postern-sender': 'rfc822; alice@example.org',
      'arrival-date': 'Sun, 29 Nov 2026 12:00:00 +0000 (UTC)',
    });
    expect(groups[1]).toEqual({
      'final-recipient': 'rfc822; bob@example.net',
      'original-recipient': 'rfc822;Bob@Example.NET',
      action: 'failed',
      status: '5.1.1',
      'remote-mta': 'dns; mx.example.net',
      'diagnostic-code': 'smtp; 550 5.1.1 No such user here',
    });
    expect(groups[2]).toEqual({
      'final-recipient': 'rfc822; carol@example.net',
      'original-recipient': 'rfc822; carol@example.net',
      action: 'failed',
      status: '4.4.7',
      'diagnostic-code': 'X-Postern; message expired',
    });

    expect(attached!.contentType).toBe('message/rfc822');
    expect(attached!.headers.getFirst('content-description')).toBe('Undelivered Message');
    const [embedded] = await mimeParts(Buffer.from(attached!.body));
    expect(embedded!.headers.getFirst('subject')).toBe('the original');
    expect(embedded!.headers.getFirst('return-path')).toBe('<alice@example.org>');
    expect(embedded!.headers.get('received')).toHaveLength(1);
    expect(embedded!.body).toContain('Original body line.');
  });

  it('attaches headers only for RET=HDRS and for messages over bounceSizeLimit', async () => {
    for (const [overrides, sp, content] of [
      [{}, { ret: 'HDRS' }, ORIGINAL],
      [{ bounceSizeLimit: 200 }, {}, `${ORIGINAL}${'padding line\r\n'.repeat(50)}`],
    ] as const) {
      const s = await setup(overrides);
      const rec = await s.original(
        'alice@example.org',
        [{ address: 'bob@example.net' }],
        content,
        sp,
      );
      await s.bounce.notify(rec, [failed(rec.recipients[0]!)], 'failure');
      const { raw } = await s.notice();
      const parts = await mimeParts(raw);
      const last = parts[parts.length - 1]!;
      expect(last.contentType).toBe('text/rfc822-headers');
      expect(last.headers.getFirst('content-description')).toBe('Undelivered Message Headers');
      expect(last.body).toContain('Subject: the original');
      expect(last.body).not.toContain('Original body line.');
      expect(
        raw
          .toString()
          .trimEnd()
          .endsWith(`--${rec.queueId}.${T0 / 1000}/mx.example.com--`),
      ).toBe(true);
    }
  });

  it('marks 8-bit notices and submits them as 8BITMIME', async () => {
    const s = await setup();
    const rec = await s.original(
      'alice@example.org',
      [{ address: 'bob@example.net' }],
      'Subject: x\r\n\r\ncaf\u00e9\r\n',
      { bodyType: '8BITMIME' },
    );
    await s.bounce.notify(rec, [failed(rec.recipients[0]!)], 'failure');
    const { record, raw } = await s.notice();
    expect(record.bodyType).toBe('8BITMIME');
    expect(raw.toString()).toContain('Content-Transfer-Encoding: 8bit');
    expect(raw.toString('utf8')).toContain('caf\u00e9');
  });

  it('says so when the original cannot be read', async () => {
    const s = await setup();
    const rec = await s.original('alice@example.org', [{ address: 'bob@example.net' }]);
    const gone: MessageRecord = { ...rec, queueId: '0000000000GONE0' };
    await s.bounce.notify(gone, [failed(rec.recipients[0]!)], 'failure');
    const { raw } = await s.notice();
    expect(raw.toString()).toContain('--- Undelivered message unavailable ---');
    const parts = await mimeParts(raw);
    expect(parts.map((p) => p.contentType)).toEqual([
      'multipart/report',
      'text/plain',
      'message/delivery-status',
      'text/plain',
    ]);
  });
});

describe('Bounce: who gets a notice', () => {
  it('honours NOTIFY', async () => {
    expect(wantsNotice(undefined, 'failure')).toBe(true);
    expect(wantsNotice(undefined, 'delay')).toBe(true);
    expect(wantsNotice(undefined, 'success')).toBe(false);
    expect(wantsNotice(['NEVER'], 'failure')).toBe(false);
    expect(wantsNotice(['SUCCESS'], 'failure')).toBe(false);
    expect(wantsNotice(['SUCCESS', 'FAILURE'], 'failure')).toBe(true);

    const s = await setup();
    const rec = await s.original('alice@example.org', [
      { address: 'never@example.net', notify: ['NEVER'] },
      { address: 'success@example.net', notify: ['SUCCESS'] },
    ]);
    const all = rec.recipients.map((r) => failed(r));
    expect(await s.bounce.notify(rec, all, 'failure')).toBeUndefined();
    expect((await s.store.counts()).incoming).toBe(0);

    const sent = rec.recipients.map((r) => ({
      ...r,
      state: 'sent' as const,
      last: {
        status: 'sent' as const,
        code: 250,
        enhanced: '2.0.0',
        text: 'delivered to maildir',
        time: T0,
        relay: 'local',
      },
    }));
    const id = await s.bounce.notify(rec, sent, 'success');
    expect(id).toBeDefined();
    const { raw } = await s.notice();
    const parts = await mimeParts(raw);
    expect(parts[0]!.headers.getFirst('subject')).toBe('Successful Mail Delivery Report');
    const groups = statusGroups(parts[2]!.body);
    expect(groups.slice(1).map((g) => [g['final-recipient'], g.action, g.status])).toEqual([
      ['rfc822; success@example.net', 'delivered', '2.0.0'],
    ]);
    expect(parts[3]!.contentType).toBe('text/rfc822-headers');
    expect(s.logs.some((l) => l.text === `sender delivery status notification: ${id}`)).toBe(true);
  });

  it('sends delay notices with Will-Retry-Until', async () => {
    const s = await setup({ maximalQueueLifetime: '5d' });
    const rec = await s.original('alice@example.org', [{ address: 'bob@example.net' }]);
    const deferred: StoredRecipient = {
      ...rec.recipients[0]!,
      last: {
        status: 'deferred',
        code: 451,
        enhanced: '4.4.1',
        text: 'connect to mx.example.net: Connection refused',
        time: T0,
      },
    };
    await s.bounce.notify(rec, [deferred], 'delay');
    const parts = await mimeParts((await s.notice()).raw);
    expect(parts[0]!.headers.getFirst('subject')).toBe('Delayed Mail (still being retried)');
    expect(parts[1]!.body).toContain('THIS IS A WARNING ONLY');
    const g = statusGroups(parts[2]!.body)[1]!;
    expect(g.action).toBe('delayed');
    expect(g.status).toBe('4.4.1');
    expect(g['will-retry-until']).toBe('Fri, 4 Dec 2026 12:00:00 +0000 (UTC)');
  });

  it('sends a failed notice about a notice to postmaster from double-bounce', async () => {
    const s = await setup();
    const rec = await s.original('', [{ address: 'alice@example.org' }]);
    const id = await s.bounce.notify(rec, [failed(rec.recipients[0]!)], 'failure');
    expect(id).toBeDefined();
    const { record, raw } = await s.notice();
    expect(record.sender).toBe('double-bounce@example.com');
    expect(record.recipients.map((r) => r.address)).toEqual(['postmaster@example.com']);
    expect((await mimeParts(raw))[0]!.headers.getFirst('to')).toBe('postmaster@example.com');
    expect(s.logs.some((l) => l.text === `postmaster non-delivery notification: ${id}`)).toBe(true);
    // No delay or success notices about notices.
    expect(await s.bounce.notify(rec, [failed(rec.recipients[0]!)], 'delay')).toBeUndefined();
  });

  it('drops a notice about a failed double bounce, with a warning', async () => {
    const s = await setup();
    const rec = await s.original('double-bounce@example.com', [
      { address: 'postmaster@example.com' },
    ]);
    expect(await s.bounce.notify(rec, [failed(rec.recipients[0]!)], 'failure')).toBeUndefined();
    expect((await s.store.counts()).incoming).toBe(0);
    expect(s.logs.some((l) => l.level === 'warning' && l.text.includes('discarded'))).toBe(true);
  });

  it('rejects when the notice cannot be queued, leaving nothing behind', async () => {
    const s = await setup({ messageSizeLimit: 300 });
    const rec = await s.original(
      'alice@example.org',
      [{ address: 'bob@example.net' }],
      'Subject: s\r\n\r\nx\r\n',
    );
    await expect(s.bounce.notify(rec, [failed(rec.recipients[0]!)], 'failure')).rejects.toThrow(
      /552 5\.3\.4/,
    );
    expect((await s.store.counts()).incoming).toBe(0);
  });
});

describe('Bounce: postmaster notices per notifyClasses', () => {
  /** Every notice queued so far: envelope and raw content. */
  async function notices(s: Awaited<ReturnType<typeof setup>>) {
    const claimed = await s.store.claim({
      owner: 'reader',
      limit: 10,
      now: s.clock.now(),
      leaseMs: 60_000,
    });
    const out: { record: MessageRecord; raw: Buffer }[] = [];
    for (const c of claimed) {
      const chunks: Buffer[] = [];
      for await (const b of s.store.openContent(c.record.queueId)) chunks.push(b as Buffer);
      out.push({ record: c.record, raw: Buffer.concat(chunks) });
    }
    return out;
  }

  it('bounce: the postmaster gets a copy of each non-delivery notice, headers only', async () => {
    const s = await setup({ notifyClasses: 'bounce', bounceNoticeRecipient: 'ops' });
    const rec = await s.original('alice@example.org', [{ address: 'bob@example.net' }]);
    await s.bounce.notify(rec, [failed(rec.recipients[0]!)], 'failure');
    const all = await notices(s);
    expect(all.map((n) => [n.record.sender, n.record.recipients[0]!.address])).toEqual([
      ['', 'alice@example.org'],
      ['double-bounce@example.com', 'ops@example.com'],
    ]);
    const toSender = await mimeParts(all[0]!.raw);
    expect(toSender.at(-1)!.contentType).toBe('message/rfc822');
    const copy = await mimeParts(all[1]!.raw);
    expect(copy[0]!.headers.getFirst('content-type')).toContain('report-type=delivery-status');
    expect(statusGroups(copy[2]!.body)[1]!.status).toBe('5.1.1');
    expect(copy.at(-1)!.contentType).toBe('text/rfc822-headers');
    expect(copy.at(-1)!.body).toContain('Subject: the original');
    expect(all[1]!.raw.toString()).not.toContain('Original body line.');
  });

  it('delay: the postmaster gets a copy of each delay notice', async () => {
    const s = await setup({ notifyClasses: ['delay'], delayNoticeRecipient: 'ops@example.com' });
    const rec = await s.original('alice@example.org', [{ address: 'bob@example.net' }]);
    const deferred: StoredRecipient = {
      ...rec.recipients[0]!,
      last: { status: 'deferred', code: 451, enhanced: '4.4.1', text: 'refused', time: T0 },
    };
    await s.bounce.notify(rec, [deferred], 'delay');
    const all = await notices(s);
    expect(all.map((n) => n.record.recipients[0]!.address)).toEqual([
      'alice@example.org',
      'ops@example.com',
    ]);
    const copy = await mimeParts(all[1]!.raw);
    expect(statusGroups(copy[2]!.body)[1]!.action).toBe('delayed');
  });

  it("Postfix's default classes send no copies and drop an undeliverable notice", async () => {
    const s = await setup({ notifyClasses: ['resource', 'software'] });
    const rec = await s.original('alice@example.org', [{ address: 'bob@example.net' }]);
    await s.bounce.notify(rec, [failed(rec.recipients[0]!)], 'failure');
    expect((await notices(s)).map((n) => n.record.recipients[0]!.address)).toEqual([
      'alice@example.org',
    ]);
    const doubled = await s.original('', [{ address: 'alice@example.org' }]);
    expect(
      await s.bounce.notify(doubled, [failed(doubled.recipients[0]!)], 'failure'),
    ).toBeUndefined();
    expect(await notices(s)).toHaveLength(0);
    expect(s.logs.some((l) => l.text.includes('undeliverable notification discarded'))).toBe(true);
  });
});
