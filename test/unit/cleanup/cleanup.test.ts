import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Cleanup } from '../../../src/cleanup/cleanup.js';
import { SmtpError } from '../../../src/errors.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { MemoryQueueStore } from '../../../src/queue/stores/memory-store.js';
import type { MessageWriter, QueueStore } from '../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import type { SubmissionSource } from '../../../src/types.js';
import { harness, incoming, LOOPBACK, only, REMOTE, submit } from './harness.js';

const DATE = 'Sun, 29 Nov 2026 12:00:00 +0000 (UTC)';
const SIMPLE =
  'Subject: hello\r\nFrom: a@example.org\r\nDate: x\r\nMessage-ID: <m1@example.org>\r\n\r\nbody\r\n';

describe('Cleanup: queueing and the Received header', () => {
  it('queues a message with Postfix reply, canonical envelope and record fields', async () => {
    const h = await harness();
    const result = await submit(h, {
      sender: 'Sender@Example.org',
      recipients: ['rcpt@example.net'],
      content: SIMPLE,
    });
    expect(result.reply.toString()).toBe(`250 2.0.0 Ok: queued as ${result.queueId}`);
    const { record, content } = await only(h.store);
    expect(record.queueId).toBe(result.queueId);
    // trivial-rewrite lower-cases the domain, never the local part.
    expect(record.sender).toBe('Sender@example.org');
    expect(record.recipients).toEqual([
      expect.objectContaining({
        id: 0,
        address: 'rcpt@example.net',
        originalAddress: 'rcpt@example.net',
        state: 'pending',
      }),
    ]);
    expect(record.arrivalTime).toBe(h.clock.now());
    expect(record.eightBit).toBe(false);
    expect(record.bodyType).toBe('7BIT');
    expect(record.size).toBe(Buffer.byteLength(content));
    expect(content.slice(0, record.headerSize).endsWith('\r\n\r\n')).toBe(true);
    expect(content.slice(record.headerSize)).toBe('body\r\n');
    expect(content).toBe(
      `Received: from helo.example.net (client.example.net [192.0.2.10])\r\n` +
        `\tby mx.example.com (Postern) with ESMTP id ${result.queueId}\r\n` +
        `\tfor <rcpt@example.net>; ${DATE}\r\n` +
        SIMPLE,
    );
    expect(h.logs.map((l) => l.text)).toContain('message-id=<m1@example.org>');
    expect(h.logs.every((l) => l.component === 'cleanup')).toBe(true);
  });

  it('qualifies bare addresses with myorigin and keeps the original address', async () => {
    const h = await harness();
    await submit(h, {
      sender: 'alice',
      recipients: [{ address: 'bob', originalAddress: 'Bob' }],
      content: SIMPLE,
    });
    const { record } = await only(h.store);
    expect(record.sender).toBe('alice@mx.example.com');
    expect(record.recipients[0]).toMatchObject({
      address: 'bob@mx.example.com',
      originalAddress: 'Bob',
    });
  });

  it('omits "for" unless exactly one recipient is known when the content starts', async () => {
    const h = await harness();
    const r = await submit(h, {
      sender: 's@example.org',
      recipients: ['a@example.net', 'b@example.net'],
      content: SIMPLE,
    });
    const { content } = await only(h.store);
    expect(content.split('\r\n').slice(0, 2)).toEqual([
      'Received: from helo.example.net (client.example.net [192.0.2.10])',
      `\tby mx.example.com (Postern) with ESMTP id ${r.queueId}; ${DATE}`,
    ]);
  });

  it('writes the TLS clause, IPv6 literals and a client without HELO', async () => {
    const h = await harness();
    const source: SubmissionSource = {
      component: 'smtpd',
      protocol: 'ESMTPS',
      client: { address: '2001:db8::5' },
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256 },
    };
    const r = await submit(h, {
      source,
      sender: 's@example.org',
      recipients: ['a@example.net'],
      content: SIMPLE,
    });
    const { content } = await only(h.store);
    expect(
      content.startsWith(
        'Received: from unknown (unknown [IPv6:2001:db8::5])\r\n' +
          '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n' +
          `\tby mx.example.com (Postern) with ESMTPS id ${r.queueId}\r\n`,
      ),
    ).toBe(true);
  });

  it('names the SASL login only when smtpdSaslAuthenticatedHeader is on', async () => {
    const source: SubmissionSource = {
      component: 'smtpd',
      protocol: 'ESMTPSA',
      client: { address: '192.0.2.10', name: 'client.example.net' },
      helo: 'helo.example.net',
      authUser: 'alice',
    };
    for (const on of [true, false]) {
      const h = await harness({ smtpdSaslAuthenticatedHeader: on });
      const r = await submit(h, {
        source,
        sender: 's@example.org',
        recipients: ['a@example.net'],
        content: SIMPLE,
      });
      const { content } = await only(h.store);
      const lines = content.split('\r\n').slice(0, 3);
      expect(lines[0]).toBe('Received: from helo.example.net (client.example.net [192.0.2.10])');
      if (on) {
        expect(lines[1]).toBe('\t(Authenticated sender: alice)');
        expect(lines[2]).toBe(`\tby mx.example.com (Postern) with ESMTPSA id ${r.queueId}`);
      } else {
        expect(lines[1]).toBe(`\tby mx.example.com (Postern) with ESMTPSA id ${r.queueId}`);
      }
    }
  });

  it('cannot be made to add a line through the HELO name', async () => {
    const h = await harness();
    const source: SubmissionSource = { ...REMOTE, helo: 'evil\r\nX-Injected: yes (x); y' };
    await submit(h, {
      source,
      sender: 's@example.org',
      recipients: ['a@example.net'],
      content: SIMPLE,
    });
    const { content } = await only(h.store);
    expect(content).not.toContain('\r\nX-Injected');
    expect(content.split('\r\n')[0]).toBe(
      'Received: from evil??X-Injected:?yes??x???y (client.example.net [192.0.2.10])',
    );
  });

  it('uses the local form for submissions without a client address', async () => {
    const h = await harness();
    const source: SubmissionSource = { component: 'pickup', protocol: 'local', localUser: 'alice' };
    const r = await submit(h, {
      source,
      sender: 'alice',
      recipients: ['bob@example.net'],
      content: SIMPLE,
    });
    const { content } = await only(h.store);
    expect(
      content.startsWith(
        `Received: by mx.example.com (Postern, from userid alice)\r\n\tid ${r.queueId}; ${DATE}\r\n`,
      ),
    ).toBe(true);
  });

  it('uses mailName and adds nothing to internal mail', async () => {
    const h = await harness({ mailName: 'Acme' });
    const internal: SubmissionSource = { component: 'bounce', protocol: 'local', internal: true };
    await submit(h, {
      source: internal,
      sender: '',
      recipients: ['a@example.net'],
      content: 'Subject: x\r\n\r\nb\r\n',
    });
    const { content } = await only(h.store);
    expect(content).toBe('Subject: x\r\n\r\nb\r\n');
    await submit(h, {
      source: REMOTE,
      sender: 's@x.org',
      recipients: ['a@example.net'],
      content: SIMPLE,
    });
    const [msg] = await incoming(h.store);
    expect(msg!.content).toContain('(Acme) with ESMTP');
  });
});

