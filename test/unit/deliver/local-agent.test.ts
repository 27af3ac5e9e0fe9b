import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { LocalDeliveryAgent } from '../../../src/deliver/local-agent.js';
import type { DeliveryRequest, DestinationStatus } from '../../../src/deliver/types.js';
import { Logger } from '../../../src/log.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import type { LogEvent, Recipient, RecipientId, RecipientResult } from '../../../src/types.js';

const MESSAGE =
  'Received: by mx.example.com\r\nSubject: hi\r\n\r\nline one\r\n\u00e9t\u00e9 bytes \x00 and \r\nlast\r\n';

let root: string;
let spool: string;

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-local-'));
  spool = path.join(root, 'spool');
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function request(
  recipients: Recipient[],
  content: string | Buffer = MESSAGE,
  extra: Partial<DeliveryRequest> = {},
): DeliveryRequest {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
  return {
    queueId: '0123456789TEST0',
    transport: 'local',
    nexthop: 'mx.example.com',
    sender: 'sender@example.org',
    recipients,
    size: bytes.length,
    bodyType: '8BITMIME',
    smtputf8: false,
    eightBit: true,
    arrivalTime: 0,
    source: { component: 'smtpd', protocol: 'ESMTP' },
    openContent: () =>
      Readable.from([bytes.subarray(0, 7), bytes.subarray(7)], { objectMode: false }),
    signal: new AbortController().signal,
    ...extra,
  };
}

function rcpt(id: number, address: string, originalAddress = address): Recipient {
  return { id, address, originalAddress };
}

async function run(
  agent: LocalDeliveryAgent,
  req: DeliveryRequest,
): Promise<Map<RecipientId, RecipientResult>> {
  const results = new Map<RecipientId, RecipientResult>();
  const destinations: DestinationStatus[] = [];
  await agent.deliver(req, {
    recipient: (id, r) => {
      if (!results.has(id)) results.set(id, r);
    },
    destination: (d) => destinations.push(d),
  });
  return results;
}

/** Every file under `dir`, relative. */
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

function agentFor(
  overrides: Record<string, unknown> = {},
  logs: LogEvent[] = [],
): LocalDeliveryAgent {
  const params = resolveParameters({
    myhostname: 'mx.example.com',
    mailSpoolDirectory: `${spool}/`,
    ...overrides,
  });
  return new LocalDeliveryAgent({
    params,
    clock: new ManualClock(Date.parse('2026-11-29T12:00:00.123Z')),
    logger: new Logger([(e) => logs.push(e)]),
  });
}

