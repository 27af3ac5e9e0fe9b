import { describe, expect, it } from 'vitest';
import { SmtpError } from '../../../src/errors.js';
import {
  interpretMailParams,
  interpretRcptParams,
} from '../../../src/receive/smtpd-esmtp-params.js';

const m = (entries: [string, string | undefined][]) => new Map(entries);

function replyOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SmtpError) return err.reply.toString();
    throw err;
  }
  throw new Error('no error thrown');
}

describe('MAIL FROM parameters', () => {
  it('interprets SIZE, BODY, SMTPUTF8, RET and ENVID', () => {
    const p = interpretMailParams(
      m([
        ['SIZE', '4096'],
        ['BODY', '8bitmime'],
        ['SMTPUTF8', undefined],
        ['RET', 'hdrs'],
        ['ENVID', 'QQ+2Bx+3Dy'],
      ]),
    );
    expect(p).toEqual({
      declaredSize: 4096,
      bodyType: '8BITMIME',
      smtputf8: true,
      ret: 'HDRS',
      envid: 'QQ+x=y',
    });
  });

  it('returns nothing for no parameters', () => {
    expect(interpretMailParams(new Map())).toEqual({});
  });

  it('rejects bad values with Postfix replies', () => {
    expect(replyOf(() => interpretMailParams(m([['SIZE', 'big']])))).toBe(
      '501 5.5.4 Bad message size syntax',
    );
    expect(replyOf(() => interpretMailParams(m([['SIZE', undefined]])))).toBe(
      '501 5.5.4 Bad message size syntax',
    );
    expect(replyOf(() => interpretMailParams(m([['BODY', 'BINARYMIME']])))).toBe(
      '555 5.5.4 Unsupported option: BODY=BINARYMIME',
    );
    expect(replyOf(() => interpretMailParams(m([['RET', 'ALL']])))).toBe(
      '501 5.5.4 Bad RET parameter syntax',
    );
    expect(replyOf(() => interpretMailParams(m([['ENVID', 'a+0Db']])))).toBe(
      '501 5.5.4 Bad ENVID parameter syntax',
    );
    expect(replyOf(() => interpretMailParams(m([['ENVID', 'x'.repeat(101)]])))).toMatch(
      /^501 5\.5\.4/,
    );
    expect(replyOf(() => interpretMailParams(m([['SMTPUTF8', 'yes']])))).toMatch(/^501 5\.5\.4/);
    // RFC 4954 section 5: AUTH= is accepted and ignored; without a value it is bad syntax.
    expect(interpretMailParams(m([['AUTH', '<>']]))).toEqual({});
    expect(replyOf(() => interpretMailParams(m([['AUTH', undefined]])))).toBe(
      '501 5.5.4 Bad AUTH parameter syntax',
    );
    expect(replyOf(() => interpretMailParams(m([['XFOO', undefined]])))).toBe(
      '555 5.5.4 Unsupported option: XFOO',
    );
  });

  it('accepts a SIZE of 20 digits without losing the comparison', () => {
    const p = interpretMailParams(m([['SIZE', '99999999999999999999']]));
    expect(p.declaredSize).toBeGreaterThan(10_240_000);
  });
});

describe('RCPT TO parameters', () => {
  it('interprets NOTIFY and ORCPT', () => {
    expect(interpretRcptParams(m([['NOTIFY', 'success,Failure']]))).toEqual({
      notify: ['SUCCESS', 'FAILURE'],
    });
    expect(interpretRcptParams(m([['NOTIFY', 'NEVER']]))).toEqual({ notify: ['NEVER'] });
    expect(interpretRcptParams(m([['ORCPT', 'RFC822;a+2Bb@example.com']]))).toEqual({
      orcpt: 'rfc822;a+b@example.com',
    });
  });

  it('rejects bad NOTIFY and ORCPT', () => {
    for (const v of ['NEVER,SUCCESS', 'SOMETIMES', 'SUCCESS,SUCCESS', '', undefined]) {
      expect(replyOf(() => interpretRcptParams(m([['NOTIFY', v]])))).toBe(
        '501 5.5.4 Error: Bad NOTIFY parameter syntax',
      );
    }
    for (const v of ['rfc822', ';x@y', 'rfc822;', 'rfc822;a+0Ab', 'bad type;x', undefined]) {
      expect(replyOf(() => interpretRcptParams(m([['ORCPT', v]])))).toBe(
        '501 5.5.4 Error: Bad ORCPT parameter syntax',
      );
    }
    expect(replyOf(() => interpretRcptParams(m([['FOO', '1']])))).toBe(
      '555 5.5.4 Unsupported option: FOO',
    );
  });
});
