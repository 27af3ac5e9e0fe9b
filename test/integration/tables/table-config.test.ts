/**
 * Tables named in an Mta config (JSON data) are built from real files, used by the
 * Rewriter, and reloaded when the files change.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { Mta } from '../../../src/mta/mta.js';
import type { MtaConfig } from '../../../src/mta/mta-config.js';

const dir = mkdtempSync(join(tmpdir(), 'postern-table-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('table parameters in an Mta config', () => {
  it('builds transport, relocated and virtual tables from files and reloads them', async () => {
    const transport = join(dir, 'transport');
    writeFileSync(transport, '# transport(5)\nexample.org  smtp:[gw.example.net]:2525\n');
    const relocated = join(dir, 'relocated');
    writeFileSync(relocated, 'old@example.com  new@example.net\n');
    const virtual = join(dir, 'virtual');
    writeFileSync(virtual, 'valias.example anything\nsales@valias.example amy@example.com\n');
    const config = JSON.parse(
      JSON.stringify({
        myhostname: 'mx.example.com',
        mydestination: ['example.com'],
        transportMaps: `hash:${transport}`,
        relocatedMaps: [`texthash:${relocated}`, { 'gone@example.com': 'nowhere' }],
        virtualAliasMaps: `texthash:${virtual}`,
        queueStore: { type: 'memory' },
        smtpd: [],
      }),
    );
    const mta = new Mta(config);
    const r = mta.rewriter;
    expect(await r.resolve('u@example.org')).toMatchObject({
      transport: 'smtp',
      nexthop: '[gw.example.net]:2525',
    });
    expect(await r.resolve('old@example.com')).toMatchObject({
      transport: 'error',
      nexthop: '5.1.6 User has moved to new@example.net',
    });
    expect(await r.resolve('gone@example.com')).toMatchObject({
      nexthop: '5.1.6 User has moved to nowhere',
    });
    expect((await r.resolve('x@valias.example')).addressClass).toBe('virtual-alias');
    expect(await r.isListedRecipient('sales@valias.example')).toMatchObject({ listed: true });
    expect(await r.isListedRecipient('x@valias.example')).toMatchObject({ listed: false });

    writeFileSync(transport, 'example.org  lmtp:unix:/run/lmtp\n');
    // The file is checked at most once a second (by the wall clock): look up until the
    // new entry answers.
    await vi.waitFor(
      async () =>
        expect(await r.resolve('u@example.org')).toMatchObject({
          transport: 'lmtp',
          nexthop: 'unix:/run/lmtp',
        }),
      { timeout: 15_000, interval: 100 },
    );
  });

  it('a missing table file stops the Mta at construction with the key and path', () => {
    const missing = join(dir, 'missing');
    expect(
      () =>
        new Mta({
          myhostname: 'mx.example.com',
          transportMaps: `texthash:${missing}`,
          queueStore: { type: 'memory' },
          smtpd: [],
        }),
    ).toThrow(ConfigError);
    expect(
      () =>
        new Mta({
          myhostname: 'mx.example.com',
          transportMaps: `texthash:${missing}`,
          queueStore: { type: 'memory' },
          smtpd: [],
        }),
    ).toThrow(`transportMaps: texthash:${missing}: cannot read`);
    // A JSON config may hold anything: the check at run time still names the key.
    const config: unknown = { myhostname: 'mx.example.com', transportMaps: 42 };
    expect(() => new Mta(config as MtaConfig)).toThrow(/transportMaps: expected a table/);
  });
});