describe('Cleanup: header repair', () => {
  const BARE = 'Subject: no ids\r\n\r\nbody\r\n';

  it('adds Message-Id, Date and From for loopback clients', async () => {
    const h = await harness();
    const r = await submit(h, {
      source: LOOPBACK,
      sender: 'alice@example.org',
      recipients: ['b@example.net'],
      content: BARE,
    });
    const { content, record } = await only(h.store);
    const head = content.slice(0, record.headerSize);
    expect(
      head.endsWith(
        'Subject: no ids\r\n' +
          `Message-Id: <20261129120000.${r.queueId}@mx.example.com>\r\n` +
          `Date: ${DATE}\r\n` +
          'From: alice@example.org\r\n\r\n',
      ),
    ).toBe(true);
    expect(h.logs.map((l) => l.text)).toContain(
      `message-id=<20261129120000.${r.queueId}@mx.example.com>`,
    );
  });

  it('uses MAILER-DAEMON for the null sender', async () => {
    const h = await harness();
    await submit(h, { source: LOOPBACK, sender: '', recipients: ['b@example.net'], content: BARE });
    const { content } = await only(h.store);
    expect(content).toContain('\r\nFrom: MAILER-DAEMON@mx.example.com\r\n');
  });

  it('adds nothing for remote clients unless alwaysAddMissingHeaders', async () => {
    const h = await harness();
    await submit(h, { sender: 'a@example.org', recipients: ['b@example.net'], content: BARE });
    expect((await only(h.store)).content).not.toMatch(/Message-Id|Date:|From:/);

    const h2 = await harness({ alwaysAddMissingHeaders: true });
    await submit(h2, { sender: 'a@example.org', recipients: ['b@example.net'], content: BARE });
    expect((await only(h2.store)).content).toMatch(
      /Message-Id: .*\r\nDate: .*\r\nFrom: a@example.org\r\n\r\nbody/,
    );
  });

  it('honours permit_mynetworks and CIDR entries', async () => {
    const h = await harness({
      localHeaderRewriteClients: ['permit_mynetworks'],
      mynetworks: ['192.0.2.0/24'],
    });
    await submit(h, { sender: 'a@example.org', recipients: ['b@example.net'], content: BARE });
    expect((await only(h.store)).content).toContain('From: a@example.org');

    const h2 = await harness({ localHeaderRewriteClients: ['198.51.100.0/24'] });
    await submit(h2, {
      source: LOOPBACK,
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: BARE,
    });
    expect((await only(h2.store)).content).not.toContain('From:');
  });

  it('refuses a localHeaderRewriteClients entry it does not understand', async () => {
    await expect(harness({ localHeaderRewriteClients: ['permit_everyone'] })).rejects.toThrow(
      /localHeaderRewriteClients/,
    );
  });

  it('adds Resent- variants when the message has Resent- headers', async () => {
    const h = await harness();
    const content =
      'From: orig@example.org\r\nDate: x\r\nMessage-Id: <o@x>\r\nResent-To: c@example.net\r\n\r\nb\r\n';
    const r = await submit(h, {
      source: LOOPBACK,
      sender: 'fwd@example.org',
      recipients: ['c@example.net'],
      content,
    });
    const stored = (await only(h.store)).content;
    expect(stored).toContain(
      `Resent-To: c@example.net\r\nResent-Message-Id: <20261129120000.${r.queueId}@mx.example.com>\r\n` +
        `Resent-Date: ${DATE}\r\nResent-From: fwd@example.org\r\n\r\nb\r\n`,
    );
  });

  it('does not duplicate headers that are present, whatever their case', async () => {
    const h = await harness();
    await submit(h, {
      source: LOOPBACK,
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: 'FROM: x@y\r\nmessage-id: <1@y>\r\ndate: now\r\n\r\n',
    });
    const stored = (await only(h.store)).content;
    expect(stored.match(/^from:/gim)).toHaveLength(1);
    expect(stored.match(/^message-id:/gim)).toHaveLength(1);
    expect(stored.match(/^date:/gim)).toHaveLength(1);
  });

  it('drops messageDropHeaders, folded lines included', async () => {
    const h = await harness();
    const content =
      'Subject: s\r\nBcc: hidden@example.net,\r\n other@example.net\r\nCONTENT-LENGTH: 5\r\n' +
      'Return-Path: <x@y>\r\nresent-bcc: z@y\r\nX-Keep: yes\r\n\r\nBcc: in the body stays\r\n';
    await submit(h, { sender: 'a@example.org', recipients: ['b@example.net'], content });
    const stored = (await only(h.store)).content;
    expect(stored).not.toMatch(/hidden|other@|CONTENT-LENGTH|Return-Path|resent-bcc/i);
    expect(stored).toContain('Subject: s\r\nX-Keep: yes\r\n\r\nBcc: in the body stays\r\n');
  });

  it('inserts an empty line when the header block ends with a non-header line', async () => {
    const h = await harness();
    await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: 'Subject: s\r\nHello there\r\n',
    });
    const { content, record } = await only(h.store);
    expect(content.endsWith('Subject: s\r\n\r\nHello there\r\n')).toBe(true);
    expect(content.slice(record.headerSize)).toBe('Hello there\r\n');
  });

  it('truncates a header beyond headerSizeLimit and keeps long lines below it', async () => {
    const h = await harness({ headerSizeLimit: 2000 });
    const long = `X-Long: ${'l'.repeat(1500)}`;
    const huge = `X-Huge: ${'h'.repeat(5000)}`;
    await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: `${long}\r\n${huge}\r\nSubject: s\r\n\r\nb\r\n`,
    });
    const stored = (await only(h.store)).content;
    expect(stored).toContain(`${long}\r\n`);
    expect(stored).toContain(`X-Huge: ${'h'.repeat(2000 - 8)}\r\nSubject: s\r\n`);
    expect(h.logs.some((l) => l.level === 'warning' && l.text.includes('X-Huge'))).toBe(true);
  });
});

