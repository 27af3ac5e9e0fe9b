/**
 * The smtpd worker of `postern serve`, a process (`smtpdWorkerProcesses` above 0) or a
 * thread of the primary's process (`smtpdWorkerThreads` 1): it reads the same config
 * file as the primary and serves the SMTP listeners — the SMTP server, its access policy
 * and Cleanup — over a ForwardingQueueStore, so each message is written by the
 * primary's store and acknowledged only once durable there. Its log lines are rendered
 * here, with this process's pid, and written by the primary. worker-parent.ts gives
 * either kind its links to the primary.
 *
 * Postfix counterpart: smtpd(8) under master(8): it accepts on the listening socket
 * master holds, and exits when master goes away.
 *
 * Lifecycle: `stop` from the primary, SIGTERM or SIGINT close the listeners and let the
 * sessions in flight finish, then the process exits 0; `reload` reads the config file
 * again and applies what a reload may change (mta-reload.ts) to new sessions. SIGHUP is
 * ignored here (the primary reloads, then tells the workers). When the primary dies the
 * IPC channel closes and the worker exits at once: nothing in flight here could be
 * made durable any more (a thread ends with its process). An uncaught error is logged
 * as `fatal:` and ends the worker (exit 70); the primary starts another.
 *
 * Does not: claim, deliver or list mail, run Pickup or QMQP: the primary does.
 *
 * @module
 */

import { Cleanup } from '../cleanup/cleanup.js';
import { loadServeConfig } from '../cli/load-config.js';
import { logLineSink } from '../cli/log-output.js';
import type { ServeOptions } from '../cli/serve.js';
import { systemClock } from '../clock.js';
import { Logger } from '../log.js';
import { type ResolvedMtaConfig, resolveMtaConfig } from '../mta/mta-config.js';
import { ListenerGroup } from '../mta/mta-listeners.js';
import { planReload } from '../mta/mta-reload.js';
import { smtpdReceiverBuilder } from '../mta/smtpd-receivers.js';
import { TcpNetwork } from '../mta/tcp-network.js';
import { QueueIdGenerator } from '../queue-id.js';
import { Rewriter } from '../rewrite/rewriter.js';
import { errorMessage } from '../util/error-message.js';
import { ForwardingQueueStore } from './forwarding-store.js';
import { WorkerChannel } from './worker-channel.js';
import { QUEUE_ID_TAG_ENV, SESSIONS_MS, type ToWorker } from './worker-env.js';
import { parentLink } from './worker-parent.js';

/** How long a fatal error waits for its line to reach the primary. */
const FATAL_FLUSH_MS = 2000;

/**
 * Runs this process as an smtpd worker until it is told to stop or its primary dies; it
 * gets the options `postern serve` was started with.
 */
export async function runSmtpdWorker(options: ServeOptions): Promise<void> {
  const parent = parentLink();
  const { send } = parent;
  const failed = async (err: unknown): Promise<never> => {
    await send({ type: 'failed', message: errorMessage(err) });
    process.exit(1);
  };
  // Told to stop before the listeners are up: stop as soon as they are.
  let stop: () => void = () => {
    stopRequested = true;
  };
  let stopRequested = false;
  let stopping = false;
  let onReload: () => void = () => undefined;
  parent.onMessage((m: ToWorker) => {
    if (m.type === 'stop') stop();
    else if (m.type === 'reload') onReload();
  });
  process.on('SIGTERM', () => stop());
  process.on('SIGINT', () => stop());
  // The primary reloads on SIGHUP, then tells the workers; a SIGHUP to the whole group is not ours.
  process.on('SIGHUP', () => undefined);
  // Without its primary a worker has nothing to do: exit at once, whatever it was doing.
  parent.onGone(() => {
    process.stderr.write(`postern/smtpd[${process.pid}]: the primary process is gone; exiting\n`);
    process.exit(1);
  });
  const channel = new WorkerChannel(parent.channel);
  channel.on('close', () => {
    if (!stopping) process.exit(1);
  });

  let config: ResolvedMtaConfig;
  try {
    config = resolveMtaConfig(await loadServeConfig(options.config));
  } catch (err) {
    return failed(err);
  }
  const { params } = config;
  const lines = logLineSink(
    { params, format: options.logFormat ?? 'postfix', level: options.logLevel ?? 'info' },
    (text) => channel.log(text),
  );
  const logger = new Logger([lines.sink]);

  const fatal = (what: string, err: unknown): void => {
    const text = errorMessage(err);
    channel.log(lines.fatalLine(`${what}: ${text}`, 'smtpd'));
    process.stderr.write(`postern/smtpd: fatal: ${what}: ${(err as Error)?.stack ?? text}\n`);
    setTimeout(() => process.exit(70), FATAL_FLUSH_MS).unref();
    void channel.end().finally(() => process.exit(70));
  };
  process.on('uncaughtException', (err) => fatal('uncaught exception', err));
  process.on('unhandledRejection', (reason) => fatal('unhandled rejection', reason));

  const clock = systemClock;
  const rewriter = new Rewriter({ params, logger });
  const cleanup = new Cleanup({
    params,
    store: new ForwardingQueueStore(channel),
    rewriter,
    queueIds: new QueueIdGenerator(process.env[QUEUE_ID_TAG_ENV]),
    clock,
    logger,
    ...(rewriter.tables.virtualAliasMaps
      ? { tables: { virtualAliasMaps: rewriter.tables.virtualAliasMaps } }
      : {}),
  });
  const smtpd = new ListenerGroup(
    new TcpNetwork(logger.for('master')),
    config.smtpd,
    smtpdReceiverBuilder({ params, submission: cleanup, rewriter, logger, clock }),
  );
  try {
    await smtpd.start();
  } catch (err) {
    return failed(err);
  }

  const boundNow = () => smtpd.bound.map((b) => ({ host: b.host, port: b.port }));
  stop = (): void => {
    if (stopping) return;
    stopping = true;
    void smtpd
      .close()
      .then(() => cleanup.close())
      .catch((err: unknown) => logger.error('master', undefined, errorMessage(err)))
      .then(() => channel.end())
      .finally(() => process.exit(0));
  };
  let reloading: Promise<void> = Promise.resolve();
  const reload = async (): Promise<void> => {
    try {
      const next = resolveMtaConfig(await loadServeConfig(options.config, { fresh: true }));
      const plan = planReload(config, next);
      await smtpd.replace(plan.smtpd);
      config = plan.config;
    } catch (err) {
      logger.error('master', undefined, `reload failed: ${errorMessage(err)}`);
    }
    await send({ type: 'reloaded', bound: boundNow() });
  };
  onReload = () => {
    if (!stopping) reloading = reloading.then(reload);
  };
  await send({ type: 'ready', bound: boundNow() });
  if (stopRequested) stop();
  // The primary's metrics show the sessions of every worker.
  let reported = '';
  setInterval(() => {
    const counts = config.smtpd.map((_, i) => smtpd.sessionCount(i));
    const now = counts.join(',');
    if (now === reported) return;
    reported = now;
    void send({ type: 'sessions', counts });
  }, SESSIONS_MS).unref();
}
