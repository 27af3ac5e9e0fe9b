import { readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from 'tsup';
import { FINGERPRINT_NAME, sourceFingerprint } from './scripts/fresh-dist.mjs';

const root = dirname(fileURLToPath(import.meta.url));

type EsbuildPlugin = NonNullable<Options['esbuildPlugins']>[number];

/**
 * The package's entry points: the name each is built under in dist/ and its source.
 * package.json lists the same in `exports` (as `.` and `./NAME`) and `typesVersions`,
 * and typedoc.json in `entryPoints`; test/interop/package-exports.test.ts checks that
 * they agree.
 */
export const ENTRY_POINTS: Readonly<Record<string, string>> = {
  index: 'src/index.ts',
  'address/index': 'src/exports/address.ts',
  'agents/index': 'src/exports/agents.ts',
  'dns/index': 'src/exports/dns.ts',
  'metrics/index': 'src/exports/metrics.ts',
  'queue/index': 'src/exports/queue.ts',
  'tables/index': 'src/exports/tables.ts',
  'testing/index': 'src/testing/index.ts',
};

/**
 * The sources read only `version` from package.json (src/util/package-version.ts):
 * bundle that and nothing else of it.
 */
const packageVersionOnly: EsbuildPlugin = {
  name: 'package-version-only',
  setup(build) {
    build.onLoad({ filter: /[\\/]package\.json$/ }, async (args) => {
      const { version } = JSON.parse(await readFile(args.path, 'utf8')) as { version: string };
      return { contents: JSON.stringify({ version }), loader: 'json' };
    });
  },
};

/**
 * Source maps name their files as the package holds them: `dist/x.js.map` points to
 * `../src/...` wherever the build ran (the CommonJS build writes absolute paths, and a
 * build into another directory would reach back to this checkout), so no map ships a
 * directory of the build machine.
 */
async function packageRelativeSourceMaps(outDir: string): Promise<void> {
  for (const entry of await readdir(outDir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.map')) continue;
    const path = join(entry.parentPath, entry.name);
    const here = entry.parentPath;
    // Where this map sits in the package, whose dist/ is beside src/.
    const inPackage = join(root, 'dist', relative(outDir, here));
    const map = JSON.parse(await readFile(path, 'utf8')) as { file?: string; sources: string[] };
    if (map.file !== undefined) map.file = basename(map.file);
    map.sources = map.sources.map((source) => {
      const absolute = resolve(here, source);
      const output = relative(outDir, absolute);
      return output.startsWith('..') ? relative(inPackage, absolute) : relative(here, absolute);
    });
    await writeFile(path, JSON.stringify(map));
  }
}

export default defineConfig((cli) => {
  // Taken before the build starts: a source edited during the build leaves dist/ stale.
  const fingerprint = sourceFingerprint(root);
  const outDir = resolve(root, cli.outDir ?? 'dist');
  return {
    entry: {
      ...ENTRY_POINTS,
      'cli/main': 'src/cli/main.ts',
      // Started as a process of its own to write with a user's rights.
      'deliver/mailbox-helper': 'src/deliver/mailbox-helper.ts',
    },
    format: ['esm', 'cjs'],
    dts: { entry: ENTRY_POINTS },
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    clean: true,
    splitting: true,
    // import.meta.url in the CommonJS build (createRequire of a module loaded on demand).
    shims: true,
    esbuildPlugins: [packageVersionOnly],
    // What scripts/fresh-dist.mjs compares with the sources to tell whether to rebuild.
    onSuccess: async () => {
      await packageRelativeSourceMaps(outDir);
      await writeFile(join(outDir, FINGERPRINT_NAME), `${fingerprint}\n`);
    },
  };
});
