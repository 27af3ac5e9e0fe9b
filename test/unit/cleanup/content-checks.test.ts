/**
 * header_checks / mime_header_checks / nested_header_checks / body_checks through a
 * real Cleanup and MemoryQueueStore. Cases mirror header_checks(5), body_checks(5) and
 * BUILTIN_FILTER_README; each names its source.
 */

import { describe, expect, it } from 'vitest';
import { harness, incoming, only, REMOTE, submit } from './harness.js';

const BASIC = {
  sender: 'alice@example.org',
  recipients: ['bob@example.com'],
};

function message(headers: string[], body: string): string {
  return `${headers.join('\r\n')}\r\n\r\n${body}`;
}

const PLAIN = message(
  ['From: alice@example.org', 'To: bob@example.com', 'Subject: make money fast'],
  'Hello\r\n',
);

interface Case {
  readonly source: string;
  readonly name: string;
  readonly params: Record<string, unknown>;
  readonly content: string;
  /** Expected reply code and (part of the) text. */
  readonly reply: [number, string];
  readonly check?: (h: Awaited<ReturnType<typeof harness>>) => Promise<void>;
}

const MULTIPART = message(
  [
    'From: alice@example.org',
    'To: bob@example.com',
    'Subject: report',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="XYZ"',
  ],
  [
    'preamble',
    '--XYZ',
    'Content-Type: text/plain',
    '',
    'see attached',
    '--XYZ',
    'Content-Type: application/octet-stream; name="invoice.exe"',
    'Content-Transfer-Encoding: base64',
    '',
    'TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAA',
    '--XYZ',
    'Content-Type: message/rfc822',
    '',
    'From: mallory@evil.example',
    'Subject: forwarded secret',
    '',
    'inner body',
    '--XYZ--',
    'epilogue',
    '',
  ].join('\r\n'),
);

