/**
 * `postern check-config [--config FILE]`: builds every component from a configuration
 * without opening the queue or any port, and reports the first problem with the key
 * and, for a JSON file, the line it is on.
 *
 * Postfix counterpart: `postfix check` (and postconf's warnings).
 *
 * @module
 */

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError, PosternError } from '../errors.js';
import { EMBEDDED_CONFIG } from '../mta/embedded-config.js';
import { Mta } from '../mta/mta.js';
import { smtpdWorkerLayout } from '../server/worker-layout.js';
import { errorMessage } from '../util/error-message.js';
import { loadConfigFile } from './load-config.js';

/** The line of a JSON file where `key` (its last path segment) first appears as a key. */
export function lineOfKey(text: string, key: string): number | undefined {
  const last = key
    .replace(/\[\d+\]/g, '')
    .split('.')
    .pop();
  if (!last) return undefined;
  const at = text.indexOf(`"${last}"`);
  return at < 0 ? undefined : text.slice(0, at).split('\n').length;
}

/** The text of `file`, or '' when it cannot be read (the error says why already). */
async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => '');
}

/** The usage text of `postern check-config`. */
export const CHECK_CONFIG_USAGE = `usage: postern check-config [--config FILE]

  Builds every component from the configuration (or the embedded default) without
  opening the queue or any port, and names the key and line of every mistake.
`;

/** Runs `postern check-config`; resolves with the exit code (0 valid, 64 usage, 78 invalid). */
export async function checkConfig(
  argv: readonly string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  let file: string | undefined;
  try {
    file = parseArgs({ args: [...argv], options: { config: { type: 'string', short: 'c' } } })
      .values.config;
  } catch (e) {
    err.write(`postern check-config: ${errorMessage(e)}\n${CHECK_CONFIG_USAGE}`);
    return 64;
  }
  try {
    const mta = new Mta(file ? await loadConfigFile(file) : EMBEDDED_CONFIG);
    const workers = smtpdWorkerLayout(mta.config);
    const p = mta.params;
    out.write(
      `${file ?? '(the embedded default)'}: OK\n` +
        `  myhostname ${p.myhostname}, mydestination ${p.mydestination.join(' ')}\n` +
        `  smtpd ${mta.config.smtpd.map((l) => `${l.host}:${l.port}`).join(' ') || '(none)'}${workers ? ` in ${workers.count} worker ${workers.kind}${workers.count > 1 ? 'es' : ''}` : ''}, qmqpd ${mta.config.qmqpd.map((l) => `${l.host}:${l.port}`).join(' ') || '(none)'}\n` +
        `  transports ${mta.agents.names.join(' ')}\n`,
    );
    return 0;
  } catch (e) {
    if (!PosternError.is(e)) throw e;
    const text = e instanceof ConfigError && file?.endsWith('.json') ? await readText(file) : '';
    /** `FILE, line N: ` for a problem whose key the JSON text shows. */
    const where = (problem: PosternError): string => {
      const key = problem instanceof ConfigError ? problem.key : undefined;
      const line = key && text ? lineOfKey(text, key) : undefined;
      return line === undefined ? (file ? `${file}: ` : '') : `${file}, line ${line}: `;
    };
    const problems = e instanceof ConfigError ? e.problems : [e];
    if (problems.length === 1) err.write(`postern check-config: ${where(e)}${e.message}\n`);
    else {
      err.write(
        `postern check-config: ${file ?? '(the embedded default)'}: ${problems.length} problems in the configuration:\n`,
      );
      for (const p of problems) err.write(`  ${where(p)}${p.message}\n`);
    }
    return 78;
  }
}
