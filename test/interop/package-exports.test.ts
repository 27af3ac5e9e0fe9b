/**
 * The published package, as `npm run build` makes it and `npm pack` packs it, used the
 * ways an application uses it: ESM import and CommonJS require of `postern` and every
 * subpath (`postern/tables`, `postern/testing`, ...), the `postern` command, and
 * TypeScript compiling against the declaration files under node16 resolution (ESM and
 * CommonJS) and under node10 resolution (`typesVersions`). publint and Are the Types
 * Wrong judge the tarball; the manifest, tsup.config.ts and typedoc.json list the same
 * entry points; loading the library changes nothing in the process (`sideEffects`); and
 * no packed file names a directory of the machine that built it. The development build
 * (`npm start`, the test scripts) leaves the declarations out; this is what proves the
 * full build still makes them.
 *
 * The build goes to a temporary copy of the package, not to dist/.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_POINTS } from '../../tsup.config.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

interface PackageJson {
  version: string;
  main: string;
  module: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, unknown>;
  typesVersions: Record<string, Record<string, string[]>>;
  dependencies: Record<string, string>;
  sideEffects: false | string[];
}

let temp: string;
/** Where the package was built and packed. */
let pkg: string;
/** The packed tarball. */
let tarball: string;
/** An application with the packed package installed in its node_modules. */
let app: string;
/** The package as installed in the application. */
let installed: string;
let packed: string[];
let manifest: PackageJson;
/** The code entry points as imported: `postern`, `postern/tables`, ... */
let specifiers: string[];

