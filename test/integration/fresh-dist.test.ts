/**
 * scripts/fresh-dist.mjs, which `npm start`, the benchmarks and vitest's global set-up
 * run before they use dist/: it rebuilds the JavaScript when any build input differs from
 * what dist/ was built from — an edit, an added or removed file, a file checked out with
 * an older date — and does nothing otherwise. Each case runs real tsup builds of a small
 * fixture package whose tsup config records its fingerprint the way the project's does.
 *
 * @module
 */

import {
  mkdir,
  mkdtemp,
  readFile,
  rm,
  stat,
  symlink,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freshDist, ROOT, staleness } from '../../scripts/fresh-dist.mjs';

const temps: string[] = [];
afterEach(async () => {
  for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A package with src/index.ts exporting `word`, built by tsup like this one. */
async function fixture(word: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'postern-fresh-dist-'));
  temps.push(root);
  await symlink(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  await mkdir(join(root, 'src'));
  await writeFile(join(root, 'src', 'index.ts'), `export const word: string = '${word}';\n`);
  await writeFile(join(root, 'package.json'), '{ "name": "fixture", "type": "module" }\n');
  const script = pathToFileURL(join(ROOT, 'scripts', 'fresh-dist.mjs')).href;
  await writeFile(
    join(root, 'tsup.config.ts'),
    [
      "import { writeFile } from 'node:fs/promises';",
      "import { defineConfig } from 'tsup';",
      `import { FINGERPRINT_NAME, sourceFingerprint } from '${script}';`,
      'const fingerprint = sourceFingerprint(process.cwd());',
      'export default defineConfig({',
      "  entry: ['src/index.ts'],",
      "  format: ['esm'],",
      '  clean: true,',
      '  dts: true,',
      '  onSuccess: () => writeFile(`dist/${FINGERPRINT_NAME}`, fingerprint),',
      '});',
      '',
    ].join('\n'),
  );
  return root;
}

async function built(root: string): Promise<string> {
  return readFile(join(root, 'dist', 'index.js'), 'utf8');
}

describe('fresh-dist: dist/ is rebuilt exactly when its inputs changed', () => {
  it('builds a missing dist/ (JavaScript only), then leaves it alone', async () => {
    const root = await fixture('one');
    const lines: string[] = [];
    expect(await freshDist({ root, log: (l) => lines.push(l) })).toBe('dist/ has not been built');
    expect(await built(root)).toContain('"one"');
    // The declaration files are npm run build's job, not this one's.
    await expect(stat(join(root, 'dist', 'index.d.ts'))).rejects.toThrow(/ENOENT/);
    const before = (await stat(join(root, 'dist', 'index.js'))).mtimeMs;
    expect(await freshDist({ root, log: (l) => lines.push(l) })).toBeUndefined();
    expect(staleness(root)).toBeUndefined();
    expect((await stat(join(root, 'dist', 'index.js'))).mtimeMs).toBe(before);
    expect(lines).toHaveLength(1);
  });

  it('an edit makes dist/ stale even when the file carries an older date', async () => {
    const root = await fixture('one');
    await freshDist({ root, log: () => {} });
    const src = join(root, 'src', 'index.ts');
    await writeFile(src, "export const word: string = 'two';\n");
    const past = new Date('2001-01-01T00:00:00Z');
    await utimes(src, past, past);
    expect(staleness(root)).toBe('the sources changed since dist/ was built');
  });

  it('an added or a removed source makes dist/ stale; undoing the change does not', async () => {
    const root = await fixture('one');
    const extra = join(root, 'src', 'extra.ts');
    await writeFile(extra, 'export const extra = 1;\n');
    await freshDist({ root, log: () => {} });
    const added = join(root, 'src', 'added.ts');
    await writeFile(added, 'export const added = 1;\n');
    expect(staleness(root)).toBeDefined();
    await unlink(added);
    expect(staleness(root)).toBeUndefined();
    await unlink(extra);
    expect(staleness(root)).toBeDefined();
  });

  it('two callers at once run one build', async () => {
    const root = await fixture('one');
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const results = await Promise.all([freshDist({ root, log }), freshDist({ root, log })]);
    expect(lines).toHaveLength(1);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    expect(await built(root)).toContain('"one"');
  });

  it('a failed build says why and leaves dist/ stale', async () => {
    const root = await fixture('one');
    await writeFile(join(root, 'src', 'index.ts'), 'export const = ;\n');
    await expect(freshDist({ root, log: () => {} })).rejects.toThrow(/the build failed/);
    expect(staleness(root)).toBeDefined();
    await writeFile(join(root, 'src', 'index.ts'), "export const word: string = 'three';\n");
    await freshDist({ root, log: () => {} });
    expect(await built(root)).toContain('"three"');
  });

  it("this checkout's dist/ matches its sources while the tests run", () => {
    expect(staleness(ROOT)).toBeUndefined();
  });
});
