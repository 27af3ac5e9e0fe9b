import { describe, expect, it } from 'vitest';
import { formatAddress, parseMailArgument } from '../../../src/address/address.js';
import { SmtpError } from '../../../src/errors.js';

// The common ASCII forms are judged in one scan each; these pin the edges where that scan
// hands over to the per-character rules (label length in octets, non-ASCII after an ASCII
// run, dots that do not make a Dot-string).

function parsed(path: string): string {
  return parseMailArgument(`<${path}>`, 'recipient').address;
}

function refused(path: string): string {
  try {
    parseMailArgument(`<${path}>`, 'recipient');
  } catch (err) {
    expect(err).toBeInstanceOf(SmtpError);
    return (err as SmtpError).message;
  }
  throw new Error(`accepted ${path}`);
}

describe('domain labels', () => {
  it('takes an ASCII label of 63 octets and refuses one of 64', () => {
    expect(parsed(`u@${'a'.repeat(63)}.example`)).toBe(`u@${'a'.repeat(63)}.example`);
    expect(refused(`u@${'a'.repeat(64)}.example`)).toMatch(/bad domain label/);
  });

  it('counts a U-label in UTF-8 octets, not characters', () => {
    // 31 two-octet characters and one ASCII: 63 octets; one more ASCII: 64.
    expect(parsed(`u@${'é'.repeat(31)}a.example`)).toBe(`u@${'é'.repeat(31)}a.example`);
    expect(refused(`u@${'é'.repeat(31)}ab.example`)).toMatch(/bad domain label/);
  });

  it('refuses a character outside the label rules in an otherwise ASCII domain', () => {
    expect(refused('u@exa!mple.com')).toMatch(/bad domain character/);
    expect(refused('u@exa\u0085mple.com')).toMatch(/bad domain character/);
    expect(refused('u@-example.com')).toMatch(/bad domain label/);
    expect(refused('u@example..com')).toMatch(/bad domain label/);
    expect(parsed('u@my_host.example.')).toBe('u@my_host.example.');
  });
});

describe('local parts', () => {
  it('judges the characters after an ASCII run one by one', () => {
    expect(parsed('jo.sé+tag@example.com')).toBe('jo.sé+tag@example.com');
    expect(refused('jo\u0085e@example.com')).toMatch(/invalid character in local part/);
    expect(refused('jo,e@example.com')).toMatch(/invalid character in local part/);
  });

  it('quotes what is not a Dot-string and leaves what is', () => {
    expect(formatAddress('a.b+c@example.com')).toBe('a.b+c@example.com');
    expect(formatAddress('a..b@example.com')).toBe('"a..b"@example.com');
    expect(formatAddress('.a@example.com')).toBe('".a"@example.com');
    expect(formatAddress('a.@example.com')).toBe('"a."@example.com');
    expect(formatAddress('jo.sé@example.com')).toBe('jo.sé@example.com');
    expect(formatAddress('jo sé@example.com')).toBe('"jo sé"@example.com');
  });
});
