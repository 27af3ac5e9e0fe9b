/**
 * Logger: Postfix-format structured log events.
 *
 * Every component logs through one Logger; each event is published to the sinks given
 * to it and on the `postern:log` diagnostics channel. `formatLogLine()` (log-format.ts)
 * renders an event as Postfix's `maillog_file` does (`Dec 06 09:05:07 mx
 * postern/qmgr[4211]: 4Xk...: from=<a@b>, size=312, nrcpt=1 (queue active)`), so an
 * operator's Postfix habits and tools (grep a queue ID, pflogsumm, fail2ban) carry over.
 * A child logger (`logger.child({ syslogName })`) tags its events with another
 * `syslog_name`, as a master.cf listener's `-o syslog_name=postfix/submission` does.
 *
 * Postfix counterpart: msg(3), log_adhoc.c (the `to=..., relay=..., delay=...,
 * dsn=..., status=...` line).
 *
 * SECURITY: event text is made printable before it is written, so a client string can
 * never forge a log line.
 *
 * @module
 */

import diagnostics from 'node:diagnostics_channel';
import { printable } from './smtp-reply.js';
import type { LogEvent, LogLevel, LogSink, QueueId } from './types.js';

export { formatLogJson, formatLogLine, type LogLineOptions } from './log-format.js';

const channel = diagnostics.channel('postern:log');

type Fields = LogEvent['fields'];
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The log every component writes to: Postfix-format structured events handed to sinks and
 * published on the `postern:log` diagnostics channel. Postfix counterpart: msg(3).
 *
 * @example
 * ```ts
 * const logger = new Logger([(event) => process.stderr.write(`${formatLogLine(event)}\n`)]);
 * logger.info('smtpd', undefined, 'connect from unknown[192.0.2.1]');
 * const mta = new Mta({}, { logger });
 * ```
 */
export class Logger {
  readonly #sinks: LogSink[];
  readonly #now: () => number;
  /** The logger whose sinks a child's events go to (itself for a root logger). */
  #root: Logger = this;
  #syslogName: string | undefined;

  constructor(sinks: readonly LogSink[] = [], now: () => number = Date.now) {
    this.#sinks = [...sinks];
    this.#now = now;
  }

  /** Adds a sink (a child's sink goes to its root); returns a function that removes it. */
  addSink(sink: LogSink): () => void {
    const sinks = this.#root.#sinks;
    sinks.push(sink);
    return () => {
      const i = sinks.indexOf(sink);
      if (i >= 0) sinks.splice(i, 1);
    };
  }

  /**
   * A logger writing to the same sinks whose events carry `syslogName` (Postfix's
   * `syslog_name`, e.g. `postern/submission`): the line then names the program
   * `postern/submission/smtpd`.
   */
  child(tags: { readonly syslogName?: string }): Logger {
    const child = new Logger([], this.#now);
    child.#root = this.#root;
    child.#syslogName = tags.syslogName ?? this.#syslogName;
    return child;
  }

  /** Publishes one event at `level`. */
  log(
    level: LogLevel,
    component: string,
    queueId: QueueId | undefined,
    text: string,
    fields?: Fields,
  ): void {
    // Optional members are set only when present, without a spread's temporary objects:
    // a server logs several events per message.
    const event: Mutable<LogEvent> = {
      time: this.#now(),
      level,
      component,
      text: printable(text, '?'),
    };
    if (queueId) event.queueId = queueId;
    if (fields) event.fields = fields;
    if (this.#syslogName !== undefined) event.syslogName = this.#syslogName;
    if (channel.hasSubscribers) channel.publish(event);
    for (const sink of this.#root.#sinks) {
      try {
        sink(event);
      } catch {
        // A failing sink must not break mail flow.
      }
    }
  }

  /** Logs at `info`. */
  info(component: string, queueId: QueueId | undefined, text: string, fields?: Fields): void {
    this.log('info', component, queueId, text, fields);
  }

  /** Logs at `warning` (rendered with `warning: `). */
  warning(component: string, queueId: QueueId | undefined, text: string, fields?: Fields): void {
    this.log('warning', component, queueId, text, fields);
  }

  /** Logs at `error`. */
  error(component: string, queueId: QueueId | undefined, text: string, fields?: Fields): void {
    this.log('error', component, queueId, text, fields);
  }

  /** Logs at `debug`. */
  debug(component: string, queueId: QueueId | undefined, text: string, fields?: Fields): void {
    this.log('debug', component, queueId, text, fields);
  }

  /** A component-bound view, for classes that log under one program name. */
  for(component: string): ComponentLogger {
    return {
      info: (queueId, text, fields) => this.info(component, queueId, text, fields),
      warning: (queueId, text, fields) => this.warning(component, queueId, text, fields),
      error: (queueId, text, fields) => this.error(component, queueId, text, fields),
      debug: (queueId, text, fields) => this.debug(component, queueId, text, fields),
    };
  }
}

/**
 * Logging bound to one component name.
 *
 * @example
 * ```ts
 * const log: ComponentLogger = logger.for('webhook');
 * log.info(queueId, 'to=<bob@example.com>, status=sent');
 * ```
 */
export interface ComponentLogger {
  /** Logs at `info`. */
  info(queueId: QueueId | undefined, text: string, fields?: Fields): void;
  /** Logs at `warning`. */
  warning(queueId: QueueId | undefined, text: string, fields?: Fields): void;
  /** Logs at `error`. */
  error(queueId: QueueId | undefined, text: string, fields?: Fields): void;
  /** Logs at `debug`. */
  debug(queueId: QueueId | undefined, text: string, fields?: Fields): void;
}

/**
 * A logger that drops everything (the default for bare components).
 *
 * @example
 * ```ts
 * const store = new FileQueueStore({ directory: './var/queue', logger: silentLogger });
 * ```
 */
export const silentLogger: Logger = new Logger();

/**
 * Postfix's `delay=` value: seconds with two decimals below 10 s, fewer above.
 *
 * @example
 * ```ts
 * formatDelay(20); // '0.02'
 * ```
 */
export function formatDelay(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s < 10 ? s.toFixed(2) : s < 100 ? s.toFixed(1) : s.toFixed(0);
}
