/**
 * Command delivery: runs one external command with the message on its standard input,
 * under a time limit, and turns how it ended into a delivery outcome.
 *
 * Postfix counterpart: global/pipe_command.c (shared by pipe(8) and local(8)
 * `|command` deliveries), util/exec_command.c (a shell only when the command text has
 * shell metacharacters or starts with a shell built-in), global/sys_exits.c.
 *
 * The outcome follows Postfix's order (pipe(8)):
 * 1. time limit exceeded → the process group is killed, bounce 5.3.0;
 * 2. killed by a signal → defer 4.3.0;
 * 3. non-zero exit and output that starts with `D.S.N text` → that status wins
 *    (4.x.x defers, 5.x.x bounces);
 * 4. exit 64..78 → the sysexits table (EX_TEMPFAIL and EX_OSERR defer);
 * 5. any other non-zero exit → bounce 5.3.0;
 * 6. exit 0 → delivered, unless writing the message failed other than with EPIPE.
 * The command's output (stdout and stderr, first 4096 bytes, made printable) is the
 * diagnostic text.
 *
 * Does not: build argv from addresses (pipe-argv.ts does, one argv element per value,
 * never a shell), choose the user (the caller passes uid/gid), or transform the message
 * (mail-copy.ts).
 *
 * SECURITY: the child gets a clean environment (PATH reset, only the variables the
 * caller gives plus `exportEnvironment`), runs in its own process group so a time-limit
 * kill reaches its children, and never sees Postern's descriptors. A shell is used only
 * by `shellArgv()` for command text from an operator's alias, include or .forward file
 * — never for text from an address — and such a command is refused when one of its
 * `$VARIABLES` from an address or the client starts a word with `-`
 * (optionLikeShellValue()), since the shell would hand it to a program as an option.
 *
 * @module
 */

import { constants as osConstants } from 'node:os';
import { builtin } from '../builtin.js';
import { systemClock } from '../clock.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Clock, RecipientStatus } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { sysexit } from './sysexits.js';

/** Most output bytes kept for the diagnostic (pipe_command.c). */
export const COMMAND_OUTPUT_LIMIT = 4096;

/** Postfix's `_PATH_DEFPATH`: the only PATH a command sees. */
export const COMMAND_PATH = '/usr/bin:/bin';