const cases: Case[] = [
  {
    source: 'header_checks(5) EXAMPLES: /^Subject: make money fast/ REJECT',
    name: 'REJECT without text gives 550 5.7.1 message content rejected',
    params: { headerChecks: 'regexp:{ {/^Subject: make money fast/ REJECT} }' },
    content: PLAIN,
    reply: [550, '5.7.1 message content rejected'],
  },
  {
    source: 'header_checks(5) EXAMPLES: /^To: friend@public\\.com/ REJECT',
    name: 'REJECT on To:',
    params: { headerChecks: 'regexp:{ {/^To: bob@example\\.com/ REJECT} }' },
    content: PLAIN,
    reply: [550, 'message content rejected'],
  },
  {
    source: 'header_checks(5) REJECT optional text',
    name: 'REJECT with text',
    params: { headerChecks: 'regexp:{ {/^Subject: make money/ REJECT No spam please} }' },
    content: PLAIN,
    reply: [550, '5.7.1 No spam please'],
  },
  {
    source: 'header_checks(5) REJECT: a 4xx code in the text makes it temporary',
    name: 'REJECT 450',
    params: { headerChecks: 'regexp:{ {/^Subject:/ REJECT 450 4.7.1 Try again later} }' },
    content: PLAIN,
    reply: [450, '4.7.1 Try again later'],
  },
  {
    source: 'regexp_table(5): matching is case-insensitive by default',
    name: 'case-insensitive match',
    params: { headerChecks: 'regexp:{ {/^subject: MAKE MONEY/ REJECT} }' },
    content: PLAIN,
    reply: [550, 'message content rejected'],
  },
  {
    source: 'header_checks(5) DISCARD',
    name: 'DISCARD claims success and queues nothing',
    params: { headerChecks: 'regexp:{ {/^Subject: make money/ DISCARD spam} }' },
    content: PLAIN,
    reply: [250, 'discarded'],
    check: async (h) => {
      expect((await h.store.counts()).incoming).toBe(0);
      expect(h.logs.some((l) => /discard: header Subject: make money fast/.test(l.text))).toBe(
        true,
      );
    },
  },
  {
    source: 'header_checks(5) HOLD',
    name: 'HOLD commits into the hold queue',
    params: { headerChecks: 'regexp:{ {/^Subject: make money/ HOLD review} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      const counts = await h.store.counts();
      expect(counts.hold).toBe(1);
      expect(counts.incoming).toBe(0);
    },
  },
  {
    source: 'header_checks(5) REDIRECT user@domain',
    name: 'REDIRECT replaces every recipient',
    params: { headerChecks: 'regexp:{ {/^Subject: make money/ REDIRECT spam@example.com} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      const { record } = await only(h.store);
      expect(record.recipients.map((r) => r.address)).toEqual(['spam@example.com']);
      expect(record.recipients[0]!.originalAddress).toBe('bob@example.com');
    },
  },
  {
    source: 'header_checks(5) BCC user@domain (NOTIFY=NONE)',
    name: 'BCC adds a recipient without notification',
    params: { headerChecks: 'regexp:{ {/^Subject:/ BCC archive@example.com} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      const { record } = await only(h.store);
      expect(record.recipients.map((r) => [r.address, r.notify])).toEqual([
        ['bob@example.com', undefined],
        ['archive@example.com', ['NEVER']],
      ]);
    },
  },
  {
    source: 'header_checks(5) FILTER transport:destination',
    name: 'FILTER sets the content filter',
    params: { headerChecks: 'regexp:{ {/^Subject:/ FILTER smtp:[127.0.0.1]:10025} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      expect((await only(h.store)).record.filter).toBe('smtp:[127.0.0.1]:10025');
    },
  },
  {
    source: 'header_checks(5) PREPEND text',
    name: 'PREPEND inserts a header before the matching one',
    params: { headerChecks: 'regexp:{ {/^Subject: (.*)/ PREPEND X-Original-Subject: $1} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      const { content } = await only(h.store);
      expect(content).toContain(
        'X-Original-Subject: make money fast\r\nSubject: make money fast\r\n',
      );
    },
  },
  {
    source: 'header_checks(5) REPLACE text',
    name: 'REPLACE swaps the header',
    params: { headerChecks: 'regexp:{ {/^Subject: (.*)/ REPLACE Subject: [SPAM] $1} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      const { content } = await only(h.store);
      expect(content).toContain('Subject: [SPAM] make money fast\r\n');
      expect(content).not.toContain('Subject: make money fast');
    },
  },
  {
    source: 'header_checks(5) IGNORE',
    name: 'IGNORE deletes the header silently',
    params: { headerChecks: 'regexp:{ {/^Subject:/ IGNORE} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      expect((await only(h.store)).content).not.toContain('Subject:');
      expect(h.logs.some((l) => /Subject/.test(l.text))).toBe(false);
    },
  },
  {
    source: 'header_checks(5) STRIP text',
    name: 'STRIP deletes the header and logs it',
    params: { headerChecks: 'regexp:{ {/^Subject:/ STRIP removed} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      expect((await only(h.store)).content).not.toContain('Subject:');
      expect(
        h.logs.some((l) => /^strip: header Subject: make money fast .*: removed$/.test(l.text)),
      ).toBe(true);
    },
  },
  {
    source: 'header_checks(5) WARN text',
    name: 'WARN logs and keeps the header',
    params: { headerChecks: 'regexp:{ {/^Subject:/ WARN suspicious} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      expect((await only(h.store)).content).toContain('Subject: make money fast');
      const w = h.logs.find((l) => l.text.startsWith('warning: header Subject'));
      // Postfix logs it at info level: the text already says `warning:`.
      expect(w?.level).toBe('info');
      expect(w?.text).toMatch(
        /from client\.example\.net\[192\.0\.2\.10\]; from=<alice@example\.org> to=<bob@example\.com> proto=ESMTP helo=<helo\.example\.net>: suspicious$/,
      );
    },
  },
  {
    source: 'header_checks(5) INFO text',
    name: 'INFO logs at info level',
    params: { headerChecks: 'regexp:{ {/^Subject:/ INFO seen} }' },
    content: PLAIN,
    reply: [250, 'queued'],
    check: async (h) => {
      expect(h.logs.find((l) => l.text.startsWith('info: header Subject'))?.level).toBe('info');
    },
  },
  {
    source: 'header_checks(5) DUNNO: first matching pattern wins, as if nothing matched',
    name: 'DUNNO stops the search for that line',
    params: {
      headerChecks: 'regexp:{ {/^Subject: make money fast/ DUNNO}, {/^Subject:/ REJECT} }',
    },
    content: PLAIN,
    reply: [250, 'queued'],
  },
  {
    source: 'header_checks(5) OK is DUNNO',
    name: 'OK',
    params: { headerChecks: 'regexp:{ {/^Subject:/ OK}, {/^Subject:/ REJECT} }' },
    content: PLAIN,
    reply: [250, 'queued'],
  },
  {
    source: 'header_checks(5) PASS: stop inspection of the rest of the message',
    name: 'PASS turns later header and body checks off',
    params: {
      headerChecks: 'regexp:{ {/^From:/ PASS trusted}, {/^Subject:/ REJECT} }',
      bodyChecks: 'regexp:{ {/Hello/ REJECT} }',
    },
    content: PLAIN,
    reply: [250, 'queued'],
  },
  {
    source: 'BUILTIN_FILTER_README: headers added by Cleanup are not inspected',
    name: 'Received and Message-Id added by Cleanup are not checked',
    params: { headerChecks: 'regexp:{ {/^Received:/ REJECT}, {/^Message-Id:/ REJECT} }' },
    content: PLAIN,
    reply: [250, 'queued'],
  },
  {
    source: 'header_checks(5): a multi-line header is inspected as one logical line',
    name: 'folded header unfolded',
    params: { headerChecks: 'regexp:{ {/^Subject: make money fast today$/ REJECT} }' },
    content: message(['From: a@example.org', 'Subject: make money fast\r\n today'], 'x\r\n'),
    reply: [550, 'message content rejected'],
  },
  {
    source: 'cleanup(8) message_drop_headers: inspected by header_checks before removal',
    name: 'Bcc is checked and still dropped',
    params: { headerChecks: 'regexp:{ {/^Bcc:/ WARN blind copy} }' },
    content: message(['From: a@example.org', 'Bcc: secret@example.com'], 'x\r\n'),
    reply: [250, 'queued'],
    check: async (h) => {
      expect((await only(h.store)).content).not.toContain('Bcc:');
      expect(h.logs.some((l) => /^warning: header Bcc: secret@example\.com/.test(l.text))).toBe(
        true,
      );
    },
  },
  {
    source:
      'body_checks(5) EXAMPLES: /^<iframe src=(3D)?cid:.* height=(3D)?0 width=(3D)?0>$/ REJECT IFRAME vulnerability exploit',
    name: 'body REJECT',
    params: {
      bodyChecks:
        'regexp:{ {/^<iframe src=(3D)?cid:.* height=(3D)?0 width=(3D)?0>$/ REJECT IFRAME vulnerability exploit} }',
    },
    content: message(
      ['From: a@example.org'],
      'hi\r\n<iframe src=3Dcid:x height=3D0 width=3D0>\r\n',
    ),
    reply: [550, '5.7.1 IFRAME vulnerability exploit'],
  },
  {
    source: 'body_checks(5): REPLACE and PREPEND on a body line',
    name: 'body line edits',
    params: { bodyChecks: 'regexp:{ {/^secret (.*)/ REPLACE [redacted]}, {/^bye/ PREPEND -- } }' },
    content: message(['From: a@example.org'], 'hi\r\nsecret 1234\r\nbye\r\n'),
    reply: [250, 'queued'],
    check: async (h) => {
      const { content, record } = await only(h.store);
      expect(content.slice(record.headerSize)).toBe('hi\r\n[redacted]\r\n--\r\nbye\r\n');
      expect(record.size).toBe(Buffer.byteLength(content));
    },
  },
  {
    source: 'postconf(5) body_checks_size_limit: only the first N bytes of a body segment',
    name: 'a match past the size limit is not seen',
    params: { bodyChecks: 'regexp:{ {/^forbidden/ REJECT} }', bodyChecksSizeLimit: 100 },
    content: message(
      ['From: a@example.org'],
      `${'x'.repeat(60)}\r\n${'y'.repeat(60)}\r\nforbidden\r\n`,
    ),
    reply: [250, 'queued'],
  },
  {
    source: 'header_checks(5) MIME_HEADER_CHECKS: attachment name in a part header',
    name: 'mime_header_checks sees part headers',
    params: {
      mimeHeaderChecks:
        'regexp:{ {/^Content-(Disposition|Type).*name\\s*=\\s*"?(.*\\.(exe|vbs))"?/ REJECT Attachment "$2" not allowed} }',
    },
    content: MULTIPART,
    reply: [550, 'Attachment "invoice.exe" not allowed'],
  },
  {
    source: 'postconf(5) mime_header_checks = $header_checks',
    name: 'header_checks also serve MIME headers by default',
    params: { headerChecks: 'regexp:{ {/^Content-Type: application\\/octet-stream/ REJECT} }' },
    content: MULTIPART,
    reply: [550, 'message content rejected'],
  },
  {
    source: 'postconf(5) mime_header_checks: an empty value turns it off',
    name: 'mimeHeaderChecks [] keeps header_checks off part headers',
    params: {
      headerChecks: 'regexp:{ {/^Content-Type: application\\/octet-stream/ REJECT} }',
      mimeHeaderChecks: [],
    },
    content: MULTIPART,
    reply: [250, 'queued'],
  },
  {
    source: 'header_checks(5) NESTED_HEADER_CHECKS: headers of attached messages',
    name: 'nested_header_checks sees message/rfc822 headers',
    params: {
      nestedHeaderChecks: 'regexp:{ {/^Subject: forwarded secret/ REJECT no forwarding} }',
    },
    content: MULTIPART,
    reply: [550, 'no forwarding'],
  },
  {
    source: 'header_checks(5): primary-only header_checks do not see nested Subject',
    name: 'header_checks with nested checks off',
    params: {
      headerChecks: 'regexp:{ {/^Subject: forwarded secret/ REJECT} }',
      nestedHeaderChecks: [],
    },
    content: MULTIPART,
    reply: [250, 'queued'],
  },
  {
    source: 'BUILTIN_FILTER_README: body_checks see everything else, boundaries included',
    name: 'body_checks see a boundary line and the inner body',
    params: {
      bodyChecks: 'regexp:{ {/^--XYZ--$/ WARN closing boundary}, {/^inner body$/ WARN inner} }',
    },
    content: MULTIPART,
    reply: [250, 'queued'],
    check: async (h) => {
      expect(h.logs.some((l) => /warning: body --XYZ--.*closing boundary/.test(l.text))).toBe(true);
      expect(h.logs.some((l) => /warning: body inner body.*inner/.test(l.text))).toBe(true);
    },
  },
  {
    source: 'body_checks(5): part headers are not body lines',
    name: 'body_checks do not see MIME part headers',
    params: { bodyChecks: 'regexp:{ {/^Content-Type/ REJECT} }' },
    content: MULTIPART,
    reply: [250, 'queued'],
  },
];

