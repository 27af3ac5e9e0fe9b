/**
 * The published package, as `npm run build` makes it and `npm pack` packs it, used the
 * ways an application uses it: ESM import and CommonJS require of `postern` and
 * `postern/testing`, the `postern` command, and TypeScript (NodeNext) compiling against
 * the declaration files in both module kinds. The development build (`npm start`, the
 * test scripts) leaves the declarations out; this is what proves the full build still
 * makes them.
 *
 * The build goes to a temporary copy of the package, not to dist/.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

interface PackageJson {
  main: string;
  module: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
}

let temp: string;
/** An application with the packed package installed in its node_modules. */
let app: string;
let packed: string[];
let manifest: PackageJson;

beforeAll(async () => {
  temp = await mkdtemp(join(tmpdir(), 'postern-package-'));
  const pkg = join(temp, 'package');
  await mkdir(pkg);
  await cp(join(root, 'package.json'), join(pkg, 'package.json'));
  await cp(join(root, 'bin'), join(pkg, 'bin'), { recursive: true });
  manifest = JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as PackageJson;
  // npm run build, into the copy.
  await run(
    process.execPath,
    [
      join(root, 'node_modules/tsup/dist/cli-default.js'),
      '--silent',
      '--out-dir',
      join(pkg, 'dist'),
    ],
    { cwd: root },
  );
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', temp], {
    cwd: pkg,
  });
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  packed = info!.files.map((f) => f.path);

  app = join(temp, 'app');
  const installed = join(app, 'node_modules', 'postern');
  await mkdir(installed, { recursive: true });
  await run('tar', ['-xzf', join(temp, info!.filename), '-C', installed, '--strip-components=1']);
  // The package's dependencies and Node's types, as npm would have installed them.
  for (const dep of [...Object.keys(manifest.dependencies), '@types']) {
    await mkdir(join(app, 'node_modules', dirnameOf(dep)), { recursive: true });
    await symlink(join(root, 'node_modules', dep), join(app, 'node_modules', dep));
  }
  await writeFile(join(app, 'package.json'), '{ "name": "app", "private": true }\n');
}, 170_000);

afterAll(async () => {
  if (temp) await rm(temp, { recursive: true, force: true });
});

function dirnameOf(dep: string): string {
  return dep.includes('/') ? dep.slice(0, dep.indexOf('/')) : '';
}

/** Every file path the manifest points at (main, module, types, bin, every export). */
function targets(m: PackageJson): string[] {
  const out = [m.main, m.module, m.types, ...Object.values(m.bin)];
  const walk = (v: unknown) => {
    if (typeof v === 'string') out.push(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(m.exports);
  return [...new Set(out.map((p) => p.replace(/^\.\//, '')))];
}

describe('the package npm run build makes', () => {
  it('holds every file its manifest points at, declarations included', () => {
    const wanted = targets(manifest);
    expect(wanted).toContain('dist/index.d.ts');
    expect(wanted).toContain('dist/testing/index.d.cts');
    expect(wanted.filter((p) => !packed.includes(p))).toEqual([]);
    expect(packed).not.toContain('dist/.fingerprint');
  });

  it('loads through import and require, both entry points', async () => {
    const esm = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { Mta } from 'postern'; import { createTestMta } from 'postern/testing'; console.log(typeof Mta, typeof createTestMta);",
      ],
      { cwd: app },
    );
    expect(esm.stdout.trim()).toBe('function function');
    const cjs = await run(
      process.execPath,
      [
        '-e',
        "const { Mta } = require('postern'); const { createTestMta } = require('postern/testing'); console.log(typeof Mta, typeof createTestMta);",
      ],
      { cwd: app },
    );
    expect(cjs.stdout.trim()).toBe('function function');
  });

  it('runs the postern command', async () => {
    const bin = join(app, 'node_modules', 'postern', manifest.bin.postern!);
    const r = await run(process.execPath, [bin, 'serve', '--help'], { cwd: app });
    expect(r.stdout).toMatch(/^usage: postern serve/);
  });

  it('type-checks an ESM and a CommonJS TypeScript consumer, and catches a wrong type', async () => {
    await writeFile(
      join(app, 'esm.mts'),
      [
        "import { Mta, type MtaConfig } from 'postern';",
        "import { createTestMta, type TestMta } from 'postern/testing';",
        "const config: MtaConfig = { myhostname: 'mx.example.com' };",
        'export const mta: Mta = new Mta(config);',
        'export const pending: Promise<TestMta> = createTestMta();',
        '// @ts-expect-error an Mta is not a number: the types are real, not any',
        'export const wrong: number = mta;',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(app, 'cjs.cts'),
      [
        "import postern = require('postern');",
        "import testing = require('postern/testing');",
        "export const mta = new postern.Mta({ myhostname: 'mx.example.com' });",
        'export const pending = testing.createTestMta();',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          types: ['node'],
        },
        files: ['esm.mts', 'cjs.cts'],
      }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await run(process.execPath, [tsc, '-p', app]).catch(
      (err: { stdout: string; code: number }) => ({ stdout: err.stdout, code: err.code }),
    );
    expect(r.stdout).toBe('');
  });
});
