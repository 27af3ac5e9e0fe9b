import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startPostern } from '../helpers/postern-process.js';
import { SmtpDialogue } from '../helpers/smtp-dialogue.js';

const BIN = fileURLToPath(new URL('../../bin/postern.mjs', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

/** The version package.json gives. */
async function packageVersion(): Promise<string> {
  return (JSON.parse(await readFile(PACKAGE, 'utf8')) as { version: string }).version;
}

function postern(
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('the postern command line', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['serve', /^usage: postern serve/],
    ['queue', /^usage: postern queue/],
    ['sendmail', /^usage: postern sendmail/],
    ['check-config', /^usage: postern check-config/],
    ['db', /^usage: postern db/],
  ])('postern %s --help prints its usage', async (command, usage) => {
    const r = await postern([command, '--help'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(usage);
  });

  it('postern --version prints the version package.json gives', async () => {
    const r = await postern(['--version'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`postern ${await packageVersion()}\n`);
    expect((await postern(['--help'], dir)).stdout).toMatch(/postern --version/);
  });

  it('check-config accepts a good config and summarises it', async () => {
    await writeFile(
      join(dir, 'good.json'),
      JSON.stringify({ myhostname: 'mx.example.test', smtpd: [{ listen: '127.0.0.1:2525' }] }),
    );
    const r = await postern(['check-config', '--config', join(dir, 'good.json')], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/good\.json: OK/);
    expect(r.stdout).toMatch(/smtpd 127\.0\.0\.1:2525/);
  });

  it('check-config names the file, line and key of a mistake, with exit 78', async () => {
    await writeFile(
      join(dir, 'bad.json'),
      '{\n  "myhostname": "mx.example.test",\n  "messageSizeLimit": "lots"\n}\n',
    );
    const r = await postern(['check-config', '--config', join(dir, 'bad.json')], dir);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/bad\.json, line 3: messageSizeLimit: expected a whole number/);
    await writeFile(join(dir, 'broken.json'), '{\n  "myhostname": "x",,\n}\n');
    const b = await postern(['check-config', '--config', join(dir, 'broken.json')], dir);
    expect(b.code).toBe(78);
    expect(b.stderr).toMatch(
      /broken\.json: not valid JSON at line 2, column 21: expected a property name in double quotes/,
    );
  });

  it('check-config lists every mistake with its line, and the parameter a misspelt key means', async () => {
    await writeFile(
      join(dir, 'typos.json'),
      '{\n  "myhostname": "mx.example.test",\n  "smtpdBaner": "hi",\n  "messageSizeLimit": "lots"\n}\n',
    );
    const r = await postern(['check-config', '--config', join(dir, 'typos.json')], dir);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/typos\.json: 2 problems in the configuration:\n/);
    expect(r.stderr).toMatch(
      /typos\.json, line 3: unknown configuration key "smtpdBaner"; did you mean "smtpdBanner"\?/,
    );
    expect(r.stderr).toMatch(/typos\.json, line 4: messageSizeLimit: expected a whole number/);
    const serve = await postern(['serve', '--config', join(dir, 'typos.json')], dir);
    expect(serve.code).toBe(78);
    expect(serve.stderr).toMatch(
      /^postern: configuration error: 2 problems: unknown configuration key "smtpdBaner"; did you mean "smtpdBanner"\? \([^)]*\); messageSizeLimit: expected a whole number[^;\n]*\n$/,
    );
  });

  it('serve says clearly when its port is taken (exit 69) and refuses unknown commands (64)', async () => {
    const first = await startPostern(dir, {
      myhostname: 'mx.example.test',
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueDirectory: join(dir, 'q1'),
    });
    try {
      await writeFile(
        join(dir, 'clash.json'),
        JSON.stringify({
          smtpd: [{ listen: `127.0.0.1:${first.port}` }],
          queueDirectory: join(dir, 'q2'),
        }),
      );
      const r = await postern(['serve', '--config', join(dir, 'clash.json')], dir);
      expect(r.code).toBe(69);
      expect(r.stderr).toMatch(
        /cannot listen on 127\.0\.0\.1:\d+: .*another process uses that port/,
      );
    } finally {
      await first.stop();
    }
    expect((await postern(['frobnicate'], dir)).code).toBe(64);
    expect((await postern(['serve', '--log-format', 'xml'], dir)).code).toBe(64);
  });

  it('serve --log-format json prints one JSON object per event', async () => {
    await writeFile(
      join(dir, 'json.json'),
      JSON.stringify({
        myhostname: 'mx.example.test',
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueDirectory: join(dir, 'q3'),
      }),
    );
    const { spawn } = await import('node:child_process');
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--config', join(dir, 'json.json'), '--log-format', 'json'],
      { cwd: dir },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    try {
      const end = Date.now() + 15_000;
      while (!/daemon started/.test(out) && Date.now() < end)
        await new Promise((r) => setTimeout(r, 50));
      const port = Number(/listening on [^,"]*:(\d+)/.exec(out)?.[1]);
      const c = await SmtpDialogue.open(port);
      await c.read();
      await c.expect('QUIT', 221);
      // The session's last line: every event checked below is written before it.
      await vi.waitFor(() => expect(out).toMatch(/"text": ?"disconnect from /), {
        timeout: 15_000,
      });
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    const events = out
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { component: string; level: string; text: string; time: string },
      );
    const started = `daemon started -- version ${await packageVersion()}, listening on`;
    expect(events.some((e) => e.component === 'master' && e.text.startsWith(started))).toBe(true);
    expect(events.some((e) => e.component === 'smtpd' && /connect from/.test(e.text))).toBe(true);
    expect(events.every((e) => /^\d{4}-\d\d-\d\dT/.test(e.time))).toBe(true);
  });
});
