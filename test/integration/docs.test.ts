/**
 * The API reference build (`npm run docs`, TypeDoc over typedoc.json): it passes with
 * no warning for every entry point of the package, each a module of the reference named
 * as it is imported (`postern`, `postern/tables`, ...), and it fails — naming the symbol —
 * when an export has no doc comment or no `@example` (api-docs/require-example.mjs).
 *
 * Both runs are real TypeDoc processes; the build writes to a temporary directory, not
 * to api-docs/.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const typedocBin = path.join(root, 'node_modules/typedoc/bin/typedoc');

interface Run {
  readonly code: number;
  readonly output: string;
}

function typedoc(cwd: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [typedocBin, ...args],
      { cwd, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, timeout: 170_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}`.replace(/\x1b\[[0-9;]*m/g, '') });
      },
    );
  });
}

const temps: string[] = [];
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

describe('npm run docs', () => {
  it('builds the reference with no warning', { timeout: 180_000 }, async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'postern-docs-'));
    temps.push(out);
    const run = await typedoc(root, ['--out', out]);
    expect(run.output).not.toMatch(/\[(warning|error)\]/);
    expect(run.code).toBe(0);
    expect(existsSync(path.join(out, 'index.html'))).toBe(true);
    expect(existsSync(path.join(out, 'classes/postern.Mta.html'))).toBe(true);
    const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
    };
    // The code entry points (a JSON file such as ./package.json is exported as a string).
    const subpaths = Object.entries(manifest.exports)
      .filter(([, target]) => typeof target === 'object')
      .map(([subpath]) => subpath);
    expect(subpaths.length).toBeGreaterThan(2);
    for (const subpath of subpaths) {
      const page = `postern${subpath.slice(1)}`.replace(/\//g, '_');
      expect(existsSync(path.join(out, 'modules', `${page}.html`)), subpath).toBe(true);
    }
  });

  it('fails on an export without a doc comment or an example', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'postern-docs-fixture-'));
    temps.push(dir);
    await writeFile(
      path.join(dir, 'index.ts'),
      [
        'export function undocumented(): number {',
        '  return 1;',
        '}',
        '',
        '/** Documented, but with no example. */',
        'export const noExample = 2;',
        '',
        '/**',
        ' * Documented, with an example.',
        ' *',
        ' * @example',
        ' * ```ts',
        ' * complete + 1;',
        ' * ```',
        ' */',
        'export const complete = 3;',
        '',
      ].join('\n'),
    );
    await writeFile(path.join(dir, 'package.json'), '{ "name": "fixture", "type": "module" }\n');
    await writeFile(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'NodeNext', target: 'ES2022', types: [] },
        files: ['index.ts'],
      }),
    );
    // The project's settings and plugin, applied to the fixture.
    await writeFile(
      path.join(dir, 'typedoc.json'),
      JSON.stringify({
        extends: [path.join(root, 'typedoc.json')],
        entryPoints: ['index.ts'],
        tsconfig: 'tsconfig.json',
        intentionallyNotExported: [],
        intentionallyNotDocumented: [],
      }),
    );
    const run = await typedoc(dir, ['--options', 'typedoc.json', '--emit', 'none']);
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/undocumented \(CallSignature\).*does not have any documentation/);
    expect(run.output).toMatch(/noExample has no @example block/);
    expect(run.output).not.toMatch(/\bcomplete has no @example/);
  });
});
