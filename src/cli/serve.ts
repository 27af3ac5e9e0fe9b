/**
 * `postern serve [--config FILE] [--log-format postfix|json] [--log-level LEVEL]`: runs
 * the MTA in the foreground — the embedded default (EMBEDDED_CONFIG) when no file is
 * given — writing Postfix's syslog lines (or JSON objects) to standard output or
 * `maillogFile`, until SIGTERM or SIGINT (then: stop accepting, finish what is in
 * flight, write every queued log line, exit 0).
 *
 * SIGHUP is `postfix reload`: `maillogFile` is opened again (after logrotate moved it),
 * the config file is read again and what can change while running is applied
 * (Mta.reload(): listeners, smtpd/qmqpd parameters, TLS certificates, SASL tables);
 * a changed parameter that needs a restart is named in a warning. A config that does
 * not validate is logged and the running one stays.
 *
 * With `smtpdWorkerProcesses` above 0 the SMTP listeners are served by that many worker
 * processes, with `smtpdWorkerThreads` 1 by a worker thread (server/smtpd-workers.ts);
 * this process keeps the queue, delivery and the other listeners, passes SIGHUP and
 * SIGTERM on, and starts a worker again when one dies. A worker is this same command
 * started again (node:cluster, or node:worker_threads in this process), which main.ts
 * sends to server/smtpd-worker.ts instead.
 *
 * An uncaught exception or unhandled rejection is logged as Postfix's `fatal:` line,
 * the queued log lines are written, and the process exits 70 (mail already accepted is
 * on disk; what was in flight is retried after the restart).
 *
 * @module
 */

import { Logger } from '../log.js';
import { Mta } from '../mta/mta.js';
import { type MtaConfig, resolveMtaConfig } from '../mta/mta-config.js';
import { QueueIdGenerator } from '../queue-id.js';
import { SmtpdWorkers, type SmtpdWorkersOptions } from '../server/smtpd-workers.js';
import { smtpdWorkerLayout } from '../server/worker-layout.js';
import type { LogLevel } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { loadServeConfig } from './load-config.js';
import { openLogOutput } from './log-output.js';

/** How long a fatal error waits for the log to be written before exiting anyway. */
const FATAL_FLUSH_MS = 5000;

/** Options of `postern serve`. */
export interface ServeOptions {
  readonly config?: string | undefined;
  /** `postfix`: Postfix-format lines; `json`: one JSON object per event. */
  readonly logFormat?: 'postfix' | 'json';
  /** Least severe level printed. */
  readonly logLevel?: LogLevel;
}

export async function serve(args: ServeOptions): Promise<void> {
  const config: MtaConfig = await loadServeConfig(args.config);
  const logger = new Logger();
  const queueIds = new QueueIdGenerator();
  let writeLines: (lines: Buffer) => void = () => undefined;
  const workers = smtpdWorkers(config, logger, queueIds, {
    logLines: (lines) => writeLines(lines),
    // What the workers queue is counted here, as the primary's own receivers' mail is.
    onQueued: (record) => mta.metrics.noteReceived(record.source, record.queueId),
  });
  const mta = new Mta(config, { logger, queueIds, ...(workers ? { smtpdService: workers } : {}) });
  const out = openLogOutput({
    params: mta.params,
    format: args.logFormat ?? 'postfix',
    level: args.logLevel ?? 'info',
  });
  logger.addSink(out.sink);
  writeLines = (lines) => out.writer.writeBytes(lines);
  // The last resort for a process.exit() from anywhere: what is queued, synchronously.
  process.on('exit', () => out.writer.flushSync());

  let stopping = false;
  const fatal = (what: string, err: unknown): void => {
    if (stopping) process.exit(70);
    stopping = true;
    const text = errorMessage(err);
    out.fatal(`${what}: ${text}`);
    // An unexpected error: the stack is for the bug report.
    process.stderr.write(`postern: fatal: ${what}: ${(err as Error)?.stack ?? text}\n`);
    const timer = setTimeout(() => process.exit(70), FATAL_FLUSH_MS);
    void out.writer.close().finally(() => {
      clearTimeout(timer);
      process.exit(70);
    });
  };
  process.on('uncaughtException', (err) => fatal('uncaught exception', err));
  process.on('unhandledRejection', (reason) => fatal('unhandled rejection', reason));

  // Handlers first: a signal that comes while the MTA starts (its "daemon started" line
  // is out before start() returns) stops it once started, instead of killing it.
  let started: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('master', undefined, `received ${signal}, stopping`);
    (started ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => mta.stop())
      .then(
        async () => {
          await out.writer.close();
          process.exit(0);
        },
        async (err: unknown) => {
          logger.error('master', undefined, `error while stopping: ${errorMessage(err)}`);
          await out.writer.close();
          process.stderr.write(`postern: error while stopping: ${errorMessage(err)}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  started = mta.start();
  try {
    await started;
  } catch (err) {
    // main() reports it on stderr in one line; the log gets it as Postfix's fatal line.
    out.fatal(errorMessage(err).replace(/\s*\n\s*/g, ' '));
    await out.writer.close();
    throw err;
  }

  let reloading: Promise<void> = Promise.resolve();
  process.on('SIGHUP', () => {
    if (stopping) return;
    out.writer.reopen();
    // One reload at a time; a SIGHUP during one runs after it.
    reloading = reloading.then(() => reload(mta, logger, args.config));
  });
}

/** Reads the config file again and applies it; never throws. */
async function reload(mta: Mta, logger: Logger, file: string | undefined): Promise<void> {
  logger.info('master', undefined, `reload -- configuration ${file ?? '(built-in defaults)'}`);
  try {
    const next: MtaConfig = await loadServeConfig(file, { fresh: true });
    await mta.reload(next);
  } catch (err) {
    const text = errorMessage(err);
    logger.error('master', undefined, `reload failed: ${text}; the running configuration stays`);
  }
}

/**
 * The smtpd workers `smtpdWorkerProcesses` or `smtpdWorkerThreads` ask for, or undefined
 * for none. Throws ConfigError for what workers cannot do yet (worker-layout.ts).
 */
function smtpdWorkers(
  config: MtaConfig,
  logger: Logger,
  queueIds: QueueIdGenerator,
  wiring: Pick<SmtpdWorkersOptions, 'logLines' | 'onQueued'>,
): SmtpdWorkers | undefined {
  const layout = smtpdWorkerLayout(resolveMtaConfig(config));
  if (!layout) return undefined;
  return new SmtpdWorkers({
    ...layout,
    log: logger.for('master'),
    ...wiring,
    takenTags: [queueIds.nodeTag],
  });
}
