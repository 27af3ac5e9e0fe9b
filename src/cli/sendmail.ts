/**
 * `postern sendmail`: the sendmail(1) command line.
 *
 * Postfix counterpart: sendmail(1) with postdrop(1). The message goes into the maildrop
 * directory of the configured queue, so it works whether or not `postern serve` runs;
 * the server's Pickup delivers it once it runs. The configuration is found through
 * `-C FILE`, `--config FILE` or `POSTERN_CONFIG`, the same file `postern serve` reads.
 *
 * Modes: `-bm` (default) reads a message; `-t` also takes recipients from To/Cc/Bcc;
 * `-bp` lists the queue (mailq); `-q` flushes it; `-bi` (newaliases) and `-bv` are
 * answered, not emulated; `-bs` runs an SMTP session on standard input and output whose
 * messages go to the maildrop. `-bv` is not available yet and says so.
 *
 * Before it writes anything, sendmail checks the envelope with the checks Pickup makes
 * (maildrop-checks.ts: recipient count, control characters in `-F` and `-V`, lengths,
 * and for `-f` and the recipients the address rule of every way in, allowMinUser
 * included), so what it accepts Pickup accepts; a message that grows past
 * `messageSizeLimit` is refused as it is read and nothing of it is kept.
 *
 * Identity: sendmail runs as the submitting user and writes the file as that user, so
 * the file's owner names the user (see maildrop.ts). Without `-f` no sender is written:
 * Pickup uses the owner's login name (`user@$myorigin`).
 *
 * Exit codes follow sysexits.h, as Postfix's sendmail: 0 queued, 64 usage (a bad
 * option or envelope value), 65 data error (the message), 69 unavailable, 73 cannot
 * create, 75 temporary failure, 77 permission denied (`-q` by someone other than the
 * queue owner), 78 configuration.
 *
 * @module
 */

import { userInfo } from 'node:os';
import { Duplex, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PosternError, type PosternErrorOptions } from '../errors.js';
import { type MainParameters, resolveParameters } from '../mta/main-parameters.js';
import { queueDirectoryOf, resolveMtaConfig } from '../mta/mta-config.js';
import { MaildropSubmission, maildropDirectory } from '../receive/maildrop.js';
import { addressProblem, envelopeProblem, maildropLimits } from '../receive/maildrop-checks.js';
import { SmtpReceiver } from '../receive/smtpd-receiver.js';
import { Rewriter } from '../rewrite/rewriter.js';
import { printable } from '../smtp-reply.js';
import type { DsnNotifyKeyword, DsnRet } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { loadConfigFile } from './load-config.js';
import { SendmailInput } from './sendmail-input.js';

export const SENDMAIL_USAGE = `usage: postern sendmail [options] [recipient ...]

  -t            also take recipients from the To, Cc and Bcc headers (Bcc is removed)
  -f ADDR       envelope sender (also -r); default: the login name
  -F NAME       the sender's full name, for a From: header the message lacks
  -i, -oi       a line with only "." does not end the message
  -N DSN        delivery status notifications: never, or success,failure,delay
  -R full|hdrs  how much of the message a bounce returns
  -V ENVID      envelope id for delivery status notifications
  -bs           an SMTP session on standard input and output (messages go to the maildrop)
  -bp           list the queue (mailq);  -q  flush the queue
  -C FILE, --config FILE   the postern configuration (or POSTERN_CONFIG)
`;

/** sysexits.h codes sendmail uses. */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  UNAVAILABLE: 69,
  CANTCREAT: 73,
  TEMPFAIL: 75,
  NOPERM: 77,
  CONFIG: 78,
} as const;

/** A command-line mistake. */
class SendmailUsage extends PosternError {
  constructor(message: string, options?: PosternErrorOptions) {
    super('POSTERN_ERR_USAGE', message, options);
  }
}

interface SendmailOptions {
  mode: 'deliver' | 'list' | 'flush' | 'aliases' | 'verify' | 'smtp';
  extract: boolean;
  dotEnds: boolean;
  sender: string | undefined;
  fullName: string | undefined;
  notify: DsnNotifyKeyword[] | undefined;
  ret: DsnRet | undefined;
  envid: string | undefined;
  config: string | undefined;
  recipients: string[];
}

