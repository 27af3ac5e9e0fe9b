import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalDeliveryAgent } from '../../../src/deliver/local-agent.js';
import type { DeliveryAgent, DeliveryRequest } from '../../../src/deliver/types.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { SmtpReply } from '../../../src/smtp-reply.js';
import { AliasTable } from '../../../src/tables/alias-table.js';
import type { Recipient, RecipientId, RecipientResult } from '../../../src/types.js';
import { passwdUserSync } from '../../../src/util/user-database.js';
import { RecordingSubmission } from '../../helpers/recording-submission.js';

const MESSAGE = 'Subject: hi\r\n\r\nFrom me\r\nbody\r\n';
let root: string;
let spool: string;

/** Alias files and commands run as defaultPrivs (nobody) when the tests run as root. */
const asRoot = process.getuid?.() === 0;
const nobody = asRoot ? passwdUserSync('nobody') : undefined;
async function giveToNobody(file: string): Promise<void> {
  if (nobody?.uid !== undefined) await fs.chown(file, nobody.uid, nobody.gid ?? nobody.uid);
}

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-localf-'));
  // Theirs, and writable by nobody else (a directory others may write is refused).
  await fs.chmod(root, 0o755);
  await giveToNobody(root);
  spool = path.join(root, 'spool');
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function request(recipients: Recipient[], extra: Partial<DeliveryRequest> = {}): DeliveryRequest {
  const bytes = Buffer.from(MESSAGE);
  return {
    queueId: 'LOCALTEST0',
    transport: 'local',
    nexthop: 'example.com',
    sender: 'sender@example.org',
    recipients,
    size: bytes.length,
    bodyType: '7BIT',
    smtputf8: false,
    eightBit: false,
    arrivalTime: 0,
    envid: 'env;1',
    source: {
      component: 'smtpd',
      protocol: 'ESMTP',
      client: { address: '192.0.2.9', name: 'c.example' },
    },
    openContent: () => Readable.from([bytes]),
    signal: new AbortController().signal,
    ...extra,
  };
}
const rcpt = (id: number, address: string, originalAddress = address): Recipient => ({
  id,
  address,
  originalAddress,
});

async function run(
  agent: DeliveryAgent,
  req: DeliveryRequest,
): Promise<Map<RecipientId, RecipientResult>> {
  const results = new Map<RecipientId, RecipientResult>();
  await agent.deliver(req, {
    recipient: (id, r) => results.set(id, r),
    destination: () => undefined,
  });
  return results;
}

function agent(
  aliases: string,
  extra: Record<string, unknown> = {},
  submission?: RecordingSubmission,
  transports?: (n: string) => DeliveryAgent | undefined,
) {
  const params = resolveParameters({
    myhostname: 'mx.example.com',
    mydestination: ['example.com'],
    myorigin: 'example.com',
    recipientDelimiter: '+',
    mailSpoolDirectory: `${spool}/`,
    ...extra,
  });
  return new LocalDeliveryAgent({
    params,
    aliases: AliasTable.fromText(aliases.replaceAll('@ROOT@', root)),
    ...(submission ? { submission } : {}),
    ...(transports ? { transports } : {}),
  });
}

