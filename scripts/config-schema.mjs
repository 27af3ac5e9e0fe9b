/**
 * Writes config.schema.json, the JSON Schema of a Postern config, from the parameter
 * tables (src/mta/config-schema.ts). Run it (`npm run schema`) after changing a
 * parameter: test/unit/config/config-schema.test.ts fails while the checked-in file
 * differs from what the tables make.
 *
 * Does not: build the package; it loads the sources through esbuild.
 *
 * @module
 */

import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSource } from './load-source.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { configSchema } = await loadSource(ROOT, 'src/mta/config-schema.ts');
const file = join(ROOT, 'config.schema.json');
await writeFile(
  file,
  `${JSON.stringify(/** @type {() => unknown} */ (configSchema)(), null, 2)}\n`,
);
process.stdout.write(`wrote ${file}\n`);
