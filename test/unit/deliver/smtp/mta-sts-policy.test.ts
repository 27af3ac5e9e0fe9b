import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientSettings } from '../../../../src/deliver/smtp/client-settings.js';
import { mtaStsDomain } from '../../../../src/deliver/smtp/mta-sts-fetcher.js';
import {
  MTA_STS_MAX_AGE_LIMIT,
  MtaStsError,
  mtaStsMxMatches,
  parseMtaStsPolicy,
  parseMtaStsRecord,
  selectMtaStsRecord,
} from '../../../../src/deliver/smtp/mta-sts-policy.js';
import { resolveParameters } from '../../../../src/mta/main-parameters.js';

const GOOD =
  'version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n';

describe('parseMtaStsPolicy (RFC 8461 section 3.2)', () => {
  it('parses a CRLF policy', () => {
    expect(parseMtaStsPolicy(GOOD)).toEqual({
      version: 'STSv1',
      mode: 'enforce',
      mx: ['mail.example.com', '*.example.net'],
      maxAge: 604800,
    });
  });

  it('accepts LF, mixed line ends, no final newline, blanks after the colon and blank lines', () => {
    const lf = GOOD.replace(/\r\n/g, '\n');
    expect(parseMtaStsPolicy(lf)).toEqual(parseMtaStsPolicy(GOOD));
    const mixed = 'version:STSv1\nmode:\t testing\r\n\r\nmx:   MX.Example.COM.  \nmax_age: 86400';
    expect(parseMtaStsPolicy(mixed)).toEqual({
      version: 'STSv1',
      mode: 'testing',
      mx: ['mx.example.com'],
      maxAge: 86400,
    });
  });

  it('ignores unknown fields, keeps the first of a repeated field and every distinct mx', () => {
    const p = parseMtaStsPolicy(
      'version: STSv1\nmode: testing\nmode: enforce\nx-note: any text, even spaces\nmx: a.example.com\nmx: A.example.com\nmx: b.example.com\nmax_age: 10\nmax_age: 99\n',
    );
    expect(p.mode).toBe('testing');
    expect(p.maxAge).toBe(10);
    expect(p.mx).toEqual(['a.example.com', 'b.example.com']);
  });

  it('allows mode none without mx, and max_age 0 and the one-year limit', () => {
    expect(parseMtaStsPolicy('version: STSv1\nmode: none\nmax_age: 0\n')).toEqual({
      version: 'STSv1',
      mode: 'none',
      mx: [],
      maxAge: 0,
    });
    const year = parseMtaStsPolicy(
      `version: STSv1\nmode: none\nmax_age: ${MTA_STS_MAX_AGE_LIMIT}\n`,
    );
    expect(year.maxAge).toBe(31_557_600);
  });

  const bad: [string, string, RegExp][] = [
    ['no version', 'mode: enforce\nmx: a.example.com\nmax_age: 1\n', /no "version" field/],
    ['version STSv2', 'version: STSv2\nmode: none\nmax_age: 1\n', /version "STSv2" is not STSv1/],
    ['no mode', 'version: STSv1\nmx: a.example.com\nmax_age: 1\n', /no "mode" field/],
    ['mode in capitals', 'version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n', /mode "Enforce"/],
    ['no max_age', 'version: STSv1\nmode: none\n', /no "max_age" field/],
    [
      'max_age over a year',
      'version: STSv1\nmode: none\nmax_age: 31557601\n',
      /max_age "31557601"/,
    ],
    ['negative max_age', 'version: STSv1\nmode: none\nmax_age: -1\n', /max_age "-1"/],
    ['max_age in floating point', 'version: STSv1\nmode: none\nmax_age: 1e3\n', /max_age "1e3"/],
    ['eleven digits', 'version: STSv1\nmode: none\nmax_age: 00000000001\n', /max_age/],
    [
      'enforce without mx',
      'version: STSv1\nmode: enforce\nmax_age: 1\n',
      /mode enforce has no "mx"/,
    ],
    [
      'inner wildcard',
      'version: STSv1\nmode: enforce\nmx: mail.*.example.com\nmax_age: 1\n',
      /mx "mail\.\*\.example\.com"/,
    ],
    ['bare wildcard', 'version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n', /mx "\*"/],
    [
      'wildcard over a TLD',
      'version: STSv1\nmode: enforce\nmx: *.com\nmax_age: 1\n',
      /mx "\*\.com"/,
    ],
    [
      'mx with a port',
      'version: STSv1\nmode: enforce\nmx: a.example.com:25\nmax_age: 1\n',
      /mx "a\.example\.com:25"/,
    ],
    [
      'line without a colon',
      'version: STSv1\nmode none\nmax_age: 1\n',
      /line 2 is not a "name: value" field/,
    ],
    ['empty value', 'version: STSv1\nmode:\nmax_age: 1\n', /line 2/],
    ['NUL in a value', 'version: STSv1\nmode: none\u0000\nmax_age: 1\n', /line 2/],
    ['bare CR between fields', 'version: STSv1\rmode: none\nmax_age: 1\n', /line 1/],
    [
      'a field name of 33 characters',
      `version: STSv1\n${'a'.repeat(33)}: x\nmode: none\nmax_age: 1\n`,
      /line 2/,
    ],
    ['HTML instead of a policy', '<html><body>Not found</body></html>', /line 1/],
  ];
  for (const [what, text, why] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => parseMtaStsPolicy(text)).toThrow(MtaStsError);
      expect(() => parseMtaStsPolicy(text)).toThrow(why);
    });
  }

  it('rejects a policy over 64 KiB', () => {
    const big = `${GOOD}x-pad: ${'a'.repeat(70_000)}\n`;
    expect(() => parseMtaStsPolicy(big)).toThrow(/larger than 65536 bytes/);
  });

  it('makes control characters in an error message printable', () => {
    try {
      parseMtaStsPolicy('version: STSv1\nmode: \u001b[31mred\u0007\nmax_age: 1\n');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(MtaStsError);
      expect((err as MtaStsError).code).toBe('POSTERN_ERR_MTA_STS');
      expect((err as Error).message).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f]/);
    }
  });

  it('never throws anything but MtaStsError on arbitrary input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc
            .tuple(
              fc.array(
                fc.oneof(
                  fc.constantFrom(
                    'version: STSv1',
                    'mode: enforce',
                    'mode: none',
                    'max_age: 5',
                    'mx: *.a.b',
                  ),
                  fc.string({ maxLength: 40 }),
                ),
                { maxLength: 12 },
              ),
              fc.constantFrom('\n', '\r\n', '\r'),
            )
            .map(([lines, end]) => lines.join(end)),
        ),
        (text) => {
          try {
            const p = parseMtaStsPolicy(text);
            expect(['enforce', 'testing', 'none']).toContain(p.mode);
            expect(p.maxAge).toBeLessThanOrEqual(MTA_STS_MAX_AGE_LIMIT);
          } catch (err) {
            expect(err).toBeInstanceOf(MtaStsError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('MTA-STS TXT record (RFC 8461 section 3.1)', () => {
  it('parses the id, with or without the final semicolon and with extensions', () => {
    expect(parseMtaStsRecord('v=STSv1; id=20160831085700Z;').id).toBe('20160831085700Z');
    expect(parseMtaStsRecord('v=STSv1;id=abc').id).toBe('abc');
    expect(parseMtaStsRecord('v=STSv1 ;\tid=abc ; ext.x-1=v:1/2 ;').id).toBe('abc');
    expect(parseMtaStsRecord(`v=STSv1; id=${'a1'.repeat(16)}`).id).toHaveLength(32);
  });

  const bad: [string, string, RegExp][] = [
    ['no id', 'v=STSv1;', /has no id/],
    ['another version', 'v=STSv2; id=1;', /does not start with "v=STSv1;"/],
    ['the version after the id', 'id=1; v=STSv1;', /does not start/],
    ['id with a hyphen', 'v=STSv1; id=2024-01-01;', /id "2024-01-01" is not 1 to 32/],
    ['id of 33 characters', `v=STSv1; id=${'a'.repeat(33)};`, /is not 1 to 32/],
    ['an empty field', 'v=STSv1;; id=1;', /field "" is not "name=value"/],
    ['a field without =', 'v=STSv1; id=1; junk', /field "junk"/],
    ['a space inside a value', 'v=STSv1; id=1; x=a b', /field "x=a b"/],
  ];
  for (const [what, text, why] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => parseMtaStsRecord(text)).toThrow(why);
    });
  }

  it('joins the strings of a record, ignores other TXT records, refuses two', () => {
    expect(selectMtaStsRecord([['v=spf1 -all'], ['v=STSv1; id=', 'abc123;']])).toEqual({
      id: 'abc123',
    });
    expect(selectMtaStsRecord([['v=spf1 -all'], ['hello']])).toBeUndefined();
    expect(selectMtaStsRecord([])).toBeUndefined();
    expect(() => selectMtaStsRecord([['v=STSv1; id=1;'], ['v=STSv1; id=2;']])).toThrow(
      /2 TXT records start with "v=STSv1;"/,
    );
    // "v=STSv10" is another version, not ours.
    expect(selectMtaStsRecord([['v=STSv10; id=1;']])).toBeUndefined();
  });
});

