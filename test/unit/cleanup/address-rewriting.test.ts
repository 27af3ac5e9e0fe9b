/**
 * Cleanup's address rewriting: canonical(5), virtual(5), masquerading, BCC maps,
 * header addresses, `sendmail -t` and undisclosed_recipients_header — through a real
 * Cleanup, Rewriter and MemoryQueueStore. Each case names its source.
 * myhostname = myorigin = mx.example.com.
 */

import { describe, expect, it } from 'vitest';
import { harness, incoming, LOOPBACK, only, REMOTE, type Submission, submit } from './harness.js';

const CONTENT = 'From: alice@example.org\r\nTo: bob@example.com\r\nSubject: s\r\n\r\nbody\r\n';

async function run(
  params: Record<string, unknown>,
  s: Partial<Submission>,
): Promise<{ sender: string; recipients: string[]; content: string; code: number }> {
  const h = await harness(params);
  const result = await submit(h, { sender: 'alice@example.org', content: CONTENT, ...s });
  if (result.reply.code !== 250)
    return { sender: '', recipients: [], content: '', code: result.reply.code };
  const { record, content } = await only(h.store);
  return {
    sender: record.sender,
    recipients: record.recipients.map((r) => r.address),
    content,
    code: result.reply.code,
  };
}

interface MapCase {
  readonly source: string;
  readonly params: Record<string, unknown>;
  readonly sender?: string;
  readonly recipients: string[];
  readonly expectSender?: string;
  readonly expectRecipients?: string[];
  readonly expectCode?: number;
}