/** exec_command.c: text with any of these runs under `/bin/sh -c`. */
const SHELL_META = /[!"#$%&'()*;<>?[\\\]`{|}~\n\r]/;

/** Commands only a shell can run (POSIX special built-ins and friends). */
const SHELL_BUILTINS = new Set([
  '.',
  ':',
  'alias',
  'break',
  'cd',
  'continue',
  'eval',
  'exec',
  'exit',
  'export',
  'read',
  'readonly',
  'return',
  'set',
  'shift',
  'times',
  'trap',
  'ulimit',
  'umask',
  'unset',
  'wait',
]);

/** Postfix `command_expansion_filter` default. */
export const DEFAULT_EXPANSION_FILTER =
  '1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** How to run one command. */
export interface CommandOptions {
  /** Program and arguments; executed directly, never through a shell. */
  readonly argv: readonly string[];
  /** The whole environment of the child (see `commandEnvironment`). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Run as this user/group (only when Postern runs as root). */
  readonly uid?: number;
  readonly gid?: number;
  /** Kill the process group after this many ms. */
  readonly timeLimitMs: number;
  /** The message as the command should read it. */
  readonly input: AsyncIterable<Buffer>;
  readonly signal?: AbortSignal;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** How the command ended. */
export type CommandTermination =
  | { readonly kind: 'exit'; readonly status: number }
  | { readonly kind: 'signal'; readonly signal: number; readonly name: string }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'spawn-error'; readonly code: string; readonly message: string }
  | { readonly kind: 'aborted' };

/** Everything evaluation needs. */
export interface CommandRun {
  readonly termination: CommandTermination;
  /** Output, first 4096 bytes, made printable and trimmed. */
  readonly output: string;
  /** Writing the message failed with something other than EPIPE. */
  readonly writeError?: string;
  /** Reading the queued message failed (the mail defers). */
  readonly readError?: string;
}

/** A delivery outcome without `relay`. */
export interface CommandOutcome {
  readonly status: RecipientStatus;
  readonly reply: SmtpReply;
}

/** tabs and newlines → space, other non-printables → `_` (pipe_command.c). */
export function printableOutput(bytes: Buffer): string {
  return bytes
    .toString('utf8')
    .replace(/[\t\r\n]/g, ' ')
    .replace(/[\x00-\x1f\x7f\ufffd]/g, '_')
    .trim();
}

/**
 * Runs the command. Never rejects for anything the command does; rejects only if
 * `options.input` throws something other than a read error (for example a caller's
 * deliberate abort), after killing the child.
 */
export function runCommand(options: CommandOptions): Promise<CommandRun> {
  const clock = options.clock ?? systemClock;
  return new Promise<CommandRun>((resolve) => {
    const [program, ...args] = options.argv;
    if (program === undefined || program === '') {
      resolve({
        termination: { kind: 'spawn-error', code: 'EINVAL', message: 'empty command' },
        output: '',
      });
      return;
    }
    const output: Buffer[] = [];
    let kept = 0;
    let timedOut = false;
    let aborted = false;
    let writeError: string | undefined;
    let readError: string | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let done = false;

    const child = builtin('child_process').spawn(program, args, {
      env: { ...options.env },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });

    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = clock.setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeLimitMs);
    const onAbort = (): void => {
      aborted = true;
      killGroup();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (run: CommandRun): void => {
      if (done) return;
      done = true;
      timer.cancel();
      options.signal?.removeEventListener('abort', onAbort);
      resolve(run);
    };
    const collect = (chunk: Buffer): void => {
      if (kept >= COMMAND_OUTPUT_LIMIT) return;
      const part = chunk.subarray(0, COMMAND_OUTPUT_LIMIT - kept);
      output.push(part);
      kept += part.length;
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && writeError === undefined) writeError = err.message;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      // spawn failure (ENOENT, EACCES): no 'exit' follows.
      if (child.pid === undefined) {
        finish({
          termination: { kind: 'spawn-error', code: err.code ?? 'EIO', message: err.message },
          output: '',
        });
      }
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
    });
    child.on('close', (code, signal) => {
      const end = exit ?? { code, signal };
      const text = printableOutput(Buffer.concat(output));
      const extra = {
        ...(writeError === undefined ? {} : { writeError }),
        ...(readError === undefined ? {} : { readError }),
      };
      if (timedOut) finish({ termination: { kind: 'timeout' }, output: text, ...extra });
      else if (aborted) finish({ termination: { kind: 'aborted' }, output: text, ...extra });
      else if (end.signal) {
        const num = osConstants.signals[end.signal] ?? 0;
        finish({
          termination: { kind: 'signal', signal: num, name: end.signal },
          output: text,
          ...extra,
        });
      } else
        finish({ termination: { kind: 'exit', status: end.code ?? 0 }, output: text, ...extra });
    });

    void (async () => {
      if (child.pid === undefined) return;
      try {
        for await (const chunk of options.input) {
          if (child.stdin.destroyed || writeError !== undefined) break;
          if (!child.stdin.write(chunk)) {
            await new Promise<void>((r) => {
              const go = (): void => {
                child.stdin.off('drain', go);
                child.stdin.off('close', go);
                r();
              };
              child.stdin.on('drain', go);
              child.stdin.on('close', go);
            });
          }
        }
        child.stdin.end();
      } catch (err) {
        readError = errorMessage(err);
        killGroup();
        child.stdin.destroy();
      }
    })();
  });
}

function outcome(enhanced: string, text: string): CommandOutcome {
  const temporary = enhanced.startsWith('4');
  return {
    status: temporary ? 'deferred' : 'bounced',
    reply: new SmtpReply(temporary ? 450 : 550, enhanced, text),
  };
}

/** A leading `D.S.N` in the output (pipe_command.c: dsn_valid on the first word). */
const OUTPUT_DSN = /^([45])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/;

/**
 * The delivery outcome of a run, in Postfix's order. `label` names the command in
 * texts (`Command`, or the alias's command text).
 */
export function evaluateCommand(run: CommandRun, label = 'Command'): CommandOutcome {
  const out = run.output;
  const withOutput = (text: string): string => (out === '' ? text : `${text}: ${out}`);
  const t = run.termination;
  if (run.readError !== undefined) return outcome('4.3.0', run.readError);
  switch (t.kind) {
    case 'timeout':
      return outcome('5.3.0', withOutput(`${label} time limit exceeded`));
    case 'aborted':
      return outcome('4.3.0', 'delivery interrupted; will retry');
    case 'signal':
      return outcome('4.3.0', withOutput(`${label} died with signal ${t.signal}`));
    case 'spawn-error': {
      const temporary = t.code === 'EAGAIN' || t.code === 'ENOMEM' || t.code === 'EMFILE';
      return outcome(temporary ? '4.3.0' : '5.3.0', `${label} cannot be run: ${t.message}`);
    }
    case 'exit': {
      if (t.status === 0) {
        if (run.writeError !== undefined) {
          return outcome('5.3.0', `${label} failed to read the message: ${run.writeError}`);
        }
        return {
          status: 'sent',
          reply: new SmtpReply(250, '2.0.0', withOutput('delivered via command')),
        };
      }
      const dsn = OUTPUT_DSN.exec(out);
      if (dsn) {
        const rest = out.slice(dsn[0].length).trim();
        return outcome(`${dsn[1]}.${dsn[2]}.${dsn[3]}`, rest || `${label} failed`);
      }
      const sx = sysexit(t.status);
      if (sx) return outcome(sx.enhanced, out === '' ? sx.text : out);
      return outcome('5.3.0', withOutput(`${label} died with status ${t.status}`));
    }
  }
}

