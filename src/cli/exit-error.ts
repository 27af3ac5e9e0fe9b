/**
 * How the `postern` command reports an error it cannot go on after: one line on
 * stderr and a sysexits(3) code for what an operator can fix (a config mistake, a
 * locked queue, a database that is down, a port in use); the stack trace only for
 * what is a bug.
 *
 * Postfix counterpart: msg_fatal() in the commands (`postqueue: fatal: ...`, one line,
 * exit status from sys_exits.h: EX_CONFIG 78, EX_TEMPFAIL 75, EX_UNAVAILABLE 69,
 * EX_SOFTWARE 70).
 *
 * @module
 */

import { ConfigError, PosternError } from '../errors.js';

/**
 * What to print and the exit code.
 *
 * @example
 * ```ts
 * const { line, code } = exitFor(err);
 * process.stderr.write(`postern: ${line}\n`);
 * process.exit(code);
 * ```
 */
export interface ExitReport {
  /** The text after `postern: ` (one line, or a stack trace for a bug). */
  readonly line: string;
  /** The sysexits code. */
  readonly code: number;
  /** Whether the error is an expected one (no stack trace). */
  readonly expected: boolean;
}

/** System call failures an operator fixes outside Postern (a service down, a permission). */
const TEMPORARY = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EPIPE',
]);
/** Permissions (EX_NOPERM 77) and files or disks that fail (EX_IOERR 74). */
const NO_PERMISSION = new Set(['EACCES', 'EPERM']);
const IO = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EROFS', 'ENOSPC', 'EDQUOT', 'EIO']);

/**
 * Classifies `err`: Postern's own errors and failed system calls are expected (one
 * line); anything else is a bug (stack, exit 70).
 *
 * @example
 * ```ts
 * exitFor(new ConfigError('mynetworks: "x" is not a network', 'mynetworks')).code; // 78
 * ```
 */
export function exitFor(err: unknown): ExitReport {
  if (PosternError.is(err)) {
    if (err instanceof ConfigError && err.problems.length > 1) {
      // Every problem on the one line, each set apart, so that all are fixed in one go.
      const each = err.problems.map((p) => oneLine(p.message)).join('; ');
      return {
        line: `configuration error: ${err.problems.length} problems: ${each}`,
        code: 78,
        expected: true,
      };
    }
    if (err.code === 'POSTERN_ERR_CONFIG')
      return { line: `configuration error: ${oneLine(err.message)}`, code: 78, expected: true };
    return { line: oneLine(err.message), code: 75, expected: true };
  }
  if (err instanceof Error) {
    if (err.message.startsWith('cannot listen on '))
      return { line: oneLine(err.message), code: 69, expected: true };
    const code = (err as NodeJS.ErrnoException).code;
    if (code && TEMPORARY.has(code))
      return {
        line: `${oneLine(err.message)} (a service Postern needs is not reachable: check that it runs and the address in the config)`,
        code: 75,
        expected: true,
      };
    if (code && NO_PERMISSION.has(code))
      return { line: oneLine(err.message), code: 77, expected: true };
    if (code && IO.has(code)) return { line: oneLine(err.message), code: 74, expected: true };
  }
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { line: `fatal: ${text}`, code: 70, expected: false };
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}
