import { text as readText } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../../../src/cleanup/cleanup.js';
import { Logger } from '../../../src/log.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { MemoryQueueStore } from '../../../src/queue/stores/memory-store.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { SmtpReceiver, type SmtpReceiverOptions } from '../../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import { SmtpReply } from '../../../src/smtp-reply.js';
import type {
  LogEvent,
  SubmissionPort,
  SubmissionSource,
  SubmissionTransaction,
} from '../../../src/types.js';
import { RawSmtpClient } from '../../helpers/raw-smtp-client.js';
import {
  type RecordedTransaction,
  RecordingSubmission,
} from '../../helpers/recording-submission.js';

const HOST = 'mx.example.test';
const LOCAL = `postmaster@${HOST}`;
const REMOTE = 'someone@elsewhere.example';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/**
 * The recording port, except that mail from SMTP clients (not Postern's own notices)
 * can be made to fail at commit, and notices can be made to fail at open.
 */
class FaultyPort implements SubmissionPort {
  readonly recorder = new RecordingSubmission();
  clientCommitReply: SmtpReply | undefined;
  noticeOpenError: Error | undefined;

  async open(source: SubmissionSource): Promise<SubmissionTransaction> {
    if (source.internal && this.noticeOpenError) throw this.noticeOpenError;
    const tx = await this.recorder.open(source);
    const refusal = source.internal ? undefined : this.clientCommitReply;
    if (!refusal) return tx;
    return {
      queueId: tx.queueId,
      content: tx.content,
      setSender: (s, p) => tx.setSender(s, p),
      addRecipient: (r) => tx.addRecipient(r),
      apply: (a) => tx.apply(a),
      abort: () => tx.abort(),
      async commit() {
        if (!tx.content.writableEnded) tx.content.end();
        return { reply: refusal };
      },
    };
  }

  /** The postmaster notices that were queued. */
  get notices(): RecordedTransaction[] {
    return this.recorder.committed.filter((t) => t.source.internal === true);
  }
}

interface Fx {
  readonly receiver: SmtpReceiver;
  readonly port: FaultyPort;
  readonly tcpPort: number;
  readonly logs: LogEvent[];
  readonly clients: RawSmtpClient[];
  closed: boolean;
}
let fx: Fx | undefined;

async function start(
  overrides: Record<string, unknown> = {},
  options: Partial<SmtpReceiverOptions> = {},
): Promise<Fx> {
  const params = resolveParameters({
    myhostname: HOST,
    localRecipientMaps: '', // every local part is a recipient here
    mynetworks: ['192.0.2.0/24'],
    smtpdErrorSleepTime: 0,
    ...overrides,
  });
  const logs: LogEvent[] = [];
  const port = new FaultyPort();
  const receiver = new SmtpReceiver({
    params,
    submission: port,
    rewriter: new Rewriter({ params }),
    logger: new Logger([(e) => logs.push(e)]),
    ...options,
  });
  const { port: tcpPort } = await receiver.listen({ host: '127.0.0.1', port: 0 });
  fx = { receiver, port, tcpPort, logs, clients: [], closed: false };
  return fx;
}

async function connect(f: Fx): Promise<RawSmtpClient> {
  const { client, greeting } = await RawSmtpClient.greeted(f.tcpPort);
  f.clients.push(client);
  expect(greeting.code).toBe(220);
  return client;
}

/** Ends the client's session and waits until the server is done with it (notices included). */
async function finish(f: Fx, client: RawSmtpClient): Promise<void> {
  if (!client.closed) {
    expect((await client.command('QUIT')).code).toBe(221);
    await client.waitClose();
  }
  f.closed = true;
  await f.receiver.close();
}

/** The transcript lines of a notice: body lines that start with one space, unwrapped. */
function transcriptOf(t: RecordedTransaction): string[] {
  const text = RecordingSubmission.text(t);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  const out: string[] = [];
  for (const line of body.split('\r\n')) {
    if (line.startsWith('     ') && out.length > 0) out[out.length - 1] += ` ${line.trim()}`;
    else if (line.startsWith(' ')) out.push(line.slice(1));
  }
  return out;
}

