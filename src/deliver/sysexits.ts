/**
 * The sysexits(3) table: what a command's exit status 64..78 means for delivery.
 *
 * Postfix counterpart: global/sys_exits.c (sys_exits_detail). Each code maps to an
 * RFC 3463 status and whether the mail defers or bounces: only EX_OSERR and EX_TEMPFAIL
 * are temporary. Shared by pipe(8) and local(8) `|command` deliveries.
 *
 * Does not: decide what other exit statuses mean (command-delivery.ts does).
 *
 * STANDARDS: sysexits.h (BSD), RFC 3463.
 *
 * @module
 */

/**
 * One sysexits entry.
 *
 * @example
 * ```ts
 * const entry: SysexitEntry | undefined = sysexit(67); // { name: 'EX_NOUSER', enhanced: '5.1.1', ... }
 * ```
 */
export interface SysexitEntry {
  /** The symbolic name (`EX_TEMPFAIL`). */
  readonly name: string;
  /** RFC 3463 status to report. */
  readonly enhanced: string;
  /** Human-readable meaning (Postfix's text). */
  readonly text: string;
  /** Whether the mail is deferred (true) or bounced (false). */
  readonly temporary: boolean;
}

const TABLE: ReadonlyMap<number, SysexitEntry> = new Map([
  [64, { name: 'EX_USAGE', enhanced: '5.3.0', text: 'command line usage error', temporary: false }],
  [65, { name: 'EX_DATAERR', enhanced: '5.6.0', text: 'data format error', temporary: false }],
  [66, { name: 'EX_NOINPUT', enhanced: '5.3.0', text: 'cannot open input', temporary: false }],
  [67, { name: 'EX_NOUSER', enhanced: '5.1.1', text: 'user unknown', temporary: false }],
  [68, { name: 'EX_NOHOST', enhanced: '5.1.2', text: 'host name unknown', temporary: false }],
  [
    69,
    { name: 'EX_UNAVAILABLE', enhanced: '5.3.0', text: 'service unavailable', temporary: false },
  ],
  [
    70,
    { name: 'EX_SOFTWARE', enhanced: '5.3.0', text: 'internal software error', temporary: false },
  ],
  [71, { name: 'EX_OSERR', enhanced: '4.3.0', text: 'system resource problem', temporary: true }],
  [
    72,
    { name: 'EX_OSFILE', enhanced: '5.3.0', text: 'critical OS file missing', temporary: false },
  ],
  [
    73,
    {
      name: 'EX_CANTCREAT',
      enhanced: '5.2.0',
      text: "can't create user output file",
      temporary: false,
    },
  ],
  [74, { name: 'EX_IOERR', enhanced: '5.3.0', text: 'input/output error', temporary: false }],
  [75, { name: 'EX_TEMPFAIL', enhanced: '4.3.0', text: 'temporary failure', temporary: true }],
  [
    76,
    { name: 'EX_PROTOCOL', enhanced: '5.5.0', text: 'remote error in protocol', temporary: false },
  ],
  [77, { name: 'EX_NOPERM', enhanced: '5.7.0', text: 'permission denied', temporary: false }],
  [
    78,
    { name: 'EX_CONFIG', enhanced: '5.3.5', text: 'local configuration error', temporary: false },
  ],
]);

/**
 * The sysexits entry for `status`, or undefined outside 64..78.
 *
 * @example
 * ```ts
 * sysexit(75)?.temporary; // true: EX_TEMPFAIL defers
 * sysexit(0); // undefined
 * ```
 */
export function sysexit(status: number): SysexitEntry | undefined {
  return TABLE.get(status);
}

/** EX_TEMPFAIL: what a command exits with to ask for a later retry. */
export const EX_TEMPFAIL = 75;