describe('Cleanup: limits and content', () => {
  it('rejects too many hops, counting its own Received header', async () => {
    const h = await harness({ hopcountLimit: 5 });
    const received = (n: number): string => 'Received: from a by b; x\r\n'.repeat(n);
    const ok = await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: `${received(3)}\r\nb\r\n`,
    });
    expect(ok.reply.code).toBe(250);
    const bad = await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: `${received(4)}\r\nb\r\n`,
    });
    expect(bad.reply.toString()).toBe('554 5.4.0 Error: too many hops');
    expect(bad.queueId).toBeUndefined();
    expect((await h.store.counts()).incoming).toBe(1);
  });

  it('rejects a message over messageSizeLimit and stores nothing', async () => {
    const h = await harness({ messageSizeLimit: 1000 });
    const big = `Subject: big\r\n\r\n${'x'.repeat(1100)}\r\n`;
    const r = await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: big,
    });
    expect(r.reply.toString()).toBe('552 5.3.4 Error: message file too big');
    const counts = await h.store.counts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
    // Exactly at the limit is fine: the limit counts the client's bytes, not Postern's headers.
    const exact = `Subject: e\r\n\r\n${'x'.repeat(1000 - 16)}\r\n`;
    expect(Buffer.byteLength(exact)).toBe(1000);
    expect(
      (await submit(h, { sender: 'a@example.org', recipients: ['b@example.net'], content: exact }))
        .reply.code,
    ).toBe(250);
  });

  it('flags 8-bit content', async () => {
    const h = await harness();
    await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: 'Subject: s\r\n\r\ncaf\u00e9\r\n',
      senderParams: { bodyType: '8BITMIME' },
    });
    const { record } = await only(h.store);
    expect(record.eightBit).toBe(true);
    expect(record.bodyType).toBe('8BITMIME');
  });

  it('replaces stray CRs, stores bare-LF lines as CRLF, and can keep stray CRs', async () => {
    const h = await harness();
    await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: 'Subject: a\rb\n\nline\rone\nline two',
    });
    expect(
      (await only(h.store)).content.endsWith('Subject: a b\r\n\r\nline one\r\nline two\r\n'),
    ).toBe(true);

    const h2 = await harness({ cleanupReplaceStrayCrLf: false });
    await submit(h2, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: 'Subject: s\r\n\r\nx\ry\r\n',
    });
    expect((await only(h2.store)).content.endsWith('\r\n\r\nx\ry\r\n')).toBe(true);
  });

  it('handles content split at every awkward boundary', async () => {
    const h = await harness();
    const text = 'Subject: split\r\n test\r\nBcc: x@y\r\n\r\nbody\r\n';
    const chunks = [...Buffer.from(text)].map((b) => Buffer.from([b]));
    await submit(h, { sender: 'a@example.org', recipients: ['b@example.net'], content: chunks });
    expect((await only(h.store)).content.endsWith('Subject: split\r\n test\r\n\r\nbody\r\n')).toBe(
      true,
    );
  });

  it('stores an empty message as a header block', async () => {
    const h = await harness();
    await submit(h, { sender: 'a@example.org', recipients: ['b@example.net'], content: '' });
    const { content, record } = await only(h.store);
    expect(content.endsWith('\r\n\r\n')).toBe(true);
    expect(record.headerSize).toBe(record.size);
  });
});

