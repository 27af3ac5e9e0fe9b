/**
 * The `postern` command line: `serve`, `queue`, `sendmail`, `check-config`, `db`,
 * `capture`.
 *
 * Exit codes follow sysexits.h: 64 usage, 78 configuration, 70 internal error.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import { isSmtpdWorker } from '../server/worker-env.js';
import { errorMessage } from '../util/error-message.js';
import { POSTERN_VERSION } from '../util/package-version.js';
import { exitFor } from './exit-error.js';

const USAGE = `usage: postern serve [--config FILE] [--log-format postfix|json] [--log-level LEVEL]
       postern check-config [--config FILE]
       postern queue list|shape|hold|release|delete|requeue|flush [ID...|ALL] [--config FILE]
       postern sendmail [options] [recipient ...]
       postern db migrate|status [--config FILE]
       postern capture [--smtp HOST:PORT] [--http HOST:PORT] [--max N] [--smtp-auth-accept-any]
       postern --version

  serve         run the mail server in the foreground; without --config the embedded
                default: SMTP on 127.0.0.1:2525, mail for any local part accepted; logs
                Postfix-format lines (or JSON) on standard output at LEVEL debug, info
                (default), warning or error
  check-config  validate a configuration without starting anything
  queue     inspect and manage the queue, also while the server runs (postern queue --help)
  sendmail  submit a message like sendmail(1), also while no server runs (postern sendmail -h)
  capture   a mail catcher for development: any mail accepted on 127.0.0.1:1025 and shown
            by a Mailpit-compatible API and web UI on http://127.0.0.1:8025 (postern capture --help)
  --config  a .json config (Postfix parameter names in camelCase) or an .mjs module
  --version print the version ("postern X.Y.Z") and exit
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    process.exit(command === undefined ? 64 : 0);
  }
  if (command === '--version') {
    process.stdout.write(`postern ${POSTERN_VERSION}\n`);
    return;
  }
  // `postern COMMAND --help` prints that command's usage (sendmail's -h is not help).
  if (rest[0] === '--help' || (rest[0] === '-h' && command !== 'sendmail')) {
    const usage: Record<string, () => Promise<string>> = {
      sendmail: async () => (await import('./sendmail.js')).SENDMAIL_USAGE,
      'check-config': async () => (await import('./check-config.js')).CHECK_CONFIG_USAGE,
      db: async () => (await import('./db.js')).DB_USAGE,
      queue: async () => (await import('./queue.js')).QUEUE_USAGE,
      capture: async () => (await import('./capture.js')).CAPTURE_USAGE,
      serve: async () => USAGE,
    };
    const text = usage[command];
    if (text) {
      process.stdout.write(await text());
      return;
    }
  }
  if (command === 'sendmail') {
    const { sendmail } = await import('./sendmail.js');
    process.exitCode = await sendmail(rest, {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
    });
    return;
  }
  if (command === 'queue') {
    // Loaded for `queue` only: the queue store is not code an smtpd worker process runs.
    const { QUEUE_USAGE, queueCommand, queueExitCode } = await import('./queue.js');
    if (rest.length === 0 || rest[0] === '--help' || rest[0] === '-h') {
      process.stdout.write(QUEUE_USAGE);
      process.exit(rest.length === 0 ? 64 : 0);
    }
    try {
      process.stdout.write(await queueCommand(rest, process.env));
    } catch (err) {
      const code = queueExitCode(err);
      if (code === 78) throw err;
      // Anything else an operator can fix (a database that is down): one line too.
      if (code === undefined) fail('postern queue', err);
      const usage = code === 64 ? QUEUE_USAGE : '';
      process.stderr.write(`postern queue: ${errorMessage(err)}\n${usage}`);
      process.exit(code);
    }
    return;
  }
  if (command === 'db') {
    const { dbCommand, DbUsageError, DB_USAGE } = await import('./db.js');
    try {
      process.stdout.write(await dbCommand(rest));
    } catch (err) {
      if (
        err instanceof DbUsageError ||
        (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
      ) {
        process.stderr.write(`postern db: ${errorMessage(err)}\n${DB_USAGE}`);
        process.exit(64);
      }
      fail('postern db', err);
    }
    return;
  }
  if (command === 'capture') {
    const { capture, CaptureUsageError, CAPTURE_USAGE } = await import('./capture.js');
    try {
      await capture(rest, process.stdout, process.stderr);
    } catch (err) {
      if (err instanceof CaptureUsageError) {
        process.stderr.write(`postern capture: ${err.message}\n${CAPTURE_USAGE}`);
        process.exit(64);
      }
      throw err;
    }
    return;
  }
  if (command === 'check-config') {
    const { checkConfig } = await import('./check-config.js');
    process.exitCode = await checkConfig(rest, process.stdout, process.stderr);
    return;
  }
  if (command !== 'serve') {
    process.stderr.write(`postern: unknown command "${command}"\n${USAGE}`);
    process.exit(64);
  }
  let values: {
    config?: string | undefined;
    help?: boolean | undefined;
    'log-format'?: string | undefined;
    'log-level'?: string | undefined;
  };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        'log-format': { type: 'string', default: 'postfix' },
        'log-level': { type: 'string', default: 'info' },
      },
    }));
    if (!['postfix', 'json'].includes(values['log-format']!)) {
      throw new Error(`--log-format takes "postfix" or "json", not "${values['log-format']}"`);
    }
    if (!['debug', 'info', 'warning', 'error'].includes(values['log-level']!)) {
      throw new Error(
        `--log-level takes debug, info, warning or error, not "${values['log-level']}"`,
      );
    }
  } catch (err) {
    process.stderr.write(`postern serve: ${errorMessage(err)}\n${USAGE}`);
    process.exit(64);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const options = {
    config: values.config,
    logFormat: values['log-format'] as 'postfix' | 'json',
    logLevel: values['log-level'] as 'debug' | 'info' | 'warning' | 'error',
  };
  // An smtpd worker process of `postern serve` loads only what it runs: less memory each.
  if (isSmtpdWorker()) {
    const { runSmtpdWorker } = await import('../server/smtpd-worker.js');
    return runSmtpdWorker(options);
  }
  // Loaded only for `serve`, so `postern queue` starts quickly.
  const { serve } = await import('./serve.js');
  await serve(options);
}

/** One line for an error an operator can fix, a stack trace for a bug; then the sysexits code. */
function fail(prefix: string, err: unknown): never {
  const { line, code } = exitFor(err);
  process.stderr.write(`${prefix}: ${line}\n`);
  process.exit(code);
}

main(process.argv.slice(2)).catch((err: unknown) => fail('postern', err));
