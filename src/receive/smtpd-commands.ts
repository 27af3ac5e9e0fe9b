/**
 * The SMTP server's command table: every command smtpd understands, with flags, and
 * the recognisers for commands that end a session on sight.
 *
 * Postfix counterpart: smtpd.c `smtpd_cmd_table` (SMTPD_CMD_FLAG_LIMIT,
 * SMTPD_CMD_FLAG_LAST), `smtpd_forbidden_commands` (default
 * `CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}`) and is_header(), which together make
 * smtpd hang up on a web browser or on a message body sent as commands.
 *
 * Dispatch goes through this table and a switch over the closed `CommandName` union in
 * the session — never by building a method name from client input.
 *
 * Does not: run commands (smtpd-session.ts), parse arguments (address/address.ts,
 * smtpd-esmtp-params.ts).
 *
 * STANDARDS: RFC 5321 section 4.1 (commands), RFC 2920 section 3.1 (commands that end a
 * pipelined group).
 *
 * @module
 */

/** Commands this server implements. */
export type CommandName =
  | 'HELO'
  | 'EHLO'
  | 'MAIL'
  | 'RCPT'
  | 'DATA'
  | 'RSET'
  | 'NOOP'
  | 'VRFY'
  | 'QUIT'
  | 'HELP'
  | 'BDAT'
  | 'STARTTLS'
  | 'AUTH'
  | 'XCLIENT';

/** One row of the command table. */
export interface CommandSpec {
  readonly name: CommandName;
  /** The name in lower case, as the `disconnect from` summary counts it. */
  readonly lowerName: string;
  /**
   * Counts toward `smtpd_junk_command_limit` (Postfix SMTPD_CMD_FLAG_LIMIT): a client
   * that sends many of these without delivering mail is wasting the server's time.
   */
  readonly junk: boolean;
  /** RFC 2920: the command ends a pipelined group (the client waits for its reply). */
  readonly last: boolean;
  /**
   * Input after this command, before its reply, is a protocol violation that Postfix
   * 3.9's `smtpd_forbid_unauth_pipelining` punishes (HELO, EHLO, DATA, NOOP, VRFY).
   */
  readonly syncCheck: boolean;
}

const ROWS: readonly Omit<CommandSpec, 'lowerName'>[] = [
  { name: 'HELO', junk: true, last: true, syncCheck: true },
  { name: 'EHLO', junk: true, last: true, syncCheck: true },
  { name: 'XCLIENT', junk: false, last: true, syncCheck: false },
  { name: 'STARTTLS', junk: false, last: true, syncCheck: false },
  { name: 'AUTH', junk: false, last: true, syncCheck: false },
  { name: 'MAIL', junk: false, last: false, syncCheck: false },
  { name: 'RCPT', junk: false, last: false, syncCheck: false },
  { name: 'DATA', junk: false, last: true, syncCheck: true },
  { name: 'BDAT', junk: false, last: false, syncCheck: false },
  { name: 'RSET', junk: true, last: false, syncCheck: false },
  { name: 'NOOP', junk: true, last: true, syncCheck: true },
  { name: 'VRFY', junk: true, last: true, syncCheck: true },
  { name: 'QUIT', junk: false, last: true, syncCheck: false },
  { name: 'HELP', junk: true, last: true, syncCheck: false },
];

const TABLE: readonly CommandSpec[] = ROWS.map((c) => ({ ...c, lowerName: c.name.toLowerCase() }));

const BY_NAME: ReadonlyMap<string, CommandSpec> = new Map(TABLE.map((c) => [c.name, c]));

/** The command table, in Postfix's order. */
export const COMMANDS: readonly CommandSpec[] = TABLE;

/** The row for `verb` (any case), or undefined for an unknown command. */
export function lookupCommand(verb: string): CommandSpec | undefined {
  // Verbs are short; toUpperCase on an 8-letter string is cheaper than a case-folding map.
  if (verb.length > 8) return undefined;
  // Clients nearly always send verbs in upper case: only other spellings are folded.
  return BY_NAME.get(verb) ?? BY_NAME.get(verb.toUpperCase());
}

/** A command line split into its verb and the rest. */
export interface ParsedCommand {
  /** The first word, as sent. */
  readonly verb: string;
  /** Everything after the verb and the blanks that follow it; '' if nothing. */
  readonly args: string;
}

/**
 * Splits a command line at the first blank. Leading blanks are skipped (as Postfix's
 * smtpd_token does); trailing blanks are removed from the arguments.
 */
export function splitCommand(line: string): ParsedCommand {
  let i = 0;
  while (i < line.length && (line.charCodeAt(i) === 0x20 || line.charCodeAt(i) === 0x09)) i++;
  let j = i;
  while (j < line.length && line.charCodeAt(j) !== 0x20 && line.charCodeAt(j) !== 0x09) j++;
  const verb = line.slice(i, j);
  let k = j;
  while (k < line.length && (line.charCodeAt(k) === 0x20 || line.charCodeAt(k) === 0x09)) k++;
  let end = line.length;
  while (end > k && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
  return { verb, args: line.slice(k, end) };
}

/** Postfix's default `smtpd_forbidden_commands` words. */
const FORBIDDEN_WORDS: ReadonlySet<string> = new Set(['CONNECT', 'GET', 'POST']);

/** A header label: printable ASCII other than `:`, then `:` (Postfix is_header()). */
const HEADER_LABEL = /^[\x21-\x39\x3b-\x7e]+:/;

/**
 * Whether an unknown command means the peer is not an SMTP client at all: an HTTP
 * method (`CONNECT`, `GET`, `POST`), a word that does not start with a letter (Postfix's
 * `regexp:{{/^[^A-Z]/ Bogus}}`, case-insensitive), or a message header (`Subject:`),
 * which is what a client that lost DATA synchronisation sends. The session answers
 * `221 2.7.0 Error: I can break rules, too. Goodbye.` and disconnects.
 */
export function isForbiddenCommand(verb: string): boolean {
  if (verb === '') return false;
  const c = verb.charCodeAt(0);
  const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  if (!letter) return true;
  if (FORBIDDEN_WORDS.has(verb.toUpperCase())) return true;
  return HEADER_LABEL.test(verb);
}