/**
 * argv for command text from an alias, include or .forward file, or `mailboxCommand`:
 * split on white space and executed directly, or `/bin/sh -c text` when the text holds
 * shell metacharacters (exec_command.c). Never call this with text from an address.
 */
export function shellArgv(command: string): string[] {
  const text = command.trim();
  const words = text.split(/[ \t]+/).filter((w) => w !== '');
  if (SHELL_META.test(text) || SHELL_BUILTINS.has(words[0] ?? '')) return ['/bin/sh', '-c', text];
  return words;
}

/** Where a value that must not start an option came from; it picks the DSN status. */
export type OptionLikeSource = 'sender' | 'recipient' | 'client';

/**
 * The bounce for a value that would reach a command as an option: 5.1.7 for the sender,
 * 5.1.3 for a recipient (Postfix's statuses for a bad sender or recipient address),
 * 5.3.0 for what the client sent (HELO name, ENVID, SASL login). Retrying cannot help.
 */
export function optionLikeOutcome(source: OptionLikeSource, text: string): CommandOutcome {
  const enhanced = source === 'sender' ? '5.1.7' : source === 'recipient' ? '5.1.3' : '5.3.0';
  return { status: 'bounced', reply: new SmtpReply(550, enhanced, text) };
}

/** The environment variables local(8) fills from addresses and from the client. */
const UNTRUSTED_VARIABLES: Readonly<Record<string, OptionLikeSource>> = {
  SENDER: 'sender',
  RECIPIENT: 'recipient',
  ORIGINAL_RECIPIENT: 'recipient',
  USER: 'recipient',
  LOGNAME: 'recipient',
  LOCAL: 'recipient',
  EXTENSION: 'recipient',
  DOMAIN: 'recipient',
  ENVID: 'client',
  CLIENT_HOSTNAME: 'client',
  CLIENT_HELO: 'client',
  SASL_USERNAME: 'client',
};

/**
 * For a command that runs under `/bin/sh -c` (shellArgv()): the first variable from
 * UNTRUSTED_VARIABLES that starts a shell word (`$SENDER`, `"${EXTENSION}"` after a
 * blank, `;`, `|`, `&` or `(`) and whose value starts with `-`, which the shell would
 * hand to a program as an option. Commands run without a shell expand nothing.
 *
 * @example
 * ```ts
 * optionLikeShellValue(['/bin/sh', '-c', 'procmail -a "$EXTENSION"'], { EXTENSION: '-x' });
 * // { name: 'EXTENSION', value: '-x', source: 'recipient' }
 * ```
 */
export function optionLikeShellValue(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
): { name: string; value: string; source: OptionLikeSource } | undefined {
  if (argv.length !== 3 || argv[0] !== '/bin/sh' || argv[1] !== '-c') return undefined;
  const text = argv[2]!;
  for (const m of text.matchAll(/(?:^|[\s;|&(])["']?\$\{?([A-Z_]+)/g)) {
    const name = m[1]!;
    const source = UNTRUSTED_VARIABLES[name];
    const value = env[name];
    if (source !== undefined && value?.startsWith('-')) return { name, value, source };
  }
  return undefined;
}

/**
 * The bounce for a shell command that would get an option from an address or the
 * client (optionLikeShellValue()), or undefined when it may run.
 */
export function optionLikeShellRefusal(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
): CommandOutcome | undefined {
  const found = optionLikeShellValue(argv, env);
  if (!found) return undefined;
  return optionLikeOutcome(
    found.source,
    `$${found.name} would give the command an argument starting with "-" (${found.value.slice(0, 100)}), which it could take for an option; the command was not run`,
  );
}

/**
 * A clean environment: PATH reset, the `exported` variables copied from Postern's own
 * environment, and `vars` with every character outside `filter` replaced by `_`
 * (Postfix `command_expansion_filter`). Undefined values are left out.
 */
export function commandEnvironment(
  vars: Readonly<Record<string, string | undefined>>,
  options: { readonly filter?: string; readonly exported?: readonly string[] } = {},
): Record<string, string> {
  const filter = new Set(options.filter ?? DEFAULT_EXPANSION_FILTER);
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of options.exported ?? ['TZ', 'MAIL_CONFIG', 'LANG']) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  env.PATH = COMMAND_PATH;
  for (const [name, value] of Object.entries(vars)) {
    if (value === undefined) continue;
    let clean = '';
    for (const ch of value) clean += filter.has(ch) ? ch : '_';
    env[name] = clean;
  }
  return env;
}
