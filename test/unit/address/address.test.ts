import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatAddress,
  isAscii,
  parseMailArgument,
  splitAddress,
} from '../../../src/address/address.js';
import { SmtpError } from '../../../src/errors.js';

function reject(arg: string, kind: 'sender' | 'recipient', strict = false): SmtpError {
  try {
    parseMailArgument(arg, kind, { strictRfc821Envelopes: strict });
  } catch (err) {
    expect(err).toBeInstanceOf(SmtpError);
    return err as SmtpError;
  }
  throw new Error(`accepted ${JSON.stringify(arg)}`);
}

describe('parseMailArgument: accepted paths', () => {
  const cases: [string, 'sender' | 'recipient', string][] = [
    ['<user@example.com>', 'sender', 'user@example.com'],
    ['  <user@example.com>', 'sender', 'user@example.com'],
    ['<>', 'sender', ''],
    ['<"john doe"@example.com>', 'recipient', 'john doe@example.com'],
    ['<"a>b"@example.com>', 'recipient', 'a>b@example.com'],
    ['<"a@b"@example.com>', 'recipient', 'a@b@example.com'],
    ['<"say \\"hi\\""@example.com>', 'recipient', 'say "hi"@example.com'],
    ['<"back\\\\slash"@example.com>', 'recipient', 'back\\slash@example.com'],
    ['<""@example.com>', 'recipient', '@example.com'],
    ['<@relay.example,@b.example:user@example.com>', 'recipient', 'user@example.com'],
    ['<@[192.0.2.1]:user@example.com>', 'recipient', 'user@example.com'],
    ['<postmaster>', 'recipient', 'postmaster'],
    ['<Postmaster>', 'recipient', 'Postmaster'],
    ['<POSTMASTER>', 'recipient', 'POSTMASTER'],
    ['<user@[192.0.2.1]>', 'recipient', 'user@[192.0.2.1]'],
    ['<user@[IPv6:2001:db8::1]>', 'recipient', 'user@[IPv6:2001:db8::1]'],
    ['<user@Example.COM>', 'recipient', 'user@Example.COM'],
    ['<user@example.com.>', 'recipient', 'user@example.com.'],
    ['<user@under_score.example>', 'recipient', 'user@under_score.example'],
    ["<o'brien+tag@example.com>", 'recipient', "o'brien+tag@example.com"],
    ['user@example.com', 'sender', 'user@example.com'],
    ['user@example.com SIZE=10', 'sender', 'user@example.com'],
    ['<jöran@bücher.example>', 'recipient', 'jöran@bücher.example'],
    ['<用户@例子.广告>', 'recipient', '用户@例子.广告'],
  ];
  for (const [arg, kind, address] of cases) {
    it(`${kind} ${arg}`, () => {
      expect(parseMailArgument(arg, kind).address).toBe(address);
    });
  }

  it('flags non-ASCII addresses as needing SMTPUTF8 (RFC 6531)', () => {
    expect(parseMailArgument('<jöran@example.com>', 'recipient').utf8).toBe(true);
    expect(parseMailArgument('<user@bücher.example>', 'recipient').utf8).toBe(true);
    expect(parseMailArgument('<user@example.com>', 'recipient').utf8).toBe(false);
    expect(parseMailArgument('<>', 'sender').utf8).toBe(false);
  });
});

