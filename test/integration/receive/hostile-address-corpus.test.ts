/**
 * The hostile-address corpus (test/helpers/hostile-addresses.ts) through every network
 * and API way in: SMTP (a real socket), QMQP (a real socket) and `submit()`, each entry as
 * the sender and as a recipient in a local domain and in a domain a pipe transport
 * serves. The MTA runs with the weakest recipient setting (an empty localRecipientMaps,
 * as the embedded default) and a pipe transport in the README's shape, without `--`,
 * whose command records its argv. Then:
 * - no argv element the command got starts with `-` (nothing reached it as an option);
 * - nothing was written outside the spool (the queue, the mail spool, the argv records);
 * - every refusal is a 5xx with a reason (QMQP: a `D` with text; submit(): SmtpError 5xx);
 * - every accepted message left the queue (delivered, or bounced with a DSN).
 */

import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpError } from '../../../src/errors.js';
import { Mta } from '../../../src/mta/mta.js';
import {
  HOSTILE_ADDRESSES,
  type HostileAddress,
  hostileAddress,
  needsSmtputf8,
  smtpPath,
  wireAddress,
} from '../../helpers/hostile-addresses.js';
import { qmqpExchange, qmqpRequest } from '../../helpers/qmqp-client.js';
import { queuedFiles } from '../../helpers/queue-files.js';
import { type RawReply, RawSmtpClient } from '../../helpers/raw-smtp-client.js';

const RECORDER =
  '#!/bin/sh\nout="$1"; shift\nprintf \'%s\\000\' "$@" > "$out.$$"\ncat > /dev/null\n';
const LOCAL = 'mx.example.test';
const PIPE = 'pipe.example';
const SENDER_DOMAIN = 'example.org';
const BODY = 'Subject: corpus\r\n\r\nbody\r\n';

/** One refusal, for the final check. */
interface Refusal {
  readonly where: string;
  readonly reply: string;
}