const cases: MapCase[] = [
  {
    source: 'canonical(5) EXAMPLE: "wietse Wietse.Venema" (bare user key for $myorigin)',
    params: { canonicalMaps: { wietse: 'Wietse.Venema' } },
    sender: 'wietse',
    recipients: ['wietse@mx.example.com'],
    expectSender: 'Wietse.Venema@mx.example.com',
    expectRecipients: ['Wietse.Venema@mx.example.com'],
  },
  {
    source: 'canonical(5) TABLE FORMAT: a bare user key does not match a remote domain',
    params: { canonicalMaps: { wietse: 'Wietse.Venema' } },
    recipients: ['wietse@elsewhere.example'],
    expectRecipients: ['wietse@elsewhere.example'],
  },
  {
    source: 'canonical(5) TABLE FORMAT: user@domain address',
    params: { canonicalMaps: { 'joe@example.com': 'joseph.smith@example.com' } },
    recipients: ['Joe@Example.COM'],
    expectRecipients: ['joseph.smith@example.com'],
  },
  {
    source: 'canonical(5) TABLE FORMAT: @domain address (domain-wide replacement)',
    params: { canonicalMaps: { '@old.example': 'catchall@new.example' } },
    recipients: ['anyone@old.example'],
    expectRecipients: ['catchall@new.example'],
  },
  {
    source: 'ADDRESS_REWRITING_README canonical: @old.example @new.example keeps the user',
    params: { canonicalMaps: { '@old.example': '@new.example' } },
    sender: 'joe@old.example',
    recipients: ['ann@old.example'],
    expectSender: 'joe@new.example',
    expectRecipients: ['ann@new.example'],
  },
  {
    source:
      'canonical(5) ADDRESS EXTENSION: user+foo@domain falls back to user@domain, extension propagated',
    params: { canonicalMaps: { 'joe@example.com': 'joseph@example.com' }, recipientDelimiter: '+' },
    recipients: ['joe+lists@example.com'],
    expectRecipients: ['joseph+lists@example.com'],
  },
  {
    source:
      'postconf(5) propagate_unmatched_extensions: without "canonical" the extension is dropped',
    params: {
      canonicalMaps: { 'joe@example.com': 'joseph@example.com' },
      recipientDelimiter: '+',
      propagateUnmatchedExtensions: ['virtual'],
    },
    recipients: ['joe+lists@example.com'],
    expectRecipients: ['joseph@example.com'],
  },
  {
    source: 'postconf(5) sender_canonical_maps: senders only',
    params: { senderCanonicalMaps: { 'alice@example.org': 'a.liddell@example.org' } },
    recipients: ['alice@example.org'],
    expectSender: 'a.liddell@example.org',
    expectRecipients: ['alice@example.org'],
  },
  {
    source: 'postconf(5) recipient_canonical_maps: recipients only, before canonical_maps',
    params: {
      recipientCanonicalMaps: { 'bob@example.com': 'robert@example.com' },
      canonicalMaps: { 'robert@example.com': 'rob@example.com' },
    },
    sender: 'bob@example.com',
    recipients: ['bob@example.com'],
    expectSender: 'bob@example.com',
    expectRecipients: ['rob@example.com'],
  },
  {
    source: 'postconf(5) canonical_classes: envelope_recipient left out',
    params: {
      canonicalMaps: { 'bob@example.com': 'robert@example.com' },
      canonicalClasses: ['envelope_sender'],
    },
    sender: 'bob@example.com',
    recipients: ['bob@example.com'],
    expectSender: 'robert@example.com',
    expectRecipients: ['bob@example.com'],
  },
  {
    source: 'virtual(5) EXAMPLE: postmaster@example.com postmaster; info@example.com joe',
    params: {
      virtualAliasMaps: {
        'postmaster@example.com': 'postmaster',
        'info@example.com': 'joe',
        'sales@example.com': 'jane',
      },
    },
    recipients: ['postmaster@example.com', 'info@example.com', 'sales@example.com'],
    expectRecipients: ['postmaster@mx.example.com', 'joe@mx.example.com', 'jane@mx.example.com'],
  },
  {
    source: 'virtual(5) EXAMPLE: catch-all @example.com jim; specific entries win',
    params: { virtualAliasMaps: { 'info@example.com': 'joe', '@example.com': 'jim' } },
    recipients: ['info@example.com', 'nobody@example.com'],
    expectRecipients: ['joe@mx.example.com', 'jim@mx.example.com'],
  },
  {
    source: 'virtual(5): result @otherdomain keeps the user',
    params: { virtualAliasMaps: { '@example.com': '@example.net' } },
    recipients: ['ann@example.com'],
    expectRecipients: ['ann@example.net'],
  },
  {
    source: 'issue 5: "sales@example.com": "amy@example.com, ben@example.com" (address list)',
    params: { virtualAliasMaps: { 'sales@example.com': 'amy@example.com, ben@example.com' } },
    recipients: ['sales@example.com'],
    expectRecipients: ['amy@example.com', 'ben@example.com'],
  },
  {
    source: 'virtual(5): expansion is recursive',
    params: {
      virtualAliasMaps: { 'a@example.com': 'b@example.com', 'b@example.com': 'c@example.net' },
    },
    recipients: ['a@example.com'],
    expectRecipients: ['c@example.net'],
  },
  {
    source: 'cleanup_map1n.c: an address may expand into itself (keep a copy)',
    params: { virtualAliasMaps: { 'joe@example.com': 'joe@example.com, archive@example.net' } },
    recipients: ['joe@example.com'],
    expectRecipients: ['joe@example.com', 'archive@example.net'],
  },
  {
    source: 'cleanup_map1n.c: a loop stops where an address comes back',
    params: {
      virtualAliasMaps: { 'a@example.com': 'b@example.com', 'b@example.com': 'a@example.com' },
    },
    recipients: ['a@example.com'],
    expectRecipients: ['a@example.com'],
  },
  {
    source: 'cleanup(8): duplicate recipients removed after expansion',
    params: {
      virtualAliasMaps: {
        'x@example.com': 'team@example.net',
        'y@example.com': 'team@example.net',
      },
    },
    recipients: ['x@example.com', 'y@example.com', 'team@example.net'],
    expectRecipients: ['team@example.net'],
  },
  {
    source: 'virtual(5) ADDRESS EXTENSION: joe+spam@ → joe@ match, extension propagated',
    params: {
      virtualAliasMaps: { 'joe@example.com': 'joseph@example.net' },
      recipientDelimiter: '+',
    },
    recipients: ['joe+spam@example.com'],
    expectRecipients: ['joseph+spam@example.net'],
  },
  {
    source: 'postconf(5) virtual_alias_expansion_limit: exceeded → try again later',
    params: {
      virtualAliasMaps: {
        'list@example.com': 'a@x.example, b@x.example, c@x.example, d@x.example',
      },
      virtualAliasExpansionLimit: 2,
    },
    recipients: ['list@example.com'],
    expectCode: 451,
  },
  {
    source: 'postconf(5) virtual_alias_recursion_limit: exceeded → try again later',
    params: {
      virtualAliasMaps: {
        'a@example.com': 'b@example.com',
        'b@example.com': 'c@example.com',
        'c@example.com': 'd@example.com',
      },
      virtualAliasRecursionLimit: 2,
    },
    recipients: ['a@example.com'],
    expectCode: 451,
  },
  {
    source: 'postconf(5) virtual_alias_address_length_limit: long results are skipped',
    params: {
      virtualAliasMaps: { 'a@example.com': `${'x'.repeat(40)}@example.net, ok@example.net` },
      virtualAliasAddressLengthLimit: 30,
    },
    recipients: ['a@example.com'],
    expectRecipients: ['ok@example.net'],
  },
  {
    source: 'ADDRESS_REWRITING_README masquerade_domains = example.com (sender)',
    params: { masqueradeDomains: ['example.com'] },
    sender: 'joe@host.sub.example.com',
    recipients: ['ann@host.example.com'],
    expectSender: 'joe@example.com',
    // envelope_recipient is not in the default masquerade_classes.
    expectRecipients: ['ann@host.example.com'],
  },
  {
    source: 'postconf(5) masquerade_domains: !sub.example.com excludes',
    params: { masqueradeDomains: ['!sub.example.com', 'example.com'] },
    sender: 'joe@host.sub.example.com',
    recipients: ['ann@example.net'],
    expectSender: 'joe@host.sub.example.com',
  },
  {
    source: 'ADDRESS_REWRITING_README masquerade_exceptions = root',
    params: { masqueradeDomains: ['example.com'], masqueradeExceptions: ['root'] },
    sender: 'root@host.example.com',
    recipients: ['ann@example.net'],
    expectSender: 'root@host.example.com',
  },
  {
    source: 'postconf(5) always_bcc',
    params: { alwaysBcc: 'archive@example.net' },
    recipients: ['bob@example.com'],
    expectRecipients: ['bob@example.com', 'archive@example.net'],
  },
  {
    source: 'postconf(5) sender_bcc_maps / recipient_bcc_maps',
    params: {
      senderBccMaps: { 'alice@example.org': 'sent@example.net' },
      recipientBccMaps: { '@example.com': 'inbound@example.net' },
    },
    recipients: ['bob@example.com'],
    expectRecipients: ['bob@example.com', 'inbound@example.net', 'sent@example.net'],
  },
];

