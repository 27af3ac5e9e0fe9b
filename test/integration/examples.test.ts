import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

// Each program in examples/ runs as a user would run it (against the built package).
describe('examples', () => {
  it('embedded-mta.mjs queues and delivers its message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'postern-example-test-'));
    try {
      const { stdout } = await run(
        process.execPath,
        [join(root, 'examples/embedded-mta.mjs'), dir],
        {
          cwd: root,
          timeout: 30_000,
        },
      );
      expect(stdout).toMatch(/queued: 250 2\.0\.0 Ok: queued as [0-9A-Za-z]+/);
      expect(stdout).toMatch(
        /postern\/local: [0-9A-Za-z]+: to=<alice@localhost>, relay=local, .*status=sent/,
      );
      expect(await readdir(join(dir, 'mail/alice/new'))).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
