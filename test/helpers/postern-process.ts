/**
 * Runs the built `postern serve` as a child process for end-to-end tests, the way a user
 * runs it: a config file, a working directory, SIGTERM or SIGKILL to end it.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/postern.mjs', import.meta.url));

export interface PosternProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly output: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `postern serve` in `cwd` with `config` (written to cwd/postern.json) and waits until it listens. */
export async function startPostern(
  cwd: string,
  config: object | undefined,
  timeoutMs = 20_000,
): Promise<PosternProcess> {
  const args = [BIN, 'serve'];
  if (config) {
    const file = join(cwd, 'postern.json');
    await writeFile(file, JSON.stringify(config, null, 2));
    args.push('--config', file);
  }
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const listeners: (() => void)[] = [];
  let partial = '';
  const onText = (text: string) => {
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    output.push(...lines);
    for (const l of listeners.slice()) l();
  };
  child.stdout!.setEncoding('utf8').on('data', onText);
  child.stderr!.setEncoding('utf8').on('data', onText);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  const waitForLine = (pattern: RegExp, ms = timeoutMs): Promise<string> =>
    new Promise((resolvePromise, reject) => {
      const check = () => {
        const hit = output.find((l) => pattern.test(l));
        if (hit !== undefined) {
          done();
          resolvePromise(hit);
        }
      };
      const t = setTimeout(() => {
        done();
        reject(
          new Error(`no line matching ${pattern} within ${ms} ms; output:\n${output.join('\n')}`),
        );
      }, ms);
      const done = () => {
        clearTimeout(t);
        const i = listeners.indexOf(check);
        if (i >= 0) listeners.splice(i, 1);
      };
      listeners.push(check);
      void exited.then(() => {
        if (listeners.includes(check)) {
          done();
          reject(new Error(`postern exited before ${pattern}; output:\n${output.join('\n')}`));
        }
      });
      check();
    });

  const line = await waitForLine(/daemon started/);
  const m = /listening on [^,]*?:(\d+)/.exec(line);
  const port = m ? Number(m[1]) : 0;
  return {
    child,
    port,
    output,
    waitForLine,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
