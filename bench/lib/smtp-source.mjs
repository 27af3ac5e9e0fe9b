// One load of Postfix's smtp-source (or qmqp-source) against a server on 127.0.0.1, as the
// benchmarks drive it: every message from bench@client.example to sink@remote.example, the
// counter sent nowhere (reading it through a pipe would cost the harness CPU), ended after
// ten minutes at the most.
import { spawn } from 'node:child_process';

/**
 * Runs `tool` with `sessions` sessions sending `messages` messages of `size` bytes to
 * `port`; resolves when it exits with status 0, rejects with its stderr otherwise.
 */
export function sourceLoad(port, { sessions, messages, size, tool = 'smtp-source' }) {
  const args = ['-s', String(sessions), '-m', String(messages), '-l', String(size)];
  args.push('-f', 'bench@client.example', '-t', 'sink@remote.example', `127.0.0.1:${port}`);
  return new Promise((res, rej) => {
    const p = spawn(tool, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 600_000);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) res();
      else rej(new Error(`${tool} failed (${code ?? signal}): ${err.trim()}`));
    });
  });
}
