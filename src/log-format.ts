/**
 * Log line formats: the syslog line Postfix's `maillog_file` writes, and one JSON
 * object per event.
 *
 * Postfix counterpart: msg_logger.c (the record `Mmm dd hh:mm:ss host name[pid]: text`,
 * severity `warning: `/`error: ` after the program name, the host name's first label
 * only, records cut at 2000 characters) and `syslog_name`, the program name's prefix
 * (`postfix/smtpd`; a master.cf `-o syslog_name=postfix/submission` listener logs as
 * `postfix/submission/smtpd`). Log tools key on exactly this shape: pflogsumm
 * (`--syslog-name=postern`), fail2ban's postfix filter, logwatch.
 *
 * The JSON form carries the same event with its structured fields (log-fields.ts):
 * every event has them, not only deliveries.
 *
 * Does not: write anything (see cli/log-writer.ts), or talk to a syslog daemon.
 *
 * SECURITY: the text was made printable by the Logger; the syslog line is cut at
 * 2000 characters, as Postfix cuts its records, so one hostile string cannot make a
 * line that log tools choke on.
 *
 * @module
 */

import { hostname as osHostname } from 'node:os';
import { logFields } from './log-fields.js';
import type { LogEvent } from './types.js';

/** Postfix's MSG_LOGGER_RECLEN: the longest text of one record. */
const MAX_TEXT = 2000;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * What goes around the event text in a log line.
 *
 * @example
 * ```ts
 * const options: LogLineOptions = { hostname: 'mx.example.com', syslogName: 'postern' };
 * formatLogLine(event, options);
 * ```
 */
export interface LogLineOptions {
  /** The host name; only its first label is written. @default the machine's host name */
  readonly hostname?: string;
  /** Postfix `syslog_name`, when the event does not carry its own. @default 'postern' */
  readonly syslogName?: string;
  /** The process ID in `name[pid]`. @default process.pid */
  readonly pid?: number;
}

let machineLabel: string | undefined;

/** The last host name given and its label: every line of a server names the same host. */
let lastName: string | undefined;
let lastLabel = '';

function hostLabel(name: string | undefined): string {
  if (name === undefined) {
    machineLabel ??= firstLabel(osHostname());
    return machineLabel;
  }
  if (name !== lastName) {
    lastLabel = firstLabel(name);
    lastName = name;
  }
  return lastLabel;
}

function firstLabel(name: string): string {
  const label = name.split('.')[0] ?? '';
  // A host name is never empty or blank in a syslog line: the tools split on spaces.
  return label.replace(/[^\x21-\x7e]/g, '') || 'localhost';
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** The last second stamped, and its text: a busy server logs many lines a second. */
let stampSecond = Number.NaN;
let stampText = '';

/**
 * The syslog time stamp Postfix writes (`strftime("%b %d %H:%M:%S")`, local time).
 *
 * @example
 * ```ts
 * syslogTime(new Date(2026, 11, 6, 9, 5, 7).getTime()); // 'Dec 06 09:05:07'
 * ```
 */
export function syslogTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second === stampSecond) return stampText;
  const d = new Date(ms);
  stampText = `${MONTHS[d.getMonth()]} ${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  stampSecond = second;
  return stampText;
}

/** `postern/smtpd`, or the event's own prefix (`postern/submission/smtpd`). */
function programName(event: LogEvent, options: LogLineOptions): string {
  return `${event.syslogName ?? options.syslogName ?? 'postern'}/${event.component}`;
}

/**
 * Renders an event as Postfix's `maillog_file` line: `Dec 06 09:05:07 mx
 * postern/qmgr[4211]: 4Xk...: from=<a@b>, size=312, nrcpt=1 (queue active)`, with
 * `warning: ` or `error: ` before the queue ID for those levels.
 *
 * @example
 * ```ts
 * formatLogLine({ time: Date.now(), level: 'info', component: 'qmgr', queueId: 'Q1', text: 'removed' },
 *   { hostname: 'mx.example.com', pid: 4211 });
 * // 'Dec 06 09:05:07 mx postern/qmgr[4211]: Q1: removed'
 * ```
 */
export function formatLogLine(event: LogEvent, options: LogLineOptions = NO_OPTIONS): string {
  const level = event.level === 'info' || event.level === 'debug' ? '' : `${event.level}: `;
  const id = event.queueId ? `${event.queueId}: ` : '';
  let text = `${level}${id}${event.text}`;
  if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT);
  return `${syslogTime(event.time)}${linePrefix(event, options)}${text}`;
}

const NO_OPTIONS: LogLineOptions = Object.freeze({});

/** The ` host program[pid]: ` of each program, for each options object (a sink's). */
const prefixes = new WeakMap<LogLineOptions, Map<string, string>>();
/** More programs than a server has: a caller inventing names only makes the cache start over. */
const PREFIXES_MAX = 256;

/** ` mx postern/smtpd[4211]: `: the same few for every line of a server, so made once each. */
function linePrefix(event: LogEvent, options: LogLineOptions): string {
  let byProgram = prefixes.get(options);
  if (byProgram === undefined) {
    byProgram = new Map();
    prefixes.set(options, byProgram);
  }
  const key =
    event.syslogName === undefined ? event.component : `${event.syslogName}\0${event.component}`;
  let prefix = byProgram.get(key);
  if (prefix === undefined) {
    if (byProgram.size >= PREFIXES_MAX) byProgram.clear();
    prefix = ` ${hostLabel(options.hostname)} ${programName(event, options)}[${options.pid ?? process.pid}]: `;
    byProgram.set(key, prefix);
  }
  return prefix;
}

/**
 * Renders an event as one JSON object: the event (time in ISO 8601), the host, program
 * and pid of the syslog line, and `fields`, the facts of the text as data (always
 * present: parsed from Postfix's `name=value` text, with the fields the component gave
 * taking precedence).
 *
 * @example
 * ```ts
 * JSON.parse(formatLogJson(event)).fields.status; // 'sent'
 * ```
 */
export function formatLogJson(event: LogEvent, options: LogLineOptions = {}): string {
  return JSON.stringify({
    time: new Date(event.time).toISOString(),
    host: hostLabel(options.hostname),
    program: programName(event, options),
    pid: options.pid ?? process.pid,
    level: event.level,
    component: event.component,
    ...(event.queueId ? { queueId: event.queueId } : {}),
    text: event.text,
    fields: logFields(event),
  });
}