describe('the hostile-address corpus', () => {
  let root: string;
  let spool: string;
  let runs: string;
  let mta: Mta;
  const refusals: Refusal[] = [];
  let accepted = 0;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'postern-corpus-'));
    // Deep enough that a path built from `../..` would still land under root, where
    // the tree check sees it.
    spool = join(root, 'd1', 'd2', 'd3', 'spool');
    runs = join(root, 'runs');
    await mkdir(spool, { recursive: true });
    await mkdir(runs);
    const script = join(root, 'record.sh');
    await writeFile(script, RECORDER, { mode: 0o755 });
    await chmod(root, 0o755);
    await chmod(runs, 0o777); // commands run as nobody when the tests run as root
    mta = new Mta({
      myhostname: LOCAL,
      mydestination: [LOCAL],
      queueDirectory: join(spool, 'queue'),
      mailSpoolDirectory: join(spool, 'mail/'),
      localRecipientMaps: '',
      recipientDelimiter: '+',
      smtpd: [{ listen: '127.0.0.1:0' }],
      qmqpd: [{ listen: '127.0.0.1:0' }],
      qmqpdAuthorizedClients: ['127.0.0.0/8'],
      qmqpdErrorDelay: '0s',
      smtpdErrorSleepTime: '0s',
      transports: {
        recorder: {
          type: 'pipe',
          argv: [
            script,
            join(runs, 'argv'),
            '${sender}',
            '${recipient}',
            '${user}',
            '${extension}',
          ],
          ...(process.getuid?.() === 0 ? { user: 'nobody' } : {}),
        },
      },
      transportMaps: { [PIPE]: 'recorder:' },
      // Bounces to the senders, and whatever routes elsewhere: nothing leaves this machine.
      defaultTransport: 'discard',
    });
    await mta.start();
  });
  afterAll(async () => {
    await mta.stop();
    await rm(root, { recursive: true, force: true });
  });

  // ---- SMTP: one session per attempt, replies read up to a NOOP's.

  async function group(c: RawSmtpClient, command: Buffer): Promise<RawReply[]> {
    c.send(Buffer.concat([command, Buffer.from('\r\nNOOP\r\n')]));
    const replies: RawReply[] = [];
    for (;;) {
      const r = await c.reply();
      if (r.raw === '250 2.0.0 Ok\r\n') return replies;
      replies.push(r);
    }
  }

  async function smtp(where: string, from: Buffer, to: Buffer, utf8: boolean): Promise<void> {
    const { client: c } = await RawSmtpClient.greeted(mta.listeners[0]!.port);
    try {
      expect((await c.command('EHLO client.example')).code).toBe(250);
      const note = (replies: RawReply[]): boolean => {
        for (const r of replies) if (r.code >= 400) refusals.push({ where, reply: r.raw });
        return replies.length === 1 && replies[0]!.code === 250;
      };
      const mail = Buffer.concat([
        Buffer.from('MAIL FROM:'),
        from,
        Buffer.from(utf8 ? ' SMTPUTF8' : ''),
      ]);
      if (!note(await group(c, mail))) return;
      if (!note(await group(c, Buffer.concat([Buffer.from('RCPT TO:'), to])))) return;
      expect((await c.command('DATA')).code).toBe(354);
      const done = await c.command(`${BODY}.`);
      expect(done.raw).toMatch(/^250 2\.0\.0 Ok: queued as/);
      accepted++;
    } finally {
      c.close();
    }
  }

  it.each(HOSTILE_ADDRESSES.map((e) => [e.name, e] as const))(
    'SMTP: %s',
    async (_name, entry: HostileAddress) => {
      const utf8 = needsSmtputf8(entry);
      const good = (domain: string): Buffer => Buffer.from(`<ok@${domain}>`);
      await smtp(`SMTP sender ${entry.name}`, smtpPath(entry, SENDER_DOMAIN), good(PIPE), utf8);
      for (const domain of [LOCAL, PIPE]) {
        await smtp(
          `SMTP recipient ${entry.name} @${domain}`,
          good(SENDER_DOMAIN),
          smtpPath(entry, domain),
          utf8,
        );
      }
    },
  );

  // ---- QMQP: one message per connection; K, or a D with its reason.

  async function qmqp(where: string, from: Buffer, to: Buffer): Promise<void> {
    const r = await qmqpExchange(mta.qmqpListeners[0]!.port, qmqpRequest(BODY, from, [to]), {
      end: true,
    });
    expect(['K', 'D']).toContain(r.status);
    if (r.status === 'K') accepted++;
    else refusals.push({ where, reply: `D${r.text}` });
  }

  it.each(HOSTILE_ADDRESSES.map((e) => [e.name, e] as const))(
    'QMQP: %s',
    async (_name, entry: HostileAddress) => {
      const good = (domain: string): Buffer => Buffer.from(`ok@${domain}`);
      await qmqp(`QMQP sender ${entry.name}`, wireAddress(entry, SENDER_DOMAIN), good(PIPE));
      for (const domain of [LOCAL, PIPE]) {
        await qmqp(
          `QMQP recipient ${entry.name} @${domain}`,
          good(SENDER_DOMAIN),
          wireAddress(entry, domain),
        );
      }
    },
  );

  // ---- submit(): resolves with a queue ID, or rejects with SmtpError.

  async function submit(where: string, from: string, to: string): Promise<void> {
    try {
      await mta.submit({ from, to: [to], content: BODY });
      accepted++;
    } catch (err) {
      expect(err).toBeInstanceOf(SmtpError);
      refusals.push({
        where,
        reply: `${(err as SmtpError).reply.toString()} (${(err as Error).message})`,
      });
    }
  }

  it.each(HOSTILE_ADDRESSES.map((e) => [e.name, e] as const))(
    'submit(): %s',
    async (_name, entry: HostileAddress) => {
      await submit(
        `submit sender ${entry.name}`,
        hostileAddress(entry, SENDER_DOMAIN),
        `ok@${PIPE}`,
      );
      for (const domain of [LOCAL, PIPE]) {
        await submit(
          `submit recipient ${entry.name} @${domain}`,
          `ok@${SENDER_DOMAIN}`,
          hostileAddress(entry, domain),
        );
      }
    },
  );

  // ---- What must hold afterwards.

  it('refused every attempt it refused with a 5xx (or a D) and a reason', () => {
    expect(refusals.length).toBeGreaterThan(0);
    for (const { where, reply } of refusals) {
      expect([where, reply]).toEqual([
        where,
        expect.stringMatching(/^(5\d\d [245]\.\d+\.\d+ \S.{5,}|D\S.{5,})/s),
      ]);
    }
  });

  it('let every accepted message leave the queue, delivered or bounced', async () => {
    expect(accepted).toBeGreaterThan(0);
    const deadline = Date.now() + 60_000;
    let left = await queuedFiles(join(spool, 'queue'));
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise<void>((r) => setTimeout(r, 25));
      left = await queuedFiles(join(spool, 'queue'));
    }
    expect(left).toEqual([]);
  });

  it('never gave a command an argument that starts with "-"', async () => {
    const records = (await readdir(runs)).filter((n) => n.startsWith('argv.'));
    expect(records.length).toBeGreaterThan(0);
    const argvs: string[][] = [];
    for (const name of records) {
      argvs.push((await readFile(join(runs, name), 'utf8')).split('\0').slice(0, -1));
    }
    for (const argv of argvs) for (const arg of argv) expect(arg).not.toMatch(/^-/);
    // Quotes and spaces stay inside one argument: no shell ever saw them.
    expect(argvs.some((a) => a[0] === `john smith@${SENDER_DOMAIN}`)).toBe(true);
    expect(argvs.some((a) => a[0] === `$(id)\`id\`\${HOME}@${SENDER_DOMAIN}`)).toBe(true);
  });

  it('wrote nothing outside the spool', async () => {
    const found: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        found.push(relative(root, path));
        if (e.isDirectory()) await walk(path);
      }
    };
    await walk(root);
    const outside = found.filter(
      (p) =>
        !/^(record\.sh|runs|runs\/argv\.\d+|d1|d1\/d2|d1\/d2\/d3|d1\/d2\/d3\/spool)$/.test(p) &&
        !p.startsWith('d1/d2/d3/spool/queue') &&
        !p.startsWith('d1/d2/d3/spool/mail'),
    );
    expect(outside).toEqual([]);
    // Mailboxes are only ever safe names, directly in the mail spool.
    const mailboxes = await readdir(join(spool, 'mail')).catch(() => [] as string[]);
    for (const m of mailboxes) expect(m).toMatch(/^[a-z0-9_+=][a-z0-9._+=-]{0,63}$/);
  });
});