describe('parseMailArgument: ESMTP parameters', () => {
  it('upper-cases keywords and keeps values', () => {
    const r = parseMailArgument(
      '<a@example.com> size=1000 body=8BITMIME  SMTPUTF8 RET=HDRS',
      'sender',
    );
    expect([...r.params]).toEqual([
      ['SIZE', '1000'],
      ['BODY', '8BITMIME'],
      ['SMTPUTF8', undefined],
      ['RET', 'HDRS'],
    ]);
  });

  it('accepts tabs between parameters and a trailing space', () => {
    const r = parseMailArgument('<a@example.com>\tNOTIFY=SUCCESS,FAILURE ', 'recipient');
    expect(r.params.get('NOTIFY')).toBe('SUCCESS,FAILURE');
  });

  it('keeps ORCPT values with semicolons and plus signs', () => {
    const r = parseMailArgument('<a@example.com> ORCPT=rfc822;a+2Bb@example.com', 'recipient');
    expect(r.params.get('ORCPT')).toBe('rfc822;a+2Bb@example.com');
  });

  const bad: [string, string][] = [
    ['<a@example.com> =x', 'empty keyword'],
    ['<a@example.com> -SIZE=1', 'keyword starting with a hyphen'],
    ['<a@example.com> SI_ZE=1', 'underscore in keyword'],
    ['<a@example.com> SIZE=', 'empty value'],
    ['<a@example.com> ENVID=a=b', '= in value'],
    ['<a@example.com> ENVID=ä', 'non-ASCII value'],
    ['<a@example.com> ENVID=a\x00b', 'NUL in value'],
    ['<a@example.com> SIZE=1 size=2', 'duplicate keyword'],
  ];
  for (const [arg, why] of bad) {
    it(`rejects ${why} with 501 5.5.4`, () => {
      const err = reject(arg, 'sender');
      expect(err.reply.toString()).toBe('501 5.5.4 Bad MAIL parameter syntax');
      expect(reject(arg, 'recipient').reply.toString()).toBe('501 5.5.4 Bad RCPT parameter syntax');
    });
  }
});

describe('parseMailArgument: rejected addresses', () => {
  const bad: [string, string][] = [
    ['', 'nothing'],
    ['   ', 'only spaces'],
    ['<user@example.com', 'no closing bracket'],
    ['<user@example.com>SIZE=1', 'parameter glued to the path'],
    ['<<user@example.com>>', 'nested brackets'],
    ['<user>', 'no domain'],
    ['<user@>', 'empty domain'],
    ['<@example.com>', 'source route without mailbox'],
    ['<@example.com:>', 'source route with empty mailbox'],
    ['<user@exa mple.com>', 'space in domain'],
    ['<us er@example.com>', 'space in unquoted local part'],
    ['<user@-example.com>', 'label starting with a hyphen'],
    ['<user@example-.com>', 'label ending with a hyphen'],
    ['<user@example..com>', 'empty label'],
    ['<user@.>', 'only a dot'],
    ['<user@[192.0.2.300]>', 'bad IPv4 literal'],
    ['<user@[IPv6:nonsense]>', 'bad IPv6 literal'],
    ['<user@[x-tag:abc]>', 'general address literal'],
    ['<"unterminated@example.com>', 'unterminated quote'],
    ['<"a"b@example.com>', 'text after the quoted part'],
    ['<"a\x01b"@example.com>', 'control character in quotes'],
    ['<a\x00b@example.com>', 'NUL'],
    ['<a\rb@example.com>', 'CR'],
    ['<a\nb@example.com>', 'LF'],
    ['<a@example.com\r\n>', 'CRLF in domain'],
    ['<a\u0085b@example.com>', 'C1 control'],
    ['<a(b)@example.com>', 'parenthesis in local part'],
    ['<user@exa\ud800mple.com>', 'lone surrogate'],
    ['<a@b.example> <c@d.example>', 'two paths'],
  ];
  for (const [arg, why] of bad) {
    it(`rejects ${why} (sender 5.1.7, recipient 5.1.3)`, () => {
      expect(reject(arg, 'sender').reply.toString()).toMatch(
        /^501 5\.(1\.7 Bad sender address syntax|5\.4 Bad MAIL)/,
      );
      expect(reject(arg, 'recipient').reply.toString()).toMatch(
        /^501 5\.(1\.3 Bad recipient address syntax|5\.4 Bad RCPT)/,
      );
    });
  }

  it('refuses <> as a recipient', () => {
    expect(reject('<>', 'recipient').reply.toString()).toBe(
      '501 5.1.3 Bad recipient address syntax',
    );
  });

  it('refuses a domain-less postmaster as sender', () => {
    expect(reject('<postmaster>', 'sender').reply.toString()).toBe(
      '501 5.1.7 Bad sender address syntax',
    );
  });

  it('refuses a bare address when strictRfc821Envelopes is on', () => {
    expect(reject('user@example.com', 'sender', true).reply.code).toBe(501);
    expect(
      parseMailArgument('<user@example.com>', 'sender', { strictRfc821Envelopes: true }).address,
    ).toBe('user@example.com');
  });

  it('never echoes the input in the reply', () => {
    const err = reject('<evil\x00text@example.com>', 'recipient');
    expect(err.reply.text).not.toContain('evil');
  });
});