describe('content checks: header_checks(5), body_checks(5), BUILTIN_FILTER_README', () => {
  for (const c of cases) {
    it(`${c.name} — ${c.source}`, async () => {
      const h = await harness(c.params);
      const result = await submit(h, { ...BASIC, content: c.content });
      expect(result.reply.code).toBe(c.reply[0]);
      expect(result.reply.toString()).toContain(c.reply[1]);
      if (c.reply[0] >= 400) expect(await incoming(h.store)).toEqual([]);
      await c.check?.(h);
    });
  }

  it('skips checks for internal mail unless internalMailFilterClasses names its class', async () => {
    const checks = { headerChecks: 'regexp:{ {/^Subject:/ REJECT} }' };
    const bounce = { component: 'bounce', protocol: 'local', internal: true };
    const h1 = await harness(checks);
    expect((await submit(h1, { ...BASIC, source: bounce, content: PLAIN })).reply.code).toBe(250);
    const h2 = await harness({ ...checks, internalMailFilterClasses: ['bounce'] });
    expect((await submit(h2, { ...BASIC, source: bounce, content: PLAIN })).reply.code).toBe(550);
    const notice = { component: 'cleanup', protocol: 'local', internal: true };
    expect((await submit(h2, { ...BASIC, source: notice, content: PLAIN })).reply.code).toBe(250);
  });

  it('defers when a check table cannot answer', async () => {
    const h = await harness({
      headerChecks: () => {
        throw new Error('database down');
      },
    });
    const result = await submit(h, { ...BASIC, source: REMOTE, content: PLAIN });
    expect(result.reply.code).toBe(451);
    expect(await incoming(h.store)).toEqual([]);
  });

  it('reads a whole body split into odd chunks the same way', async () => {
    const params = {
      bodyChecks: 'regexp:{ {/^inner body$/ REPLACE INNER}, {/^--XYZ--$/ PREPEND x} }',
    };
    const whole = await harness(params);
    await submit(whole, { ...BASIC, content: MULTIPART });
    const body = async (h: Awaited<ReturnType<typeof harness>>): Promise<string> => {
      const { content, record } = await only(h.store);
      return content.slice(record.headerSize);
    };
    const expected = await body(whole);
    const bytes = Buffer.from(MULTIPART);
    for (const size of [1, 2, 3, 7, 64]) {
      const h = await harness(params);
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      await submit(h, { ...BASIC, content: chunks });
      expect(await body(h)).toBe(expected);
    }
    expect(expected).toContain('INNER\r\n');
    expect(expected).toContain('x\r\n--XYZ--\r\n');
  });
});