/** Parses sendmail's argument conventions (`-fADDR` or `-f ADDR`, `-oi`, `-bX`, `--`). */
export function parseSendmailArgs(argv: readonly string[]): SendmailOptions {
  const o: SendmailOptions = {
    mode: 'deliver',
    extract: false,
    dotEnds: true,
    sender: undefined,
    fullName: undefined,
    notify: undefined,
    ret: undefined,
    envid: undefined,
    config: undefined,
    recipients: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      o.recipients.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--config') {
      o.config = argv[++i];
      if (o.config === undefined) throw new SendmailUsage('--config needs a file name');
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      o.recipients.push(arg);
      continue;
    }
    const flag = arg[1]!;
    const argument = (): string => {
      if (arg.length > 2) return arg.slice(2);
      const v = argv[++i];
      if (v === undefined) throw new SendmailUsage(`option -${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case 't':
        o.extract = true;
        break;
      case 'i':
        o.dotEnds = false;
        break;
      case 'f':
      case 'r':
        o.sender = argument();
        break;
      case 'F':
        o.fullName = argument();
        break;
      case 'C':
        o.config = argument();
        break;
      case 'N':
        o.notify = parseNotify(argument());
        break;
      case 'R': {
        const v = argument().toUpperCase();
        if (v !== 'FULL' && v !== 'HDRS')
          throw new SendmailUsage(`-R takes "full" or "hdrs", not "${v}"`);
        o.ret = v;
        break;
      }
      case 'V':
        o.envid = argument();
        break;
      case 'o':
        // -oi as -i; Postfix ignores the other sendmail -o options (-oem, -odb, ...).
        if (arg === '-oi') o.dotEnds = false;
        break;
      case 'b': {
        const modes: Record<string, SendmailOptions['mode']> = {
          m: 'deliver',
          p: 'list',
          i: 'aliases',
          v: 'verify',
          s: 'smtp',
        };
        const mode = modes[arg.slice(2)];
        if (!mode)
          throw new SendmailUsage(`unsupported mode ${arg}; use -bm, -bp, -bs, -bi or -bv`);
        o.mode = mode;
        break;
      }
      case 'q':
        o.mode = 'flush';
        break;
      case 'v':
      case 'U':
      case 'G':
      case 'm':
        break; // accepted and ignored, as by Postfix
      case 'B':
      case 'L':
      case 'O':
      case 'X':
        argument(); // take the value; not used
        break;
      default:
        throw new SendmailUsage(`unknown option ${arg}`);
    }
  }
  return o;
}

function parseNotify(value: string): DsnNotifyKeyword[] {
  const words = value
    .toUpperCase()
    .split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  const allowed = new Set(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);
  if (
    words.length === 0 ||
    words.some((w) => !allowed.has(w)) ||
    (words.includes('NEVER') && words.length > 1)
  ) {
    throw new SendmailUsage(
      `-N takes "never" or a list of success, failure, delay; not "${value}"`,
    );
  }
  return words as DsnNotifyKeyword[];
}

/** Where `io` goes: injectable so tests can run the command in-process. */
export interface SendmailIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

/** Runs sendmail; resolves with the exit code. */
export async function sendmail(argv: readonly string[], io: SendmailIo): Promise<number> {
  const say = (text: string) => io.stderr.write(`postern sendmail: ${text}\n`);
  let o: SendmailOptions;
  try {
    o = parseSendmailArgs(argv);
  } catch (err) {
    if (!(err instanceof SendmailUsage)) throw err;
    say(err.message);
    io.stderr.write(SENDMAIL_USAGE);
    return EX.USAGE;
  }
  if (o.mode === 'list' || o.mode === 'flush') {
    const { queueCommand, queueExitCode } = await import('./queue.js');
    try {
      const out = await queueCommand(
        [
          o.mode === 'list' ? 'list' : 'flush',
          ...(o.mode === 'flush' ? ['ALL'] : []),
          ...(o.config ? ['--config', o.config] : []),
        ],
        io.env,
      );
      io.stdout.write(out);
      return EX.OK;
    } catch (err) {
      const code = queueExitCode(err);
      if (code === undefined) throw err;
      say(errorMessage(err));
      return code;
    }
  }
  if (o.mode === 'aliases') {
    say('alias tables are read directly by postern; there is no database to rebuild');
    return EX.OK;
  }
  if (o.mode === 'verify') {
    say('-bv (address verification) is not available in this version; send a test message instead');
    return EX.UNAVAILABLE;
  }
  if (o.mode === 'deliver' && o.recipients.length === 0 && !o.extract) {
    say('no recipients given; name them on the command line or use -t');
    return EX.USAGE;
  }

  let config: ReturnType<typeof resolveMtaConfig>;
  try {
    const file = o.config ?? io.env.POSTERN_CONFIG;
    config = resolveMtaConfig(file ? await loadConfigFile(file) : {});
  } catch (err) {
    if (PosternError.is(err)) {
      say(`configuration error: ${err.message}`);
      return EX.CONFIG;
    }
    throw err;
  }
  const queueDirectory = queueDirectoryOf(config);
  const params = config.params;
  const user = loginName();
  if (o.mode === 'deliver' && o.sender === undefined && user === undefined) {
    say(`cannot find a login name for uid ${process.getuid?.()}: give the sender with -f ADDRESS`);
    return EX.USAGE;
  }
  // Pickup's own checks, made before anything is written (maildrop-checks.ts); a bad
  // -f is refused in every mode.
  const limits = maildropLimits(params);
  const senderLabel = `-f <${printable(o.sender ?? '').slice(0, 100)}>`;
  const problem =
    o.mode === 'deliver'
      ? envelopeProblem(
          {
            sender: o.sender,
            recipients: o.recipients.map((address) => ({ address })),
            extractRecipients: o.extract,
            fullName: o.fullName,
            envid: o.envid,
            senderLabel,
          },
          limits,
        )
      : o.sender !== undefined
        ? addressProblem(o.sender, 'sender', limits, senderLabel)
        : undefined;
  if (problem) {
    say(`${problem.text}; nothing was queued`);
    return problem.field === 'size' ? EX.DATAERR : EX.USAGE;
  }
  const port = new MaildropSubmission({
    directory: maildropDirectory(queueDirectory),
    messageSizeLimit: params.messageSizeLimit,
    recipientLimit: params.smtpdRecipientLimit,
    addressLengthLimit: params.lineLengthLimit,
    allowMinUser: params.allowMinUser,
    user: user ?? String(process.getuid?.() ?? ''),
  });
  if (o.mode === 'smtp') return standAloneSmtp(params, port, io);

  let tx: Awaited<ReturnType<MaildropSubmission['open']>>;
  try {
    tx = await port.open({ component: 'sendmail', protocol: 'local' });
  } catch (err) {
    say(`cannot write to the maildrop ${maildropDirectory(queueDirectory)}: ${maildropError(err)}`);
    return EX.CANTCREAT;
  }
  const senderParams = {
    ...(o.envid !== undefined ? { envid: o.envid } : {}),
    ...(o.ret !== undefined ? { ret: o.ret } : {}),
    ...(o.fullName ? { fullName: o.fullName } : {}),
  };
  // Without -f the file names no sender: Pickup uses the file owner's login name.
  tx.setSender(o.sender, senderParams);
  if (o.extract) tx.apply({ type: 'extractRecipients' });
  for (const address of o.recipients) {
    tx.addRecipient({ address, ...(o.notify ? { notify: o.notify } : {}) });
  }
  const input = new SendmailInput(o.dotEnds);
  try {
    await pipeline(io.stdin, input, tx.content);
  } catch (err) {
    await tx.abort();
    say(`error reading the message: ${errorMessage(err)}`);
    return EX.TEMPFAIL;
  }
  const result = await tx.commit();
  if (result.reply.positive) return EX.OK;
  say(`${result.reply.text}; nothing was queued`);
  return result.reply.code === 552 ? EX.DATAERR : result.reply.transient ? EX.TEMPFAIL : EX.DATAERR;
}

/** Why the maildrop cannot be written, with what to do about it. */
function maildropError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EACCES' || e.code === 'EPERM')
    return `${e.message}; the maildrop must be mode 3733 (postern serve sets it when it starts)`;
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT')
    return `${e.message}; the queue file system (or your disk quota) is full`;
  return e.message;
}

/**
 * `sendmail -bs`: an SMTP session on standard input and output whose messages go to the
 * maildrop. As in Postfix's stand-alone mode, access controls are off: the local user may
 * send anywhere, as sendmail itself may, and pipelining is not policed.
 */
async function standAloneSmtp(
  params: MainParameters,
  port: MaildropSubmission,
  io: SendmailIo,
): Promise<number> {
  const local = resolveParameters({
    ...params,
    mynetworks: ['127.0.0.1/32'],
    smtpdRelayRestrictions: ['permit_mynetworks', 'reject'],
    smtpdRecipientRestrictions: [],
    smtpdClientRestrictions: [],
    smtpdHeloRestrictions: [],
    smtpdSenderRestrictions: [],
    smtpdDataRestrictions: [],
    smtpdEndOfDataRestrictions: [],
    smtpdForbidUnauthPipelining: false,
    // Postfix's stand-alone smtpd skips the recipient checks: a local user may send anywhere.
    smtpdRejectUnlistedRecipient: false,
  });
  const receiver = new SmtpReceiver({
    params: local,
    submission: port,
    rewriter: new Rewriter({ params: local }),
  });
  const stream = Duplex.from({
    readable: io.stdin as NodeJS.ReadableStream & Readable,
    writable: io.stdout as NodeJS.WritableStream & Writable,
  });
  const ended = new Promise<void>((resolve) => {
    stream.once('close', resolve);
    stream.once('finish', resolve);
  });
  receiver.handle(stream, { address: '127.0.0.1', name: 'localhost' });
  await ended;
  await receiver.close({ graceful: true });
  return EX.OK;
}

/** The login name of the user running sendmail, or undefined when it has none. */
function loginName(): string | undefined {
  try {
    return userInfo().username || undefined;
  } catch {
    return undefined;
  }
}