describe('mtaStsMxMatches (RFC 8461 section 4.1)', () => {
  const cases: [string, string, boolean][] = [
    ['mail.example.com', 'mail.example.com', true],
    ['mail.example.com', 'MAIL.Example.com.', true],
    ['mail.example.com', 'mail2.example.com', false],
    ['*.example.com', 'mx1.example.com', true],
    ['*.example.com', 'MX1.EXAMPLE.COM', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.mx1.example.com', false],
    ['*.example.com', 'xexample.com', false],
    ['*.example.com', '.example.com', false],
  ];
  for (const [pattern, host, expected] of cases) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${host}`, () => {
      expect(mtaStsMxMatches([pattern], host)).toBe(expected);
    });
  }

  it('matches when any pattern does', () => {
    expect(mtaStsMxMatches(['a.example.net', '*.example.com'], 'b.example.com')).toBe(true);
    expect(mtaStsMxMatches([], 'b.example.com')).toBe(false);
  });
});

describe('mtaStsDomain', () => {
  it('normalises names and refuses what MTA-STS cannot apply to', () => {
    expect(mtaStsDomain('Example.COM.')).toBe('example.com');
    expect(mtaStsDomain('bücher.example')).toBe('xn--bcher-kva.example');
    for (const bad of [
      '',
      '192.0.2.1',
      '[192.0.2.1]',
      'localhost',
      'a/b.example',
      'x@y.example',
      'a..b',
      'ex ample.com',
      '-a.example',
    ]) {
      expect(mtaStsDomain(bad)).toBeUndefined();
    }
  });
});

describe('MTA-STS parameters', () => {
  it('are off by default and reach the SMTP client, never the LMTP client', () => {
    const p = resolveParameters({ myhostname: 'postern.test' });
    expect(p.smtpMtaStsEnable).toBe(false);
    expect(p.smtpMtaStsCacheSize).toBe(10_000);
    expect(p.smtpMtaStsFetchTimeout).toBe(10_000);
    const on = resolveParameters({
      myhostname: 'postern.test',
      smtpMtaStsEnable: true,
      smtpMtaStsCacheSize: 50,
      smtpMtaStsFetchTimeout: '30s',
    });
    expect(clientSettings(on, 'smtp')).toMatchObject({
      mtaStsEnable: true,
      mtaStsCacheSize: 50,
      mtaStsFetchTimeout: 30_000,
    });
    expect(clientSettings(on, 'lmtp').mtaStsEnable).toBe(false);
    expect(() => resolveParameters({ smtpMtaStsCacheSize: 0 })).toThrow(/smtpMtaStsCacheSize/);
  });
});
