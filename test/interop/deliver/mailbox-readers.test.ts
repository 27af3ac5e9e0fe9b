/**
 * Mailboxes written by Postern, read back by real readers: Python's `mailbox` module and
 * GNU mailutils (`frm`, `mail -f`; Debian package `mailutils`). Also: three processes
 * appending concurrently to one mbox (dotlock) never corrupt it.
 */

import { execFile, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailboxDelivery } from '../../../src/deliver/mailbox-delivery.js';
import type { DeliveryRequest } from '../../../src/deliver/types.js';
import { resolveParameters } from '../../../src/mta/main-parameters.js';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'postern-readers-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Messages with the awkward parts: From_ lines in the body, blank lines, 8-bit, no final newline. */
const MESSAGES = [
  'Subject: one\r\nFrom: a@example.org\r\n\r\nplain body\r\n',
  'Subject: two\r\n\r\nFrom the start of a line\r\n>From already quoted\r\n\r\n\r\nFrom again\r\n',
  'Subject: three\r\n\r\n\u00e9t\u00e9 caf\u00e9\r\n.\r\n..\r\nlast line without newline',
  'Subject: four\r\n\r\n',
];

function request(content: string, i: number): DeliveryRequest {
  const bytes = Buffer.from(content, 'utf8');
  return {
    queueId: `READ${i}`,
    transport: 'local',
    nexthop: 'x',
    sender: i === 3 ? '' : `sender${i}@example.org`,
    recipients: [],
    size: bytes.length,
    bodyType: '8BITMIME',
    smtputf8: false,
    eightBit: true,
    arrivalTime: 0,
    source: { component: 'test', protocol: 'ESMTP' },
    openContent: () => Readable.from([bytes.subarray(0, 5), bytes.subarray(5)]),
    signal: new AbortController().signal,
  };
}

/** The body as an mbox reader gives it back: LF, `From ` quoted, a final newline. */
function expectedMboxBody(content: string): string {
  const body = content.slice(content.indexOf('\r\n\r\n') + 4).replace(/\r\n/g, '\n');
  const withEnd = body === '' || body.endsWith('\n') ? body : `${body}\n`;
  return withEnd.replace(/^From /gm, '>From ');
}

const PY_DUMP = `
import json, mailbox, sys
kind, where = sys.argv[1], sys.argv[2]
box = mailbox.mbox(where) if kind == 'mbox' else mailbox.Maildir(where, factory=None, create=False)
keys = sorted(box.keys(), key=lambda k: box.get_file(k).read()) if kind == 'maildir' else list(box.keys())
out = []
for k in box.keys():
    raw = box.get_bytes(k)
    sep = raw.find(b'\\n\\n') if kind == 'mbox' else raw.find(b'\\r\\n\\r\\n')
    head, body = raw[:sep], raw[sep + (2 if kind == 'mbox' else 4):]
    msg = box.get_message(k)
    out.append({'subject': msg['subject'], 'from_': msg.get_from() if kind == 'mbox' else None,
                'deliveredTo': msg['delivered-to'], 'body': body.decode('latin1')})
print(json.dumps(out))
`;

async function python(kind: 'mbox' | 'maildir', where: string) {
  const { stdout } = await run('python3', ['-c', PY_DUMP, kind, where]);
  return JSON.parse(stdout) as {
    subject: string;
    from_: string | null;
    deliveredTo: string;
    body: string;
  }[];
}

