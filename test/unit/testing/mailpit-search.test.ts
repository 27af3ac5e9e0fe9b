import { describe, expect, it } from 'vitest';
import { parseCapturedMessage } from '../../../src/testing/captured-message.js';
import { compileSearch, searchTerms } from '../../../src/testing/mailpit-search.js';

async function message(headers: string, body: string, recipients: string[]) {
  return parseCapturedMessage(Buffer.from(`${headers}\r\n\r\n${body}\r\n`), {
    queueId: 'Q1',
    sender: 'bounce@example.com',
    recipients,
    deliveredAt: new Date('2026-03-01T12:00:00Z'),
  });
}

describe('Mailpit search filters', () => {
  it('splits terms, keeping quoted phrases whole', () => {
    expect(searchTerms('to:ann subject:"Your order" -from:"x y" plain')).toEqual([
      'to:ann',
      'subject:Your order',
      '-from:x y',
      'plain',
    ]);
  });

  it('matches fields by substring, every term, with negation', async () => {
    const m = await message(
      'From: "Shop Team" <shop@example.com>\r\nTo: Ann <ann@example.org>\r\nCc: cy@example.org\r\nSubject: Your order 1001\r\nMessage-ID: <abc@example.com>',
      'It is on its way.',
      ['ann@example.org', 'cy@example.org', 'hidden@example.net'],
    );
    const hit = (q: string, read = false) => compileSearch(q)(m, read);
    expect(hit('to:ann@example.org')).toBe(true);
    expect(hit('to:ANN')).toBe(true);
    expect(hit('to:cy')).toBe(false);
    expect(hit('cc:cy')).toBe(true);
    expect(hit('bcc:hidden')).toBe(true);
    expect(hit('from:"shop team"')).toBe(true);
    expect(hit('subject:"order 1001"')).toBe(true);
    expect(hit('subject:"order 1002"')).toBe(false);
    expect(hit('message-id:abc@')).toBe(true);
    expect(hit('way')).toBe(true);
    expect(hit('way -way')).toBe(false);
    expect(hit('!from:shop')).toBe(false);
    expect(hit('is:unread')).toBe(true);
    expect(hit('is:read')).toBe(false);
    expect(hit('is:read', true)).toBe(true);
    expect(hit('has:attachment')).toBe(false);
    expect(hit('larger:10')).toBe(true);
    expect(hit('smaller:1k')).toBe(true);
    expect(hit('after:2026-02-01 before:2026-04-01')).toBe(true);
    expect(hit('after:2026-04-01')).toBe(false);
    expect(hit('tag:x')).toBe(false);
    // Words that look like object keys are plain words.
    expect(hit('constructor')).toBe(false);
    expect(hit('- ! "" ---')).toBe(true);
  });
});