describe('address mapping: canonical(5), virtual(5), masquerading, BCC', () => {
  for (const c of cases) {
    it(c.source, async () => {
      const r = await run(c.params, {
        ...(c.sender !== undefined ? { sender: c.sender } : {}),
        recipients: c.recipients,
      });
      expect(r.code).toBe(c.expectCode ?? 250);
      if (c.expectSender !== undefined) expect(r.sender).toBe(c.expectSender);
      if (c.expectRecipients !== undefined) expect(r.recipients).toEqual(c.expectRecipients);
    });
  }

  it('defers when virtual_alias_maps cannot answer (TableError retry)', async () => {
    const h = await harness({
      virtualAliasMaps: () => {
        throw new Error('LDAP down');
      },
    });
    const result = await submit(h, {
      sender: 'a@example.org',
      recipients: ['b@example.com'],
      content: CONTENT,
    });
    expect(result.reply.code).toBe(451);
    expect(await incoming(h.store)).toEqual([]);
  });
});

describe('header addresses', () => {
  it('qualifies and maps header addresses of local mail, keeping display names', async () => {
    const r = await run(
      { canonicalMaps: { 'joe@old.example': 'joseph@new.example' } },
      {
        source: LOOPBACK,
        recipients: ['bob@example.com'],
        content:
          'From: "Joe (the boss)" <joe@old.example>\r\nTo: ann, Bob <bob@example.com>\r\nCc: team: x@old.example, joe@old.example;\r\nSubject: joe@old.example\r\n\r\nb\r\n',
      },
    );
    expect(r.content).toContain('From: "Joe (the boss)" <joseph@new.example>\r\n');
    expect(r.content).toContain('To: ann@mx.example.com, Bob <bob@example.com>\r\n');
    expect(r.content).toContain('Cc: team: x@old.example, joseph@new.example;\r\n');
    expect(r.content).toContain('Subject: joe@old.example\r\n');
  });

  it('leaves headers of remote mail alone when remoteHeaderRewriteDomain is empty', async () => {
    const r = await run(
      { canonicalMaps: { 'joe@old.example': 'joseph@new.example' } },
      {
        source: REMOTE,
        recipients: ['bob@example.com'],
        content: 'From: joe@old.example\r\nTo: ann\r\n\r\nb\r\n',
      },
    );
    expect(r.content).toContain('From: joe@old.example\r\nTo: ann\r\n');
  });

  it('qualifies remote header addresses with remoteHeaderRewriteDomain', async () => {
    const r = await run(
      { remoteHeaderRewriteDomain: 'domain.invalid' },
      {
        source: REMOTE,
        recipients: ['bob@example.com'],
        content: 'From: joe\r\nTo: ann@example.com\r\n\r\nb\r\n',
      },
    );
    expect(r.content).toContain('From: joe@domain.invalid\r\nTo: ann@example.com\r\n');
  });

  it('masquerades header senders and recipients (default masquerade_classes)', async () => {
    const r = await run(
      { masqueradeDomains: ['example.com'] },
      {
        source: LOOPBACK,
        recipients: ['bob@example.com'],
        content: 'From: joe@host.example.com\r\nTo: ann@mail.example.com\r\n\r\nb\r\n',
      },
    );
    expect(r.content).toContain('From: joe@example.com\r\nTo: ann@example.com\r\n');
  });
});

