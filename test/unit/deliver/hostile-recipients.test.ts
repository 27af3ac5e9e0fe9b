import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalDeliveryAgent } from '../../../src/deliver/local-agent.js';
import { resolveMailboxPath } from '../../../src/deliver/mailbox-path.js';
import type { DeliveryAgent, DeliveryRequest } from '../../../src/deliver/types.js';
import { VirtualDeliveryAgent } from '../../../src/deliver/virtual-agent.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { InlineTable } from '../../../src/tables/lookup-table.js';
import type { Recipient, RecipientId, RecipientResult } from '../../../src/types.js';

const HOSTILE_LOCAL_PARTS = [
  '../../etc/passwd',
  '|rm -rf /',
  '"|rm -rf /"',
  '/etc/passwd',
  ':include:/etc/passwd',
  'a\0b',
  'x'.repeat(5000),
  '.',
  '..',
  '...',
  '${HOME}',
  '$(id)',
  '`id`',
  'a/../../b',
  'user\r\nX-Injected: yes',
  '-oQ/tmp',
];

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-hostile-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function request(recipients: Recipient[]): DeliveryRequest {
  const bytes = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  return {
    queueId: 'HOSTILE0',
    transport: 'local',
    nexthop: 'example.com',
    sender: 'a@example.org',
    recipients,
    size: bytes.length,
    bodyType: '7BIT',
    smtputf8: false,
    eightBit: false,
    arrivalTime: 0,
    source: { component: 'smtpd', protocol: 'ESMTP' },
    openContent: () => Readable.from([bytes]),
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

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      out.push(path.relative(root, p));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

describe('hostile recipients', () => {
  it.each([
    ['Maildir spool', true],
    ['mbox spool', false],
  ])('local (%s): bounce cleanly, write nothing, run nothing', async (_name, maildir) => {
    const spool = path.join(root, 'spool');
    await fs.mkdir(spool);
    const agent = new LocalDeliveryAgent({
      params: resolveParameters({
        myhostname: 'mx.example.com',
        mydestination: ['example.com'],
        mailSpoolDirectory: maildir ? `${spool}/` : spool,
        recipientDelimiter: '+',
      }),
    });
    const res = await run(
      agent,
      request(
        HOSTILE_LOCAL_PARTS.map((l, i) => ({
          id: i,
          address: `${l}@example.com`,
          originalAddress: `${l}@example.com`,
        })),
      ),
    );
    for (const [i, l] of HOSTILE_LOCAL_PARTS.entries()) {
      const r = res.get(i)!;
      expect(r.status, JSON.stringify(l)).toBe('bounced');
      expect(r.reply.code).toBe(550);
      expect(r.reply.enhanced).toMatch(/^5\.1\.[13]$/);
      expect(r.reply.text).not.toMatch(/[\0\r\n]/);
    }
    expect(await tree(root)).toEqual(['spool']);
  });

  it('virtual: unknown hostile addresses bounce 5.1.1 and table values cannot escape the base', async () => {
    const base = path.join(root, 'vmail');
    await fs.mkdir(base);
    const table = new InlineTable({
      'ok@example.net': 'example.net/ok/',
      'up@example.net': '../outside/',
      'abs@example.net': '/etc/passwd',
      'dot@example.net': 'example.net/./x',
      'ctl@example.net': 'example.net/a\u0001b',
    });
    const agent = new VirtualDeliveryAgent({
      params: resolveParameters({
        myhostname: 'mx.example.com',
        virtualMailboxBase: base,
        virtualUidMaps: 'static:1000',
        virtualGidMaps: 'static:1000',
      }),
      mailboxes: table,
    });
    const addrs = [
      ...HOSTILE_LOCAL_PARTS.map((l) => `${l}@example.net`),
      'up@example.net',
      'abs@example.net',
      'dot@example.net',
      'ctl@example.net',
      'ok@example.net',
    ];
    const res = await run(
      agent,
      request(addrs.map((a, i) => ({ id: i, address: a, originalAddress: a }))),
    );
    for (let i = 0; i < HOSTILE_LOCAL_PARTS.length; i++) {
      expect(res.get(i)!.reply.toString()).toMatch(/^550 5\.1\.1 /);
    }
    for (let i = HOSTILE_LOCAL_PARTS.length; i < addrs.length - 1; i++) {
      expect(res.get(i)!.status, addrs[i]).toBe('deferred');
      expect(res.get(i)!.reply.enhanced).toBe('4.3.5');
    }
    expect(res.get(addrs.length - 1)!.status).toBe('sent');
    expect((await tree(root)).filter((p) => !p.startsWith('vmail'))).toEqual([]);
  });

  it('mailbox paths: the validator refuses every escape', () => {
    for (const bad of [
      '',
      '/abs',
      '../x',
      'a/../../x',
      'a//b',
      './a',
      'a/.',
      'a\0',
      'a\nb',
      `${'x'.repeat(256)}/`,
      'y/'.repeat(3000),
    ]) {
      expect(() => resolveMailboxPath('/base', bad), JSON.stringify(bad)).toThrow();
    }
    expect(resolveMailboxPath('/base', 'd/u/')).toEqual({ path: '/base/d/u', maildir: true });
    expect(resolveMailboxPath('/base', 'd/u')).toEqual({ path: '/base/d/u', maildir: false });
  });
});