describe('parseMailArgument: RFC 5321 section 4.5.3.1 limits', () => {
  it('accepts a 64-octet local part and refuses 65', () => {
    expect(parseMailArgument(`<${'a'.repeat(64)}@example.com>`, 'recipient').address).toHaveLength(
      76,
    );
    const err = reject(`<${'a'.repeat(65)}@example.com>`, 'recipient');
    expect(err.reply.toString()).toBe(
      '501 5.1.3 Bad recipient address syntax: local part too long',
    );
  });

  it('counts octets, not characters', () => {
    // 32 two-octet characters = 64 octets; 33 = 66.
    expect(() => parseMailArgument(`<${'é'.repeat(32)}@example.com>`, 'recipient')).not.toThrow();
    expect(reject(`<${'é'.repeat(33)}@example.com>`, 'recipient').reply.text).toContain('too long');
  });

  it('counts the quotes of a quoted local part', () => {
    expect(() => parseMailArgument(`<"${'a'.repeat(62)}"@example.com>`, 'recipient')).not.toThrow();
    expect(reject(`<"${'a'.repeat(63)}"@example.com>`, 'recipient').reply.text).toContain(
      'too long',
    );
  });

  it('refuses a domain over 255 octets', () => {
    const label = 'a'.repeat(63);
    const domain = `${label}.${label}.${label}.${label}`; // 255
    // 255-octet domain + "a@" + <> = 259 > 256: the path limit trips first.
    expect(reject(`<a@${domain}>`, 'sender').reply.toString()).toBe(
      '501 5.1.7 Bad sender address syntax: path too long',
    );
    // In a source route the domain limit itself applies.
    expect(reject(`<@${domain}a:a@example.com>`, 'sender').reply.text).toMatch(/too long/);
  });

  it('refuses a label over 63 octets', () => {
    expect(reject(`<a@${'a'.repeat(64)}.example>`, 'recipient').reply.code).toBe(501);
  });

  it('accepts a 256-octet path and refuses 257', () => {
    const domain254 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`; // 254
    const ok = `<${'x'.repeat(0)}y@${domain254.slice(2)}>`; // 1+1+252+2 = 256
    expect(ok.length).toBe(256);
    expect(() => parseMailArgument(ok, 'recipient')).not.toThrow();
    expect(reject(`<yy@${domain254.slice(2)}>`, 'recipient').reply.text).toContain('path too long');
  });
});

describe('splitAddress', () => {
  const cases: [string, string, string][] = [
    ['user@example.com', 'user', 'example.com'],
    ['a@b@example.com', 'a@b', 'example.com'],
    ['user', 'user', ''],
    ['', '', ''],
    ['user@', 'user', ''],
    ['@example.com', '', 'example.com'],
  ];
  for (const [address, local, domain] of cases) {
    it(JSON.stringify(address), () => expect(splitAddress(address)).toEqual({ local, domain }));
  }
});

describe('formatAddress', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['user@example.com', 'user@example.com'],
    ['first.last@example.com', 'first.last@example.com'],
    ['john doe@example.com', '"john doe"@example.com'],
    ['a@b@example.com', '"a@b"@example.com'],
    ['say "hi"@example.com', '"say \\"hi\\""@example.com'],
    ['back\\slash@example.com', '"back\\\\slash"@example.com'],
    ['.dot@example.com', '".dot"@example.com'],
    ['a..b@example.com', '"a..b"@example.com'],
    ['@example.com', '""@example.com'],
    ['postmaster', 'postmaster'],
    ['john doe', '"john doe"'],
    ['jöran@bücher.example', 'jöran@bücher.example'],
  ];
  for (const [internal, external] of cases) {
    it(`${JSON.stringify(internal)} → ${external}`, () =>
      expect(formatAddress(internal)).toBe(external));
  }
});

describe('isAscii', () => {
  it('tells ASCII from the rest', () => {
    expect(isAscii('')).toBe(true);
    expect(isAscii('user@example.com\x7f')).toBe(true);
    expect(isAscii('é')).toBe(false);
    expect(isAscii('\u0080')).toBe(false);
  });
});

// Generators for valid internal addresses.
const atext =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~".split('');
const qchar = fc.oneof(
  fc.integer({ min: 32, max: 126 }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('é', 'ü', '用', '😀'),
);
const localPart = fc.oneof(
  fc
    .array(
      fc.array(fc.constantFrom(...atext), { minLength: 1, maxLength: 8 }).map((a) => a.join('')),
      {
        minLength: 1,
        maxLength: 4,
      },
    )
    .map((a) => a.join('.')),
  fc.array(qchar, { minLength: 0, maxLength: 20 }).map((a) => a.join('')),
);
const label = fc
  .stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/)
  .filter((l) => l.length <= 63);
const domain = fc.oneof(
  fc.array(label, { minLength: 1, maxLength: 4 }).map((a) => a.join('.')),
  fc.ipV4().map((ip) => `[${ip}]`),
  fc.ipV6().map((ip) => `[IPv6:${ip}]`),
);

describe('properties', () => {
  it('formatAddress(x) re-parses to x for valid internal addresses', () => {
    fc.assert(
      fc.property(localPart, domain, (local, dom) => {
        const address = `${local}@${dom}`;
        const external = formatAddress(address);
        fc.pre(Buffer.byteLength(external) + 2 <= 256);
        fc.pre(Buffer.byteLength(external.slice(0, external.lastIndexOf('@'))) <= 64);
        const parsed = parseMailArgument(`<${external}>`, 'recipient');
        expect(parsed.address).toBe(address);
        expect(parsed.utf8).toBe(!isAscii(address));
      }),
      { numRuns: 500 },
    );
  });

  it('any string either parses or throws SmtpError', () => {
    const input = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc
        .array(
          fc.constantFrom(
            '<',
            '>',
            '"',
            '\\',
            '@',
            ':',
            ',',
            ' ',
            '[',
            ']',
            '=',
            'a',
            '.',
            '\x00',
            '\r',
            'é',
            'IPv6:',
            '::1',
          ),
          {
            maxLength: 40,
          },
        )
        .map((a) => a.join('')),
    );
    fc.assert(
      fc.property(
        input,
        fc.constantFrom('sender' as const, 'recipient' as const),
        fc.boolean(),
        (s, kind, strict) => {
          try {
            const r = parseMailArgument(s, kind, { strictRfc821Envelopes: strict });
            expect(typeof r.address).toBe('string');
            expect(r.address).not.toMatch(/[\x00-\x1f\x7f]/);
          } catch (err) {
            expect(err).toBeInstanceOf(SmtpError);
            expect((err as SmtpError).reply.code).toBe(501);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('an accepted address never exceeds the RFC 5321 limits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 300 }), (l, d) => {
        const dom = Array.from({ length: Math.ceil(d / 50) }, () =>
          'a'.repeat(Math.min(50, d)),
        ).join('.');
        try {
          const r = parseMailArgument(`<${'u'.repeat(l)}@${dom}>`, 'recipient');
          const { local, domain: dd } = splitAddress(r.address);
          expect(local.length).toBeLessThanOrEqual(64);
          expect(dd.length).toBeLessThanOrEqual(255);
          expect(r.address.length + 2).toBeLessThanOrEqual(256);
        } catch (err) {
          expect(err).toBeInstanceOf(SmtpError);
          expect(l > 64 || dom.length > 255 || l + dom.length + 3 > 256).toBe(true);
        }
      }),
    );
  });
});