describe('LocalDeliveryAgent: aliases, forwarding, commands, files', () => {
  it('re-submits forwarded addresses as one new message per sender with Delivered-To', async () => {
    const sub = new RecordingSubmission();
    const a = agent(
      'owner-list: boss\nlist: alice, bob@remote.example\nfwd: carol@remote.example, dave@remote.example\n',
      {},
      sub,
    );
    const res = await run(a, request([rcpt(0, 'list@example.com'), rcpt(1, 'fwd@example.com')]));
    expect(res.get(0)!.status).toBe('sent');
    expect(res.get(0)!.action).toBe('expanded');
    expect(res.get(1)!.reply.text).toMatch(/^forwarded as /);
    expect(sub.committed).toHaveLength(2);
    const [list, fwd] = sub.committed;
    expect(list!.sender).toBe('owner-list@example.com');
    expect(list!.recipients.map((r) => r.address)).toEqual([
      'alice@example.com',
      'bob@remote.example',
    ]);
    expect(fwd!.sender).toBe('sender@example.org');
    expect(fwd!.recipients.map((r) => r.address)).toEqual([
      'carol@remote.example',
      'dave@remote.example',
    ]);
    expect(Buffer.concat(fwd!.chunks).toString()).toBe(
      `Delivered-To: fwd@example.com\r\n${MESSAGE}`,
    );
    expect(fwd!.source.component).toBe('local');
  });

  it('defers forwarding without a submission port and passes a refused commit on', async () => {
    const res = await run(agent('fwd: x@remote.example\n'), request([rcpt(0, 'fwd@example.com')]));
    expect(res.get(0)!.status).toBe('deferred');
    expect(res.get(0)!.reply.enhanced).toBe('4.3.5');
    const sub = new RecordingSubmission({ commitReply: new SmtpReply(554, '5.7.1', 'no thanks') });
    const r2 = await run(
      agent('fwd: x@remote.example\n', {}, sub),
      request([rcpt(0, 'fwd@example.com')]),
    );
    expect(r2.get(0)!.status).toBe('bounced');
  });

  it('runs alias commands with the documented environment, filtered, without a shell for plain text', async () => {
    const out = path.join(root, 'cmd-out');
    const script = path.join(root, 'record.sh');
    await fs.writeFile(
      script,
      `#!/bin/sh\nenv | sort > "$1.env"\ncat > "$1.msg"\nprintf '%s\\n' "$@" > "$1.argv"\n`,
      { mode: 0o755 },
    );
    const a = agent(`cmd: "|${script} ${out} second-arg"\n`);
    const hostile = "cmd+x;$(id)'`@example.com";
    const res = await run(a, request([rcpt(0, hostile, 'Orig@Example.com')]));
    expect(res.get(0)!.status).toBe('sent');
    const env = await fs.readFile(`${out}.env`, 'utf8');
    expect(env).toMatch(/^RECIPIENT=cmd\+x___id___@example\.com$/m);
    expect(env).toMatch(/^EXTENSION=x___id___$/m);
    expect(env).toMatch(/^USER=cmd$/m);
    expect(env).toMatch(/^SENDER=sender@example\.org$/m);
    expect(env).toMatch(/^ORIGINAL_RECIPIENT=Orig@Example\.com$/m);
    expect(env).toMatch(/^ENVID=env_1$/m);
    expect(env).toMatch(/^CLIENT_ADDRESS=192\.0\.2\.9$/m);
    expect(env).toMatch(/^PATH=\/usr\/bin:\/bin$/m);
    expect(await fs.readFile(`${out}.argv`, 'utf8')).toBe(`${out}\nsecond-arg\n`);
    const msg = await fs.readFile(`${out}.msg`, 'utf8');
    expect(msg).toMatch(/^From sender@example\.org {2}/);
    expect(msg).toContain('Delivered-To: ');
    expect(msg.endsWith('Subject: hi\n\nFrom me\nbody\n')).toBe(true);
  });

  it('uses /bin/sh -c for alias command text with metacharacters, and evaluates the exit status', async () => {
    const marker = path.join(root, 'shell-ran');
    const a = agent(`sh: "|echo ran > ${marker}; exit 75"\nfail: "|exit 67"\n`);
    const res = await run(a, request([rcpt(0, 'sh@example.com'), rcpt(1, 'fail@example.com')]));
    expect(await fs.readFile(marker, 'utf8')).toBe('ran\n');
    expect(res.get(0)!.status).toBe('deferred');
    expect(res.get(0)!.reply.enhanced).toBe('4.3.0');
    expect(res.get(1)!.status).toBe('bounced');
    expect(res.get(1)!.reply.enhanced).toBe('5.1.1');
  });

  it('appends to /file destinations as mbox and refuses executable files', async () => {
    const file = path.join(root, 'archive');
    const exe = path.join(root, 'exe');
    await fs.writeFile(exe, '', { mode: 0o700 });
    await giveToNobody(exe);
    const a = agent(`arch: ${file}\nbad: ${exe}\n`);
    const res = await run(a, request([rcpt(0, 'arch@example.com'), rcpt(1, 'bad@example.com')]));
    expect(res.get(0)!.status, res.get(0)!.reply.toString()).toBe('sent');
    expect(await fs.readFile(file, 'utf8')).toMatch(/\nSubject: hi\n\n>From me\nbody\n\n$/);
    expect(res.get(1)!.status).toBe('bounced');
    expect(res.get(1)!.reply.toString()).toMatch(/^550 5\.7\.1 .*executable/);
  });

  it('hands mailbox delivery to mailboxTransport and unknown users to fallbackTransport', async () => {
    const seen: DeliveryRequest[] = [];
    const other: DeliveryAgent = {
      async deliver(req, rep) {
        seen.push(req);
        for (const r of req.recipients)
          rep.recipient(r.id, { status: 'sent', reply: new SmtpReply(250, '2.0.0', 'ok by lmtp') });
      },
    };
    const a = agent('', { mailboxTransport: 'lmtp:unix:/run/dovecot/lmtp' }, undefined, (n) =>
      n === 'lmtp' ? other : undefined,
    );
    const res = await run(a, request([rcpt(0, 'alice@example.com')]));
    expect(res.get(0)!.reply.text).toBe('ok by lmtp');
    expect(seen[0]!.nexthop).toBe('unix:/run/dovecot/lmtp');
    expect(seen[0]!.recipients[0]!.address).toBe('alice@example.com');
    const missing = await run(
      agent('', { mailboxTransport: 'nosuch:' }),
      request([rcpt(0, 'alice@example.com')]),
    );
    expect(missing.get(0)!.status).toBe('deferred');
  });

  it('sends unknown users to luserRelay when the passwd database does not know them', async () => {
    const sub = new RecordingSubmission();
    const a = agent(
      '',
      { localUserDatabase: 'passwd', luserRelay: 'catchall+$user@remote.example' },
      sub,
    );
    const res = await run(a, request([rcpt(0, 'no-such-user-here@example.com')]));
    expect(res.get(0)!.status).toBe('sent');
    expect(sub.committed[0]!.recipients[0]!.address).toBe(
      'catchall+no-such-user-here@remote.example',
    );
    const plain = await run(
      agent('', { localUserDatabase: 'passwd' }),
      request([rcpt(0, 'no-such-user-here@example.com')]),
    );
    expect(plain.get(0)!.reply.toString()).toBe(
      '550 5.1.1 <no-such-user-here@example.com>: unknown user: "no-such-user-here"',
    );
  });

  it('a deferred part defers the recipient, a bounced part bounces it', async () => {
    const a = agent('mix: alice, "|exit 75"\nmix2: alice, "|exit 77"\n');
    const res = await run(a, request([rcpt(0, 'mix@example.com'), rcpt(1, 'mix2@example.com')]));
    expect(res.get(0)!.status).toBe('deferred');
    expect(res.get(1)!.status).toBe('bounced');
    expect(res.get(1)!.reply.enhanced).toBe('5.7.0');
  });
});
