/**
 * The capture server in the test process (createTestMta({ http })): the bounded inbox,
 * mail from every way into the queue, and the API's answers to bad requests.
 */

import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestMta, type TestMta } from '../../../src/testing/index.js';

describe('createTestMta({ http })', () => {
  let mta: TestMta;
  beforeAll(async () => {
    mta = await createTestMta({ http: true, maxMessages: 2 });
  });
  afterAll(async () => {
    await mta.close();
  });

  const api = (path: string, init?: RequestInit) => fetch(`${mta.httpUrl}${path}`, init);
  // biome-ignore lint/suspicious/noExplicitAny: JSON from the API under test
  const json = async (path: string): Promise<any> => (await api(path)).json();

  it('serves on a free loopback port and answers 404 while empty', async () => {
    expect(mta.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await api('/api/v1/message/latest')).status).toBe(404);
    expect((await json('/api/v1/messages')).messages).toEqual([]);
    expect((await api('/nowhere')).status).toBe(404);
    expect((await api('/api/v1/search')).status).toBe(400);
    expect((await api('/api/v1/chaos', { method: 'POST' })).status).toBe(405);
  });

  it('keeps the newest maxMessages, from SMTP and from submit() alike', async () => {
    const mailer = nodemailer.createTransport({ host: mta.host, port: mta.port, ignoreTLS: true });
    await mailer.sendMail({ from: 'a@example.com', to: 'b@example.org', subject: 'one' });
    await mailer.sendMail({ from: 'a@example.com', to: 'b@example.org', subject: 'two' });
    await mta.mta.submit({
      from: 'app@example.com',
      to: ['c@example.org'],
      content: 'Subject: three\n\nfrom code\n',
    });
    expect(mta.messages.map((m) => m.subject)).toEqual(['two', 'three']);
    const list = await json('/api/v1/messages');
    expect(list.total).toBe(2);
    expect(list.messages.map((m: { Subject: string }) => m.Subject)).toEqual(['three', 'two']);
    const latest = await json('/api/v1/message/latest');
    expect(latest).toMatchObject({
      Subject: 'three',
      Text: 'from code',
      ReturnPath: 'app@example.com',
    });
  });

  it('bounds request bodies and refuses malformed JSON', async () => {
    const big = await api('/api/v1/messages', {
      method: 'DELETE',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ IDs: ['x'.repeat(2 * 1024 * 1024)] }),
    });
    expect(big.status).toBe(413);
    const bad = await api('/api/v1/chaos', { method: 'PUT', body: '{nope' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/not JSON/);
    expect(mta.messages).toHaveLength(2);
  });

  it('marks read and unread as Mailpit does', async () => {
    const ids = mta.messages.map((m) => m.queueId);
    // GET /api/v1/message/latest above marked the newest read; start from all unread.
    await api('/api/v1/messages', { method: 'PUT', body: JSON.stringify({ Read: false }) });
    await api('/api/v1/messages', {
      method: 'PUT',
      body: JSON.stringify({ Read: true, IDs: [ids[0]] }),
    });
    const unread = await json('/api/v1/search?query=is:unread');
    expect(unread.messages.map((m: { ID: string }) => m.ID)).toEqual([ids[1]]);
    const both = await api('/api/v1/messages', {
      method: 'PUT',
      body: JSON.stringify({ IDs: ids, Search: 'x' }),
    });
    expect(both.status).toBe(400);
  });
});