describe('sendmail -t and undisclosed_recipients_header', () => {
  it('takes To, Cc and Bcc as recipients and still removes Bcc (sendmail(1) -t)', async () => {
    const r = await run(
      {},
      {
        source: { component: 'pickup', protocol: 'local', localUser: 'joe' },
        recipients: [],
        actions: [{ type: 'extractRecipients' }],
        content:
          'From: joe\r\nTo: Ann <ann@example.com>, bob@example.com\r\nCc: carl\r\nBcc: dave@example.net\r\n\r\nb\r\n',
      },
    );
    expect(r.code).toBe(250);
    expect(r.recipients).toEqual([
      'ann@example.com',
      'bob@example.com',
      'carl@mx.example.com',
      'dave@example.net',
    ]);
    expect(r.content).not.toContain('Bcc:');
  });

  it('takes only Resent- recipients when the message has Resent- headers', async () => {
    const r = await run(
      {},
      {
        source: { component: 'pickup', protocol: 'local' },
        recipients: [],
        actions: [{ type: 'extractRecipients' }],
        content:
          'To: old@example.com\r\nResent-From: joe@example.com\r\nResent-To: new@example.com\r\n\r\nb\r\n',
      },
    );
    expect(r.recipients).toEqual(['new@example.com']);
  });

  it('adds undisclosedRecipientsHeader for local mail without To or Cc', async () => {
    const withHeader = await run(
      { undisclosedRecipientsHeader: 'To: undisclosed-recipients:;' },
      {
        source: LOOPBACK,
        recipients: ['bob@example.com'],
        content: 'From: a@example.org\r\nSubject: s\r\n\r\nb\r\n',
      },
    );
    expect(withHeader.content).toContain('To: undisclosed-recipients:;\r\n\r\nb');
    const byDefault = await run(
      {},
      {
        source: LOOPBACK,
        recipients: ['bob@example.com'],
        content: 'From: a@example.org\r\n\r\nb\r\n',
      },
    );
    expect(byDefault.content).not.toContain('undisclosed');
  });
});
