import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../../..');

describe('the MIME downgrade is loaded when needed', () => {
  it('loading the library and its SMTP agent does not load mailsplit', async () => {
    const script = `
      const { resolveParameters, SmtpDeliveryAgent } = require('./dist/index.cjs');
      new SmtpDeliveryAgent({ params: resolveParameters({}) });
      const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/]mailsplit[\\\\/]/.test(f));
      process.stdout.write(JSON.stringify(loaded));`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['-e', script], { cwd: ROOT }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout),
      ),
    );
    expect(JSON.parse(out)).toEqual([]);
  });
});
