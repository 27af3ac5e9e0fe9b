import { describe, expect, it } from 'vitest';
import { DiscardDeliveryAgent } from '../../../src/deliver/discard-agent.js';
import { ErrorDeliveryAgent, splitNexthopDsn } from '../../../src/deliver/error-agent.js';
import type { DeliveryAgent, DeliveryRequest } from '../../../src/deliver/types.js';
import type { RecipientId, RecipientResult } from '../../../src/types.js';

function request(nexthop: string, transport = 'error'): DeliveryRequest {
  return {
    queueId: '0123456789TEST0',
    transport,
    nexthop,
    sender: 's@example.org',
    recipients: [
      { id: 4, address: 'a@example.net', originalAddress: 'a@example.net' },
      { id: 7, address: 'b@example.net', originalAddress: 'b@example.net' },
    ],
    size: 10,
    bodyType: '7BIT',
    smtputf8: false,
    eightBit: false,
    arrivalTime: 0,
    source: { component: 'smtpd', protocol: 'ESMTP' },
    openContent: () => {
      throw new Error('these agents never read the content');
    },
    signal: new AbortController().signal,
  };
}

async function run(
  agent: DeliveryAgent,
  req: DeliveryRequest,
): Promise<Map<RecipientId, RecipientResult>> {
  const results = new Map<RecipientId, RecipientResult>();
  await agent.deliver(req, {
    recipient: (id, r) => results.set(id, r),
    destination: () => undefined,
  });
  return results;
}

describe('splitNexthopDsn', () => {
  it('takes a leading D.S.N and the text after it', () => {
    expect(splitNexthopDsn('5.1.1 User unknown in virtual alias table', '5.0.0')).toEqual({
      enhanced: '5.1.1',
      text: 'User unknown in virtual alias table',
    });
    expect(splitNexthopDsn('plain text', '5.0.0')).toEqual({
      enhanced: '5.0.0',
      text: 'plain text',
    });
    expect(splitNexthopDsn('4.4.1', '5.0.0')).toEqual({ enhanced: '4.4.1', text: '' });
  });
});

describe('DiscardDeliveryAgent', () => {
  it('reports every recipient sent with the nexthop text', async () => {
    const results = await run(new DiscardDeliveryAgent(), request('2.6.0 spam trap', 'discard'));
    expect([...results.keys()]).toEqual([4, 7]);
    for (const r of results.values()) {
      expect(r.status).toBe('sent');
      expect(r.reply.toString()).toBe('250 2.6.0 spam trap');
    }
  });

  it('says "discarded" without text and never reports a failure class', async () => {
    const plain = await run(new DiscardDeliveryAgent(), request('', 'discard'));
    expect(plain.get(4)!.reply.toString()).toBe('250 2.0.0 discarded');
    const odd = await run(new DiscardDeliveryAgent(), request('5.7.1 odd', 'discard'));
    expect(odd.get(4)!.reply.toString()).toBe('250 2.7.1 odd');
  });
});

describe('ErrorDeliveryAgent', () => {
  it('bounces every recipient with the nexthop reason (default 5.0.0)', async () => {
    const results = await run(
      new ErrorDeliveryAgent({ mode: 'error' }),
      request('5.1.1 User unknown in virtual alias table'),
    );
    for (const r of results.values()) {
      expect(r.status).toBe('bounced');
      expect(r.reply.toString()).toBe('550 5.1.1 User unknown in virtual alias table');
    }
    const plain = await run(new ErrorDeliveryAgent(), request('mail for this domain is refused'));
    expect(plain.get(7)!.reply.toString()).toBe('550 5.0.0 mail for this domain is refused');
  });

  it('defers in error mode when the reason is a 4.x.x status', async () => {
    const results = await run(new ErrorDeliveryAgent(), request('4.4.1 connect refused'));
    expect(results.get(4)!.status).toBe('deferred');
    expect(results.get(4)!.reply.toString()).toBe('450 4.4.1 connect refused');
  });

  it('always defers in retry mode, forcing the status class to 4', async () => {
    const agent = new ErrorDeliveryAgent({ mode: 'retry' });
    const plain = await run(agent, request('delivery temporarily suspended: host down', 'retry'));
    expect(plain.get(4)!.status).toBe('deferred');
    expect(plain.get(4)!.reply.toString()).toBe(
      '450 4.0.0 delivery temporarily suspended: host down',
    );
    const forced = await run(agent, request('5.1.1 would bounce', 'retry'));
    expect(forced.get(7)!.status).toBe('deferred');
    expect(forced.get(7)!.reply.enhanced).toBe('4.1.1');
  });

  it('keeps hostile reason text on one printable line', async () => {
    const results = await run(new ErrorDeliveryAgent(), request('5.0.0 bad\r\n250 ok\0'));
    const text = results.get(4)!.reply.toWire();
    expect(text.split('\r\n').filter(Boolean)).toHaveLength(1);
  });
});
