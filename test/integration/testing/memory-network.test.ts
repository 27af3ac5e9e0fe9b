import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Logger } from '../../../src/log.js';
import { Mta } from '../../../src/mta/mta.js';
import { CaptureAgent } from '../../../src/testing/capture-agent.js';
import type { CapturedMessage } from '../../../src/testing/captured-message.js';
import { MemoryNetwork, MemorySocket } from '../../../src/testing/memory-network.js';
import type { LogEvent } from '../../../src/types.js';

const started: Mta[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((m) => m.stop()));
  vi.restoreAllMocks();
});

function mta(config: Record<string, unknown>, deps: ConstructorParameters<typeof Mta>[1]): Mta {
  const m = new Mta({ queueStore: { type: 'memory' }, ...config }, deps);
  started.push(m);
  return m;
}

describe('MemoryNetwork', () => {
  it('carries mail from one Mta to another with no TCP socket at all', async () => {
    const listen = vi.spyOn(net.Server.prototype, 'listen');
    const connect = vi.spyOn(net.Socket.prototype, 'connect');
    const network = new MemoryNetwork({ clientAddress: '192.0.2.1' });
    const capture = new CaptureAgent();
    const arrived = new Promise<CapturedMessage>((resolve) => capture.onMessage(resolve));
    const bLog: LogEvent[] = [];
    const aLog: LogEvent[] = [];

    const b = mta(
      {
        myhostname: 'mx.b.test',
        localRecipientMaps: '', // every local part is a recipient here
        mydestination: ['b.test'],
        smtpd: [{ listen: '192.0.2.2:25' }],
        localTransport: 'capture',
        agents: { capture },
      },
      { network, logger: new Logger([(e) => bLog.push(e)]) },
    );
    const a = mta(
      { myhostname: 'mx.a.test', relayhost: '[192.0.2.2]:25', smtpd: [] },
      { connector: network.connector, logger: new Logger([(e) => aLog.push(e)]) },
    );
    await b.start();
    await a.start();
    expect(network.addresses).toEqual(['192.0.2.2:25']);
    expect(b.listeners).toEqual([{ host: '192.0.2.2', port: 25 }]);

    await a.submit({
      from: 'app@a.test',
      to: ['bob@b.test'],
      content: 'From: app@a.test\nTo: bob@b.test\nSubject: over memory\n\nno sockets here\n',
    });
    const message = await arrived;
    expect(message.subject).toBe('over memory');
    expect(message.text).toBe('no sockets here');
    expect(message.envelope).toEqual({ sender: 'app@a.test', recipients: ['bob@b.test'] });
    // b's smtpd saw a's client address, and a logged the relay through the memory network.
    expect(message.raw.toString()).toMatch(
      /Received: from mx\.a\.test \(unknown \[192\.0\.2\.1\]\)/,
    );
    await vi.waitFor(() =>
      expect(aLog.some((e) => e.component === 'smtp' && e.fields?.status === 'sent')).toBe(true),
    );
    const sent = aLog.find((e) => e.component === 'smtp' && e.fields?.status === 'sent');
    expect(sent?.fields?.relay).toBe('192.0.2.2[192.0.2.2]:25');
    expect(bLog.some((e) => e.text.startsWith('connect from unknown[192.0.2.1]'))).toBe(true);

    // The metrics see the same flow: a queued it from code, b's smtpd received it.
    expect((await a.metrics.snapshot()).received).toEqual({ api: 1 });
    const bMetrics = await b.metrics.snapshot();
    expect(bMetrics.received).toEqual({ smtpd: 1 });
    expect(bMetrics.sessions.map((x) => x.listener)).toEqual(['192.0.2.2:25']);

    expect(listen).not.toHaveBeenCalled();
    expect(connect).not.toHaveBeenCalled();
    expect(process.getActiveResourcesInfo()).not.toContain('TCPServerWrap');

    await a.stop();
    await b.stop();
    expect(network.addresses).toEqual([]);
  });

  it('refuses a connection where nothing listens, with ECONNREFUSED', async () => {
    const network = new MemoryNetwork();
    await expect(
      network.connector.connect({ host: '192.0.2.9', port: 25 }, {}),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const bound = await network.listen({ host: '192.0.2.9', port: 25 }, () => {});
    await expect(network.listen({ host: '192.0.2.9', port: 25 }, () => {})).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    await bound.close();
    await expect(
      network.connector.connect({ host: '192.0.2.9', port: 25 }, {}),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('picks distinct ports for port 0', async () => {
    const network = new MemoryNetwork();
    const one = await network.listen({ host: '10.0.0.1', port: 0 }, () => {});
    const two = await network.listen({ host: '10.0.0.1', port: 0 }, () => {});
    expect(one.port).toBeGreaterThan(0);
    expect(two.port).not.toBe(one.port);
  });
});

describe('MemorySocket', () => {
  it('delivers bytes both ways, half-closes, and applies backpressure', async () => {
    const [client, server] = MemorySocket.pair(
      { address: '192.0.2.1', port: 5000 },
      { address: '192.0.2.2', port: 25 },
    );
    expect(server.remoteAddress).toBe('192.0.2.1');
    expect(client.remotePort).toBe(25);
    // Nobody reads `server`: writes stop completing once its buffer is full.
    const big = Buffer.alloc(64 * 1024, 0x61);
    let writesDone = 0;
    for (let i = 0; i < 8; i++) client.write(big, () => writesDone++);
    await new Promise((r) => setImmediate(r));
    expect(writesDone).toBeLessThan(8);
    const received: Buffer[] = [];
    server.on('data', (c: Buffer) => received.push(c));
    const ended = new Promise((r) => server.once('end', r));
    client.end();
    await ended;
    expect(writesDone).toBe(8);
    expect(Buffer.concat(received).length).toBe(8 * big.length);
    // Half-closed: the server can still answer.
    const reply = new Promise<string>((r) => client.once('data', (c: Buffer) => r(c.toString())));
    server.write('221 bye\r\n');
    expect(await reply).toBe('221 bye\r\n');
  });

  it('ends the peer when one side is destroyed', async () => {
    const [client, server] = MemorySocket.pair(
      { address: '192.0.2.1', port: 5000 },
      { address: '192.0.2.2', port: 25 },
    );
    server.resume();
    const ended = new Promise((r) => server.once('end', r));
    client.destroy();
    await ended;
    expect(server.readableEnded).toBe(true);
  });
});
