/**
 * The `postern` command line: `postern serve [--config FILE]`.
 *
 * Exit codes follow sysexits.h: 64 usage, 78 configuration, 70 internal error.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import { PosternError } from '../errors.js';
import { serve } from './serve.js';

const USAGE = `usage: postern serve [--config FILE]

  serve     run the mail server in the foreground (SMTP on 127.0.0.1:2525 by default)
  --config  a .json config (Postfix parameter names in camelCase) or an .mjs module
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    process.exit(command === undefined ? 64 : 0);
  }
  if (command !== 'serve') {
    process.stderr.write(`postern: unknown command "${command}"\n${USAGE}`);
    process.exit(64);
  }
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    process.stderr.write(`postern serve: ${(err as Error).message}\n${USAGE}`);
    process.exit(64);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  await serve({ config: values.config });
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (PosternError.is(err) && err.code === 'POSTERN_ERR_CONFIG') {
    process.stderr.write(`postern: configuration error: ${err.message}\n`);
    process.exit(78);
  }
  process.stderr.write(`postern: fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(70);
});