describe('LocalDeliveryAgent', () => {
  it('delivers into new/ of a Maildir with Postfix headers and the body byte-exact', async () => {
    const agent = agentFor();
    const results = await run(
      agent,
      request([rcpt(0, 'Alice@mx.example.com', 'alice@mx.example.com')]),
    );
    const r = results.get(0)!;
    expect(r.status).toBe('sent');
    expect(r.reply.toString()).toBe('250 2.0.0 delivered to maildir');
    expect(r.relay).toBe('local');

    const maildir = path.join(spool, 'alice');
    for (const sub of ['tmp', 'new', 'cur']) {
      const st = await fs.stat(path.join(maildir, sub));
      expect(st.isDirectory()).toBe(true);
      expect(st.mode & 0o777).toBe(0o700);
    }
    expect(await fs.readdir(path.join(maildir, 'tmp'))).toEqual([]);
    const files = await fs.readdir(path.join(maildir, 'new'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^1795953600\.V[0-9a-f]+I[0-9a-f]+M123000\.mx\.example\.com$/);
    const file = path.join(maildir, 'new', files[0]!);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    const stored = await fs.readFile(file);
    // Maildir files have LF line ends, as Postfix writes them.
    const head =
      'Return-Path: <sender@example.org>\nX-Original-To: alice@mx.example.com\nDelivered-To: alice@mx.example.com\n';
    const body = Buffer.from(
      Buffer.from(MESSAGE, 'utf8').toString('latin1').replace(/\r\n/g, '\n'),
      'latin1',
    );
    expect(stored.equals(Buffer.concat([Buffer.from(head), body]))).toBe(true);
  });

  it('strips the address extension at recipientDelimiter and writes <> for the null sender', async () => {
    const agent = agentFor({ recipientDelimiter: '+-' });
    const results = await run(
      agent,
      request([rcpt(3, 'bob+lists@mx.example.com')], MESSAGE, { sender: '' }),
    );
    expect(results.get(3)!.status).toBe('sent');
    const files = await fs.readdir(path.join(spool, 'bob', 'new'));
    const text = await fs.readFile(path.join(spool, 'bob', 'new', files[0]!), 'utf8');
    expect(
      text.startsWith(
        'Return-Path: <>\nX-Original-To: bob+lists@mx.example.com\nDelivered-To: bob+lists@mx.example.com\n',
      ),
    ).toBe(true);
  });

  it('bounces hostile or invalid names and touches nothing outside the spool', async () => {
    const logs: LogEvent[] = [];
    const agent = agentFor({}, logs);
    await fs.mkdir(spool, { recursive: true });
    const before = await tree(root);
    const bad = [
      '../../etc/passwd',
      '.',
      '..',
      'a\0b',
      'x'.repeat(200),
      '.hidden',
      '-dash',
      'a..b',
      'a/b',
      'sp ace',
      '',
    ];
    const recipients = bad.map((local, i) => rcpt(i, `${local}@mx.example.com`));
    const results = await run(agent, request(recipients));
    for (let i = 0; i < bad.length; i++) {
      const r = results.get(i)!;
      expect(r.status, bad[i]).toBe('bounced');
      expect(r.reply.code).toBe(550);
      // Postfix: an empty user name is 5.1.3 "null username", the rest unknown users.
      expect(r.reply.enhanced).toBe(bad[i] === '' ? '5.1.3' : '5.1.1');
      expect(r.reply.text).toMatch(bad[i] === '' ? /null username/ : /unknown user/);
      expect(r.reply.text).not.toContain('\0');
    }
    expect(await tree(root)).toEqual(before);
  });

  it('bounces a forwarding loop when Delivered-To already names the recipient', async () => {
    const agent = agentFor();
    const looped =
      'Delivered-To: other@example.org\r\nDELIVERED-TO:\r\n  Carol@mx.example.com\r\nSubject: x\r\n\r\nbody\r\n';
    const results = await run(agent, request([rcpt(0, 'carol@mx.example.com')], looped));
    const r = results.get(0)!;
    expect(r.status).toBe('bounced');
    expect(r.reply.toString()).toBe(
      '554 5.4.6 <carol@mx.example.com>: mail forwarding loop for carol@mx.example.com',
    );
    // Detected before anything is written.
    expect(await tree(root)).toEqual([]);

    // A Delivered-To in the body is not a loop.
    const ok = await run(
      agent,
      request(
        [rcpt(0, 'carol@mx.example.com')],
        'Subject: x\r\n\r\nDelivered-To: carol@mx.example.com\r\n',
      ),
    );
    expect(ok.get(0)!.status).toBe('sent');
  });

  it('delivers to an mbox file per user when the spool does not end in /', async () => {
    const agent = agentFor({ mailSpoolDirectory: spool });
    await fs.mkdir(spool, { recursive: true });
    const r = (await run(agent, request([rcpt(0, 'alice@mx.example.com')]))).get(0)!;
    expect(r.reply.toString()).toBe('250 2.0.0 delivered to mailbox');
    const text = await fs.readFile(path.join(spool, 'alice'), 'latin1');
    expect(text).toBe(
      'From sender@example.org  Sun Nov 29 12:00:00 2026\n' +
        'Return-Path: <sender@example.org>\nX-Original-To: alice@mx.example.com\n' +
        'Delivered-To: alice@mx.example.com\n' +
        Buffer.from(MESSAGE, 'utf8').toString('latin1').replace(/\r\n/g, '\n') +
        '\n',
    );
    expect((await fs.stat(path.join(spool, 'alice'))).mode & 0o777).toBe(0o600);
  });

  it('defers on file-system errors and when the content cannot be read', async () => {
    const logs: LogEvent[] = [];
    const agent = agentFor({}, logs);
    await fs.mkdir(spool, { recursive: true });
    await fs.writeFile(path.join(spool, 'dave'), 'a file where the Maildir should be');
    const r = (await run(agent, request([rcpt(0, 'dave@mx.example.com')]))).get(0)!;
    expect(r.status).toBe('deferred');
    expect(r.reply.code).toBeGreaterThanOrEqual(400);
    expect(r.reply.code).toBeLessThan(500);
    expect(r.reply.text).toMatch(/maildir delivery failed/);
    expect(logs.some((l) => l.level === 'warning')).toBe(true);

    const broken = request([rcpt(0, 'erin@mx.example.com')], MESSAGE, {
      openContent: () =>
        new Readable({
          read() {
            this.destroy(new Error('queue file vanished'));
          },
        }),
    });
    const r2 = (await run(agent, broken)).get(0)!;
    expect(r2.status).toBe('deferred');
    expect(r2.reply.toString()).toMatch(/^451 4\.3\.0 .*queue file vanished/);
    expect(await fs.readdir(path.join(spool, 'erin')).catch(() => [])).toEqual([]);

    const gone = request([rcpt(0, 'erin@mx.example.com')], MESSAGE, {
      openContent: () => {
        throw new Error('no such message');
      },
    });
    const r3 = (await run(agent, gone)).get(0)!;
    expect(r3.status).toBe('deferred');
    expect(r3.reply.text).toMatch(/cannot read the queued message: no such message/);
  });

  it('stops when the signal is aborted and leaves no temporary file', async () => {
    const agent = agentFor();
    const controller = new AbortController();
    let opened = 0;
    const slow = (): Readable => {
      let pushed = 0;
      const first = opened++ === 0;
      return new Readable({
        read() {
          if (pushed++ === 0) {
            this.push(Buffer.from('Subject: x\r\n\r\n'));
            if (first) setTimeout(() => controller.abort(), 5);
            setTimeout(() => this.push(Buffer.from('more\r\n')), 20);
            setTimeout(() => this.push(null), 30);
          }
        },
      });
    };
    const req = request(
      [rcpt(0, 'frank@mx.example.com'), rcpt(1, 'gina@mx.example.com')],
      MESSAGE,
      {
        openContent: slow,
        signal: controller.signal,
      },
    );
    const results = await run(agent, req);
    expect(results.get(0)!.status).toBe('deferred');
    expect(results.has(1)).toBe(false);
    expect(await fs.readdir(path.join(spool, 'frank', 'tmp'))).toEqual([]);
    expect(await fs.readdir(path.join(spool, 'frank', 'new'))).toEqual([]);
  });

  it('delivers concurrently into one Maildir with unique names', async () => {
    const agent = agentFor();
    const runs = Array.from({ length: 20 }, () =>
      run(agent, request([rcpt(0, 'henry@mx.example.com')])),
    );
    const all = await Promise.all(runs);
    expect(all.every((m) => m.get(0)!.status === 'sent')).toBe(true);
    expect(await fs.readdir(path.join(spool, 'henry', 'new'))).toHaveLength(20);
  });
});
