import { describe, expect, it } from 'vitest';
import { Logger } from '../../../src/log.js';
import { logFields } from '../../../src/log-fields.js';
import { formatLogJson, formatLogLine, syslogTime } from '../../../src/log-format.js';
import type { LogEvent } from '../../../src/types.js';

const at = new Date(2026, 0, 5, 9, 5, 7).getTime();
const ev = (text: string, extra: Partial<LogEvent> = {}): LogEvent => ({
  time: at,
  level: 'info',
  component: 'smtpd',
  text,
  ...extra,
});
const opts = { hostname: 'mx.example.com', pid: 4211 };

describe('formatLogLine: the line Postfix maillog_file writes', () => {
  it('is "Mon DD HH:MM:SS host name/service[pid]: text", local time, the host name first label', () => {
    expect(syslogTime(at)).toBe('Jan 05 09:05:07');
    expect(formatLogLine(ev('connect from unknown[192.0.2.1]'), opts)).toBe(
      'Jan 05 09:05:07 mx postern/smtpd[4211]: connect from unknown[192.0.2.1]',
    );
    expect(
      formatLogLine(ev('removed', { component: 'qmgr', queueId: 'Q1' }), {
        ...opts,
        syslogName: 'edge',
      }),
    ).toBe('Jan 05 09:05:07 mx edge/qmgr[4211]: Q1: removed');
  });

  it('puts the severity before the queue ID, as msg_logger does', () => {
    expect(formatLogLine(ev('disk full', { level: 'warning', queueId: 'Q1' }), opts)).toBe(
      'Jan 05 09:05:07 mx postern/smtpd[4211]: warning: Q1: disk full',
    );
    expect(formatLogLine(ev('x', { level: 'error' }), opts)).toMatch(/\[4211\]: error: x$/);
  });

  it("uses the event's own syslogName (a listener's -o syslog_name) and cuts records at 2000 characters", () => {
    expect(
      formatLogLine(ev('connect from a[b]', { syslogName: 'postern/submission' }), opts),
    ).toMatch(/ postern\/submission\/smtpd\[4211\]: connect/);
    const line = formatLogLine(ev('x'.repeat(5000)), opts);
    expect(line.length).toBe('Jan 05 09:05:07 mx postern/smtpd[4211]: '.length + 2000);
  });

  it('never writes an empty or blank host field', () => {
    expect(formatLogLine(ev('x'), { ...opts, hostname: '.odd' })).toMatch(
      /^Jan 05 09:05:07 localhost /,
    );
  });
});

describe('structured fields on every event', () => {
  it('parses connect, reject, delivery and SASL lines', () => {
    expect(logFields(ev('connect from mail.example[192.0.2.1]'))).toEqual({
      event: 'connect',
      client_name: 'mail.example',
      client_address: '192.0.2.1',
    });
    expect(
      logFields(
        ev(
          'NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <x@y.example>: Relay access denied; from=<a@b.example> to=<x@y.example> proto=ESMTP helo=<h>',
        ),
      ),
    ).toMatchObject({
      event: 'reject',
      stage: 'RCPT',
      reply_code: 554,
      dsn: '5.7.1',
      reason: '<x@y.example>: Relay access denied',
      from: 'a@b.example',
      to: 'x@y.example',
      proto: 'ESMTP',
      helo: 'h',
      client_address: '192.0.2.9',
    });
    expect(
      logFields(
        ev(
          'to=<u@x.example>, relay=mx.x.example[192.0.2.2]:25, delay=1.2, dsn=4.4.1, status=deferred (connect to mx.x.example[192.0.2.2]:25: Connection refused, status=bad)',
          { component: 'smtp', queueId: 'Q' },
        ),
      ),
    ).toEqual({
      event: 'delivery',
      to: 'u@x.example',
      relay: 'mx.x.example[192.0.2.2]:25',
      delay: 1.2,
      dsn: '4.4.1',
      status: 'deferred',
      detail: 'connect to mx.x.example[192.0.2.2]:25: Connection refused, status=bad',
    });
    expect(
      logFields(
        ev(
          'unknown[192.0.2.3]: SASL LOGIN authentication failed: authentication failure, sasl_username=bob',
          { level: 'warning' },
        ),
      ),
    ).toMatchObject({
      event: 'sasl_failed',
      sasl_method: 'LOGIN',
      reason: 'authentication failure',
      sasl_username: 'bob',
      client_address: '192.0.2.3',
    });
  });

  it("lets the component's own fields win over what the text seems to say", () => {
    const f = logFields(
      ev('NOQUEUE: reject: MAIL from a[192.0.2.1]: 550 5.1.0 nope; from=<"x> to=<evil"@y>', {
        fields: { from: '"x> to=<evil"@y', event: 'reject' },
      }),
    );
    expect(f.from).toBe('"x> to=<evil"@y');
  });

  it('JSON output carries host, program, pid and fields for every event', () => {
    const o = JSON.parse(
      formatLogJson(ev('disconnect from unknown[192.0.2.1] ehlo=1 commands=1'), opts),
    );
    expect(o).toMatchObject({
      time: new Date(at).toISOString(),
      host: 'mx',
      program: 'postern/smtpd',
      pid: 4211,
      level: 'info',
      component: 'smtpd',
      fields: { event: 'disconnect', client_address: '192.0.2.1', ehlo: '1', commands: '1' },
    });
  });
});

describe('Logger.child', () => {
  it("tags events with its syslogName and writes to the root's sinks", () => {
    const seen: LogEvent[] = [];
    const root = new Logger([(e) => seen.push(e)], () => at);
    const child = root.child({ syslogName: 'postern/submission' });
    const late: LogEvent[] = [];
    child.addSink((e) => late.push(e));
    child.for('smtpd').info(undefined, 'connect from a[192.0.2.1]');
    root.info('qmgr', 'Q', 'removed');
    expect(seen.map((e) => e.syslogName)).toEqual(['postern/submission', undefined]);
    expect(late).toHaveLength(2);
  });
});