describe('Cleanup: envelope and actions', () => {
  it('accepts the envelope after the content (QMQP order)', async () => {
    const h = await harness();
    const r = await submit(h, {
      contentFirst: true,
      source: {
        component: 'qmqpd',
        protocol: 'QMQP',
        client: { address: '192.0.2.7', name: 'q.example.net' },
      },
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: 'Subject: qmqp\n\nlf lines\n',
    });
    expect(r.reply.code).toBe(250);
    const { record, content } = await only(h.store);
    expect(record.sender).toBe('a@example.org');
    expect(record.recipients.map((x) => x.address)).toEqual(['b@example.net']);
    expect(content).toBe(
      `Received: from q.example.net (q.example.net [192.0.2.7])\r\n\tby mx.example.com (Postern) with QMQP id ${r.queueId}; ${DATE}\r\n` +
        'Subject: qmqp\r\n\r\nlf lines\r\n',
    );
  });

  it('adds no From: when the sender arrives only after the header block (local QMQP)', async () => {
    const h = await harness();
    await submit(h, {
      contentFirst: true,
      source: { component: 'qmqpd', protocol: 'QMQP', client: { address: '127.0.0.1' } },
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      content: 'Subject: q\n\nbody\n',
    });
    const { content } = await only(h.store);
    expect(content).toMatch(
      /\r\nSubject: q\r\nMessage-Id: <[^>]+>\r\nDate: [^\r]+\r\n\r\nbody\r\n$/,
    );
  });

  it('replies 550 without recipients and drops duplicates', async () => {
    const h = await harness();
    const none = await submit(h, { sender: 'a@example.org', content: SIMPLE });
    expect(none.reply.toString()).toBe('550 5.1.0 Error: no recipients specified');
    await submit(h, {
      sender: 'a@example.org',
      recipients: [
        'b@example.net',
        'b@example.net',
        { address: 'b@example.net', notify: ['NEVER'] },
        { address: 'c@example.net', orcpt: 'rfc822;C@example.net' },
      ],
      content: SIMPLE,
    });
    const { record } = await only(h.store);
    expect(record.recipients.map((r) => [r.id, r.address, r.notify, r.orcpt])).toEqual([
      [0, 'b@example.net', undefined, undefined],
      [1, 'b@example.net', ['NEVER'], undefined],
      [2, 'c@example.net', undefined, 'rfc822;C@example.net'],
    ]);
  });

  it('holds, filters, prepends, redirects and adds BCC recipients', async () => {
    const h = await harness();
    const r = await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net', 'c@example.net'],
      actions: [
        { type: 'prepend', header: 'X-First: one' },
        { type: 'prepend', header: 'X-Second: two' },
        { type: 'redirect', address: 'trap@example.com' },
        { type: 'bcc', address: 'archive@example.com' },
        { type: 'filter', nexthop: 'scan:[127.0.0.1]:10025' },
      ],
      content: SIMPLE,
    });
    const { record, content } = await only(h.store);
    expect(record.filter).toBe('scan:[127.0.0.1]:10025');
    // Both recipients become the same address with the same NOTIFY: one remains.
    expect(record.recipients.map((x) => [x.address, x.originalAddress, x.notify])).toEqual([
      ['trap@example.com', 'b@example.net', undefined],
      ['archive@example.com', 'archive@example.com', ['NEVER']],
    ]);
    const lines = content.split('\r\n');
    expect(lines[1]).toBe(`\tby mx.example.com (Postern) with ESMTP id ${r.queueId}; ${DATE}`);
    expect(lines.slice(2, 4)).toEqual(['X-First: one', 'X-Second: two']);

    await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      actions: [{ type: 'hold', reason: 'review' }],
      content: SIMPLE,
    });
    const held = await h.store.list({ states: ['hold'] });
    expect(held).toHaveLength(1);
    expect(h.logs.some((l) => l.text === 'hold: review')).toBe(true);
  });

  it('discards on request: 250, nothing stored, logged', async () => {
    const h = await harness();
    const r = await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      actions: [{ type: 'discard', reason: 'spam trap' }],
      content: SIMPLE,
    });
    expect(r.reply.toString()).toBe('250 2.0.0 Ok: discarded');
    expect(r.queueId).toBeUndefined();
    const counts = await h.store.counts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
    expect(h.logs.some((l) => l.text === 'discard: spam trap')).toBe(true);
  });

  it('ignores a prepend that is not a header line', async () => {
    const h = await harness();
    await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.net'],
      actions: [{ type: 'prepend', header: 'no colon here' }],
      content: SIMPLE,
    });
    expect((await only(h.store)).content).not.toContain('no colon');
  });
});

