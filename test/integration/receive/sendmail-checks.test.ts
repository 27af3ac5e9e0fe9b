/**
 * `postern sendmail` checks what Pickup will check before it writes anything, and
 * answers with a sysexits code and a reason; and the sendmail entry of the hostile
 * address corpus. The built CLI in real processes, real files, a real server.
 */

import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPostern } from '../../helpers/postern-cli.js';
import { startPostern } from '../../helpers/postern-process.js';

/** `postern sendmail ARGS` with `input` on standard input. */
const sendmail = (cwd: string, args: string[], input: string) =>
  runPostern(['sendmail', ...args], { cwd, input });

/** Every file under `dir`, relative to it. */
async function walk(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(path, base)));
    else out.push(relative(base, path));
  }
  return out;
}

describe('sendmail refuses what Pickup would refuse, before writing', () => {
  let dir: string;
  let conf: string[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-sendmail-checks-'));
    await writeFile(
      join(dir, 'postern.json'),
      JSON.stringify({ myhostname: 'mx.example.test', queueDirectory: join(dir, 'queue') }),
    );
    conf = ['-C', join(dir, 'postern.json')];
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    [
      '1001 recipients',
      Array.from({ length: 1001 }, (_, i) => `r${i}@localhost`),
      /1001 recipients; at most 1000 are allowed in one message \(smtpdRecipientLimit\)/,
    ],
    [
      'a newline in -F',
      ['-F', 'Ann\nBcc: everyone@example.org', 'a@localhost'],
      /the full name \(-F\) contains control characters/,
    ],
    [
      'a newline in -f',
      ['-f', 'ann@example.org\nRCPT TO:<x@example.org>', 'a@localhost'],
      /contains control characters/,
    ],
    [
      'a carriage return in a recipient',
      ['--', 'a@localhost\rX-Injected: yes'],
      /recipient .* contains control characters/,
    ],
    ['a control character in -V', ['-V', 'id\x07bell', 'a@localhost'], /envelope ID \(-V\)/],
    [
      'a 5000-character recipient',
      [`${'a'.repeat(5000)}@localhost`],
      /recipient "a{60}": bad recipient address syntax: it is 5010 bytes long; the limit is lineLengthLimit \(2048\)/,
    ],
    [
      'a recipient that starts with "-"',
      ['--', '-oQ/tmp/evil@localhost'],
      /recipient "-oQ\/tmp\/evil@localhost": bad recipient address syntax: it starts with "-"/,
    ],
  ])('%s: exit 64 with the reason, and nothing written', async (_what, args, reason) => {
    const r = await sendmail(dir, [...conf, ...args], 'Subject: x\n\nbody\n');
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(reason);
    expect(existsSync(join(dir, 'queue'))).toBe(false);
  });

  it('1000 recipients, the limit, are accepted', async () => {
    const rcpts = Array.from({ length: 1000 }, (_, i) => `r${i}@localhost`);
    const r = await sendmail(dir, [...conf, ...rcpts], 'Subject: x\n\nbody\n');
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const files = (await readdir(join(dir, 'queue/maildrop'))).filter((n) => n !== 'corrupt');
    expect(files).toHaveLength(1);
    await rm(join(dir, 'queue'), { recursive: true });
  });
});

/**
 * Hostile addresses through sendmail, as recipient and as `-f` sender: each is refused
 * with exit 64 and a reason, or queued; once the server has run, every queued one is
 * delivered or returned, none is lost in corrupt/, and nothing was written outside the
 * spool directories. (NUL cannot be passed in an argument vector at all.)
 */
const HOSTILE: readonly { readonly name: string; readonly address: string; refused?: true }[] = [
  { name: 'leading dash', address: '-oQ/tmp/evil@localhost' },
  { name: 'pipe', address: '"|touch /tmp/postern-evil"@localhost' },
  { name: 'absolute path', address: '/tmp/postern-evil@localhost' },
  { name: 'dot-dot', address: '../../postern-evil@localhost' },
  { name: 'CR LF', address: 'a@localhost\r\nRCPT TO:<b@localhost>', refused: true },
  { name: 'LF', address: 'a\n@localhost', refused: true },
  { name: '8-bit', address: 'jösé@localhost' },
  { name: 'quoted', address: '"a b"@localhost' },
  { name: 'quoted dash', address: '"-x"@localhost' },
  { name: '5000 characters', address: `${'x'.repeat(5000)}@localhost`, refused: true },
];

describe('the hostile address corpus through sendmail', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-sendmail-corpus-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses with a reason or queues; nothing is lost or written outside the spool', async () => {
    const config = {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory: join(dir, 'queue'),
      mailSpoolDirectory: join(dir, 'mail/'),
    };
    await writeFile(join(dir, 'postern.json'), JSON.stringify(config));
    const conf = ['-C', join(dir, 'postern.json')];
    let queued = 0;
    for (const { name, address, refused } of HOSTILE) {
      for (const args of [
        ['--', address],
        ['-f', address, 'postmaster@localhost'],
      ]) {
        const r = await sendmail(dir, [...conf, ...args], `Subject: ${name}\n\nx\n`);
        expect([0, 64], `${name} ${args[0]}: ${r.stderr}`).toContain(r.code);
        if (r.code === 64) expect(r.stderr, name).toMatch(/postern sendmail: .+/);
        else queued++;
        if (refused) expect(r.code, `${name} ${args[0]}`).toBe(64);
      }
    }
    expect(queued).toBeGreaterThan(0);
    const server = await startPostern(dir, config);
    try {
      const end = Date.now() + 20_000;
      let left: string[] = [];
      for (;;) {
        left = (await readdir(join(dir, 'queue/maildrop'))).filter((n) => n !== 'corrupt');
        if (left.length === 0 || Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(left).toEqual([]);
      expect(await readdir(join(dir, 'queue/maildrop/corrupt'))).toEqual([]);
    } finally {
      await server.stop();
    }
    const outside = (await walk(dir)).filter(
      (p) => !p.startsWith('queue/') && !p.startsWith('mail/') && p !== 'postern.json',
    );
    expect(outside).toEqual([]);
    expect(existsSync('/tmp/postern-evil')).toBe(false);
  });
});
