/**
 * Nothing from an address reaches a command's argv as an option, whatever way the mail
 * came in: a pipe transport refuses a `${sender}`, `${recipient}` or `${extension}` that
 * would begin an argument with `-` before a `--` element (the recipient bounces 5.1.3,
 * the whole request 5.1.7 for the sender), passes it after `--`, and a local alias
 * command run by the shell is not run when `$EXTENSION` would start a word with `-`.
 * Mail arrives over SMTP on a listener with `allowMinUser` (the operator allowed such
 * addresses in); the commands are real scripts that record their argv.
 */

import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mta } from '../../../src/mta/mta.js';
import { type LogWatch, watchLog } from '../../helpers/log-watch.js';
import { SmtpDialogue } from '../../helpers/smtp-dialogue.js';

/** Records its argv (after the output prefix) NUL-separated into PREFIX.<pid>. */
const RECORDER =
  '#!/bin/sh\nout="$1"; shift\nprintf \'%s\\000\' "$@" > "$out.$$"\ncat > /dev/null\n';

describe('argv from addresses', () => {
  let dir: string;
  let runs: string;
  let mta: Mta;
  let port: number;
  let log: LogWatch;
  const asRoot = process.getuid?.() === 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-argv-'));
    runs = join(dir, 'runs');
    await mkdir(runs);
    const script = join(dir, 'record.sh');
    await writeFile(script, RECORDER, { mode: 0o755 });
    // Commands run as nobody when the tests run as root.
    await chmod(dir, 0o755);
    await chmod(runs, 0o777);
    log = watchLog();
    const user = asRoot ? { user: 'nobody' } : {};
    mta = new Mta(
      {
        myhostname: 'mx.example.test',
        mydestination: ['mx.example.test'],
        queueDirectory: join(dir, 'queue'),
        mailSpoolDirectory: join(dir, 'mail/'),
        recipientDelimiter: '+',
        localRecipientMaps: '',
        smtpd: [{ listen: '127.0.0.1:0', allowMinUser: true }],
        allowMinUser: true,
        aliasMaps: { cmd: `|${script} ${join(runs, 'alias')} "$EXTENSION"` },
        transports: {
          recorder: {
            type: 'pipe',
            argv: [script, join(runs, 'plain'), '${sender}', '${recipient}', '${extension}'],
            ...user,
          },
          guarded: {
            type: 'pipe',
            argv: [
              script,
              join(runs, 'guarded'),
              '-f',
              '${sender}',
              'ext=${extension}',
              '--',
              '${recipient}',
            ],
            ...user,
          },
        },
        // Bounces go to example.org: discard them instead of looking for its MX.
        transportMaps: {
          'pipe.example': 'recorder:',
          'safe.example': 'guarded:',
          'example.org': 'discard:',
        },
      },
      { logger: log.logger },
    );
    await mta.start();
    port = mta.listeners[0]!.port;
  });
  afterAll(async () => {
    await mta.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function send(from: string, to: readonly string[]): Promise<void> {
    const c = await SmtpDialogue.open(port);
    await c.read();
    await c.expect('EHLO client.example', 250);
    await c.expect(`MAIL FROM:<${from}>`, 250);
    for (const r of to) await c.expect(`RCPT TO:<${r}>`, 250);
    await c.expect('DATA', 354);
    await c.expect('Subject: argv\r\n\r\nbody\r\n.', 250);
    await c.expect('QUIT', 221);
    c.close();
  }

  async function recorded(prefix: string): Promise<string[][]> {
    const names = (await readdir(runs)).filter((n) => n.startsWith(`${prefix}.`));
    const out: string[][] = [];
    for (const n of names) {
      const text = await readFile(join(runs, n), 'utf8');
      out.push(text.split('\0').slice(0, -1));
    }
    return out;
  }

  it('bounces a sender that would be an option (5.1.7) and never runs the command', async () => {
    await send('-oQ/evil@example.org', ['victim@pipe.example']);
    const e = await log.delivery('victim@pipe.example');
    expect(e.text).toMatch(/dsn=5\.1\.7, status=bounced \(\$\{sender\} would start argument 2/);
    expect(e.text).toMatch(/put a "--" element before it in argv/);
    expect(await recorded('plain')).toEqual([]);
  });

  it('bounces only the recipient whose value would be an option; the others are delivered', async () => {
    await send('ok@example.org', [
      '-x@pipe.example',
      'fine@pipe.example',
      'user+-evil@pipe.example',
    ]);
    const bad = await log.delivery('-x@pipe.example');
    expect(bad.text).toMatch(
      /dsn=5\.1\.3, status=bounced \(\$\{recipient\} would start argument 3/,
    );
    const ext = await log.delivery('user+-evil@pipe.example');
    expect(ext.text).toMatch(
      /dsn=5\.1\.3, status=bounced \(\$\{extension\} would start argument 4/,
    );
    const good = await log.delivery('fine@pipe.example');
    expect(good.text).toMatch(/status=sent/);
    expect(await recorded('plain')).toEqual([['ok@example.org', 'fine@pipe.example', '']]);
  });

  it('passes such values after a "--" element or behind literal text, where they are no option', async () => {
    await send('ok@example.org', ['-x@safe.example', 'user+-evil@safe.example']);
    expect((await log.delivery('-x@safe.example')).text).toMatch(/status=sent/);
    expect((await log.delivery('user+-evil@safe.example')).text).toMatch(/status=sent/);
    // With one element per recipient, `ext=${extension}` repeats for each of them.
    expect(await recorded('guarded')).toEqual([
      [
        '-f',
        'ok@example.org',
        'ext=',
        'ext=-evil',
        '--',
        '-x@safe.example',
        'user+-evil@safe.example',
      ],
    ]);
  });

  it('does not run a shell alias command whose $EXTENSION would start a word with "-"', async () => {
    await send('ok@example.org', ['cmd+-evil@mx.example.test']);
    const bad = await log.delivery('cmd+-evil@mx.example.test');
    expect(bad.text).toMatch(/dsn=5\.1\.3, status=bounced \(\$EXTENSION would give the command/);
    expect(await recorded('alias')).toEqual([]);
    await send('ok@example.org', ['cmd+fine@mx.example.test']);
    expect((await log.delivery('cmd+fine@mx.example.test')).text).toMatch(/status=sent/);
    expect(await recorded('alias')).toEqual([['fine']]);
  });
});
