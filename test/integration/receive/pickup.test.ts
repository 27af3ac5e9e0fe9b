import { execFileSync, spawn } from 'node:child_process';
import { link, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Logger } from '../../../src/log.js';
import { Mta } from '../../../src/mta/mta.js';
import { maildropTrailer } from '../../../src/receive/maildrop-format.js';
import type { LogEvent } from '../../../src/types.js';
import { headersOf, waitForMaildir } from '../../helpers/maildir.js';
import { POSTERN_BIN as BIN, runPostern } from '../../helpers/postern-cli.js';
import { startPostern } from '../../helpers/postern-process.js';

/** Runs `postern sendmail ARGS` with `input` on stdin; resolves with the exit code and stderr. */
async function sendmail(
  cwd: string,
  args: string[],
  input: string,
): Promise<{ code: number | null; stderr: string }> {
  const { code, stderr } = await runPostern(['sendmail', ...args], { cwd, input });
  return { code, stderr };
}

/** A maildrop file as the writer makes it, with parts that can be broken on purpose. */
function maildropFile(content: string, envelope: object): Buffer {
  const json = `${JSON.stringify(envelope)}\n`;
  return Buffer.from(
    content + json + maildropTrailer(Buffer.byteLength(content), Buffer.byteLength(json)),
  );
}

