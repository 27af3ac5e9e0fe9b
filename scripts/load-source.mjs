/**
 * Loads one TypeScript module of src/ into a script of the repository (the JSON Schema
 * generator, the API docs' parameter plugin) without building the package: esbuild
 * bundles the module and what it imports from src/ into one file under
 * node_modules/.cache/postern-source/ (packages stay imports, resolved from the
 * repository's node_modules), which is imported and removed.
 *
 * Does not: type-check (`npm run typecheck` does); cache between runs.
 *
 * @module
 */

import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/**
 * Imports `entry` (a path under `root`, such as `src/mta/config-schema.ts`).
 *
 * @param {string} root the repository's directory
 * @param {string} entry the module, relative to root
 * @returns {Promise<Record<string, unknown>>} the module's exports
 */
export async function loadSource(root, entry) {
  const dir = join(root, 'node_modules', '.cache', 'postern-source');
  await mkdir(dir, { recursive: true });
  const outfile = join(dir, `${basename(entry, '.ts')}-${process.pid}.mjs`);
  await build({
    entryPoints: [join(root, entry)],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  try {
    return await import(pathToFileURL(outfile).href);
  } finally {
    await rm(outfile, { force: true });
  }
}
