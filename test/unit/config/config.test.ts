import { describe, expect, it } from 'vitest';
import { parseTime } from '../../../src/config/values.js';
import { ConfigError } from '../../../src/errors.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { parseListen, resolveMtaConfig } from '../../../src/mta/mta-config.js';

describe('parameters', () => {
  it("has Postfix's defaults and computes the ones that refer to others", () => {
    const p = resolveParameters({ myhostname: 'mx.example.com' });
    expect(p.mydomain).toBe('example.com');
    expect(p.myorigin).toBe('mx.example.com');
    expect(p.mydestination).toEqual(['mx.example.com', 'localhost.example.com', 'localhost']);
    expect(p.smtpdBanner).toBe('mx.example.com ESMTP Postern');
    expect(p.messageSizeLimit).toBe(10240000);
    expect(p.smtpdRecipientLimit).toBe(1000);
    expect(p.minimalBackoffTime).toBe(300_000);
    expect(p.maximalBackoffTime).toBe(4_000_000);
    expect(p.queueRunDelay).toBe(300_000);
    expect(p.maximalQueueLifetime).toBe(5 * 86_400_000);
    expect(p.qmgrMessageActiveLimit).toBe(20000);
    expect(p.hopcountLimit).toBe(50);
    expect(p.smtpdRelayRestrictions).toEqual([
      'permit_mynetworks',
      'permit_sasl_authenticated',
      'defer_unauth_destination',
    ]);
    expect(p.smtpdForbidBareNewline).toBe('normalize');
    expect(p.disableVrfyCommand).toBe(true);
    expect(Object.isFrozen(p)).toBe(true);
  });

  it.each([
    ['300s', 300_000],
    ['5m', 300_000],
    ['4h', 14_400_000],
    ['5d', 432_000_000],
    ['1w', 604_800_000],
    [300, 300_000],
    ['250ms', 250],
  ])('parses the time %j', (text, ms) => {
    expect(parseTime(text, 'x')).toBe(ms);
  });

  it.each<[Readonly<Record<string, unknown>>, RegExp]>([
    [{ messageSizeLimit: 'big' }, /messageSizeLimit: expected a whole number/],
    [{ messageSizeLimit: -1 }, /messageSizeLimit/],
    [{ queueRunDelay: '5 fortnights' }, /queueRunDelay: expected a time/],
    [{ mynetworks: ['not a net'] }, /mynetworks: "not a net" is not an address or CIDR/],
    [{ smtpdForbidBareNewline: 'maybe' }, /smtpdForbidBareNewline: expected one of "normalize"/],
    [{ myhostname: 'bad host!' }, /myhostname: "bad host!" is not a valid host name/],
    [
      { minimalBackoffTime: '1h', maximalBackoffTime: '10m' },
      /minimalBackoffTime is greater than maximalBackoffTime/,
    ],
    [{ disableVrfyCommand: 'perhaps' }, /disableVrfyCommand: expected true\/false/],
  ])('refuses %j naming the key', (input, message) => {
    expect(() => resolveParameters({ myhostname: 'mx.example.com', ...input })).toThrow(message);
  });

  it('takes lists as arrays or Postfix strings', () => {
    const p = resolveParameters({
      myhostname: 'mx.example.com',
      mydestination: 'example.com, localhost  other.example',
    });
    expect(p.mydestination).toEqual(['example.com', 'localhost', 'other.example']);
  });
});

describe('Mta config', () => {
  it('has the embedded defaults', () => {
    const c = resolveMtaConfig({ myhostname: 'mx.example.com' });
    expect(c.smtpd).toHaveLength(1);
    expect(c.smtpd[0]).toMatchObject({ host: '127.0.0.1', port: 2525 });
    expect(c.queueStore).toEqual({ type: 'file', directory: './var/queue' });
    expect(c.params.mailSpoolDirectory).toBe('./var/mail/');
    expect(c.params.mynetworks).toEqual(['127.0.0.0/8', '::1/128']);
  });

  it('refuses unknown keys with the key named', () => {
    expect(() => resolveMtaConfig({ myhostnme: 'x' })).toThrow(ConfigError);
    expect(() => resolveMtaConfig({ myhostnme: 'x' })).toThrow(
      /unknown configuration key "myhostnme"/,
    );
    expect(() => resolveMtaConfig({ smtpd: [{ listen: '127.0.0.1:25', bogus: 1 }] })).toThrow(
      /smtpd\[0\]: unknown key "bogus"/,
    );
    expect(() => resolveMtaConfig({ transports: { x: { type: 'carrier-pigeon' } } })).toThrow(
      /transports\.x\.type/,
    );
    expect(() => resolveMtaConfig({ queueStore: { type: 'cloud' } })).toThrow(/queueStore/);
  });

  it('applies per-listener overrides to that listener only (master.cf -o)', () => {
    const c = resolveMtaConfig({
      myhostname: 'mx.example.com',
      smtpd: [{ listen: '127.0.0.1:25' }, { listen: '[::1]:587', messageSizeLimit: 5 }],
    });
    expect(c.smtpd[0]!.params.messageSizeLimit).toBe(10240000);
    expect(c.smtpd[1]).toMatchObject({ host: '::1', port: 587 });
    expect(c.smtpd[1]!.params.messageSizeLimit).toBe(5);
  });

  it.each(['127.0.0.1', '127.0.0.1:99999', 'host port', ':'])(
    'refuses the listen address %j',
    (listen) => {
      expect(() => parseListen(listen, 'smtpd[0].listen')).toThrow(
        /smtpd\[0\]\.listen: .* is not "host:port"/,
      );
    },
  );
});
