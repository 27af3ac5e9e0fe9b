/**
 * `postern serve [--config FILE] [--log-format postfix|json] [--log-level LEVEL]`: runs
 * the MTA in the foreground — the embedded default (EMBEDDED_CONFIG) when no file is
 * given — printing Postfix-format log lines (or JSON objects) on standard output, until
 * SIGTERM or SIGINT (then: stop accepting, finish what is in flight, exit 0).
 *
 * @module
 */

import { EMBEDDED_CONFIG } from '../config/embedded-config.js';
import type { MtaConfig } from '../config/mta-config.js';
import { formatLogLine, Logger } from '../log.js';
import { Mta } from '../mta.js';
import type { LogLevel } from '../types.js';
import { loadConfigFile } from './load-config.js';

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };

/** Options of `postern serve`. */
export interface ServeOptions {
  readonly config?: string | undefined;
  /** `postfix`: Postfix-format lines; `json`: one JSON object per event. */
  readonly logFormat?: 'postfix' | 'json';
  /** Least severe level printed. */
  readonly logLevel?: LogLevel;
}

export async function serve(args: ServeOptions): Promise<void> {
  const config: MtaConfig = args.config ? await loadConfigFile(args.config) : EMBEDDED_CONFIG;
  const min = LEVELS[args.logLevel ?? 'info'];
  const json = args.logFormat === 'json';
  const logger = new Logger([
    (e) => {
      if (LEVELS[e.level] < min) return;
      process.stdout.write(
        `${json ? JSON.stringify({ ...e, time: new Date(e.time).toISOString() }) : formatLogLine(e)}\n`,
      );
    },
  ]);
  const mta = new Mta(config, { logger });
  // Handlers first: a signal that comes while the MTA starts (its "daemon started" line
  // is out before start() returns) stops it once started, instead of killing it.
  let started: Promise<void> | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('master', undefined, `received ${signal}, stopping`);
    (started ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => mta.stop())
      .then(
        () => process.exit(0),
        (err) => {
          process.stderr.write(`postern: error while stopping: ${(err as Error).message}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  started = mta.start();
  await started;
}