function headerOf(t: RecordedTransaction, name: string): string | undefined {
  const text = RecordingSubmission.text(t);
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

afterEach(async () => {
  for (const c of fx?.clients ?? []) c.close();
  if (fx && !fx.closed) await fx.receiver.close();
  fx = undefined;
});

describe('smtpd postmaster transcripts (notifyClasses)', () => {
  it('protocol: an unknown command mails the whole transcript to the postmaster', async () => {
    const f = await start({ notifyClasses: ['protocol'] });
    const c = await connect(f);
    expect((await c.command('EHLO client.example.org')).code).toBe(250);
    expect((await c.command('XYZZY plugh')).raw).toBe(
      '500 5.5.2 Error: command not recognized\r\n',
    );
    expect((await c.command(`MAIL FROM:<sender@client.example.org>`)).code).toBe(250);
    await finish(f, c);

    expect(f.port.notices).toHaveLength(1);
    const [n] = f.port.notices;
    if (!n) throw new Error('no notice');
    expect(n.source).toEqual({ component: 'notify', protocol: 'local', internal: true });
    expect(n.sender).toBe('double-bounce');
    expect(n.recipients.map((r) => r.address)).toEqual(['postmaster']);
    expect(headerOf(n, 'Subject')).toBe('Postern SMTP server: errors from unknown[127.0.0.1]');
    expect(headerOf(n, 'From')).toBe(`Mail Delivery System <MAILER-DAEMON@${HOST}>`);
    expect(headerOf(n, 'To')).toBe(`Postmaster <postmaster@${HOST}>`);
    expect(headerOf(n, 'Auto-Submitted')).toBe('auto-generated');
    expect(RecordingSubmission.text(n)).toContain('\r\n\r\nTranscript of session follows.\r\n\r\n');
    const lines = transcriptOf(n);
    expect(lines[0]).toBe(`Out: 220 ${HOST} ESMTP Postern`);
    expect(lines[1]).toBe('In:  EHLO client.example.org');
    expect(lines[2]).toBe(`Out: 250-${HOST}`);
    const rest = lines.slice(lines.indexOf('Out: 250 CHUNKING') + 1);
    expect(rest).toEqual([
      'In:  XYZZY plugh',
      'Out: 500 5.5.2 Error: command not recognized',
      'In:  MAIL FROM:<sender@client.example.org>',
      'Out: 250 2.1.0 Ok',
      'In:  QUIT',
      'Out: 221 2.0.0 Bye',
    ]);
    expect(f.logs.some((e) => /postmaster notification: TEST/.test(e.text))).toBe(true);
  });

  it('policy: a rejected RCPT mails a transcript to errorNoticeRecipient; a protocol error alone does not', async () => {
    const f = await start({ notifyClasses: ['policy'], errorNoticeRecipient: 'hostmaster' });
    const c1 = await connect(f);
    await c1.command('EHLO client.example.org');
    expect((await c1.command('BOGUS')).code).toBe(500);
    expect((await c1.command('QUIT')).code).toBe(221);
    await c1.waitClose();

    const c2 = await connect(f);
    await c2.command('EHLO client.example.org');
    expect((await c2.command('MAIL FROM:<a@client.example.org>')).code).toBe(250);
    const denied = await c2.command(`RCPT TO:<${REMOTE}>`);
    expect(denied.code).toBeGreaterThanOrEqual(400);
    expect(denied.raw).toMatch(/Relay access denied/);
    await finish(f, c2);

    expect(f.port.notices).toHaveLength(1);
    const [n] = f.port.notices;
    if (!n) throw new Error('no notice');
    expect(n.recipients.map((r) => r.address)).toEqual(['hostmaster']);
    const lines = transcriptOf(n);
    expect(lines).toContain(`In:  RCPT TO:<${REMOTE}>`);
    expect(lines).toContain(`Out: ${denied.raw.trimEnd()}`);
    expect(lines).not.toContain('In:  BOGUS');
  });

  it('the default classes send nothing for protocol and policy errors', async () => {
    const f = await start();
    expect(f.receiver).toBeDefined();
    const c = await connect(f);
    await c.command('EHLO client.example.org');
    expect((await c.command('XYZZY')).code).toBe(500);
    expect((await c.command('MAIL FROM:<a@client.example.org>')).code).toBe(250);
    expect((await c.command(`RCPT TO:<${REMOTE}>`)).code).toBeGreaterThanOrEqual(400);
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    expect((await c.command('Subject: hi\r\n\r\nhello\r\n.')).code).toBe(250);
    await finish(f, c);
    expect(f.port.notices).toHaveLength(0);
    expect(f.port.recorder.committed).toHaveLength(1);
  });

  it('AUTH credentials never reach the transcript', async () => {
    const users = async (u: string, p: string): Promise<boolean> =>
      u === 'lena' && p === 'Very$ecret-42';
    const f = await start(
      {
        notifyClasses: ['protocol', 'policy'],
        smtpdSaslAuthEnable: true,
        smtpdTlsAuthOnly: false,
        smtpdSaslMechanisms: ['PLAIN', 'LOGIN'],
      },
      { authenticator: users },
    );
    const c = await connect(f);
    await c.command('EHLO client.example.org');
    const wrongPlain = b64('\0lena\0Wrong$ecret-41');
    expect((await c.command(`AUTH PLAIN ${wrongPlain}`)).code).toBe(535);
    // PLAIN without an initial response: the credentials come on the next line.
    expect((await c.command('AUTH PLAIN')).code).toBe(334);
    const secondPlain = b64('\0lena\0Other$ecret-43');
    expect((await c.command(secondPlain)).code).toBe(535);
    // LOGIN: user name and password in continuation lines.
    expect((await c.command('AUTH LOGIN')).raw).toBe('334 VXNlcm5hbWU6\r\n');
    expect((await c.command(b64('lena'))).raw).toBe('334 UGFzc3dvcmQ6\r\n');
    expect((await c.command(b64('Very$ecret-42'))).code).toBe(235);
    // A password sent where a command is expected (a confused client) is masked too.
    expect((await c.command(b64('Stray$ecret-44'))).code).toBe(500);
    // Once a command follows, single words are shown again.
    expect((await c.command('NOOP')).code).toBe(250);
    expect((await c.command('XYZZY')).code).toBe(500);
    await finish(f, c);

    expect(f.port.notices).toHaveLength(1);
    const [n] = f.port.notices;
    if (!n) throw new Error('no notice');
    const text = RecordingSubmission.text(n);
    for (const secret of [
      wrongPlain,
      secondPlain,
      b64('Very$ecret-42'),
      b64('Stray$ecret-44'),
      b64('lena'),
      'ecret-4',
    ]) {
      expect(text).not.toContain(secret);
    }
    const lines = transcriptOf(n);
    expect(lines).toContain('In:  AUTH PLAIN ***');
    expect(lines).toContain('In:  AUTH PLAIN');
    expect(lines).toContain('In:  AUTH LOGIN');
    expect(lines.filter((l) => l === 'In:  ***')).toHaveLength(4);
    expect(lines).toContain('Out: 535 5.7.8 Error: authentication failed');
    expect(lines).toContain('Out: 235 2.7.0 Authentication successful');
    expect(lines.slice(-6)).toEqual([
      'In:  NOOP',
      'Out: 250 2.0.0 Ok',
      'In:  XYZZY',
      'Out: 500 5.5.2 Error: command not recognized',
      'In:  QUIT',
      'Out: 221 2.0.0 Bye',
    ]);
  });

  it('resource: a commit that fails with 451 4.3.0 is reported with the default classes', async () => {
    const f = await start();
    f.port.clientCommitReply = new SmtpReply(451, '4.3.0', 'Error: queue file write error');
    const c = await connect(f);
    await c.command('EHLO client.example.org');
    await c.command('MAIL FROM:<a@client.example.org>');
    expect((await c.command(`RCPT TO:<${LOCAL}>`)).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    // The client gets the commit's reply, unaffected by the notice.
    expect((await c.command('Subject: hi\r\n\r\nhello\r\n.')).raw).toBe(
      '451 4.3.0 Error: queue file write error\r\n',
    );
    await finish(f, c);

    expect(f.port.notices).toHaveLength(1);
    const [n] = f.port.notices;
    if (!n) throw new Error('no notice');
    expect(n.recipients.map((r) => r.address)).toEqual(['postmaster']);
    const lines = transcriptOf(n);
    expect(lines).toContain('In:  DATA');
    expect(lines).toContain('Out: 354 End data with <CR><LF>.<CR><LF>');
    expect(lines).toContain('Out: 451 4.3.0 Error: queue file write error');
    // Message content is not part of the transcript.
    expect(lines.some((l) => l.includes('Subject: hi'))).toBe(false);
  });

  it('a notice that cannot be queued is logged; the client never notices', async () => {
    const f = await start({ notifyClasses: ['protocol'] });
    f.port.noticeOpenError = new Error('cleanup is down');
    const c = await connect(f);
    expect((await c.command('NONSENSE')).code).toBe(500);
    expect((await c.command('NOOP')).raw).toBe('250 2.0.0 Ok\r\n');
    await finish(f, c);
    expect(f.port.notices).toHaveLength(0);
    const warning = f.logs.find((e) => e.level === 'warning' && /postmaster notify/.test(e.text));
    expect(warning?.text).toBe('postmaster notify: unknown[127.0.0.1]: cleanup is down');
  });

  it('bounce: a refused message goes to bounceNoticeRecipient, other classes to errorNoticeRecipient', async () => {
    const f = await start({
      notifyClasses: ['bounce', 'protocol'],
      messageSizeLimit: 1000,
      bounceNoticeRecipient: 'bounce-admin',
    });
    const c1 = await connect(f);
    await c1.command('EHLO client.example.org');
    expect((await c1.command('MAIL FROM:<a@client.example.org> SIZE=5000')).raw).toBe(
      '552 5.3.4 Message size exceeds fixed limit\r\n',
    );
    expect((await c1.command('QUIT')).code).toBe(221);
    await c1.waitClose();

    const c2 = await connect(f);
    await c2.command('EHLO client.example.org');
    expect((await c2.command('MAIL FROM:<a@client.example.org> SIZE=5000')).code).toBe(552);
    expect((await c2.command('RCPT TO:<a@b>')).code).toBe(503);
    await finish(f, c2);

    const byRecipients = f.port.notices.map((n) => n.recipients.map((r) => r.address));
    expect(byRecipients).toHaveLength(2);
    expect(byRecipients).toContainEqual(['bounce-admin']);
    expect(byRecipients).toContainEqual(['postmaster', 'bounce-admin']);
  });

  it('a hostile session cannot make the transcript large: lines and line length are capped', async () => {
    const f = await start({ notifyClasses: ['protocol'], smtpdHardErrorLimit: 5000 });
    const c = await connect(f);
    await c.command('EHLO client.example.org');
    const n = 600;
    let batch = '';
    for (let i = 0; i < n; i++) batch += `JUNK${i} ${'x'.repeat(1500)}\r\n`;
    c.send(batch);
    for (let i = 0; i < n; i++) expect((await c.reply()).code).toBe(500);
    await finish(f, c);

    expect(f.port.notices).toHaveLength(1);
    const [notice] = f.port.notices;
    if (!notice) throw new Error('no notice');
    const text = RecordingSubmission.text(notice);
    expect(text.length).toBeLessThan(200 * 600);
    const lines = transcriptOf(notice);
    expect(lines.length).toBeLessThanOrEqual(201);
    expect(lines.every((l) => l.length <= 600)).toBe(true);
    expect(lines).toContain(`... ${2 * n + 2 + 10 - 200} lines left out ...`);
    // The first and the last lines of the session are kept.
    expect(lines[0]).toBe(`Out: 220 ${HOST} ESMTP Postern`);
    expect(lines.at(-1)).toBe('Out: 221 2.0.0 Bye');
    expect(lines).toContain('Out: 500 5.5.2 Error: command not recognized');
  });

  it('at EHLO a history past the flush threshold is reported and dropped (smtpd_history_flush_threshold)', async () => {
    const f = await start({ notifyClasses: ['protocol'], smtpdHardErrorLimit: 1000 });
    const c = await connect(f);
    let batch = '';
    for (let i = 0; i < 60; i++) batch += `EARLY${i}\r\n`;
    c.send(batch);
    for (let i = 0; i < 60; i++) expect((await c.reply()).code).toBe(500);
    expect((await c.command('EHLO client.example.org')).code).toBe(250);
    expect((await c.command('LATE')).code).toBe(500);
    await finish(f, c);

    expect(f.port.notices).toHaveLength(2);
    const [first, second] = f.port.notices.map(transcriptOf);
    expect(first?.[0]).toBe(`Out: 220 ${HOST} ESMTP Postern`);
    expect(first?.at(-1)).toBe('In:  EHLO client.example.org');
    expect(first).toContain('In:  EARLY59');
    expect(second?.[0]).toBe(`Out: 250-${HOST}`);
    expect(second).toContain('In:  LATE');
    expect(second).not.toContain('In:  EARLY59');
  });

  it('a queued message clears earlier errors; the threshold flush without errors sends nothing', async () => {
    const f = await start({ notifyClasses: ['protocol'] });
    const c = await connect(f);
    await c.command('EHLO client.example.org');
    expect((await c.command('XYZZY')).code).toBe(500);
    await c.command('MAIL FROM:<a@client.example.org>');
    await c.command(`RCPT TO:<${LOCAL}>`);
    await c.command('DATA');
    expect((await c.command('Subject: hi\r\n\r\nhello\r\n.')).code).toBe(250);
    await finish(f, c);
    expect(f.port.notices).toHaveLength(0);
  });

  it('through a real Cleanup: the notice is queued from double-bounce to postmaster, without a Received header', async () => {
    const params = resolveParameters({
      myhostname: HOST,
      localRecipientMaps: '', // every local part is a recipient here
      mynetworks: ['192.0.2.0/24'],
      smtpdErrorSleepTime: 0,
      notifyClasses: ['protocol'],
      smtpdTimeout: '300ms',
    });
    const store = new MemoryQueueStore();
    await store.open();
    const rewriter = new Rewriter({ params });
    const cleanup = new Cleanup({
      params,
      store,
      rewriter,
      queueIds: new QueueIdGenerator('NOTE0'),
    });
    const receiver = new SmtpReceiver({ params, submission: cleanup, rewriter });
    const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { client } = await RawSmtpClient.greeted(port);
      expect((await client.command('HELO client.example.org')).code).toBe(250);
      expect((await client.command('RCPT TO:<x@y.example>')).code).toBe(503);
      // The client goes quiet: smtpd_timeout ends the session.
      expect((await client.reply()).raw).toBe(`421 4.4.2 ${HOST} Error: timeout exceeded\r\n`);
      await client.waitClose();
      await receiver.close();

      const entries = await store.list();
      expect(entries).toHaveLength(1);
      const [entry] = entries;
      if (!entry) throw new Error('nothing queued');
      expect(entry.sender).toBe(`double-bounce@${HOST}`);
      expect(entry.recipients.map((r) => r.address)).toEqual([`postmaster@${HOST}`]);
      const content = await readText(store.openContent(entry.queueId));
      expect(content).not.toMatch(/^Received:/m);
      expect(content).toContain('Subject: Postern SMTP server: errors from unknown[127.0.0.1]\r\n');
      expect(content).toContain('\r\n In:  RCPT TO:<x@y.example>\r\n');
      expect(content).toContain('\r\n Out: 503 5.5.1 Error: need MAIL command\r\n');
      expect(content).toContain(`\r\n Out: 421 4.4.2 ${HOST} Error: timeout exceeded\r\n`);
      expect(content).toContain('\r\n\r\nSession aborted, reason: timeout\r\n');
    } finally {
      await receiver.close();
      await store.close();
    }
  });
});
