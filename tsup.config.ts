import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';
import { FINGERPRINT_NAME, sourceFingerprint } from './scripts/fresh-dist.mjs';

const root = dirname(fileURLToPath(import.meta.url));

export default defineConfig((cli) => {
  // Taken before the build starts: a source edited during the build leaves dist/ stale.
  const fingerprint = sourceFingerprint(root);
  const outDir = resolve(root, cli.outDir ?? 'dist');
  return {
    entry: {
      index: 'src/index.ts',
      'testing/index': 'src/testing/index.ts',
      'cli/main': 'src/cli/main.ts',
      // Started as a process of its own to write with a user's rights.
      'deliver/mailbox-helper': 'src/deliver/mailbox-helper.ts',
    },
    format: ['esm', 'cjs'],
    dts: { entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' } },
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    clean: true,
    splitting: true,
    shims: false,
    // What scripts/fresh-dist.mjs compares with the sources to tell whether to rebuild.
    onSuccess: async () => {
      await writeFile(join(outDir, FINGERPRINT_NAME), `${fingerprint}\n`);
    },
  };
});
