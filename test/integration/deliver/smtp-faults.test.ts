import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { LmtpDeliveryAgent } from '../../../src/deliver/smtp/lmtp-agent.js';
import { SmtpDeliveryAgent } from '../../../src/deliver/smtp/smtp-agent.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { type FakeScript, FakeSmtpServer, unstuff } from './fake-smtp-server.js';
import { Collector, DEFAULT_CONTENT, makeRequest } from './request.js';

const servers: FakeSmtpServer[] = [];
const agents: { close(): Promise<void> }[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  for (const s of servers.splice(0)) await s.close();
});

async function server(script: FakeScript = {}): Promise<{ s: FakeSmtpServer; port: number }> {
  const s = new FakeSmtpServer(script);
  servers.push(s);
  return { s, port: await s.listen() };
}

function smtpAgent(extra: Record<string, unknown> = {}): SmtpDeliveryAgent {
  const a = new SmtpDeliveryAgent({
    params: resolveParameters({
      myhostname: 'postern.test',
      smtpTlsSecurityLevel: 'none',
      ...extra,
    }),
  });
  agents.push(a);
  return a;
}

function lmtpAgent(extra: Record<string, unknown> = {}): LmtpDeliveryAgent {
  const a = new LmtpDeliveryAgent({
    params: resolveParameters({ myhostname: 'postern.test', ...extra }),
  });
  agents.push(a);
  return a;
}

const RCPTS = ['a@example.net', 'b@example.net', 'c@example.net'];

async function run(agent: SmtpDeliveryAgent, nexthop: string, recipients = RCPTS, more = {}) {
  const c = new Collector();
  await agent.deliver(makeRequest({ nexthop, recipients, ...more }), c);
  return c;
}

