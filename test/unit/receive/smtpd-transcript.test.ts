import { describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { composeSmtpdNotice, noticeRecipients } from '../../../src/receive/smtpd-notice.js';
import {
  classifyReply,
  restrictionClass,
  type SmtpdErrorClass,
  SmtpdTranscript,
} from '../../../src/receive/smtpd-transcript.js';
import { SmtpReply } from '../../../src/smtp-reply.js';

const ALL = ['policy', 'protocol', 'resource', 'software', 'bounce'];

describe('classifyReply', () => {
  const table: [number, string, string, SmtpdErrorClass | undefined][] = [
    [250, '2.0.0', 'Ok', undefined],
    [354, '', 'End data with <CR><LF>.<CR><LF>', undefined],
    [500, '5.5.2', 'Error: command not recognized', 'protocol'],
    [501, '5.5.4', 'Syntax: MAIL FROM:<address>', 'protocol'],
    [501, '5.1.7', 'Bad sender address syntax', 'protocol'],
    [503, '5.5.1', 'Error: need MAIL command', 'protocol'],
    [504, '5.5.4', 'Unsupported authentication mechanism', 'protocol'],
    [554, '5.5.0', 'Error: SMTP protocol synchronization', 'protocol'],
    [521, '5.5.2', 'Error: bare <LF> received', 'protocol'],
    [553, '5.6.7', 'Must declare SMTPUTF8 to send unicode address', 'protocol'],
    [452, '4.5.3', 'Error: too many recipients', 'policy'],
    [554, '5.7.1', 'Relay access denied', 'policy'],
    [450, '4.7.1', 'Error: too much mail from 192.0.2.1', 'policy'],
    [535, '5.7.8', 'Error: authentication failed', 'policy'],
    [451, '4.3.0', 'Error: queue file write error', 'resource'],
    [451, '4.3.0', 'Error: internal protocol error', 'software'],
    [451, '4.3.0', 'internal error, try again later', 'software'],
    [451, '4.3.5', 'Server configuration problem', 'software'],
    [552, '5.3.4', 'Error: message file too big', 'bounce'],
    [554, '5.4.0', 'Error: too many hops', 'bounce'],
    [550, '5.1.1', 'User unknown', 'bounce'],
    [550, '5.0.0', 'error transport', 'bounce'],
    [450, '4.0.0', 'retry', 'resource'],
  ];
  it.each(table)('%i %s %s → %s', (code, enhanced, text, cls) => {
    expect(classifyReply(new SmtpReply(code, enhanced, text))).toBe(cls);
  });

  it('restriction replies are policy unless they are lookup or configuration failures', () => {
    expect(restrictionClass(new SmtpReply(504, '5.5.2', 'need fully-qualified hostname'))).toBe(
      'policy',
    );
    expect(restrictionClass(new SmtpReply(550, '5.1.8', 'Sender address rejected'))).toBe('policy');
    expect(restrictionClass(new SmtpReply(451, '4.3.0', 'Temporary lookup failure'))).toBe(
      'resource',
    );
    expect(restrictionClass(new SmtpReply(451, '4.3.5', 'Server configuration problem'))).toBe(
      'software',
    );
  });
});

describe('SmtpdTranscript', () => {
  it('records nothing when notifyClasses names no session class', () => {
    const t = new SmtpdTranscript(['2bounce', 'delay', 'resorce']);
    expect(t.enabled).toBe(false);
    t.query('XYZZY');
    t.reply('500 5.5.2 Error: command not recognized\r\n');
    t.error('protocol');
    expect(t.length).toBe(0);
    expect(t.finish()).toBeUndefined();
  });

  it('hands out a history only for an error of a listed class', () => {
    const t = new SmtpdTranscript([' Protocol ']);
    t.query('XYZZY');
    const r = new SmtpReply(554, '5.7.1', 'Relay access denied');
    t.reply(r.toWire());
    t.replied(r);
    expect(t.finish()).toBeUndefined();
    t.query('XYZZY');
    const u = new SmtpReply(500, '5.5.2', 'Error: command not recognized');
    t.reply(u.toWire());
    t.replied(u);
    expect(t.finish()).toEqual({
      lines: ['In:  XYZZY', 'Out: 500 5.5.2 Error: command not recognized'],
      omitted: 0,
      omittedAt: 2,
      classes: ['protocol'],
    });
    // finish() drops what it handed out.
    expect(t.length).toBe(0);
  });

  it('a mark overrides the classification; a queued message clears the errors', () => {
    const t = new SmtpdTranscript(['policy']);
    const r = t.mark(new SmtpReply(504, '5.5.2', 'Helo command rejected'), 'policy');
    t.replied(r);
    t.query('x');
    t.clearErrors();
    expect(t.finish()).toBeUndefined();
    t.replied(r);
    t.query('x');
    t.aborted('timeout');
    t.aborted('lost connection');
    expect(t.finish()?.reason).toBe('timeout');
  });

  it('masks AUTH responses in every spelling, and base64 lines right after AUTH', () => {
    const t = new SmtpdTranscript(ALL);
    t.query('AUTH PLAIN AGxlbmEAcHc=');
    t.query('auth\tlogin\tbGVuYQ==');
    t.query('  Auth  Plain   AGxlbmEAcHc=  ');
    t.saslResponse('cHc=');
    t.saslResponse('*');
    t.query('c2VjcmV0');
    t.query('NOOP');
    t.query('c2VjcmV0');
    t.query('AUTH');
    t.query('AUTHX AGxlbmEAcHc=');
    t.query('AUTH PLAIN=c2VjcmV0 x');
    t.query('AUTH L\u00d6GIN c2VjcmV0');
    t.error('protocol');
    const lines = t.finish()?.lines;
    expect(lines).toEqual([
      'In:  AUTH PLAIN ***',
      'In:  auth?login ***',
      'In:    Auth  Plain ***',
      'In:  ***',
      'In:  *',
      'In:  ***',
      'In:  NOOP',
      'In:  c2VjcmV0',
      'In:  AUTH',
      'In:  AUTHX AGxlbmEAcHc=',
      'In:  AUTH ***',
      'In:  AUTH ***',
    ]);
  });

  it('keeps the first and the last lines within maxLines, each cut to maxLineLength', () => {
    const t = new SmtpdTranscript(['protocol'], { maxLines: 6, maxLineLength: 20 });
    for (let i = 0; i < 10; i++) t.query(`LINE${i} ${'y'.repeat(40)}`);
    t.query('caf\u00e9\r\n\u0000');
    t.error('protocol');
    const s = t.finish();
    expect(s?.lines).toEqual([
      'In:  LINE0 yyyyyy...',
      'In:  LINE1 yyyyyy...',
      'In:  LINE2 yyyyyy...',
      'In:  LINE8 yyyyyy...',
      'In:  LINE9 yyyyyy...',
      'In:  caf????',
    ]);
    expect(s?.omitted).toBe(5);
    expect(s?.omittedAt).toBe(3);
  });

  it('checkpoint() flushes only past the threshold, and reports only when owed', () => {
    const t = new SmtpdTranscript(['protocol'], { flushThreshold: 3 });
    t.query('a');
    t.query('b');
    t.query('c');
    t.error('protocol');
    expect(t.checkpoint()).toBeUndefined();
    expect(t.length).toBe(3);
    t.query('d');
    expect(t.checkpoint()?.lines).toEqual(['In:  a', 'In:  b', 'In:  c', 'In:  d']);
    expect(t.length).toBe(0);
    for (const l of ['e', 'f', 'g', 'h']) t.query(l);
    expect(t.checkpoint()).toBeUndefined();
    expect(t.length).toBe(0);
  });

  it('refuses unusable limits', () => {
    expect(() => new SmtpdTranscript(ALL, { maxLines: 0 })).toThrow(RangeError);
    expect(() => new SmtpdTranscript(ALL, { maxLines: 1 })).toThrow(/at least 2/);
    expect(() => new SmtpdTranscript(ALL, { flushThreshold: 1.5 })).toThrow(/flushThreshold/);
  });
});

describe('the notice', () => {
  const params = resolveParameters({
    myhostname: 'mx.example.test',
    errorNoticeRecipient: 'hostmaster',
    bounceNoticeRecipient: 'HOSTMASTER',
  });

  it('goes to errorNoticeRecipient and bounceNoticeRecipient, each once', () => {
    expect(noticeRecipients(['protocol'], params)).toEqual(['hostmaster']);
    expect(noticeRecipients(['bounce'], params)).toEqual(['HOSTMASTER']);
    expect(noticeRecipients(['policy', 'bounce'], params)).toEqual(['hostmaster']);
    expect(
      noticeRecipients(['bounce', 'software'], { ...params, bounceNoticeRecipient: 'b@x.test' }),
    ).toEqual(['hostmaster', 'b@x.test']);
  });

  it('is a 7bit text with the transcript indented, wrapped at 78 columns, and the reason', () => {
    const long = `Out: 554 5.7.1 ${'word '.repeat(30).trim()}`;
    const text = composeSmtpdNotice({
      snapshot: {
        lines: ['In:  .', `In:  ${'z'.repeat(100)}`, long],
        omitted: 7,
        omittedAt: 1,
        classes: ['policy'],
        reason: 'lost connection',
      },
      client: 'unknown[192.0.2.1]',
      to: ['hostmaster', 'b@x.test'],
      queueId: 'Q1',
      now: Date.UTC(2026, 0, 2, 3, 4, 5),
      params,
    });
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    const body = text.slice(head.length + 4);
    expect(head.split('\r\n')).toEqual([
      'From: Mail Delivery System <MAILER-DAEMON@mx.example.test>',
      'To: Postmaster <hostmaster@mx.example.test>, <b@x.test>',
      'Subject: Postern SMTP server: errors from unknown[192.0.2.1]',
      'Date: Fri, 2 Jan 2026 03:04:05 +0000 (UTC)',
      'Message-Id: <20260102030405.Q1@mx.example.test>',
      'Auto-Submitted: auto-generated',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      'Content-Transfer-Encoding: 7bit',
    ]);
    const lines = body.split('\r\n');
    expect(lines.slice(0, 5)).toEqual([
      'Transcript of session follows.',
      '',
      ' In:  .',
      ' ... 7 lines left out ...',
      ` In:  ${'z'.repeat(73)}`,
    ]);
    expect(lines[5]).toBe(`     ${'z'.repeat(27)}`);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(79);
    expect(body).toContain('\r\n\r\nSession aborted, reason: lost connection\r\n');
    expect(text.endsWith('\r\nFor other details, see the local mail logfile\r\n')).toBe(true);
    expect(/^[\x20-\x7e\r\n]*$/.test(text)).toBe(true);
  });
});