describe('sendmail, maildrop and pickup', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('sendmail -t works while the server is stopped; the server delivers it once started, without Bcc', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-sendmail-'));
    dirs.push(dir);
    const config = { myhostname: 'mx.example.test', smtpd: [{ listen: '127.0.0.1:0' }] };
    await writeFile(join(dir, 'postern.json'), JSON.stringify(config));
    const message =
      'From: app@example.test\nTo: alice@localhost\nBcc: bob@localhost\nSubject: via sendmail\n\nhello\n.\nnot part of it\n';
    const r = await sendmail(dir, ['-t', '-C', join(dir, 'postern.json')], message);
    expect(r).toEqual({ code: 0, stderr: '' });
    expect(
      (await readdir(join(dir, 'var/queue/maildrop'))).filter(
        (n) => !n.startsWith('.') && n !== 'corrupt',
      ),
    ).toHaveLength(1);

    const server = await startPostern(dir, config);
    try {
      const [a] = await waitForMaildir(join(dir, 'var/mail/alice'), (m) => m.length === 1);
      const [b] = await waitForMaildir(join(dir, 'var/mail/bob'), (m) => m.length === 1);
      for (const msg of [a!, b!]) {
        const names = headersOf(msg).map(([n]) => n);
        expect(names).not.toContain('bcc');
        expect(msg).toMatch(/Received: by mx\.example\.test \(Postern, from userid \S+\)/);
        expect(msg).toContain('\r\n\r\nhello\r\n');
        expect(msg).not.toContain('not part of it');
      }
      await server.waitForLine(
        /postern\/pickup\[\d+\]: [0-9A-Za-z]+: uid=\S+ from=<app@example\.test>|postern\/pickup\[\d+\]: [0-9A-Za-z]+: uid=\S+ from=</,
      );
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
  });

  it('sendmail -F names the sender in the From: header Cleanup adds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-sendmail-F-'));
    dirs.push(dir);
    const config = { myhostname: 'mx.example.test', smtpd: [{ listen: '127.0.0.1:0' }] };
    await writeFile(join(dir, 'postern.json'), JSON.stringify(config));
    const conf = ['-C', join(dir, 'postern.json')];
    expect(
      (
        await sendmail(
          dir,
          [...conf, '-f', 'ann@example.test', '-F', 'Ann Example', 'frank@localhost'],
          'Subject: one\n\nx\n',
        )
      ).code,
    ).toBe(0);
    expect(
      (
        await sendmail(
          dir,
          [...conf, '-f', 'zoe@example.test', '-F', 'Zoë Q. Public', 'frank@localhost'],
          'Subject: two\n\nx\n',
        )
      ).code,
    ).toBe(0);
    const server = await startPostern(dir, config);
    try {
      const messages = await waitForMaildir(join(dir, 'var/mail/frank'), (m) => m.length === 2);
      const froms = messages.map((m) => headersOf(m).find(([n]) => n === 'from')?.[1]).sort();
      expect(froms).toEqual([
        '=?UTF-8?Q?Zo=C3=AB_Q=2E_Public?= <zoe@example.test>',
        'Ann Example <ann@example.test>',
      ]);
    } finally {
      await server.stop();
    }
  });

  it('sendmail -bs speaks SMTP on standard input and output into the maildrop', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-sendmail-bs-'));
    dirs.push(dir);
    const session = [
      'EHLO me',
      'MAIL FROM:<me@example.test>',
      'RCPT TO:<erin@localhost>',
      'RCPT TO:<someone@elsewhere.example>',
      'DATA',
      'Subject: over -bs',
      '',
      'hello',
      '.',
      'QUIT',
      '',
    ].join('\r\n');
    const out = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'sendmail', '-bs'], {
        cwd: dir,
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        text += d;
      });
      child.on('exit', () => resolve(text));
      child.stdin.end(session);
    });
    expect(out).toMatch(/^220 /);
    expect(out).toMatch(/\r\n250 2\.0\.0 Ok: queued as [0-9A-Za-z]+\r\n/);
    expect(out).toMatch(/221 2\.0\.0/);
    expect(out).not.toMatch(/Relay access denied/);
    const files = (await readdir(join(dir, 'var/queue/maildrop'))).filter(
      (n) => !n.startsWith('.') && n !== 'corrupt',
    );
    expect(files).toHaveLength(1);
  });

  it('sendmail refuses bad usage and oversized messages with sysexits codes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-sendmail-'));
    dirs.push(dir);
    expect((await sendmail(dir, [], 'x\n')).code).toBe(64);
    expect((await sendmail(dir, ['-Q'], 'x\n')).code).toBe(64);
    await writeFile(join(dir, 'small.json'), JSON.stringify({ messageSizeLimit: 100 }));
    const big = await sendmail(
      dir,
      ['-C', join(dir, 'small.json'), 'a@localhost'],
      `Subject: big\n\n${'x'.repeat(500)}\n`,
    );
    expect(big.code).toBe(65);
    expect(big.stderr).toMatch(/message file too big/);
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ nosuchkey: 1 }));
    expect((await sendmail(dir, ['-C', join(dir, 'bad.json'), 'a@localhost'], 'x\n')).code).toBe(
      78,
    );
  });

  describe('hostile maildrop files', () => {
    let dir: string;
    let mta: Mta;
    const events: LogEvent[] = [];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'postern-pickup-'));
      dirs.push(dir);
      const drop = join(dir, 'queue/maildrop');
      await mkdir(drop, { recursive: true });
      const ok = (n: number) =>
        maildropFile(`Subject: good ${n}\n\nfine\n`, {
          sender: 'u@localhost',
          recipients: [{ address: 'carol@localhost' }],
          user: 'root',
          time: 0,
        });
      await writeFile(join(drop, 'A1good'), ok(1));
      await writeFile(join(drop, 'B2truncated'), ok(2).subarray(0, 30));
      await writeFile(
        join(drop, 'C3binary'),
        Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
      );
      await writeFile(
        join(drop, 'D4toomany'),
        maildropFile('Subject: many\n\nx\n', {
          sender: 'u@localhost',
          recipients: Array.from({ length: 10_000 }, (_, i) => ({ address: `r${i}@localhost` })),
          user: 'root',
          time: 0,
        }),
      );
      await writeFile(
        join(drop, 'E5oversized'),
        maildropFile(`Subject: big\n\n${'x'.repeat(60_000)}\n`, {
          sender: 'u@localhost',
          recipients: [{ address: 'carol@localhost' }],
          user: 'root',
          time: 0,
        }),
      );
      await writeFile(
        join(drop, 'F6badfield'),
        maildropFile('Subject: x\n\nx\n', {
          sender: 'u@localhost',
          recipients: [{ address: 'carol@localhost' }],
          user: 'root',
          time: 0,
          exec: 'rm -rf /',
        }),
      );
      await writeFile(
        join(drop, 'G7control'),
        maildropFile('Subject: x\n\nx\n', {
          sender: 'u@localhost',
          recipients: [{ address: 'carol@localhost\r\nRCPT TO:<x@y>' }],
          user: 'root',
          time: 0,
        }),
      );
      await symlink('/etc/passwd', join(drop, 'H8symlink'));
      execFileSync('mkfifo', [join(drop, 'I9fifo')]);
      // A hard link to a file elsewhere: it could be anyone's, so it is not read.
      await writeFile(join(dir, 'elsewhere'), ok(10));
      await link(join(dir, 'elsewhere'), join(drop, 'J0hardlink'));
      await writeFile(
        join(drop, 'K1badsender'),
        maildropFile('Subject: x\n\nx\n', {
          sender: 'u@localhost\nBcc: everyone',
          recipients: [{ address: 'carol@localhost' }],
          user: 'root',
          time: 0,
        }),
      );
      // Written by hand, past sendmail's checks: allowMinUser is off.
      await writeFile(
        join(drop, 'L2dashrecipient'),
        maildropFile('Subject: x\n\nx\n', {
          sender: 'u@localhost',
          recipients: [{ address: '-oQ/tmp/evil@localhost' }],
          user: 'root',
          time: 0,
        }),
      );
      await writeFile(
        join(drop, 'M3dashsender'),
        maildropFile('Subject: x\n\nx\n', {
          sender: '-oQ/tmp/evil@localhost',
          recipients: [{ address: 'carol@localhost' }],
          user: 'root',
          time: 0,
        }),
      );
      await writeFile(join(drop, 'Z9good'), ok(9));
      mta = new Mta(
        {
          myhostname: 'mx.example.test',
          smtpd: [],
          queueDirectory: join(dir, 'queue'),
          mailSpoolDirectory: join(dir, 'mail/'),
          messageSizeLimit: 50_000,
        },
        { logger: new Logger([(e) => events.push(e)]) },
      );
      await mta.start();
    });

    afterAll(async () => {
      await mta.stop();
    });

    it('returns what it cannot accept to the sender, moves aside only what it cannot read', async () => {
      const messages = await waitForMaildir(join(dir, 'mail/carol'), (m) => m.length === 2);
      expect(messages.map((m) => /Subject: (good \d+)/.exec(m)?.[1]).sort()).toEqual([
        'good 1',
        'good 9',
      ]);
      // One non-delivery notice each for the files that name a sender.
      const notices = await waitForMaildir(join(dir, 'mail/u'), (m) => m.length === 5);
      const reasons = notices.map((m) => /^Diagnostic-Code: X-Postern; (.*)$/m.exec(m)?.[1]).sort();
      expect(reasons).toEqual([
        expect.stringMatching(/^10000 recipients; at most 1000 are allowed/),
        expect.stringMatching(/^malformed maildrop file: unknown field "exec"/),
        expect.stringMatching(/^message file too big: more than 50000 bytes \(messageSizeLimit\)/),
        expect.stringMatching(
          /^recipient "-oQ\/tmp\/evil@localhost": bad recipient address syntax: it starts with "-"/,
        ),
        expect.stringMatching(/^recipient .* contains control characters/),
      ]);
      for (const n of notices) {
        expect(n).toMatch(/^Subject: Undelivered Mail Returned to Sender/m);
        expect(n).toMatch(/^To: u@localhost/m);
      }
      // The oversized one comes back as headers only.
      const big = notices.find((m) => m.includes('message file too big'))!;
      expect(big).toContain('Content-Type: text/rfc822-headers');
      expect(big).toContain('Subject: big');
      expect(big).not.toContain('x'.repeat(100));

      const end = Date.now() + 10_000;
      let aside: string[] = [];
      while (Date.now() < end) {
        aside = (await readdir(join(dir, 'queue/maildrop/corrupt')).catch(() => [])).sort();
        if (aside.length === 7) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(aside).toEqual([
        'B2truncated',
        'C3binary',
        'H8symlink',
        'I9fifo',
        'J0hardlink',
        'K1badsender',
        'M3dashsender',
      ]);
      const left = (await readdir(join(dir, 'queue/maildrop'))).filter((n) => n !== 'corrupt');
      expect(left).toEqual([]);
      const warnings = events
        .filter((e) => e.component === 'pickup' && e.level === 'warning')
        .map((e) => e.text);
      expect(warnings.find((w) => w.startsWith('B2truncated'))).toMatch(
        /truncated or not a maildrop file/,
      );
      expect(warnings.find((w) => w.startsWith('H8symlink'))).toMatch(/symbolic link/);
      expect(warnings.find((w) => w.startsWith('I9fifo'))).toMatch(/a FIFO, not a maildrop file/);
      expect(warnings.find((w) => w.startsWith('J0hardlink'))).toMatch(
        /a hard link, not a maildrop file/,
      );
      expect(warnings.find((w) => w.startsWith('K1badsender'))).toMatch(
        /sender .*: bad sender address syntax: it contains control characters.*no sender to return it to/,
      );
      expect(warnings.find((w) => w.startsWith('M3dashsender'))).toMatch(
        /bad sender address syntax: it starts with "-".*\(allowMinUser is off\); no sender to return it to/,
      );
      const bounced = events.filter(
        (e) => e.component === 'pickup' && /status=bounced/.test(e.text),
      );
      expect(bounced.length).toBeGreaterThanOrEqual(5);
    });
  });
});

