/**
 * `postern serve [--config FILE]`: runs the MTA in the foreground, printing
 * Postfix-format log lines, until SIGTERM or SIGINT (then: stop accepting, finish what
 * is in flight, exit 0).
 *
 * @module
 */

import type { MtaConfig } from '../config/mta-config.js';
import { formatLogLine, Logger } from '../log.js';
import { Mta } from '../mta.js';
import { loadConfigFile } from './load-config.js';

export async function serve(args: { config?: string | undefined }): Promise<void> {
  const config: MtaConfig = args.config ? await loadConfigFile(args.config) : {};
  const logger = new Logger([
    (e) => {
      if (e.level !== 'debug') process.stdout.write(`${formatLogLine(e)}\n`);
    },
  ]);
  const mta = new Mta(config, { logger });
  await mta.start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('master', undefined, `received ${signal}, stopping`);
    mta.stop().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`postern: error while stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
