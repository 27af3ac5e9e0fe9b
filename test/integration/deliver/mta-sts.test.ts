/**
 * MTA-STS end to end: a real HTTPS policy host and real SMTP servers on 127.0.0.1, with
 * certificates for mta-sts.example.com and mx.example.com from a test CA, and a fake
 * Resolver that points those names (and the `_mta-sts` TXT record and the MX) there.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { MtaStsResolver } from '../../../src/deliver/smtp/mta-sts-cache.js';
import { SmtpDeliveryAgent } from '../../../src/deliver/smtp/smtp-agent.js';
import type { DeliveryAgent, TransportConfig } from '../../../src/deliver/types.js';
import type { ComponentLogger } from '../../../src/log.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { Mta } from '../../../src/mta/mta.js';
import type { Clock, MxRecord, Resolver } from '../../../src/types.js';
import { testCertificates } from '../../helpers/tls-cert.js';
import { Collector, makeRequest } from './request.js';

interface Pem {
  readonly key: string;
  readonly cert: string;
}

let dir: string;
let caFile: string;
let ca: string;
let stsCert: Pem;
let mxCert: Pem;

/** A key and a certificate for `name`, signed by the shared test CA. */
function issue(name: string): Pem {
  const base = testCertificates();
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(
    join(dir, `${name}.cnf`),
    `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  run(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    ]),
  );
  run([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    join(base.dir, 'ca.pem'),
    '-CAkey',
    join(base.dir, 'ca.key'),
    '-set_serial',
    String(Math.floor(Math.random() * 1e9) + 1),
    '-days',
    '2',
    '-extfile',
    `${name}.cnf`,
    '-out',
    `${name}.pem`,
  ]);
  return {
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-mta-sts-'));
  ca = testCertificates().ca;
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca);
  stsCert = issue('mta-sts.example.com');
  mxCert = issue('mx.example.com');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function dnsError(code: string, name: string): Error {
  return Object.assign(new Error(`${code} ${name}`), { code });
}

/** DNS for example.com, changeable per test. */
class FakeResolver implements Resolver {
  txt: string[][] | Error = [['v=STSv1; id=policy1;']];
  mx: MxRecord[] = [{ exchange: 'mx.example.com', priority: 10 }];
  readonly a = new Map<string, string[]>([
    ['mta-sts.example.com', ['127.0.0.1']],
    ['mx.example.com', ['127.0.0.1']],
    ['mx2.example.com', ['127.0.0.1']],
    ['mx.other.example.net', ['127.0.0.1']],
  ]);
  txtQueries = 0;
  /** Names asked for A records, in order. */
  readonly aQueries: string[] = [];

  async resolveMx(name: string): Promise<MxRecord[]> {
    if (name === 'example.com') return this.mx;
    throw dnsError('ENOTFOUND', name);
  }
  async resolve4(name: string): Promise<string[]> {
    this.aQueries.push(name);
    const a = this.a.get(name);
    if (a) return a;
    throw dnsError('ENOTFOUND', name);
  }
  async resolve6(name: string): Promise<string[]> {
    throw dnsError(this.a.has(name) ? 'ENODATA' : 'ENOTFOUND', name);
  }
  async reverse(): Promise<string[]> {
    return [];
  }
  async resolveTxt(name: string): Promise<string[][]> {
    if (name !== '_mta-sts.example.com') throw dnsError('ENOTFOUND', name);
    this.txtQueries++;
    if (this.txt instanceof Error) throw this.txt;
    return this.txt;
  }
}

const ENFORCE = 'version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n';

/** The policy host: answers every GET with `answer`, counting requests. */
class PolicyHost {
  readonly server: Server;
  readonly paths: string[] = [];
  answer: { status: number; type?: string; body: string; headers?: Record<string, string> } = {
    status: 200,
    type: 'text/plain',
    body: ENFORCE,
  };

  constructor(pem: Pem) {
    this.server = createServer({ key: pem.key, cert: pem.cert }, (req, res) => {
      this.paths.push(req.url ?? '');
      const a = this.answer;
      res.writeHead(a.status, {
        ...(a.type ? { 'Content-Type': a.type } : {}),
        ...(a.headers ?? {}),
      });
      res.end(a.body);
    });
  }

  get requests(): number {
    return this.paths.length;
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface Mx {
  port: number;
  /** Bodies received, with whether the session was TLS. */
  readonly got: { secure: boolean; body: string }[];
  /** MAIL FROM commands seen (in plaintext or not). */
  mailFrom: number;
  connections: number;
}

const smtpServers: SMTPServer[] = [];
const agents: SmtpDeliveryAgent[] = [];
let policyHost: PolicyHost;
let httpsPort: number;
let dns: FakeResolver;
let logs: string[];

beforeEach(async () => {
  dns = new FakeResolver();
  logs = [];
  policyHost = new PolicyHost(stsCert);
  httpsPort = await policyHost.listen();
});

afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  for (const s of smtpServers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  await policyHost.close();
});

async function mxServer(options: { starttls: boolean; pem?: Pem }): Promise<Mx> {
  const pem = options.pem ?? mxCert;
  const state: Mx = { port: 0, got: [], mailFrom: 0, connections: 0 };
  const server = new SMTPServer({
    key: pem.key,
    cert: pem.cert,
    hideSTARTTLS: !options.starttls,
    authOptional: true,
    logger: false,
    onConnect(_session, cb) {
      state.connections++;
      cb();
    },
    onMailFrom(_address, _session, cb) {
      state.mailFrom++;
      cb();
    },
    onData(stream, session, cb) {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('end', () => {
        state.got.push({ secure: session.secure, body: Buffer.concat(parts).toString() });
        cb();
      });
    },
  });
  smtpServers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.server.address() as { port: number }).port;
  return state;
}

const logger = {
  for(): ComponentLogger {
    const push = (_q: unknown, text: string): void => {
      logs.push(text);
    };
    return { info: push, warning: push, error: push, debug: push };
  },
};

function stsResolver(clock?: Clock): MtaStsResolver {
  return new MtaStsResolver({
    resolver: dns,
    port: httpsPort,
    ca,
    fetchTimeoutMs: 5000,
    logger: logger.for(),
    ...(clock ? { clock } : {}),
  });
}

function agent(sts: MtaStsResolver, extra: Record<string, unknown> = {}): SmtpDeliveryAgent {
  const a = new SmtpDeliveryAgent({
    params: resolveParameters({
      myhostname: 'postern.test',
      smtpTlsCAfile: caFile,
      smtpMtaStsEnable: true,
      smtpConnectionCacheTimeLimit: 0,
      ...extra,
    }),
    resolver: dns,
    mtaSts: sts,
    logger,
  });
  agents.push(a);
  return a;
}

async function send(a: SmtpDeliveryAgent, port: number, nexthop = `example.com:${port}`) {
  const c = new Collector();
  await a.deliver(makeRequest({ nexthop, recipients: ['user@example.com'] }), c);
  return c;
}

describe('MTA-STS in the SMTP client', () => {
  it('enforce: delivers over TLS to an MX host the policy lists, its certificate verified', async () => {
    const mx = await mxServer({ starttls: true });
    const c = await send(agent(stsResolver()), mx.port);
    expect(c.status(0)).toBe('sent');
    expect(mx.got).toHaveLength(1);
    expect(mx.got[0]!.secure).toBe(true);
    expect(policyHost.paths).toEqual(['/.well-known/mta-sts.txt']);
  });

  it('enforce: defers when no MX host matches the policy, and connects to none', async () => {
    const mx = await mxServer({ starttls: true });
    dns.mx = [{ exchange: 'mx.other.example.net', priority: 10 }];
    const c = await send(agent(stsResolver()), mx.port);
    const r = c.results.get(0)!;
    expect(r.status).toBe('deferred');
    expect(r.reply.toString()).toBe(
      '451 4.7.5 no MX host matches the MTA-STS policy of example.com',
    );
    expect(mx.connections).toBe(0);
    expect(c.destinationStatus?.ok).toBe(false);
    expect(logs.join('\n')).toMatch(/does not list MX host mx\.other\.example\.net: not used/);
  });

  it('enforce: skips MX hosts outside the policy and uses the one inside', async () => {
    const mx = await mxServer({ starttls: true });
    dns.mx = [
      { exchange: 'mx.other.example.net', priority: 5 },
      { exchange: 'mx.example.com', priority: 10 },
    ];
    const c = await send(agent(stsResolver()), mx.port);
    expect(c.status(0)).toBe('sent');
    expect(mx.connections).toBe(1);
    expect(c.results.get(0)!.relay).toMatch(/^mx\.example\.com\[127\.0\.0\.1\]/);
  });

  it('enforce: defers when the server offers no STARTTLS, sending nothing in plaintext', async () => {
    const mx = await mxServer({ starttls: false });
    const c = await send(agent(stsResolver()), mx.port);
    const r = c.results.get(0)!;
    expect(r.status).toBe('deferred');
    expect(r.reply.toString()).toMatch(
      /^451 4\.7\.4 TLS is required, but was not offered by host mx\.example\.com.*\(MTA-STS policy of example\.com\)$/,
    );
    expect(mx.mailFrom).toBe(0);
    expect(mx.got).toHaveLength(0);
  });

  it('enforce: defers when the certificate does not name the MX host', async () => {
    const mx = await mxServer({ starttls: true });
    dns.mx = [{ exchange: 'mx2.example.com', priority: 10 }];
    policyHost.answer = {
      ...policyHost.answer,
      body: ENFORCE.replace('mx.example.com', '*.example.com'),
    };
    const c = await send(agent(stsResolver()), mx.port);
    const r = c.results.get(0)!;
    expect(r.status).toBe('deferred');
    expect(r.reply.toString()).toMatch(
      /^451 4\.7\.5 .*mx2\.example\.com.*MTA-STS policy of example\.com/,
    );
    expect(mx.mailFrom).toBe(0);
  });

  it('testing: delivers without TLS as usual and logs what enforce would refuse', async () => {
    const mx = await mxServer({ starttls: false });
    policyHost.answer = { ...policyHost.answer, body: ENFORCE.replace('enforce', 'testing') };
    const c = await send(agent(stsResolver()), mx.port);
    expect(c.status(0)).toBe('sent');
    expect(mx.got[0]!.secure).toBe(false);
    expect(logs.join('\n')).toMatch(
      /MTA-STS policy of example\.com \(mode testing\): the session with mx\.example\.com.* is not encrypted; in mode enforce the mail would be deferred/,
    );
  });

  it('an smtpTlsPolicyMaps entry for the destination wins over the policy', async () => {
    const mx = await mxServer({ starttls: false });
    const c = await send(
      agent(stsResolver(), { smtpTlsPolicyMaps: { 'example.com': 'may' } }),
      mx.port,
    );
    expect(c.status(0)).toBe('sent');
    expect(policyHost.requests).toBe(0);
    expect(dns.txtQueries).toBe(0);
  });

  it('a [host] nexthop gets no MTA-STS', async () => {
    const mx = await mxServer({ starttls: false });
    const c = await send(agent(stsResolver()), mx.port, `[mx.example.com]:${mx.port}`);
    expect(c.status(0)).toBe('sent');
    expect(dns.txtQueries).toBe(0);
  });

  it('never reuses a plaintext session once the policy is enforced', async () => {
    const mx = await mxServer({ starttls: false });
    policyHost.answer = { ...policyHost.answer, body: ENFORCE.replace('enforce', 'testing') };
    const a = agent(stsResolver(), { smtpConnectionCacheTimeLimit: '10s' });
    expect((await send(a, mx.port)).status(0)).toBe('sent');
    expect(a.stats.opened).toBe(1);
    dns.txt = [['v=STSv1; id=policy2;']];
    policyHost.answer = { ...policyHost.answer, body: ENFORCE };
    const c = await send(a, mx.port);
    expect(c.status(0)).toBe('deferred');
    expect(a.stats.reused).toBe(0);
    expect(mx.mailFrom).toBe(1);
  });

  it('builds its own policy resolver from the parameters, and does nothing when disabled', async () => {
    const mx = await mxServer({ starttls: false });
    dns.txt = dnsError('ENODATA', '_mta-sts.example.com');
    const a = new SmtpDeliveryAgent({
      params: resolveParameters({
        myhostname: 'postern.test',
        smtpMtaStsEnable: true,
        smtpMtaStsFetchTimeout: '2s',
        smtpConnectionCacheTimeLimit: 0,
      }),
      resolver: dns,
    });
    agents.push(a);
    expect((await send(a, mx.port)).status(0)).toBe('sent');
    expect(dns.txtQueries).toBe(1);
    const off = agent(stsResolver(), { smtpMtaStsEnable: false });
    expect((await send(off, mx.port)).status(0)).toBe('sent');
    expect(dns.txtQueries).toBe(1);
  });

  it('a policy in mode none changes nothing', async () => {
    const mx = await mxServer({ starttls: false });
    policyHost.answer = {
      ...policyHost.answer,
      body: 'version: STSv1\nmode: none\nmax_age: 600\n',
    };
    expect((await send(agent(stsResolver()), mx.port)).status(0)).toBe('sent');
  });
});

describe('MTA-STS policy cache and fetch', () => {
  it('reuses the cached policy while the TXT id is unchanged, and refetches on a new id', async () => {
    const mx = await mxServer({ starttls: true });
    const a = agent(stsResolver());
    expect((await send(a, mx.port)).status(0)).toBe('sent');
    expect((await send(a, mx.port)).status(0)).toBe('sent');
    expect(policyHost.requests).toBe(1);
    expect(dns.txtQueries).toBe(2);

    dns.txt = [['v=STSv1; id=policy2;']];
    // The new policy lists another MX only: the next delivery must follow it.
    policyHost.answer = {
      ...policyHost.answer,
      body: ENFORCE.replace('mx.example.com', 'mx.other.example.net'),
    };
    const c = await send(a, mx.port);
    expect(policyHost.requests).toBe(2);
    expect(c.results.get(0)!.reply.text).toMatch(/no MX host matches/);
  });

  it('keeps using the cached policy while the TXT record is missing or failing', async () => {
    const mx = await mxServer({ starttls: false });
    const a = agent(stsResolver());
    expect((await send(a, mx.port)).status(0)).toBe('deferred');
    dns.txt = dnsError('ENOTFOUND', '_mta-sts.example.com');
    expect((await send(a, mx.port)).status(0)).toBe('deferred');
    dns.txt = dnsError('ESERVFAIL', '_mta-sts.example.com');
    expect((await send(a, mx.port)).status(0)).toBe('deferred');
    expect(policyHost.requests).toBe(1);
    expect(mx.mailFrom).toBe(0);
  });

  it('fetches again once max_age has passed (injected clock)', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    policyHost.answer = { ...policyHost.answer, body: ENFORCE.replace('86400', '60') };
    const mx = await mxServer({ starttls: true });
    const a = agent(stsResolver(clock));
    await send(a, mx.port);
    await clock.advance(59_000);
    await send(a, mx.port);
    expect(policyHost.requests).toBe(1);
    await clock.advance(1_000);
    const c = await send(a, mx.port);
    expect(c.status(0)).toBe('sent');
    expect(policyHost.requests).toBe(2);
  });

  it('keeps the cached policy when fetching a new one fails, and does not retry that id at once', async () => {
    const mx = await mxServer({ starttls: false });
    const a = agent(stsResolver());
    expect((await send(a, mx.port)).status(0)).toBe('deferred'); // enforce, no STARTTLS
    dns.txt = [['v=STSv1; id=policy2;']];
    policyHost.answer = { status: 500, type: 'text/plain', body: 'oops' };
    const c = await send(a, mx.port);
    expect(policyHost.requests).toBe(2);
    expect(c.status(0)).toBe('deferred');
    expect(c.results.get(0)!.reply.text).toMatch(/TLS is required.*MTA-STS policy of example\.com/);
    expect(mx.mailFrom).toBe(0);
    expect(logs.join('\n')).toMatch(
      /policy2\) could not be fetched: .*HTTP status 500.*the cached policy stays in force/,
    );
    await send(a, mx.port);
    expect(policyHost.requests).toBe(2);
  });

  it('does not follow a redirect: no policy, delivery as usual', async () => {
    const mx = await mxServer({ starttls: false });
    policyHost.answer = {
      status: 301,
      body: '',
      headers: { Location: `https://mta-sts.example.com:${httpsPort}/elsewhere.txt` },
    };
    const c = await send(agent(stsResolver()), mx.port);
    expect(c.status(0)).toBe('sent');
    expect(policyHost.paths).toEqual(['/.well-known/mta-sts.txt']);
    expect(logs.join('\n')).toMatch(/HTTP status 301 \(redirects are not followed\)/);
  });

  it('refuses a policy that is not text/plain, is too large, or comes with a certificate for another name', async () => {
    const sts = stsResolver();
    policyHost.answer = { status: 200, type: 'text/html', body: ENFORCE };
    expect(await sts.lookup('example.com')).toBeUndefined();
    expect(logs.at(-1)).toMatch(/media type "text\/html" is not text\/plain/);

    dns.txt = [['v=STSv1; id=big;']];
    policyHost.answer = {
      status: 200,
      type: 'text/plain',
      body: `${ENFORCE}x: ${'a'.repeat(70_000)}\n`,
    };
    expect(await sts.lookup('example.com')).toBeUndefined();
    expect(logs.at(-1)).toMatch(/larger than 65536/);

    dns.txt = [['v=STSv1; id=cert;']];
    policyHost.answer = { status: 200, type: 'text/plain; charset=utf-8', body: ENFORCE };
    policyHost.server.setSecureContext({ key: mxCert.key, cert: mxCert.cert });
    expect(await sts.lookup('example.com')).toBeUndefined();
    expect(logs.at(-1)).toMatch(/mta-sts\.example\.com/);

    dns.txt = [['v=STSv1; id=ok;']];
    policyHost.server.setSecureContext({ key: stsCert.key, cert: stsCert.cert });
    expect((await sts.lookup('example.com'))?.mode).toBe('enforce');
  });

  it('shares one TXT query and one fetch among concurrent look-ups for a domain', async () => {
    const sts = stsResolver();
    const all = await Promise.all(Array.from({ length: 8 }, () => sts.lookup('Example.COM')));
    expect(all.every((p) => p?.mode === 'enforce')).toBe(true);
    expect(policyHost.requests).toBe(1);
    expect(dns.txtQueries).toBe(1);
    expect(sts.fetches).toBe(1);
  });

  it('gives no policy to a domain without a record, nor to an address literal', async () => {
    const sts = stsResolver();
    dns.txt = dnsError('ENODATA', '_mta-sts.example.com');
    expect(await sts.lookup('example.com')).toBeUndefined();
    expect(await sts.lookup('[127.0.0.1]')).toBeUndefined();
    expect(policyHost.requests).toBe(0);
  });
});

