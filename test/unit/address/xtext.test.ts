import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeXtext, encodeXtext } from '../../../src/address/xtext.js';
import { SmtpError } from '../../../src/errors.js';

describe('decodeXtext (RFC 3461 section 4)', () => {
  const ok: [string, string][] = [
    ['', ''],
    ['QQ314159', 'QQ314159'],
    ['rfc822;user+2Bext@example.com', 'rfc822;user+ext@example.com'],
    ['a+3Db', 'a=b'],
    ['a+20b', 'a b'],
    ['+2b', '+'],
    ['~!', '~!'],
  ];
  for (const [input, output] of ok) {
    it(`${input} → ${output}`, () => expect(decodeXtext(input)).toBe(output));
  }

  const bad: [string, string][] = [
    ['a+', '"+" at the end'],
    ['a+2', 'one hex digit'],
    ['a+GG', 'non-hex digits'],
    ['a+0D+0A', 'encoded CR LF'],
    ['a+00', 'encoded NUL'],
    ['a+7F', 'encoded DEL'],
    ['a+C3+A9', 'encoded non-ASCII'],
    ['a b', 'a space'],
    ['a=b', 'a bare "="'],
    ['é', 'non-ASCII'],
    ['a\x00', 'NUL'],
  ];
  for (const [input, why] of bad) {
    it(`rejects ${why}`, () => {
      let caught: unknown;
      try {
        decodeXtext(input);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SmtpError);
      expect((caught as SmtpError).reply.toString()).toBe('501 5.5.4 Invalid xtext');
    });
  }
});

describe('encodeXtext', () => {
  it('encodes +, =, space and controls as +HH with upper-case hex', () => {
    expect(encodeXtext('a+b=c d\r\n')).toBe('a+2Bb+3Dc+20d+0D+0A');
  });
  it('encodes non-ASCII as UTF-8 octets', () => {
    expect(encodeXtext('é')).toBe('+C3+A9');
  });
  it('leaves other printable ASCII alone', () => {
    expect(encodeXtext('rfc822;user@example.com')).toBe('rfc822;user@example.com');
  });
});

describe('xtext properties', () => {
  it('round-trips printable US-ASCII', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
        }),
        (s) => {
          expect(decodeXtext(encodeXtext(s))).toBe(s);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('encoded text is always a valid esmtp-value character string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(encodeXtext(s)).toMatch(/^[\x21-\x3c\x3e-\x7e]*$/);
      }),
    );
  });

  it('decoding any string returns or throws SmtpError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        try {
          expect(typeof decodeXtext(s)).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(SmtpError);
        }
      }),
    );
  });
});
