import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressOfPtrName, mailauthResolver } from '../../../src/dkim/dns-adapter.js';
import { ConfigError } from '../../../src/errors.js';
import { Mta } from '../../../src/mta/mta.js';
import { resolveMtaConfig } from '../../../src/mta/mta-config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-dkim-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no ConfigError');
}

describe('dkimSigning and dkimVerification in the config', () => {
  it.each([
    [{ dkimSigning: { domain: 'example.com' } }, 'dkimSigning', /expected an array/],
    [
      { dkimSigning: [{ domain: 'not a domain', selector: 's', privateKey: 'x' }] },
      'dkimSigning[0].domain',
      /domain name/,
    ],
    [
      { dkimSigning: [{ domain: 'example.com', selector: 's;x', privateKey: 'x' }] },
      'dkimSigning[0].selector',
      /selector/,
    ],
    [
      { dkimSigning: [{ domain: 'example.com', selector: 's' }] },
      'dkimSigning[0]',
      /privateKeyFile .* or privateKey/,
    ],
    [
      {
        dkimSigning: [
          { domain: 'example.com', selector: 's', privateKey: 'x', headers: ['Subject'] },
        ],
      },
      'dkimSigning[0].headers',
      /From among them/,
    ],
    [
      { dkimSigning: [{ domain: 'example.com', selector: 's', privateKey: 'x', keyFile: 'y' }] },
      'dkimSigning[0].keyFile',
      /unknown key "keyFile"/,
    ],
    [
      { dkimVerification: { dmarcPolicy: 'strict' } },
      'dkimVerification.dmarcPolicy',
      /"none" or "enforce"/,
    ],
  ])('%j names %s', (config, key, message) => {
    const err = configError(() => resolveMtaConfig(config));
    expect(err.key).toBe(key);
    expect(err.message).toMatch(message);
  });

  it('reads the key when the Mta is built: a missing file, a short RSA key, a key of the wrong kind', async () => {
    const base = { myhostname: 'mx.example.test', queueStore: { type: 'memory' as const } };
    const missing = configError(
      () =>
        new Mta({
          ...base,
          dkimSigning: [
            { domain: 'example.com', selector: 's', privateKeyFile: join(dir, 'nope.pem') },
          ],
        }),
    );
    expect(missing.key).toBe('dkimSigning[0].privateKeyFile');
    expect(missing.message).toMatch(/cannot read .*nope\.pem/);

    const short = generateKeyPairSync('rsa', { modulusLength: 512 });
    await writeFile(
      join(dir, 'short.pem'),
      short.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    expect(
      configError(
        () =>
          new Mta({
            ...base,
            dkimSigning: [
              { domain: 'example.com', selector: 's', privateKeyFile: join(dir, 'short.pem') },
            ],
          }),
      ).message,
    ).toMatch(/512-bit RSA key is too short/);

    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(
      configError(
        () =>
          new Mta({
            ...base,
            dkimSigning: [
              {
                domain: 'example.com',
                selector: 's',
                privateKey: ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
              },
            ],
          }),
      ).message,
    ).toMatch(/an EC key cannot sign DKIM/);
  });

  it('refuses a PostgreSQL queue, which cannot read back a message being written', () => {
    const err = configError(
      () =>
        new Mta({
          myhostname: 'mx.example.test',
          queueStore: { type: 'postgres', url: 'postgres://postern@127.0.0.1:1/postern' },
          dkimVerification: true,
        }),
    );
    expect(err.message).toMatch(/need a queue store that can read back/);
  });
});

describe("mailauth's DNS questions through the Resolver", () => {
  it('maps PTR names back to addresses', () => {
    expect(addressOfPtrName('4.3.2.192.in-addr.arpa.')).toBe('192.2.3.4');
    expect(
      addressOfPtrName('b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa'),
    ).toBe('4321:0000:0001:0002:0003:0004:0567:89ab');
    expect(addressOfPtrName('example.com')).toBeUndefined();
  });

  it('asks the Resolver by record type and passes its errors through', async () => {
    const asked: string[] = [];
    const resolve = mailauthResolver({
      resolveTxt: async (n) => {
        asked.push(`TXT ${n}`);
        return [['v=spf1 -all']];
      },
      resolve4: async (n) => {
        asked.push(`A ${n}`);
        return ['192.0.2.1'];
      },
      resolve6: async (n) => {
        asked.push(`AAAA ${n}`);
        return ['2001:db8::1'];
      },
      resolveMx: async (n) => {
        asked.push(`MX ${n}`);
        return [{ exchange: 'mx.example', priority: 10 }];
      },
      reverse: async (a) => {
        asked.push(`PTR ${a}`);
        return ['host.example'];
      },
    });
    expect(await resolve('example.com', 'TXT')).toEqual([['v=spf1 -all']]);
    expect(await resolve('example.com', 'MX')).toEqual([{ exchange: 'mx.example', priority: 10 }]);
    expect(await resolve('1.2.0.192.in-addr.arpa', 'PTR')).toEqual(['host.example']);
    await expect(resolve('example.com', 'CAA')).rejects.toMatchObject({ code: 'ENODATA' });
    expect(asked).toEqual(['TXT example.com', 'MX example.com', 'PTR 192.0.2.1']);
  });
});