describe('MTA-STS in an Mta', () => {
  const mtas: Mta[] = [];
  afterEach(async () => {
    for (const m of mtas.splice(0)) await m.agents.close();
  });

  function mta(mtaSts?: MtaStsResolver, transports: Record<string, TransportConfig> = {}): Mta {
    const m = new Mta(
      {
        myhostname: 'postern.test',
        queueStore: { type: 'memory' },
        smtpd: [],
        smtpTlsCAfile: caFile,
        smtpMtaStsEnable: true,
        smtpConnectionCacheTimeLimit: 0,
        transports,
      },
      { resolver: dns, ...(mtaSts ? { mtaSts } : {}) },
    );
    mtas.push(m);
    return m;
  }

  async function sendVia(m: Mta, transport: string, port: number) {
    const c = new Collector();
    const a = m.agents.get(transport) as DeliveryAgent;
    const request = makeRequest({
      transport,
      nexthop: `example.com:${port}`,
      recipients: ['user@example.com'],
    });
    await a.deliver(request, c);
    return c;
  }

  it('the smtp and relay transports use the one policy cache given: fetched once, enforced by both', async () => {
    const mx = await mxServer({ starttls: true });
    const m = mta(stsResolver());
    expect((await sendVia(m, 'smtp', mx.port)).status(0)).toBe('sent');
    expect((await sendVia(m, 'relay', mx.port)).status(0)).toBe('sent');
    expect(policyHost.requests).toBe(1);
    expect(mx.got.map((g) => g.secure)).toEqual([true, true]);
  });

  it('builds one policy cache for smtp and relay itself; a transport with its own limits gets its own', async () => {
    const mx = await mxServer({ starttls: false });
    // The policy host has no address: each fetch is one A query, and a failed fetch is
    // not retried for the same id by the cache that made it.
    dns.a.delete('mta-sts.example.com');
    const m = mta(undefined, { other: { type: 'smtp', smtpMtaStsFetchTimeout: '5s' } });
    const fetches = () => dns.aQueries.filter((n) => n === 'mta-sts.example.com').length;
    expect((await sendVia(m, 'smtp', mx.port)).status(0)).toBe('sent');
    expect(fetches()).toBe(1);
    expect((await sendVia(m, 'relay', mx.port)).status(0)).toBe('sent');
    expect(fetches()).toBe(1);
    expect((await sendVia(m, 'other', mx.port)).status(0)).toBe('sent');
    expect(fetches()).toBe(2);
    expect(dns.txtQueries).toBe(3);
  });
});
