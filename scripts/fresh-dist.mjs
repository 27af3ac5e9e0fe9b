/**
 * Keeps dist/ in step with the sources for everything that runs the build: `npm start`,
 * the benchmarks and the test suites (vitest's global set-up). When any file under src/
 * or the build's own configuration differs from what dist/ was built from, it runs tsup
 * for the JavaScript only (ESM and CJS, no declaration files): about a second instead of
 * the full package build. When nothing changed it does nothing.
 *
 * What dist/ was built from is a fingerprint of the inputs (path, size and mtime of every
 * file under src/, tsup.config.ts, tsconfig.json, package.json), which tsup.config.ts
 * writes to dist/.fingerprint after each build: an edited, added, removed or renamed
 * source, or one checked out with an older date, makes dist/ stale. A full build
 * (`npm run build`) counts as fresh too.
 *
 * Does not do: declaration files. `npm run build` makes the whole package (ESM, CJS,
 * declarations); `npm publish` runs it first.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The file in the output directory where tsup.config.ts records what it was built from. */
export const FINGERPRINT_NAME = '.fingerprint';

/** Build inputs outside src/. */
const CONFIG_FILES = ['tsup.config.ts', 'tsconfig.json', 'package.json'];

/** A digest of every build input's path, size and modification time. */
export function sourceFingerprint(root = ROOT) {
  const hash = createHash('sha256');
  const add = (file) => {
    const st = statSync(file, { throwIfNoEntry: false });
    hash.update(`${relative(root, file)}\0${st ? `${st.size}\0${st.mtimeMs}` : '-'}\n`);
  };
  const walk = (dir) => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      const file = join(dir, e.name);
      if (e.isDirectory()) walk(file);
      else add(file);
    }
  };
  walk(join(root, 'src'));
  for (const f of CONFIG_FILES) add(join(root, f));
  return hash.digest('hex');
}

/** Why dist/ must be rebuilt, or undefined when it matches the sources. */
export function staleness(root = ROOT) {
  let built;
  try {
    built = readFileSync(join(root, 'dist', FINGERPRINT_NAME), 'utf8').trim();
  } catch {
    return 'dist/ has not been built';
  }
  return built === sourceFingerprint(root)
    ? undefined
    : 'the sources changed since dist/ was built';
}

/** Runs tsup for the JavaScript only; rejects with its output when it fails. */
function buildJavaScript(root) {
  const tsup = join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [tsup, '--no-dts', '--silent'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolvePromise()
        : reject(new Error(`the build failed (tsup exit ${code}):\n${out}`)),
    );
  });
}

/**
 * Holds a lock file while `fn` runs, so that two processes of one checkout (a test run and
 * `npm start`) never build into dist/ at once. A lock left by a process that is gone is
 * taken over.
 */
async function withLock(root, fn) {
  const dir = join(root, 'node_modules', '.cache');
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'postern-dist.lock');
  const end = Date.now() + 180_000;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let holder;
      try {
        holder = Number.parseInt(readFileSync(lock, 'utf8'), 10);
      } catch {
        continue; // released in the meantime
      }
      if (!holder || !alive(holder)) {
        try {
          unlinkSync(lock);
        } catch {
          // another waiter took it over first
        }
        continue;
      }
      if (Date.now() > end) throw new Error(`${lock}: held by process ${holder} for 3 minutes`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    unlinkSync(lock);
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * Rebuilds dist/ (JavaScript only) when it is stale; returns why it rebuilt, or undefined
 * when dist/ was fresh. `log` receives one line before a build.
 */
export async function freshDist({
  root = ROOT,
  log = (line) => process.stderr.write(`${line}\n`),
} = {}) {
  if (!staleness(root)) return undefined;
  return withLock(root, async () => {
    // Another process may have built it while this one waited for the lock.
    const why = staleness(root);
    if (!why) return undefined;
    log(
      `postern: ${why}; building the JavaScript into dist/ (npm run build makes the full package)`,
    );
    await buildJavaScript(root);
    return why;
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await freshDist();
  } catch (err) {
    process.stderr.write(`postern: ${err.message}\n`);
    process.exit(1);
  }
}
