/**
 * Runs the built `postern` command (bin/postern.mjs) in a child process, the way a user
 * or a program runs it: arguments, standard input, environment, exit code.
 */

import { type SpawnOptions, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** bin/postern.mjs of this checkout. */
export const POSTERN_BIN = fileURLToPath(new URL('../../bin/postern.mjs', import.meta.url));

/** How a run ended: `code` is null when it had to be killed (a hang) or died by a signal. */
export interface PosternRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs any command with `input` on standard input; kills it after `timeoutMs`. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: SpawnOptions & { input?: string; timeoutMs?: number },
): Promise<PosternRun> {
  const { input, timeoutMs, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...spawnOptions, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input ?? '');
  });
}

/** `postern ARGS` in `cwd` with `input` on standard input; killed after `timeoutMs`. */
export function runPostern(
  args: readonly string[],
  options: { cwd: string; input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<PosternRun> {
  return runProcess(process.execPath, [POSTERN_BIN, ...args], options);
}
