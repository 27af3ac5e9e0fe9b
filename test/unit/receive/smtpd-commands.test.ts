import { describe, expect, it } from 'vitest';
import {
  COMMANDS,
  isForbiddenCommand,
  lookupCommand,
  splitCommand,
} from '../../../src/receive/smtpd-commands.js';

describe('smtp command table', () => {
  it('finds commands in any case and nothing else', () => {
    expect(lookupCommand('ehlo')?.name).toBe('EHLO');
    expect(lookupCommand('MaIl')?.name).toBe('MAIL');
    expect(lookupCommand('ETRN')).toBeUndefined();
    expect(lookupCommand('MAILX')).toBeUndefined();
    expect(lookupCommand('constructor')).toBeUndefined();
    expect(lookupCommand('__proto__')).toBeUndefined();
  });

  it('flags junk commands and pipeline group ends as Postfix does', () => {
    const junk = COMMANDS.filter((c) => c.junk).map((c) => c.name);
    expect(junk).toEqual(['HELO', 'EHLO', 'RSET', 'NOOP', 'VRFY', 'HELP']);
    const last = COMMANDS.filter((c) => c.last).map((c) => c.name);
    expect(last).toEqual(expect.arrayContaining(['HELO', 'EHLO', 'DATA', 'NOOP', 'VRFY', 'QUIT']));
    expect(last).not.toContain('MAIL');
    expect(last).not.toContain('RCPT');
  });

  it('splits verb and arguments', () => {
    expect(splitCommand('MAIL FROM:<a@b> SIZE=10')).toEqual({
      verb: 'MAIL',
      args: 'FROM:<a@b> SIZE=10',
    });
    expect(splitCommand('  NOOP  ')).toEqual({ verb: 'NOOP', args: '' });
    expect(splitCommand('RCPT\tTO:<x@y>\t ')).toEqual({ verb: 'RCPT', args: 'TO:<x@y>' });
    expect(splitCommand('')).toEqual({ verb: '', args: '' });
  });

  it('recognises non-SMTP commands', () => {
    for (const v of [
      'GET',
      'get',
      'POST',
      'CONNECT',
      'Subject:',
      'X-Mailer:foo',
      '123',
      '\x16\x03\x01',
      '<html>',
    ]) {
      expect(isForbiddenCommand(v), v).toBe(true);
    }
    for (const v of ['FOO', 'ehlo', 'STARTTLS', 'AUTH', 'X-FOO', '']) {
      expect(isForbiddenCommand(v), v).toBe(false);
    }
  });
});
