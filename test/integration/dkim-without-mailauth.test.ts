import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// The package as a project that did not install the optional peer dependency: every
// dependency present, mailauth missing.
describe('dkimSigning without the mailauth package', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-nomailauth-'));
    for (const d of ['dist', 'bin']) await cp(join(ROOT, d), join(dir, d), { recursive: true });
    await cp(join(ROOT, 'package.json'), join(dir, 'package.json'));
    await mkdir(join(dir, 'node_modules'));
    for (const name of await readdir(join(ROOT, 'node_modules'))) {
      if (name === 'mailauth' || name === '.bin') continue;
      await symlink(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name));
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('postern serve says how to install it, in one line, exit 78', async () => {
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        myhostname: 'mx.example.test',
        smtpd: [{ listen: '127.0.0.1:0' }],
        queueDirectory: join(dir, 'queue'),
        dkimVerification: true,
      }),
    );
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [join(dir, 'bin/postern.mjs'), 'serve', '--config', join(dir, 'config.json')],
        { cwd: dir, timeout: 30_000 },
        (err, _stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(
      'postern: configuration error: dkimVerification needs the "mailauth" package: run `npm install mailauth` in your project\n',
    );
  });
});
