/**
 * The log output of `postern serve`: events at or above a level, rendered as Postfix's
 * syslog lines (or JSON) and written through a LogWriter to standard output or to
 * `maillogFile`.
 *
 * Postfix counterpart: `maillog_file` with postlogd(8); `syslog_name` and the host name
 * of the line come from the main parameters.
 *
 * @module
 */

import type { CoreParameters } from '../config/core-parameters.js';
import { formatLogJson, formatLogLine, type LogLineOptions } from '../log-format.js';
import type { LogEvent, LogLevel, LogSink } from '../types.js';
import { LogWriter } from './log-writer.js';

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };

/**
 * How `postern serve` logs.
 *
 * @example
 * ```ts
 * const out = openLogOutput({ params: mta.params, format: 'postfix', level: 'info' } satisfies LogOutputOptions);
 * ```
 */
export interface LogOutputOptions {
  /** The main parameters: `myhostname`, `syslogName`, `maillogFile`. */
  readonly params: Pick<CoreParameters, 'myhostname' | 'syslogName' | 'maillogFile'>;
  /** `postfix`: syslog lines; `json`: one JSON object per event. */
  readonly format: 'postfix' | 'json';
  /** The least severe level written. */
  readonly level: LogLevel;
  /** Most bytes queued before the oldest lines are dropped (LogWriter). */
  readonly maxBufferBytes?: number;
}

/**
 * The sink and its writer.
 *
 * @example
 * ```ts
 * logger.addSink(out.sink);
 * process.on('SIGHUP', () => out.writer.reopen());
 * ```
 */
export interface LogOutput {
  /** Give this to the Logger. */
  readonly sink: LogSink;
  /** The writer behind the sink (flush, reopen, close). */
  readonly writer: LogWriter;
  /** Queues a `fatal: ...` line from `master` (the process is about to exit: close the writer). */
  fatal(text: string): void;
}

/** How events are rendered: the main parameters, the format and the least severe level. */
export type LogRenderOptions = Pick<LogOutputOptions, 'params' | 'format' | 'level'>;

/**
 * A sink that renders events at or above the level as lines (each ending in a newline)
 * and hands them to `write`, and the rendering of a `fatal:` line: what openLogOutput
 * writes to its LogWriter, and what an smtpd worker process sends to the primary's.
 *
 * @example
 * ```ts
 * const { sink } = logLineSink({ params, format: 'postfix', level: 'info' }, (text) => channel.send(text));
 * ```
 */
export function logLineSink(
  options: LogRenderOptions,
  write: (text: string) => void,
): { sink: LogSink; fatalLine(text: string, component?: string): string } {
  const { params } = options;
  const line: LogLineOptions = { hostname: params.myhostname, syslogName: params.syslogName };
  const render = options.format === 'json' ? formatLogJson : formatLogLine;
  const min = LEVELS[options.level];
  return {
    sink: (event) => {
      if (LEVELS[event.level] >= min) write(`${render(event, line)}\n`);
    },
    fatalLine: (text, component = 'master') => {
      // Postfix's `fatal:` severity: pflogsumm and logwatch report these lines.
      const event: LogEvent = { time: Date.now(), level: 'error', component, text };
      const rendered =
        options.format === 'json'
          ? render({ ...event, fields: { fatal: true } }, line)
          : formatLogLine({ ...event, level: 'info', text: `fatal: ${text}` }, line);
      return `${rendered}\n`;
    },
  };
}

/** Builds the sink and opens its destination (throws if `maillogFile` cannot be opened). */
export function openLogOutput(options: LogOutputOptions): LogOutput {
  const { params } = options;
  const line: LogLineOptions = { hostname: params.myhostname, syslogName: params.syslogName };
  const render = options.format === 'json' ? formatLogJson : formatLogLine;
  const masterEvent = (level: LogLevel, text: string): LogEvent => ({
    time: Date.now(),
    level,
    component: 'postlogd',
    text,
  });
  const writer = new LogWriter({
    ...(params.maillogFile ? { path: params.maillogFile } : { fd: 1 }),
    ...(options.maxBufferBytes !== undefined ? { maxBufferBytes: options.maxBufferBytes } : {}),
    dropNotice: (n) =>
      `${render(masterEvent('warning', `${n} log records dropped: the log output is not keeping up`), line)}\n`,
  });
  const lines = logLineSink(options, (text) => writer.write(text));
  return {
    sink: lines.sink,
    writer,
    fatal: (text) => writer.write(lines.fatalLine(text)),
  };
}
