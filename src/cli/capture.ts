/**
 * `postern capture`: a mail catcher for development — an SMTP server that accepts any
 * mail and keeps it in memory, with a Mailpit-compatible REST API and a web UI, in the
 * foreground until SIGTERM or SIGINT.
 *
 * Postfix counterpart: none (Mailpit and MailHog are what developers run for this).
 * It is createTestMta({ http }) from postern/testing as a command: real smtpd, Cleanup
 * and queue, every transport a capture, nothing relayed.
 *
 * Does not: persist mail (a restart forgets it), relay or release mail, or check AUTH
 * credentials (`--smtp-auth-accept-any` accepts any login).
 *
 * SECURITY: both listeners bind 127.0.0.1 unless told otherwise; a non-loopback address
 * is announced with a warning, since anyone who reaches the port reads the mail.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import { PosternError, type PosternErrorOptions } from '../errors.js';
import { formatLogLine } from '../log.js';
import type { MtaConfig } from '../mta/mta-config.js';
import { createTestMta } from '../testing/test-mta.js';
import type { LogLevel } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { loadConfigFile } from './load-config.js';

export const CAPTURE_USAGE = `usage: postern capture [--smtp HOST:PORT] [--http HOST:PORT] [--max N]
                       [--smtp-auth-accept-any] [--config FILE] [--log-level LEVEL]

  Accepts any mail on the SMTP port, keeps the newest N messages in memory and serves
  them over a Mailpit-compatible API (/api/v1/...) and a web UI at the HTTP address.

  --smtp                   SMTP listener (default 127.0.0.1:1025)
  --http                   API and web UI (default 127.0.0.1:8025)
  --max                    messages kept; the oldest is dropped (default 500)
  --smtp-auth-accept-any   offer AUTH PLAIN/LOGIN without TLS and accept any login
  --config                 more main parameters (.json or .mjs), e.g. messageSizeLimit
  --log-level              debug, info (default), warning or error
`;

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };

/** Thrown for bad arguments (exit 64). */
export class CaptureUsageError extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_USAGE', message, options);
  }
}

function isLoopback(hostPort: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+$/i.test(hostPort);
}

/** Runs the capture server until a signal; resolves once it listens. */
export async function capture(
  argv: readonly string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<void> {
  let values: {
    smtp: string;
    http: string;
    max: string;
    'smtp-auth-accept-any'?: boolean | undefined;
    config?: string | undefined;
    'log-level': string;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        smtp: { type: 'string', default: '127.0.0.1:1025' },
        http: { type: 'string', default: '127.0.0.1:8025' },
        max: { type: 'string', default: '500' },
        'smtp-auth-accept-any': { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string', default: 'info' },
      },
    }) as { values: typeof values });
  } catch (e) {
    throw new CaptureUsageError(errorMessage(e));
  }
  const max = Number(values.max);
  if (!Number.isInteger(max) || max < 1)
    throw new CaptureUsageError(`--max takes a whole number of at least 1, not "${values.max}"`);
  if (!(values['log-level'] in LEVELS))
    throw new CaptureUsageError(
      `--log-level takes debug, info, warning or error, not "${values['log-level']}"`,
    );
  const min = LEVELS[values['log-level'] as LogLevel];
  const config: MtaConfig = values.config ? await loadConfigFile(values.config) : {};
  for (const [flag, where] of [
    ['--smtp', values.smtp],
    ['--http', values.http],
  ] as const) {
    if (!isLoopback(where))
      err.write(
        `postern capture: warning: ${flag} ${where} is not a loopback address; anyone who can reach it can read the captured mail\n`,
      );
  }
  const mta = await createTestMta({
    config,
    smtp: values.smtp,
    http: values.http,
    maxMessages: max,
    acceptAnyAuth: values['smtp-auth-accept-any'] === true,
    onLog: (e) => {
      if (LEVELS[e.level] >= min) out.write(`${formatLogLine(e)}\n`);
    },
  });
  out.write(`postern capture: SMTP on ${mta.host}:${mta.port}, web UI and API on ${mta.httpUrl}\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    out.write(`postern capture: received ${signal}, stopping\n`);
    mta.close().then(
      () => process.exit(0),
      (e: unknown) => {
        err.write(`postern capture: error while stopping: ${errorMessage(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
