import { describe, expect, it } from 'vitest';
import { SmtpReply } from '../../src/smtp-reply.js';

describe('SmtpReply', () => {
  it('keeps a status that is already right and rewrites the rest as before', () => {
    const cases: [number, string, string][] = [
      [250, '2.0.0', '2.0.0'],
      [250, '2.1.5', '2.1.5'],
      [550, '5.123.999', '5.123.999'],
      [450, '5.7.1', '4.7.1'],
      [550, '4.1.1', '5.1.1'],
      [250, '2.00.0', '2.0.0'],
      [250, '2.0.007', '2.0.7'],
      [550, '5.1', '5.0.0'],
      [550, '5.1.1.1', '5.0.0'],
      [550, '5.1234.1', '5.0.0'],
      [550, '5..1', '5.0.0'],
      [550, '5.1.1 ', '5.0.0'],
      [550, '5.1.x', '5.0.0'],
      [550, 'x', '5.0.0'],
      [354, '2.0.0', ''],
      [250, '', ''],
    ];
    for (const [code, given, want] of cases)
      expect(new SmtpReply(code, given, 'x').enhanced, `${code} ${given}`).toBe(want);
  });

  it('builds a reply from clean text exactly as the constructor does', () => {
    const a = SmtpReply.clean(250, '2.0.0', 'Ok: queued as 4Xz1QyJ2m3');
    const b = new SmtpReply(250, '2.0.0', 'Ok: queued as 4Xz1QyJ2m3');
    expect(a.toWire()).toBe('250 2.0.0 Ok: queued as 4Xz1QyJ2m3\r\n');
    expect(a.toWire()).toBe(b.toWire());
    expect(a.toString()).toBe(b.toString());
    expect(a.lines).toEqual(b.lines);
    expect(SmtpReply.clean(450, '5.7.1', 'later').toWire()).toBe('450 4.7.1 later\r\n');
  });

  it('still makes client text printable when built with new', () => {
    expect(new SmtpReply(550, '5.1.1', 'bad\r\nRCPT TO:<x>\tend').toWire()).toBe(
      '550-5.1.1 bad\r\n550 5.1.1 RCPT TO:<x> end\r\n',
    );
    expect(new SmtpReply(550, '5.1.1', 'a\x00b\x7f').lines).toEqual(['a_b_']);
  });
});
