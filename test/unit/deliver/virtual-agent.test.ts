import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeliveryRequest } from '../../../src/deliver/types.js';
import { VirtualDeliveryAgent } from '../../../src/deliver/virtual-agent.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { FunctionTable } from '../../../src/tables/lookup-table.js';
import type { RecipientId, RecipientResult } from '../../../src/types.js';

let base: string;
beforeEach(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-virtual-'));
});
afterEach(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

const BODY = 'Subject: v\r\n\r\nFrom here\r\n';
function request(addresses: string[], extra: Partial<DeliveryRequest> = {}): DeliveryRequest {
  const bytes = Buffer.from(BODY);
  return {
    queueId: 'VIRT0',
    transport: 'virtual',
    nexthop: 'example.net',
    sender: 's@example.org',
    recipients: addresses.map((a, i) => ({ id: i, address: a, originalAddress: a })),
    size: bytes.length,
    bodyType: '7BIT',
    smtputf8: false,
    eightBit: false,
    arrivalTime: 0,
    source: { component: 'smtpd', protocol: 'ESMTP' },
    openContent: () => Readable.from([bytes]),
    signal: new AbortController().signal,
    ...extra,
  };
}
async function run(
  agent: VirtualDeliveryAgent,
  req: DeliveryRequest,
): Promise<Map<RecipientId, RecipientResult>> {
  const results = new Map<RecipientId, RecipientResult>();
  await agent.deliver(req, {
    recipient: (id, r) => results.set(id, r),
    destination: () => undefined,
  });
  return results;
}

describe('VirtualDeliveryAgent', () => {
  const params = (extra: Record<string, unknown> = {}) =>
    resolveParameters({
      myhostname: 'mx.example.com',
      virtualMailboxBase: base,
      recipientDelimiter: '+',
      // Needed when the tests run as root (virtual(8) then requires numeric ids).
      virtualUidMaps: 'static:1000',
      virtualGidMaps: 'static:1000',
      virtualMailboxMaps: {
        'a@example.net': 'example.net/a/',
        'b@example.net': 'example.net/b',
        '@example.com': 'example.com/catchall/',
      },
      ...extra,
    });

  it('delivers to Maildir and mbox per the table, with user+ext and @domain lookups', async () => {
    const agent = new VirtualDeliveryAgent({ params: params() });
    const res = await run(
      agent,
      request(['a+tag@example.net', 'b@example.net', 'anyone@example.com', 'nobody@example.net']),
    );
    expect(res.get(0)!.reply.toString()).toBe('250 2.0.0 delivered to maildir');
    expect(res.get(1)!.reply.toString()).toBe('250 2.0.0 delivered to mailbox');
    expect(res.get(2)!.status).toBe('sent');
    expect(res.get(3)!.reply.toString()).toMatch(/^550 5\.1\.1 /);
    const [file] = await fs.readdir(path.join(base, 'example.net/a/new'));
    expect(await fs.readFile(path.join(base, 'example.net/a/new', file!), 'utf8')).toBe(
      // Maildir files have LF line ends, as Postfix writes them.
      `Return-Path: <s@example.org>\nX-Original-To: a+tag@example.net\nDelivered-To: a+tag@example.net\n${BODY.replace(/\r\n/g, '\n')}`,
    );
    expect(await fs.readFile(path.join(base, 'example.net/b'), 'utf8')).toMatch(
      /^From s@example\.org {2}.*\nReturn-Path: <s@example\.org>\nX-Original-To: b@example\.net\nDelivered-To: b@example\.net\nSubject: v\n\n>From here\n\n$/,
    );
    expect(res.get(0)!.relay).toBe('virtual');
  });

  it('bounces over virtualMailboxLimit, defers without a base or when the table fails', async () => {
    const small = new VirtualDeliveryAgent({ params: params({ virtualMailboxLimit: 5 }) });
    expect((await run(small, request(['a@example.net']))).get(0)!.reply.enhanced).toBe('5.2.2');
    const nobase = new VirtualDeliveryAgent({ params: params({ virtualMailboxBase: '' }) });
    expect((await run(nobase, request(['a@example.net']))).get(0)!.reply.enhanced).toBe('4.3.5');
    const failing = new VirtualDeliveryAgent({
      params: params(),
      mailboxes: new FunctionTable('fn', () => {
        throw new Error('db down');
      }),
    });
    const r = (await run(failing, request(['a@example.net']))).get(0)!;
    expect(r.status).toBe('deferred');
    expect(r.reply.enhanced).toBe('4.3.0');
  });

  it('bounces a Delivered-To loop', async () => {
    const agent = new VirtualDeliveryAgent({ params: params() });
    const looped = Buffer.from('Delivered-To: A@example.net\r\n\r\nx\r\n');
    const r = (
      await run(agent, request(['a@example.net'], { openContent: () => Readable.from([looped]) }))
    ).get(0)!;
    expect(r.reply.toString()).toBe('554 5.4.6 mail forwarding loop for a@example.net');
  });
});
