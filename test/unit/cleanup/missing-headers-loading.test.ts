/**
 * libmime (about 12 MB resident with its character-set tables) is not loaded when the
 * package is: Cleanup requires it the first time a display name needs RFC 2047 encoding
 * (test/integration/receive/pickup.test.ts shows that encoding through `sendmail -F`).
 * Checked on the built package, ESM and CommonJS, each in a process of its own.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

/**
 * Resolve hook (module.register) that reports every URL the ESM loader resolves, and
 * require.cache for what the CommonJS loader holds: together, every module a process
 * loaded through either.
 */
const HOOKS = `
  let port;
  export async function initialize(data) { port = data.port; }
  export async function resolve(specifier, context, next) {
    const r = await next(specifier, context);
    port.postMessage(r.url);
    return r;
  }
`;

/** The modules under node_modules/libmime that a fresh process holds after `load`. */
async function libmimeModulesAfter(load: string): Promise<string[]> {
  const script = `
    import { createRequire, register } from 'node:module';
    import { MessageChannel } from 'node:worker_threads';
    const { port1, port2 } = new MessageChannel();
    const resolved = [];
    port1.on('message', (url) => resolved.push(url));
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), {
      data: { port: port2 },
      transferList: [port2],
    });
    ${load}
    // Messages keep their order: once this marker's own resolution is reported, every
    // earlier one has been.
    const marker = 'data:text/javascript,export{}//end';
    const ended = new Promise((done) => port1.on('message', (url) => url === marker && done()));
    await import(marker);
    await ended;
    port1.close();
    const held = [...resolved, ...Object.keys(createRequire(import.meta.url).cache)].filter((k) =>
      /[\\/]node_modules[\\/]libmime[\\/]/.test(k),
    );
    process.stdout.write(JSON.stringify(held));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
  });
  return JSON.parse(stdout) as string[];
}

describe('libmime is loaded on demand', () => {
  it('importing the ESM build (Cleanup included) leaves libmime unloaded', async () => {
    const entry = pathToFileURL(resolve(ROOT, 'dist/index.js')).href;
    const held = await libmimeModulesAfter(
      `const m = await import(${JSON.stringify(entry)}); if (typeof m.Cleanup !== 'function') throw new Error('no Cleanup');`,
    );
    expect(held).toEqual([]);
  });

  it('requiring the CommonJS build (Cleanup included) leaves libmime unloaded', async () => {
    const entry = resolve(ROOT, 'dist/index.cjs');
    const held = await libmimeModulesAfter(
      `const m = createRequire(import.meta.url)(${JSON.stringify(entry)}); if (typeof m.Cleanup !== 'function') throw new Error('no Cleanup');`,
    );
    expect(held).toEqual([]);
  });

  it('the probe does see libmime once something loads it, by import or require', async () => {
    expect(await libmimeModulesAfter(`await import('libmime');`)).not.toEqual([]);
    expect(await libmimeModulesAfter(`createRequire(import.meta.url)('libmime');`)).not.toEqual([]);
  });
});