describe('Cleanup: failures', () => {
  it('abort leaves nothing behind and later writes never emit error', async () => {
    const h = await harness();
    const tx = await h.cleanup.open(REMOTE);
    tx.setSender('a@example.org');
    tx.addRecipient({ address: 'b@example.net' });
    tx.content.write('Subject: x\r\n\r\n');
    await tx.abort();
    await tx.abort();
    tx.content.write('more');
    const r = await tx.commit();
    expect(r.reply.code).toBe(451);
    const counts = await h.store.counts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('reports a store write error at commit and never emits error on content', async () => {
    const inner = new MemoryQueueStore();
    const failing: QueueStore = Object.create(inner) as QueueStore;
    failing.open = () => inner.open();
    failing.create = async (id): Promise<MessageWriter> => {
      const real = await inner.create(id);
      const content = new Writable({
        write(_chunk, _enc, cb) {
          cb(new Error('disk on fire'));
        },
      });
      return { queueId: id, content, commit: (r) => real.commit(r), abort: () => real.abort() };
    };
    const h = await harness({}, failing);
    const errors: unknown[] = [];
    const tx = await h.cleanup.open(REMOTE);
    tx.content.on('error', (e) => errors.push(e));
    tx.setSender('a@example.org');
    tx.addRecipient({ address: 'b@example.net' });
    tx.content.end(SIMPLE);
    const r = await tx.commit();
    expect(r.reply.toString()).toBe('451 4.3.0 Error: queue file write error');
    expect(errors).toEqual([]);
    expect(h.logs.some((l) => l.level === 'warning' && l.text.includes('disk on fire'))).toBe(true);
  });

  it('rejects open with 451 when the store cannot create the message', async () => {
    const params = resolveParameters({ myhostname: 'mx.example.com' });
    const store = new MemoryQueueStore(); // never opened: create() fails
    const cleanup = new Cleanup({
      params,
      store,
      rewriter: new Rewriter({ params }),
      queueIds: new QueueIdGenerator('TEST0'),
    });
    const err = await cleanup.open(REMOTE).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SmtpError);
    expect((err as SmtpError).reply.toString()).toBe('451 4.3.0 Error: queue file write error');
  });

  it('commit is idempotent and the envelope is frozen after it', async () => {
    const h = await harness();
    const tx = await h.cleanup.open(REMOTE);
    tx.setSender('a@example.org');
    tx.addRecipient({ address: 'b@example.net' });
    tx.content.end(SIMPLE);
    const [a, b] = await Promise.all([tx.commit(), tx.commit()]);
    expect(a).toBe(b);
    tx.addRecipient({ address: 'late@example.net' });
    await tx.abort(); // after a successful commit: keeps the message
    const { record } = await only(h.store);
    expect(record.recipients).toHaveLength(1);
  });
});