beforeAll(async () => {
  temp = await mkdtemp(join(tmpdir(), 'postern-package-'));
  pkg = join(temp, 'package');
  await mkdir(pkg);
  for (const file of ['package.json', 'README.md', 'LICENSE', 'config.schema.json']) {
    await cp(join(root, file), join(pkg, file));
  }
  await cp(join(root, 'bin'), join(pkg, 'bin'), { recursive: true });
  manifest = JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as PackageJson;
  specifiers = codeEntryPoints(manifest).map((s) => `postern${s.slice(1)}`);
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
  tarball = join(temp, info!.filename);

  app = join(temp, 'app');
  installed = join(app, 'node_modules', 'postern');
  await mkdir(installed, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
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

/** The `exports` keys of code (`.`, `./tables`, ...), not of JSON files such as ./package.json. */
function codeEntryPoints(m: PackageJson): string[] {
  return Object.entries(m.exports)
    .filter(([, target]) => typeof target === 'object')
    .map(([subpath]) => subpath);
}

/** Every file path the manifest points at (main, module, types, bin, every export). */
function targets(m: PackageJson): string[] {
  const out = [m.main, m.module, m.types, ...Object.values(m.bin)];
  const walk = (v: unknown) => {
    if (typeof v === 'string') out.push(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(m.exports);
  walk(m.typesVersions);
  return [...new Set(out.map((p) => p.replace(/^\.\//, '')))];
}

/** Runs a tool from the repository's node_modules/.bin; resolves with its exit code and output. */
async function tool(
  name: string,
  args: readonly string[],
  cwd: string,
): Promise<{ code: number; output: string }> {
  try {
    const r = await run(join(root, 'node_modules/.bin', name), [...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    return { code: 0, output: `${r.stdout}${r.stderr}` };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout}${e.stderr}` };
  }
}

describe('the package npm run build makes', () => {
  it('holds every file its manifest points at, declarations and LICENSE included', () => {
    const wanted = targets(manifest);
    expect(wanted).toContain('dist/index.d.ts');
    expect(wanted).toContain('dist/testing/index.d.cts');
    expect(wanted).toContain('dist/tables/index.d.ts');
    expect(wanted.filter((p) => !packed.includes(p))).toEqual([]);
    expect(packed).toContain('LICENSE');
    expect(packed).not.toContain('dist/.fingerprint');
  });

  it('lists the same entry points in exports, typesVersions, tsup.config.ts and typedoc.json', async () => {
    const subpaths = codeEntryPoints(manifest);
    const names = subpaths.map((s) => (s === '.' ? 'index' : `${s.slice(2)}/index`));
    expect(subpaths.length).toBeGreaterThan(2);
    expect(Object.keys(ENTRY_POINTS).sort()).toEqual([...names].sort());
    for (const [i, subpath] of subpaths.entries()) {
      const base = `./dist/${names[i]}`;
      expect(manifest.exports[subpath], subpath).toEqual({
        import: { types: `${base}.d.ts`, default: `${base}.js` },
        require: { types: `${base}.d.cts`, default: `${base}.cjs` },
      });
      if (subpath !== '.') {
        expect(manifest.typesVersions['*']?.[subpath.slice(2)], subpath).toEqual([`${base}.d.ts`]);
      }
    }
    expect(Object.keys(manifest.typesVersions['*'] ?? {}).length).toBe(subpaths.length - 1);
    const typedoc = JSON.parse(await readFile(join(root, 'typedoc.json'), 'utf8')) as {
      entryPoints: string[];
    };
    expect([...typedoc.entryPoints].sort()).toEqual(Object.values(ENTRY_POINTS).sort());
  });

  it('loads every entry point through import and require, with the same names', async () => {
    const esm = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const out = {};
         for (const s of ${JSON.stringify(specifiers)}) out[s] = Object.keys(await import(s)).sort();
         console.log(JSON.stringify(out));`,
      ],
      { cwd: app },
    );
    const cjs = await run(
      process.execPath,
      [
        '-e',
        `const out = {};
         for (const s of ${JSON.stringify(specifiers)}) out[s] = Object.keys(require(s)).sort();
         console.log(JSON.stringify(out));`,
      ],
      { cwd: app },
    );
    const fromEsm = JSON.parse(esm.stdout) as Record<string, string[]>;
    expect(JSON.parse(cjs.stdout)).toEqual(fromEsm);
    for (const s of specifiers) expect(fromEsm[s]!.length, s).toBeGreaterThan(0);
    expect(fromEsm.postern).toContain('Mta');
    expect(fromEsm.postern!.length).toBeLessThanOrEqual(45);
    expect(fromEsm['postern/testing']).toContain('createTestMta');
    expect(fromEsm['postern/tables']).toContain('createTable');
  });

  it('exports its config JSON Schema as postern/config.schema.json', async () => {
    const r = await run(
      process.execPath,
      [
        '-e',
        `const schema = require('postern/config.schema.json');
         console.log(JSON.stringify([require.resolve('postern/config.schema.json'), Object.keys(schema.$defs.parameters.properties).length]));`,
      ],
      { cwd: app },
    );
    const [path, parameters] = JSON.parse(r.stdout) as [string, number];
    expect(path).toBe(join(installed, 'config.schema.json'));
    expect(parameters).toBeGreaterThan(200);
  });

  it('changes nothing in the process by being loaded (sideEffects)', async () => {
    // Every entry point in both module systems; then what a module with top-level
    // effects would leave: a global, a process listener, a timer or a handle.
    const r = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module';
         const require = createRequire(process.cwd() + '/');
         const globals = Object.keys(globalThis).sort().join();
         const events = process.eventNames().map(String).sort().join();
         // File reads of the module loader itself come and go; anything else stays.
         const active = () => process.getActiveResourcesInfo()
           .filter((r) => !/^(FSReqCallback|FSReqPromise|CloseReq)$/.test(r)).sort().join();
         const resources = active();
         for (const s of ${JSON.stringify(specifiers)}) { await import(s); require(s); }
         console.log(JSON.stringify({
           globals: Object.keys(globalThis).sort().join() === globals,
           events: process.eventNames().map(String).sort().join() === events,
           resources: active() === resources,
         }));`,
      ],
      { cwd: app },
    );
    expect(JSON.parse(r.stdout)).toEqual({ globals: true, events: true, resources: true });
    // Only the two entries that are processes of their own may have effects.
    expect(manifest.sideEffects).toEqual(['./dist/cli/main.*', './dist/deliver/mailbox-helper.*']);
  });

  it('runs the postern command, whose --version is the package version', async () => {
    const bin = join(installed, manifest.bin.postern!);
    const r = await run(process.execPath, [bin, 'serve', '--help'], { cwd: app });
    expect(r.stdout).toMatch(/^usage: postern serve/);
    const v = await run(process.execPath, [bin, '--version'], { cwd: app });
    expect(v.stdout).toBe(`postern ${manifest.version}\n`);
  });

  it('names no directory of the build machine in any packed file', async () => {
    const found: string[] = [];
    for (const entry of await readdir(installed, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      const text = await readFile(path, 'latin1');
      for (const dir of [pkg, root.replace(/\/$/, '')]) {
        if (text.includes(dir)) found.push(`${path.slice(installed.length + 1)}: ${dir}`);
      }
      if (entry.name.endsWith('.map')) {
        const map = JSON.parse(text) as { file?: string; sources: string[] };
        for (const p of [map.file ?? '', ...map.sources]) {
          if (p.startsWith('/')) found.push(`${entry.name}: ${p}`);
        }
      }
    }
    expect(found).toEqual([]);
  });

  it('passes publint and Are the Types Wrong', async () => {
    const lint = await tool('publint', ['run', '--strict', tarball], temp);
    expect(lint.output).toMatch(/All good/);
    expect(lint.code).toBe(0);
    const attw = await tool('attw', ['--no-definitely-typed', '--format', 'json', tarball], temp);
    const result = JSON.parse(attw.output) as { analysis: { problems: unknown[] } };
    expect(result.analysis.problems).toEqual([]);
    expect(attw.code).toBe(0);
  });

  it('type-checks ESM, CommonJS and node10 TypeScript consumers of every entry point, and catches a wrong type', async () => {
    // One statement per entry point that only compiles with its real declarations.
    const uses = [
      "import { Mta, type MtaConfig, type SubmitMessage, type PostgresQueueStoreConfig, type QueueStore, type DeliveryAgent, type LookupTable, type Resolver } from 'postern';",
      "import { splitAddress } from 'postern/address';",
      "import { sysexit, type SysexitEntry } from 'postern/agents';",
      "import { DnsResolver } from 'postern/dns';",
      "import { PROMETHEUS_CONTENT_TYPE, type MetricsSnapshot } from 'postern/metrics';",
      "import { isQueueId } from 'postern/queue';",
      "import { InlineTable } from 'postern/tables';",
      "import { createTestMta, type TestMta } from 'postern/testing';",
      "const config: MtaConfig = { myhostname: 'mx.example.com', queueStore: { type: 'postgres', url: 'postgres://db/mail' } satisfies PostgresQueueStoreConfig };",
      'export const mta: Mta = new Mta(config);',
      "export const message: SubmitMessage = { from: '', to: ['a@example.com'], content: 'x' };",
      'export const submit: (m: SubmitMessage) => Promise<string> = (m) => mta.submit(m);',
      'export const store: QueueStore = mta.store;',
      'export const agent: DeliveryAgent | undefined = undefined;',
      "export const parts: { local: string; domain: string } = splitAddress('a@example.com');",
      'export const exit: SysexitEntry | undefined = sysexit(75);',
      'export const resolver: Resolver = new DnsResolver();',
      'export const contentType: string = PROMETHEUS_CONTENT_TYPE;',
      'export const snapshot: Promise<MetricsSnapshot> = mta.metrics.snapshot();',
      "export const ok: boolean = isQueueId('x');",
      "export const table: LookupTable = new InlineTable({ a: 'b' });",
      'export const pending: Promise<TestMta> = createTestMta();',
      '// @ts-expect-error an Mta is not a number: the types are real, not any',
      'export const wrong: number = mta;',
      '',
    ];
    // Every specifier must be used above, so that a new subpath is checked too.
    for (const s of specifiers) expect(uses.join('\n')).toContain(`from '${s}'`);
    await writeFile(join(app, 'esm.mts'), uses.join('\n'));
    await writeFile(
      join(app, 'cjs.cts'),
      [
        ...specifiers.map((s, i) => `import m${i} = require('${s}');`),
        "export const mta = new m0.Mta({ myhostname: 'mx.example.com' });",
        ...specifiers.map((_, i) => `export const n${i}: number = Object.keys(m${i}).length;`),
        '',
      ].join('\n'),
    );
    await writeFile(join(app, 'node10.ts'), uses.join('\n'));
    const compilerOptions = { target: 'ES2022', strict: true, noEmit: true, types: ['node'] };
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { ...compilerOptions, module: 'NodeNext', moduleResolution: 'NodeNext' },
        files: ['esm.mts', 'cjs.cts'],
      }),
    );
    await writeFile(
      join(app, 'tsconfig.node10.json'),
      JSON.stringify({
        compilerOptions: {
          ...compilerOptions,
          module: 'CommonJS',
          moduleResolution: 'node10',
          esModuleInterop: true,
        },
        files: ['node10.ts'],
      }),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const project of ['tsconfig.json', 'tsconfig.node10.json']) {
      const r = await run(process.execPath, [tsc, '-p', join(app, project)]).catch(
        (err: { stdout: string; code: number }) => ({ stdout: err.stdout, code: err.code }),
      );
      expect(r.stdout, project).toBe('');
    }
  });
});