describe('mailbox files read back by real mail readers', () => {
  const params = resolveParameters({ myhostname: 'mx.example.com' });

  it('mbox: Python mailbox and mailutils see every message, bodies byte for byte', async () => {
    const file = path.join(dir, 'mbox');
    const writer = new MailboxDelivery({ hostname: params.myhostname, sizeLimit: 0 });
    for (const [i, m] of MESSAGES.entries()) {
      const r = await writer.write(
        request(m, i),
        { path: file, maildir: false },
        { returnPath: `sender${i}@example.org`, deliveredTo: 'rcpt@example.com' },
      );
      expect(r.status).toBe('sent');
    }
    const got = await python('mbox', file);
    expect(got.map((g) => g.subject)).toEqual(['one', 'two', 'three', 'four']);
    for (const [i, m] of MESSAGES.entries()) {
      expect(got[i]!.body).toBe(Buffer.from(expectedMboxBody(m), 'utf8').toString('latin1'));
      expect(got[i]!.deliveredTo).toBe('rcpt@example.com');
    }
    expect(got[3]!.from_).toMatch(/^MAILER-DAEMON {2}/);

    const frm = spawnSync('frm', ['-n', file], { encoding: 'utf8' });
    expect(
      frm.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).pop()),
    ).toEqual(['one', 'two', 'three', 'four']);
    for (const [i, m] of MESSAGES.entries()) {
      const shown = spawnSync('mail', ['-N', '-f', file], {
        input: `print ${i + 1}\nquit\n`,
        encoding: 'latin1',
      });
      // mailutils reads mbox as mboxrd: it removes one '>' before "From ", so it shows
      // the original body except for lines that already began with ">From" (Postfix
      // writes mboxo, quoting only "From ").
      const original = m.slice(m.indexOf('\r\n\r\n') + 4).replace(/\r\n/g, '\n');
      const expected = Buffer.from(original.replace(/^>(>*From )/gm, '$1'), 'utf8').toString(
        'latin1',
      );
      expect(shown.stdout).toContain(`Subject: ${['one', 'two', 'three', 'four'][i]}`);
      expect(shown.stdout).toContain(expected);
    }
  });

  it('Maildir: Python mailbox reads CRLF and LF Maildirs, mailutils reads the LF form', async () => {
    for (const eol of ['\r\n', '\n'] as const) {
      const md = path.join(dir, eol === '\n' ? 'Maildir-lf' : 'Maildir-crlf');
      const writer = new MailboxDelivery({
        hostname: params.myhostname,
        sizeLimit: 0,
        maildirEol: eol,
      });
      for (const [i, m] of MESSAGES.entries()) {
        expect(
          (
            await writer.write(
              request(m, i),
              { path: md, maildir: true },
              { returnPath: 's@example.org', deliveredTo: 'rcpt@example.com' },
            )
          ).status,
        ).toBe('sent');
      }
      const { stdout } = await run('python3', [
        '-c',
        "import json,mailbox,sys\nb=mailbox.Maildir(sys.argv[1],create=False)\nprint(json.dumps(sorted([[m['subject'],b.get_bytes(k).decode('latin1')] for k,m in b.items()])))",
        md,
      ]);
      const got = JSON.parse(stdout) as [string, string][];
      expect(got.map((g) => g[0])).toEqual(['four', 'one', 'three', 'two']);
      for (const [subject, raw] of got) {
        const original = MESSAGES.find((m) => m.startsWith(`Subject: ${subject}\r\n`))!;
        const sep = eol === '\n' ? '\n\n' : '\r\n\r\n';
        let body = Buffer.from(original.slice(original.indexOf('\r\n\r\n') + 4), 'utf8').toString(
          'latin1',
        );
        if (eol === '\n') {
          body = body.replace(/\r\n/g, '\n');
          if (body !== '' && !body.endsWith('\n')) body += '\n';
        }
        expect(raw.slice(raw.indexOf(sep) + sep.length)).toBe(body);
      }
      if (eol === '\n') {
        const frm = spawnSync('frm', [`maildir://${md}`], { encoding: 'utf8' });
        const subjects = frm.stdout
          .trim()
          .split('\n')
          .map((l) => l.split('\t').pop()!.trim());
        expect(subjects.sort()).toEqual(['four', 'one', 'three', 'two']);
        for (let n = 1; n <= MESSAGES.length; n++) {
          const shown = spawnSync('mail', ['-N', '-f', `maildir://${md}`], {
            input: `print ${n}\nquit\n`,
            encoding: 'utf8',
          });
          const subject = /Subject: (\w+)/.exec(shown.stdout)?.[1];
          const original = MESSAGES.find((m) => m.startsWith(`Subject: ${subject}\r\n`))!;
          const body = original.slice(original.indexOf('\r\n\r\n') + 4).replace(/\r\n/g, '\n');
          expect(shown.stdout).toContain(body);
        }
      }
    }
  });

  it('50 concurrent deliveries in three processes never corrupt one mbox (dotlock)', async () => {
    const bundle = path.join(dir, 'child.mjs');
    await build({
      entryPoints: [path.join(import.meta.dirname, 'mbox-writer-child.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: bundle,
      logLevel: 'silent',
    });
    const file = path.join(dir, 'shared-mbox');
    const counts: [string, number][] = [
      ['alpha', 20],
      ['beta', 15],
      ['gamma', 15],
    ];
    const outputs = await Promise.all(
      counts.map(([tag, n]) => run(process.execPath, [bundle, file, String(n), tag])),
    );
    for (const o of outputs) expect(JSON.parse(o.stdout).failed).toEqual([]);
    const got = await python('mbox', file);
    expect(got).toHaveLength(50);
    const seen = new Set<string>();
    for (const m of got) {
      const [tag, i] = m.subject.split(' ');
      seen.add(m.subject);
      expect(m.body).toBe(`${`${tag} line ${i}\n`.repeat(200)}>From the end\n`);
    }
    expect(seen.size).toBe(50);
    await expect(fs.access(`${file}.lock`)).rejects.toThrow();
  });
});
