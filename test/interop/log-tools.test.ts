import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PosternProcess, startPostern } from '../helpers/postern-process.js';

const run = promisify(execFile);

/** The stock postfix filter of fail2ban, told that the daemon is called postern. */
const FAIL2BAN_FILTER =
  '/etc/fail2ban/filter.d/postfix.conf[mode=auth, _daemon="postern(-\\w+)?/\\w+(?:/smtp[ds])?"]';

// A real `postern serve` session read by the operators' tools: pflogsumm must count what
// was received, delivered, deferred and rejected, and fail2ban's stock postfix filter
// must find the failed AUTH.
describe('pflogsumm and fail2ban read the log of postern serve', () => {
  let dir: string;
  let remote: SMTPServer;
  let server: PosternProcess;
  let log: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-logtools-'));
    // The next hop: accepts relay.example, answers 451 for defer.example.
    remote = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo(address, _session, cb) {
        if (address.address.endsWith('@defer.example')) {
          const err = Object.assign(new Error('4.3.2 mailbox busy, try again later'), {
            responseCode: 451,
          });
          cb(err);
        } else cb();
      },
      onData(stream, _session, cb) {
        stream.resume();
        stream.on('end', () => cb());
      },
    });
    // Postern's client closing a cached connection at stop is no error of the test.
    remote.on('error', () => {});
    await new Promise<void>((r) => remote.listen(0, '127.0.0.1', () => r()));
    const next = (remote.server.address() as AddressInfo).port;
    server = await startPostern(dir, {
      myhostname: 'mx.example.test',
      mydestination: ['localhost'],
      // The test client (127.0.0.1) is not trusted: only AUTH lets it relay.
      mynetworks: ['192.0.2.0/24'],
      relayDomains: ['relay.example', 'defer.example'],
      smtpdRelayRestrictions: [
        'permit_mynetworks',
        'permit_sasl_authenticated',
        'reject_unauth_destination',
      ],
      transportMaps: {
        'relay.example': `smtp:[127.0.0.1]:${next}`,
        'defer.example': `smtp:[127.0.0.1]:${next}`,
        'outside.example': `smtp:[127.0.0.1]:${next}`,
      },
      smtpd: [
        { listen: '127.0.0.1:0' },
        // A submission listener logs as postern/submission/smtpd (master.cf -o syslog_name).
        {
          listen: '127.0.0.1:0',
          syslogName: 'postern/submission',
          smtpdSaslAuthEnable: true,
          smtpdTlsAuthOnly: false,
          authenticator: { bob: 'right-password' },
        },
      ],
      queueDirectory: join(dir, 'queue'),
      mailSpoolDirectory: join(dir, 'mail/'),
    });
    const submission = Number(
      /listening on 127\.0\.0\.1:\d+, 127\.0\.0\.1:(\d+)/.exec(server.output.join('\n'))?.[1],
    );
    const swaks = (...args: string[]) =>
      run(
        'swaks',
        [
          '--server',
          `127.0.0.1:${args.includes('--auth') ? submission : server.port}`,
          '--from',
          'ann@client.example',
          ...args,
        ],
        {
          timeout: 30_000,
        },
      ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    // Three deliveries (two relayed, one local), one deferral, one relay reject, one
    // failed and one successful AUTH (whose message is delivered too).
    await swaks('--to', 'x@relay.example');
    await swaks('--to', 'y@relay.example');
    await swaks('--to', 'root@localhost');
    await swaks('--to', 'z@defer.example');
    const rejected = await swaks('--to', 'evil@outside.example');
    expect(rejected.stdout).toMatch(/554 5\.7\.1 <evil@outside\.example>: Relay access denied/);
    const failed = await swaks(
      '--to',
      'w@outside.example',
      '--auth',
      'LOGIN',
      '--auth-user',
      'bob',
      '--auth-password',
      'guess',
    );
    expect(failed.stdout).toMatch(/535 5\.7\.8/);
    await swaks(
      '--to',
      'v@outside.example',
      '--auth',
      'LOGIN',
      '--auth-user',
      'bob',
      '--auth-password',
      'right-password',
    );
    for (const to of ['x@relay.example', 'y@relay.example', 'root@localhost', 'v@outside.example'])
      await server.waitForLine(new RegExp(`to=<${to}>, .*status=sent`));
    await server.waitForLine(/to=<z@defer\.example>, .*status=deferred/);
    // A clean stop writes every queued line before the process exits.
    expect(await server.stop()).toBe(0);
    log = join(dir, 'maillog');
    await writeFile(log, `${server.output.filter((l) => / postern\//.test(l)).join('\n')}\n`);
  });

  afterAll(async () => {
    await server?.stop();
    await new Promise<void>((r) => remote.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the syslog line of Postfix maillog_file: Mon DD HH:MM:SS host postern/smtpd[pid]:', () => {
    const lines = server.output.filter((l) => / postern\//.test(l));
    expect(lines.length).toBeGreaterThan(20);
    for (const l of lines)
      expect(l).toMatch(
        /^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d mx postern\/(submission\/)?[a-z]+\[\d+\]: /,
      );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /postern\/smtpd\[\d+\]: NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 <evil@outside\.example>: Relay access denied; from=<ann@client\.example> to=<evil@outside\.example> proto=ESMTP helo=<[^>]+>$/,
      ),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /postern\/submission\/smtpd\[\d+\]: warning: unknown\[127\.0\.0\.1\]: SASL LOGIN authentication failed: authentication failure, sasl_username=bob$/,
      ),
    );
  });

  it('pflogsumm --syslog-name=postern counts what happened', async () => {
    const { stdout } = await run('pflogsumm', ['--syslog-name=postern', log]);
    const count = (what: string): number => {
      const m = new RegExp(`^\\s*(\\d+)\\s+${what}\\b`, 'm').exec(stdout);
      if (!m) throw new Error(`pflogsumm printed no "${what}" total:\n${stdout}`);
      return Number(m[1]);
    };
    expect(count('received')).toBe(5);
    expect(count('delivered')).toBe(4);
    expect(count('deferred')).toBe(1);
    expect(stdout).toMatch(/deferred\s+\(1\s+deferrals?\)/);
    expect(count('bounced')).toBe(0);
    expect(count('rejected')).toBe(1);
  });

  it("fail2ban's stock postfix filter (mode=auth) finds the one failed AUTH from 127.0.0.1", async () => {
    const { stdout } = await run('fail2ban-regex', ['--print-all-matched', log, FAIL2BAN_FILTER]);
    expect(stdout).toMatch(/^Lines: \d+ lines, 0 ignored, 1 matched/m);
    expect(stdout).toMatch(
      /SASL LOGIN authentication failed: authentication failure, sasl_username=bob/,
    );
    const normal = await run('fail2ban-regex', [
      log,
      FAIL2BAN_FILTER.replace('mode=auth', 'mode=normal'),
    ]);
    // mode=normal bans on rejects: the relay attempt is its one match.
    expect(normal.stdout).toMatch(/^Lines: \d+ lines, 0 ignored, 1 matched/m);
  });
});