describe('SmtpDeliveryAgent against a fault-injecting server', () => {
  it('delivers with PIPELINING, dot-stuffs the body and reports relay=', async () => {
    const { s, port } = await server();
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    const r = c.results.get(0)!;
    expect(r.relay).toBe(`127.0.0.1[127.0.0.1]:${port}`);
    expect(r.reply.code).toBe(250);
    expect(r.action).toBe('relayed'); // the server offers no DSN
    expect(c.destinationStatus).toEqual({ ok: true });
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]!.raw).toContain('\r\n..leading dot\r\n');
    expect(unstuff(s.messages[0]!.raw)).toBe(DEFAULT_CONTENT);
    // MAIL, 3 RCPT and DATA went as one group
    expect(s.commands.slice(1, 6).map((x) => x.split(' ')[0])).toEqual([
      'MAIL',
      'RCPT',
      'RCPT',
      'RCPT',
      'DATA',
    ]);
  });

  it('defers everything on a 4xx greeting and reports the destination as failing', async () => {
    const { port } = await server({ greeting: '421 4.3.2 busy' });
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    expect(c.results.get(0)!.reply.code).toBe(421);
  });

  it('moves on to the next server after a 5xx greeting (smtpSkip5xxGreeting)', async () => {
    const bad = await server({ greeting: '554 5.7.1 go away' });
    const good = await server();
    const c = await run(smtpAgent(), `[127.0.0.1]:${bad.port}, [127.0.0.1]:${good.port}`);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(good.s.messages).toHaveLength(1);
  });

  it('bounces on a 5xx greeting when smtpSkip5xxGreeting is off', async () => {
    const { port } = await server({ greeting: '554 5.7.1 go away' });
    const c = await run(smtpAgent({ smtpSkip5xxGreeting: false }), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['bounced', 'bounced', 'bounced']);
    expect(c.results.get(0)!.reply.enhanced).toBe('5.7.1');
  });

  it('tries the next address when a connection is refused (4.4.1 when all fail)', async () => {
    const { s, port } = await server();
    const dead = await server();
    const deadPort = dead.port;
    await dead.s.close();
    servers.splice(servers.indexOf(dead.s), 1);
    const c = await run(smtpAgent(), `[127.0.0.1]:${deadPort} [127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(s.messages).toHaveLength(1);
    const c2 = await run(smtpAgent(), `[127.0.0.1]:${deadPort}`);
    expect(c2.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    expect(c2.results.get(0)!.reply.enhanced).toBe('4.4.1');
    expect(c2.destinationStatus?.ok).toBe(false);
  });

  it('bounces all on MAIL 5xx and defers all on MAIL 4xx', async () => {
    const five = await server({ mail: '553 5.1.8 bad sender' });
    const c = await run(smtpAgent(), `[127.0.0.1]:${five.port}`);
    expect(c.statuses()).toEqual(['bounced', 'bounced', 'bounced']);
    expect(c.results.get(1)!.reply.toString()).toMatch(/^553 5\.1\.8 .*MAIL FROM/);
    const four = await server({ mail: '451 4.3.0 try later' });
    const c2 = await run(smtpAgent(), `[127.0.0.1]:${four.port}`);
    expect(c2.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
  });

  it('applies RCPT replies per recipient', async () => {
    const { s, port } = await server({
      rcpt: (a) =>
        a.startsWith('b@')
          ? '550 5.1.1 no such user'
          : a.startsWith('c@')
            ? '450 4.2.0 greylisted'
            : '250 2.1.5 Ok',
    });
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['sent', 'bounced', 'deferred']);
    expect(c.results.get(1)!.reply.enhanced).toBe('5.1.1');
    expect(c.results.get(2)!.reply.enhanced).toBe('4.2.0');
    expect(s.messages[0]!.to).toEqual(['a@example.net']);
  });

  it('bounces the accepted recipients on a DATA 5xx', async () => {
    const { port } = await server({ data: '554 5.6.0 content refused' });
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['bounced', 'bounced', 'bounced']);
  });

  it('bounces on a 5xx to "." and defers on a 4xx', async () => {
    const five = await server({ dataDone: () => '554 5.7.1 spam' });
    expect((await run(smtpAgent(), `[127.0.0.1]:${five.port}`)).statuses()).toEqual([
      'bounced',
      'bounced',
      'bounced',
    ]);
    const four = await server({ dataDone: () => '452 4.3.1 disk full' });
    expect((await run(smtpAgent(), `[127.0.0.1]:${four.port}`)).statuses()).toEqual([
      'deferred',
      'deferred',
      'deferred',
    ]);
  });

  it('defers with 4.4.2 when the connection drops mid-DATA, and does not try another server', async () => {
    const body = `Subject: big\r\n\r\n${'x'.repeat(70)}\r\n`.repeat(2000);
    const drop = await server({ dropMidData: 5000 });
    const other = await server();
    const c = await run(smtpAgent(), `[127.0.0.1]:${drop.port}, [127.0.0.1]:${other.port}`, RCPTS, {
      content: body,
    });
    expect(c.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    expect(c.results.get(0)!.reply.enhanced).toBe('4.4.2');
    expect(c.results.get(0)!.reply.text).toMatch(/lost connection/);
    expect(other.s.messages).toHaveLength(0);
  });

  it('defers when a stage stalls past its timeout', async () => {
    const { port } = await server({ stall: 'dataDone' });
    const c = await run(smtpAgent({ smtpDataDoneTimeout: '300ms' }), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    expect(c.results.get(0)!.reply.text).toMatch(/timed out while sending end of data/);
    const g = await server({ stall: 'greeting' });
    const c2 = await run(smtpAgent({ smtpHeloTimeout: '300ms' }), `[127.0.0.1]:${g.port}`);
    expect(c2.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    expect(c2.results.get(0)!.reply.text).toMatch(/greeting/);
  });

  it('refuses early when the message exceeds the server SIZE (5.3.4)', async () => {
    const { s, port } = await server({ features: ['SIZE 100', 'PIPELINING'] });
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`, RCPTS, { size: 5000 });
    expect(c.statuses()).toEqual(['bounced', 'bounced', 'bounced']);
    expect(c.results.get(0)!.reply.toString()).toMatch(
      /^552 5\.3\.4 message size 5000 exceeds size limit 100 of server/,
    );
    expect(s.commands.some((x) => x.startsWith('MAIL'))).toBe(false);
  });

  it('bounces as a mail loop when the server greets with our own name (5.4.6)', async () => {
    const { port } = await server({ hostname: 'postern.test' });
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['bounced', 'bounced', 'bounced']);
    expect(c.results.get(0)!.reply.enhanced).toBe('5.4.6');
  });

  it('falls back to HELO and works without PIPELINING', async () => {
    const { s, port } = await server({ features: null });
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(s.commands.some((x) => x.startsWith('HELO postern.test'))).toBe(true);
  });

  it('normalises a reply whose enhanced status disagrees with its code', async () => {
    const { port } = await server({ dataDone: () => '250 5.0.0 odd but fine' });
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(c.results.get(0)!.reply.enhanced).toBe('2.0.0');
  });

  it('survives garbage instead of a reply (protocol error, deferred)', async () => {
    const { port } = await server({ mail: 'HTTP/1.1 400 Bad Request' });
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['deferred', 'deferred', 'deferred']);
    expect(c.results.get(0)!.reply.enhanced).toBe('4.5.0');
  });

  it('reuses a cached session for the next message, with RSET', async () => {
    const { s, port } = await server();
    const agent = smtpAgent();
    await run(agent, `[127.0.0.1]:${port}`);
    await run(agent, `[127.0.0.1]:${port}`);
    expect(s.connections).toBe(1);
    expect(s.messages).toHaveLength(2);
    expect(s.commands).toContain('RSET');
    expect(agent.stats).toEqual({ opened: 1, reused: 1 });
  });

  it('sends the RSET probe of a cached session in one group with MAIL, RCPT and DATA', async () => {
    const { s, port } = await server();
    const agent = smtpAgent();
    await run(agent, `[127.0.0.1]:${port}`);
    await run(agent, `[127.0.0.1]:${port}`);
    expect(s.messages).toHaveLength(2);
    // One write, one read on the server: no round trip for the probe alone.
    expect(s.reads).toContain(
      `RSET\r\nMAIL FROM:<sender@example.org> SIZE=${DEFAULT_CONTENT.length}\r\n${RCPTS.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`,
    );
    expect(agent.stats).toEqual({ opened: 1, reused: 1 });
  });

  it('probes a cached session with RSET alone when the server does not pipeline', async () => {
    const { s, port } = await server({ features: ['8BITMIME'] });
    const agent = smtpAgent();
    await run(agent, `[127.0.0.1]:${port}`);
    const c = await run(agent, `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(s.reads).toContain('RSET\r\n');
    expect(agent.stats).toEqual({ opened: 1, reused: 1 });
  });

  it('drops a cached session whose pipelined RSET probe is refused and delivers over a new one', async () => {
    const { s, port } = await server({ rset: '421 4.3.2 Service shutting down' });
    const agent = smtpAgent();
    await run(agent, `[127.0.0.1]:${port}`);
    const c = await run(agent, `[127.0.0.1]:${port}`);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    expect(s.connections).toBe(2);
    // The refused session never got a body; the new one did.
    expect(s.messages).toHaveLength(2);
    expect(agent.stats).toEqual({ opened: 2, reused: 0 });
  });

  it('writes a small body and its end-of-data dot in one write', async () => {
    const { s, port } = await server();
    // The content comes as a queue file does: in reads that end on later turns.
    const half = DEFAULT_CONTENT.length >> 1;
    async function* fromFile(): AsyncGenerator<Buffer> {
      yield Buffer.from(DEFAULT_CONTENT.slice(0, half));
      await new Promise(setImmediate);
      yield Buffer.from(DEFAULT_CONTENT.slice(half));
      await new Promise(setImmediate);
    }
    const c = new Collector();
    const request = makeRequest({ nexthop: `[127.0.0.1]:${port}`, recipients: RCPTS });
    await smtpAgent().deliver({ ...request, openContent: () => Readable.from(fromFile()) }, c);
    expect(c.statuses()).toEqual(['sent', 'sent', 'sent']);
    const stuffed = DEFAULT_CONTENT.replace(/^\./gm, '..');
    expect(s.reads).toContain(`${stuffed}.\r\n`);
  });

  it('passes DSN parameters on when the server offers DSN', async () => {
    const { s, port } = await server({ features: ['PIPELINING', 'DSN'] });
    const c = new Collector();
    await smtpAgent().deliver(
      makeRequest({
        nexthop: `[127.0.0.1]:${port}`,
        recipients: ['a@example.net'],
        notify: ['SUCCESS', 'FAILURE'],
      }),
      c,
    );
    expect(c.results.get(0)!.action).toBeUndefined();
    expect(s.messages[0]!.rcptLines[0]).toBe(
      'RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@example.net',
    );
  });

  it('bounces with 5.6.7 when SMTPUTF8 is needed and not offered', async () => {
    const { port } = await server();
    const c = await run(smtpAgent(), `[127.0.0.1]:${port}`, ['jösé@example.net'], {
      smtputf8: true,
    });
    expect(c.statuses()).toEqual(['bounced']);
    expect(c.results.get(0)!.reply.enhanced).toBe('5.6.7');
  });
});

describe('LmtpDeliveryAgent against a fault-injecting server', () => {
  it('reports each per-recipient reply; a drop after two keeps those two sent', async () => {
    const { s, port } = await server({ dropAfterReplies: 2 });
    const c = new Collector();
    await lmtpAgent().deliver(
      makeRequest({ nexthop: `inet:127.0.0.1:${port}`, recipients: RCPTS, transport: 'lmtp' }),
      c,
    );
    expect(c.statuses()).toEqual(['sent', 'sent', 'deferred']);
    expect(c.results.get(2)!.reply.enhanced).toBe('4.4.2');
    expect(s.commands[0]).toBe('LHLO postern.test');
  });

  it('bounces an unknown user at RCPT and delivers the others', async () => {
    const { port } = await server({
      rcpt: (a) =>
        a.startsWith('b@') ? "550 5.1.1 <b@example.net> User doesn't exist" : '250 2.1.5 OK',
      dataDone: (i) => (i === 1 ? '452 4.2.2 mailbox full' : '250 2.0.0 Saved'),
    });
    const c = new Collector();
    await lmtpAgent().deliver(
      makeRequest({ nexthop: `127.0.0.1:${port}`, recipients: RCPTS, transport: 'lmtp' }),
      c,
    );
    expect(c.statuses()).toEqual(['sent', 'bounced', 'deferred']);
  });
});
