import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { PipeDeliveryAgent, pipeAgentFromConfig } from '../../../src/deliver/pipe-agent.js';
import type { DeliveryRequest } from '../../../src/deliver/types.js';
import { ConfigError } from '../../../src/errors.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import type { Recipient, RecipientId, RecipientResult } from '../../../src/types.js';

const MESSAGE = 'Subject: pipe\r\n\r\nFrom the start\r\n.dot line\r\nend\r\n';
let dir: string;
let script: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-pipe-'));
  script = path.join(dir, 'cmd.sh');
  // argv: OUT CODE TEXT [args...]: records argv (NUL-separated) and stdin, prints TEXT, exits CODE.
  await fs.writeFile(
    script,
    '#!/bin/sh\nout="$1"; code="$2"; text="$3"; shift 3\n' +
      'for a in "$@"; do printf \'%s\\000\' "$a"; done > "$out.argv"\n' +
      'env > "$out.env"\ncat > "$out.msg"\n' +
      'if [ -n "$text" ]; then printf \'%s\\n\' "$text"; fi\n' +
      'if [ "$code" = sleep ]; then sleep 30 & echo $! > "$out.pid"; wait; fi\n' +
      'if [ "$code" = kill ]; then kill -TERM $$; fi\n' +
      'exit "$code"\n',
    { mode: 0o755 },
  );
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const params = resolveParameters({ myhostname: 'mx.example.com', recipientDelimiter: '+' });

function request(recipients: Recipient[], extra: Partial<DeliveryRequest> = {}): DeliveryRequest {
  const bytes = Buffer.from(MESSAGE);
  return {
    queueId: 'PIPETEST0',
    transport: 'filter',
    nexthop: 'Pipe.Example.COM',
    sender: 'sender@example.org',
    recipients,
    size: bytes.length,
    bodyType: '7BIT',
    smtputf8: false,
    eightBit: false,
    arrivalTime: 0,
    source: {
      component: 'smtpd',
      protocol: 'ESMTP',
      client: { address: '192.0.2.7', name: 'client.example' },
    },
    openContent: () => Readable.from([bytes.subarray(0, 3), bytes.subarray(3)]),
    signal: new AbortController().signal,
    ...extra,
  };
}

async function run(
  agent: PipeDeliveryAgent,
  req: DeliveryRequest,
): Promise<Map<RecipientId, RecipientResult>> {
  const results = new Map<RecipientId, RecipientResult>();
  await agent.deliver(req, {
    recipient: (id, r) => results.set(id, r),
    destination: () => undefined,
  });
  return results;
}