describe('submit() from code', () => {
  it('Mta#submit queues through Cleanup, and submitToMaildrop works with no server', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-submit-'));
    try {
      const { submitToMaildrop } = await import('../../../src/receive/submit.js');
      const id = await submitToMaildrop(join(dir, 'queue'), {
        from: 'app@example.test',
        to: ['dave@localhost'],
        content: 'Subject: early\n\nwritten before the server started\n',
      });
      expect(id).toMatch(/^[0-9A-Za-z]+$/);
      const mta = new Mta({
        myhostname: 'mx.example.test',
        smtpd: [],
        queueDirectory: join(dir, 'queue'),
        mailSpoolDirectory: join(dir, 'mail/'),
      });
      await mta.start();
      try {
        const queued = await mta.submit({
          from: 'app@example.test',
          to: ['dave@localhost'],
          content: 'Subject: direct\r\n\r\nhi\r\n',
        });
        expect(queued).toMatch(/^[0-9A-Za-z]+$/);
        const messages = await waitForMaildir(join(dir, 'mail/dave'), (m) => m.length === 2);
        expect(messages.map((m) => /Subject: (\w+)/.exec(m)?.[1]).sort()).toEqual([
          'direct',
          'early',
        ]);
        await expect(
          mta.submit({ from: 'app@example.test', to: [], content: 'Subject: none\n\nx\n' }),
        ).rejects.toThrow(/no recipients/);
      } finally {
        await mta.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
