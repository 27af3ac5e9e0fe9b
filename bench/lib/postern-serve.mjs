// `postern serve` as a benchmark contender: its own process (so that its CPU time and
// peak memory are its own, not the load generator's), a config written to a temporary
// directory, SMTP on a free 127.0.0.1 port, and a maillog read incrementally to count
// deliveries.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from './net.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Starts `postern serve` with `config` (the queue directory, the SMTP listener and the
 * maillog are added) and `nodeArgs` for node (e.g. `--cpu-prof`). Resolves once it listens.
 */
export async function startPosternServe(config, { nodeArgs = [] } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-'));
  const logFile = join(dir, 'maillog');
  writeFileSync(
    join(dir, 'postern.json'),
    JSON.stringify({
      smtpd: [{ listen: `127.0.0.1:${port}` }],
      queueDirectory: join(dir, 'queue'),
      maillogFile: logFile,
      ...config,
    }),
  );
  const child = spawn(
    process.execPath,
    [...nodeArgs, join(root, 'bin/postern.mjs'), 'serve', '--config', join(dir, 'postern.json')],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir },
  );
  let said = '';
  child.stderr.on('data', (c) => (said += c));
  await waitForPort(port, 15_000, () =>
    child.exitCode !== null
      ? `postern serve exited (${child.exitCode}): ${said.trim()}`
      : undefined,
  );

  let offset = 0;
  let rest = '';
  let sent = 0;
  return {
    port,
    pid: child.pid,
    dir,
    /** Deliveries logged with status=sent so far. */
    async sent() {
      const fh = await open(logFile, 'r').catch(() => undefined);
      if (!fh) return sent;
      try {
        const buf = Buffer.alloc(1 << 20);
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          const lines = (rest + buf.toString('utf8', 0, bytesRead)).split('\n');
          rest = lines.pop() ?? '';
          for (const l of lines) if (l.includes(' status=sent ')) sent++;
        }
      } finally {
        await fh.close();
      }
      return sent;
    },
    /** SIGTERM (a graceful stop), then the directory goes; returns the maillog's lines. */
    async stop() {
      if (child.exitCode === null) {
        await new Promise((r) => {
          child.once('exit', r);
          child.kill('SIGTERM');
        });
      }
      let log = '';
      try {
        log = readFileSync(logFile, 'utf8');
      } catch {
        // nothing was logged
      }
      rmSync(dir, { recursive: true, force: true });
      return log.split('\n').filter(Boolean);
    },
  };
}