/** The process is gone, or a zombie waiting to be reaped (it runs no more). */
async function hasExited(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

let n = 0;
function agent(code: string, text = '', rest: string[] = [], extra: Record<string, unknown> = {}) {
  const out = path.join(dir, `run${n++}`);
  const a = new PipeDeliveryAgent({
    name: 'filter',
    argv: [script, out, code, text, ...rest],
    params,
    ...extra,
  });
  return { a, out };
}

const rcpt = (id: number, address: string): Recipient => ({
  id,
  address,
  originalAddress: address,
});

describe('PipeDeliveryAgent exit status (pipe(8), sysexits)', () => {
  const table: [number, string, 'bounced' | 'deferred'][] = [
    [64, '5.3.0', 'bounced'],
    [65, '5.6.0', 'bounced'],
    [66, '5.3.0', 'bounced'],
    [67, '5.1.1', 'bounced'],
    [68, '5.1.2', 'bounced'],
    [69, '5.3.0', 'bounced'],
    [70, '5.3.0', 'bounced'],
    [71, '4.3.0', 'deferred'],
    [72, '5.3.0', 'bounced'],
    [73, '5.2.0', 'bounced'],
    [74, '5.3.0', 'bounced'],
    [75, '4.3.0', 'deferred'],
    [76, '5.5.0', 'bounced'],
    [77, '5.7.0', 'bounced'],
    [78, '5.3.5', 'bounced'],
  ];
  it.each(table)('exit %i gives %s %s', async (code, dsn, status) => {
    const { a } = agent(String(code));
    const r = (await run(a, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!;
    expect(r.status).toBe(status);
    expect(r.reply.enhanced).toBe(dsn);
    expect(r.relay).toBe('filter');
  });

  it('exit 0 delivers (relayed without X, delivered with X) with the output in the reply', async () => {
    const { a } = agent('0', 'queued as 42');
    const r = (await run(a, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!;
    expect(r.status).toBe('sent');
    expect(r.action).toBe('relayed');
    expect(r.reply.text).toContain('queued as 42');
    const { a: x } = agent('0', '', [], { flags: 'X' });
    expect((await run(x, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!.action).toBe(
      'delivered',
    );
  });

  it('other non-zero statuses bounce 5.3.0 with the printable output', async () => {
    const { a } = agent('3', 'bad\tthing\u0001 happened');
    const r = (await run(a, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!;
    expect(r.status).toBe('bounced');
    expect(r.reply.toString()).toBe('550 5.3.0 Command died with status 3: bad thing_ happened');
  });

  it('a leading D.S.N in the output wins over the exit status', async () => {
    const { a } = agent('1', '4.2.2 mailbox over quota');
    const r = (await run(a, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!;
    expect(r.status).toBe('deferred');
    expect(r.reply.toString()).toBe('450 4.2.2 mailbox over quota');
    const { a: b } = agent('75', '5.7.1 go away');
    expect((await run(b, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!.reply.toString()).toBe(
      '550 5.7.1 go away',
    );
  });

  it('a signal defers 4.3.0; the time limit kills the group and bounces 5.3.0', async () => {
    const { a } = agent('kill');
    const r = (await run(a, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!;
    expect(r.status).toBe('deferred');
    expect(r.reply.text).toMatch(/^Command died with signal 15/);

    // The time limit runs on a clock the test moves once the command has started its child.
    const clock = new ManualClock();
    const { a: slow, out } = agent('sleep', '', [], { timeLimit: 300, clock });
    const running = run(slow, request([rcpt(0, 'u@pipe.example.com')]));
    const child = await vi.waitFor(async () => {
      const pid = Number(await fs.readFile(`${out}.pid`, 'utf8'));
      expect(pid).toBeGreaterThan(0); // the line is written whole
      return pid;
    });
    await clock.advance(300);
    const t = (await running).get(0)!;
    expect(t.status).toBe('bounced');
    expect(t.reply.enhanced).toBe('5.3.0');
    expect(t.reply.text).toMatch(/time limit exceeded/);
    // The whole process group was killed: the command's own child too.
    await vi.waitFor(async () => expect(await hasExited(child)).toBe(true));
  });

  it('a missing program bounces 5.3.0', async () => {
    const a = new PipeDeliveryAgent({ name: 'filter', argv: [path.join(dir, 'nope')], params });
    const r = (await run(a, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!;
    expect(r.status).toBe('bounced');
    expect(r.reply.text).toMatch(/cannot be run/);
  });
});

describe('PipeDeliveryAgent argv and content', () => {
  const argvOf = async (out: string) =>
    (await fs.readFile(`${out}.argv`, 'utf8')).split('\0').slice(0, -1);

  it('gives ${recipient} with quotes and spaces as one argv element per recipient, never via a shell', async () => {
    const hostile = [
      'john "q" doe@pipe.example.com',
      '|rm -rf /@pipe.example.com',
      '$(touch pwned) `id`; ${sender}@pipe.example.com',
    ];
    const { a, out } = agent('0', '', [
      '-f',
      '${sender}',
      '--',
      '${recipient}',
      'n=${nexthop}',
      '$$x',
    ]);
    const res = await run(a, request(hostile.map((h, i) => rcpt(i, h))));
    expect([...res.values()].every((r) => r.status === 'sent')).toBe(true);
    expect(await argvOf(out)).toEqual([
      '-f',
      'sender@example.org',
      '--',
      ...hostile,
      'n=Pipe.Example.COM',
      '$x',
    ]);
    await expect(fs.access(path.join(process.cwd(), 'pwned'))).rejects.toThrow();
  });

  it('expands user, extension, mailbox, domain and the h/q/u flags', async () => {
    const { a, out } = agent(
      '0',
      '',
      [
        '${user}',
        '${extension}',
        '${mailbox}',
        '${domain}',
        '${recipient}',
        '${nexthop}',
        '${size}',
        '${client_address}',
        '${queue_id}',
      ],
      { flags: 'hqu' },
    );
    await run(a, request([rcpt(0, 'Joe Bloggs+Tag@Pipe.Example.COM')], { sender: '' }));
    expect(await argvOf(out)).toEqual([
      'joe bloggs',
      'tag',
      'joe bloggs+tag',
      'pipe.example.com',
      '"joe bloggs+tag"@pipe.example.com',
      'pipe.example.com',
      String(Buffer.byteLength(MESSAGE)),
      '192.0.2.7',
      'PIPETEST0',
    ]);
  });

  it('writes From_, Return-Path, X-Original-To, Delivered-To, >From quoting, dot-stuffing and LF', async () => {
    const { a, out } = agent('0', '', [], { flags: 'FRODB.>' });
    const r = await run(a, request([rcpt(0, 'u@pipe.example.com'), rcpt(1, 'v@pipe.example.com')]));
    expect(r.get(0)!.status).toBe('sent');
    expect(r.get(1)!.status).toBe('sent');
    // D and O: one run per recipient; the last run's input is in the file.
    const msg = await fs.readFile(`${out}.msg`, 'utf8');
    expect(msg).toMatch(/^From sender@example\.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/);
    expect(msg.slice(msg.indexOf('\n') + 1)).toBe(
      'Return-Path: <sender@example.org>\nX-Original-To: v@pipe.example.com\nDelivered-To: v@pipe.example.com\n' +
        'Subject: pipe\n\n>From the start\n..dot line\nend\n\n',
    );
    const env = await fs.readFile(`${out}.env`, 'utf8');
    expect(env).toMatch(/^PATH=\/usr\/bin:\/bin$/m);
    expect(env).not.toMatch(/^HOME=/m);
  });

  it('D bounces a message that already went through the recipient; size bounces 5.2.3', async () => {
    const { a } = agent('0', '', [], { flags: 'D' });
    const looped = Buffer.from('Delivered-To: u@pipe.example.com\r\n\r\nx\r\n');
    const r = (
      await run(
        a,
        request([rcpt(0, 'u@pipe.example.com')], { openContent: () => Readable.from([looped]) }),
      )
    ).get(0)!;
    expect(r.reply.toString()).toBe('554 5.4.6 mail forwarding loop for u@pipe.example.com');
    const { a: small } = agent('0', '', [], { size: 10 });
    const s = (await run(small, request([rcpt(0, 'u@pipe.example.com')]))).get(0)!;
    expect(s.status).toBe('bounced');
    expect(s.reply.enhanced).toBe('5.2.3');
  });

  it('refuses bad configurations with the key named', () => {
    const t = { type: 'pipe' as const, argv: ['/bin/true', '${nosuch}'] };
    expect(() => pipeAgentFromConfig('f', t, params)).toThrow(/transports\.f\.argv: unknown macro/);
    expect(() =>
      pipeAgentFromConfig(
        'f',
        { type: 'pipe', argv: ['/bin/true'], flags: 'Z', user: 'nobody' },
        params,
      ),
    ).toThrow(/unknown pipe flag "Z"/);
    expect(() =>
      pipeAgentFromConfig('f', { type: 'pipe', argv: ['/bin/true'], user: 'root' }, params),
    ).toThrow(ConfigError);
    expect(() => pipeAgentFromConfig('f', { type: 'pipe', argv: [] }, params)).toThrow(
      /transports\.f\.argv/,
    );
    const ok = pipeAgentFromConfig(
      'f',
      { type: 'pipe', argv: ['/bin/true'], user: 'nobody', timeLimit: '60s' },
      params,
    );
    expect(ok).toBeInstanceOf(PipeDeliveryAgent);
  });
});
