/**
 * Bundles a TypeScript entry (and the sources it imports) into one ES module that a
 * plain `node` child process can run, for tests that kill a real process: the test
 * runner compiles TypeScript on the fly, a child started with `node` does not.
 */

import { join } from 'node:path';
import { build } from 'tsup';

/** Bundles `entry` into `outDir`/`name`.mjs and returns that path. */
export async function bundleEntry(entry: string, outDir: string, name: string): Promise<string> {
  await build({
    entry: { [name]: entry },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    config: false,
    dts: false,
    sourcemap: false,
    clean: false,
    splitting: false,
    silent: true,
    outExtension: () => ({ js: '.mjs' }),
  });
  return join(outDir, `${name}.mjs`);
}
