/**
 * Reads a config file for the CLI: `.json` (pure data) or `.mjs`/`.js` (a module whose
 * default export is the config object, which may hold code: tables, agents, hooks).
 *
 * @module
 */

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { jsonSyntaxError } from '../config/json-syntax.js';
import { ConfigError } from '../errors.js';
import { EMBEDDED_CONFIG } from '../mta/embedded-config.js';
import type { MtaConfig } from '../mta/mta-config.js';
import { errorMessage } from '../util/error-message.js';

/**
 * Reads `file`. With `fresh`, a module is imported anew (SIGHUP): Node caches modules
 * by URL, so a query string makes it read the file again (the old copy stays loaded).
 */
export async function loadConfigFile(
  file: string,
  options: { readonly fresh?: boolean } = {},
): Promise<MtaConfig> {
  const path = resolve(file);
  if (/\.(mjs|js)$/.test(path)) {
    const url = pathToFileURL(path).href;
    const mod = (await import(options.fresh ? `${url}?reload=${Date.now()}` : url)) as {
      default?: unknown;
    };
    if (typeof mod.default !== 'object' || mod.default === null) {
      throw new ConfigError(`${file}: the module must \`export default\` a config object`);
    }
    return mod.default as MtaConfig;
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${file}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`,
    );
  }
  const mistake = jsonSyntaxError(text);
  if (mistake !== undefined) {
    throw new ConfigError(
      `${file}: not valid JSON at line ${mistake.line}, column ${mistake.column}: expected ${mistake.expected}`,
    );
  }
  return JSON.parse(text) as MtaConfig;
}

/**
 * The config `postern serve` runs: `file`, or the embedded default when there is none. A
 * reload reads it the same way, so SIGHUP without a file keeps the embedded default.
 */
export async function loadServeConfig(
  file: string | undefined,
  options: { readonly fresh?: boolean } = {},
): Promise<MtaConfig> {
  return file ? loadConfigFile(file, options) : EMBEDDED_CONFIG;
}
