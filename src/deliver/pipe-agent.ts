/**
 * PipeDeliveryAgent: hands a message to an external command — Postern's pipe(8).
 *
 * Postfix counterpart: pipe/pipe.c. Configured as a named transport:
 * `"transports": { "filter": { "type": "pipe", "argv": ["/usr/local/bin/filter",
 * "-f", "${sender}", "--", "${recipient}"], "flags": "FR", "timeLimit": "60s" } }`.
 * The argv template is expanded per pipe-argv.ts (recipient macros give one element per
 * recipient) and executed directly: never a shell. The message goes to the command's
 * standard input with `eol` line ends (default LF), after the lines the flags ask for
 * (From_, Return-Path, X-Original-To, Delivered-To). The exit status is evaluated in
 * Postfix's order (command-delivery.ts), with the command's output as the diagnostic.
 *
 * Settings (transport entry): `argv` (required), `flags`, `user` (`name[:group]`),
 * `size` (bytes; a larger message bounces 5.2.3), `timeLimit` (default
 * `commandTimeLimit`, Postfix `<transport>_time_limit`), `eol`, `nullSender`
 * (`${sender}` for `<>`, default MAILER-DAEMON), `directory` (working directory).
 *
 * One command run per request, for all its recipients — except with flags `D` or `O`,
 * whose headers name one recipient: then one run per recipient (Postfix requires
 * `destinationRecipientLimit: 1` instead; Postern does the split itself).
 *
 * Does not: chroot, `${sasl_sender}`, `${name?text}` conditionals.
 *
 * SECURITY: `user` may not be root (uid 0), as in Postfix. When Postern itself runs as
 * root, `user` is required and the command runs with that uid/gid; when it does not
 * run as root, the command runs as Postern's own user and `user` only documents the
 * intent (a process cannot switch users without privileges). The child's environment
 * is clean (command-delivery.ts). A value from outside that would begin an argument with
 * `-` before a `--` element (pipe-argv.ts) is never passed: that recipient bounces
 * (5.1.3), or the whole request when it is the sender (5.1.7) or a client value (5.3.0),
 * whatever way the mail came in.
 *
 * @module
 */

import { systemClock } from '../clock.js';
import type { CoreParameters } from '../config/core-parameters.js';
import { parseInteger, parseString, parseTime } from '../config/values.js';
import { ConfigError } from '../errors.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import { SmtpReply } from '../smtp-reply.js';
import type { Clock, Recipient, RecipientResult } from '../types.js';
import { passwdUserSync } from '../util/user-database.js';
import {
  commandEnvironment,
  evaluateCommand,
  type OptionLikeSource,
  optionLikeOutcome,
  runCommand,
} from './command-delivery.js';
import type { LocalParameters } from './local-parameters.js';
import { copyMessage, deliveredToKey, deliveredToSet, deliveryHeaders } from './mail-copy.js';
import { fromLine } from './mbox.js';
import {
  type ArgvMessage,
  expandArgv,
  OptionLikeArgumentError,
  type PipeFlags,
  parseArgvTemplate,
  parsePipeFlags,
} from './pipe-argv.js';
import type { DeliveryAgent, DeliveryReporter, DeliveryRequest, TransportConfig } from './types.js';

/**
 * What pipe(8) reads: the command limits it shares with local(8) and the shared
 * parameters it needs.
 *
 * @example
 * ```ts
 * const params: PipeParameters = resolveParameters({ commandTimeLimit: '10m' });
 * ```
 */
export interface PipeParameters
  extends Pick<LocalParameters, 'commandTimeLimit' | 'exportEnvironment'>,
    Pick<CoreParameters, 'recipientDelimiter'> {}

/**
 * Options for PipeDeliveryAgent (already validated values).
 *
 * @example
 * ```ts
 * const archive = new PipeDeliveryAgent({
 *   name: 'archive',
 *   argv: ['/usr/local/bin/archive', '${sender}', '${recipient}'],
 *   flags: 'R',
 *   params: resolveParameters(),
 * } satisfies PipeDeliveryAgentOptions);
 * ```
 */
export interface PipeDeliveryAgentOptions {
  /** The transport name (for `relay=` and texts). */
  readonly name: string;
  /** The command and its arguments, with `${sender}`, `${recipient}`... macros; no shell. */
  readonly argv: readonly string[];
  /** pipe(8) flags letters. @default '' */
  readonly flags?: string;
  /** Run as this uid/gid (only effective when Postern runs as root). */
  readonly uid?: number;
  /** Group to run as (only effective when Postern runs as root). */
  readonly gid?: number;
  /** Largest message in bytes; 0 = none. @default 0 */
  readonly size?: number;
  /** ms. @default params.commandTimeLimit */
  readonly timeLimit?: number;
  /** Line end for the command. @default '\n' */
  readonly eol?: '\n' | '\r\n';
  /** `${sender}` for the null sender. @default 'MAILER-DAEMON' */
  readonly nullSender?: string;
  /** The command's working directory. */
  readonly directory?: string;
  /** The parameters the agent reads (`commandTimeLimit`, `exportEnvironment`...). */
  readonly params: PipeParameters;
  /** Logs under component `pipe`. @default silentLogger */
  readonly logger?: Logger;
  /** @default systemClock */
  readonly clock?: Clock;
}

/**
 * Hands each message to a command on stdin (argv with macros, no shell) and maps its
 * sysexits exit status to delivered, deferred or bounced. Postfix counterpart: pipe(8).
 *
 * @example
 * ```ts
 * const mta = new Mta({
 *   agents: { spam: new PipeDeliveryAgent({ name: 'spam', argv: ['/usr/bin/sa-learn', '--spam'], params: resolveParameters() }) },
 *   transportMaps: { 'spam@example.com': 'spam:' },
 * });
 * ```
 */
export class PipeDeliveryAgent implements DeliveryAgent {
  readonly #o: PipeDeliveryAgentOptions;
  readonly #flags: PipeFlags;
  readonly #argv: readonly string[];
  readonly #log: ComponentLogger;
  readonly #clock: Clock;

  constructor(options: PipeDeliveryAgentOptions) {
    this.#o = options;
    this.#argv = parseArgvTemplate(options.argv, `transports.${options.name}.argv`);
    this.#flags = parsePipeFlags(options.flags ?? '', `transports.${options.name}.flags`);
    if (options.uid === 0) {
      throw new ConfigError(
        `transports.${options.name}.user: the pipe transport refuses to run commands as root; name an unprivileged user`,
        `transports.${options.name}.user`,
      );
    }
    this.#log = (options.logger ?? silentLogger).for('pipe');
    this.#clock = options.clock ?? systemClock;
  }

  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    const split = this.#flags.deliveredTo || this.#flags.originalTo;
    const groups = split ? request.recipients.map((r) => [r]) : [request.recipients];
    for (const group of groups) {
      if (request.signal.aborted) return;
      const results = await this.#run(request, group);
      for (const r of group) reporter.recipient(r.id, results.get(r.id) ?? results.get(-1)!);
    }
  }

  #result(status: RecipientResult['status'], reply: SmtpReply): RecipientResult {
    return {
      status,
      reply,
      relay: this.#o.name,
      ...(status === 'sent' ? { action: this.#flags.finalDelivery ? 'delivered' : 'relayed' } : {}),
    } as RecipientResult;
  }

  async #run(
    request: DeliveryRequest,
    group: readonly Recipient[],
  ): Promise<Map<number, RecipientResult>> {
    const out = new Map<number, RecipientResult>();
    const size = this.#o.size ?? 0;
    if (size > 0 && request.size > size) {
      out.set(
        -1,
        this.#result(
          'bounced',
          new SmtpReply(
            552,
            '5.2.3',
            `message too large for the ${this.#o.name} transport (${request.size} > ${size} bytes)`,
          ),
        ),
      );
      return out;
    }
    let recipients = group;
    if (this.#flags.deliveredTo) {
      const seen = await deliveredToSet(request.openContent());
      recipients = group.filter((r) => {
        if (!seen.has(deliveredToKey(r.address))) return true;
        out.set(
          r.id,
          this.#result(
            'bounced',
            new SmtpReply(554, '5.4.6', `mail forwarding loop for ${r.address}`),
          ),
        );
        return false;
      });
      if (recipients.length === 0) return out;
    }
    const expanded = this.#expand(request, recipients, out);
    if (!expanded) return out;
    const { argv } = expanded;
    recipients = expanded.recipients;
    const eol = this.#o.eol ?? '\n';
    const single = recipients.length === 1 ? recipients[0] : undefined;
    let head = '';
    if (this.#flags.fromLine)
      head += fromLine(request.sender, this.#clock.now()).replace(/\n$/, eol);
    head += deliveryHeaders({
      eol,
      ...(this.#flags.returnPath ? { returnPath: request.sender } : {}),
      ...(this.#flags.originalTo && single ? { originalTo: single.originalAddress } : {}),
      ...(this.#flags.deliveredTo && single ? { deliveredTo: single.address } : {}),
    });
    const input = copyMessage(request.openContent(), {
      head: Buffer.from(head, 'utf8'),
      eol,
      quoteFrom: this.#flags.quoteFrom,
      dotStuff: this.#flags.dotStuff,
      blankLine: this.#flags.blankLine,
    });
    const run = await runCommand({
      argv,
      env: commandEnvironment({}, { exported: this.#o.params.exportEnvironment }),
      ...(this.#o.directory === undefined ? {} : { cwd: this.#o.directory }),
      ...(this.#o.uid !== undefined && process.getuid?.() === 0
        ? { uid: this.#o.uid, ...(this.#o.gid === undefined ? {} : { gid: this.#o.gid }) }
        : {}),
      timeLimitMs: this.#o.timeLimit ?? this.#o.params.commandTimeLimit,
      input,
      signal: request.signal,
      clock: this.#clock,
    });
    const outcome = evaluateCommand(run, 'Command');
    const reply =
      outcome.status === 'sent'
        ? new SmtpReply(
            250,
            '2.0.0',
            `delivered via ${this.#o.name} service${run.output ? ` (${run.output})` : ''}`,
          )
        : outcome.reply;
    if (outcome.status !== 'sent') {
      this.#log.info(request.queueId, `${argv[0]}: ${outcome.reply.text}`);
    }
    for (const r of recipients) out.set(r.id, this.#result(outcome.status, reply));
    return out;
  }

  /**
   * The argv for `recipients`. A recipient whose value would start an option bounces
   * (into `out`) and the rest are expanded again; a message-wide value (the sender, the
   * client's HELO name) bounces them all and gives undefined.
   */
  #expand(
    request: DeliveryRequest,
    group: readonly Recipient[],
    out: Map<number, RecipientResult>,
  ): { argv: string[]; recipients: readonly Recipient[] } | undefined {
    const source = request.source;
    const message: ArgvMessage = {
      sender: request.sender,
      nexthop: request.nexthop,
      size: request.size,
      queueId: request.queueId,
      ...(request.envid === undefined ? {} : { envid: request.envid }),
      ...(source.client?.address ? { clientAddress: source.client.address } : {}),
      ...(source.client?.name ? { clientHostname: source.client.name } : {}),
      ...(source.client?.port === undefined ? {} : { clientPort: source.client.port }),
      clientProtocol: source.protocol,
      ...(source.helo === undefined ? {} : { clientHelo: source.helo }),
      ...(source.authUser === undefined ? {} : { saslUsername: source.authUser }),
    };
    const settings = {
      flags: this.#flags,
      recipientDelimiter: this.#o.params.recipientDelimiter,
      ...(this.#o.nullSender === undefined ? {} : { nullSender: this.#o.nullSender }),
    };
    let recipients = group;
    while (recipients.length > 0) {
      try {
        return { argv: expandArgv(this.#argv, message, recipients, settings), recipients };
      } catch (err) {
        if (!(err instanceof OptionLikeArgumentError)) throw err;
        this.#log.warning(request.queueId, `${this.#o.name}: ${err.message}`);
        const from: OptionLikeSource =
          err.macro === 'sender' ? 'sender' : err.recipient ? 'recipient' : 'client';
        const { status, reply } = optionLikeOutcome(from, err.message);
        const refused = recipients.filter(
          (r) => err.recipient === undefined || r === err.recipient,
        );
        for (const r of refused) out.set(r.id, this.#result(status, reply));
        recipients = recipients.filter((r) => !refused.includes(r));
      }
    }
    return undefined;
  }
}

/**
 * Builds a PipeDeliveryAgent from a `transports` entry.
 *
 * @throws ConfigError naming the key for a missing `argv`, an unknown flag or macro, a
 *   root `user`, an unknown user when running as root, or a bad size/time/eol.
 *
 * @example
 * ```ts
 * const agent = pipeAgentFromConfig('archive', { type: 'pipe', argv: ['/usr/local/bin/archive', '${recipient}'] }, params);
 * ```
 */
export function pipeAgentFromConfig(
  name: string,
  t: TransportConfig,
  params: PipeParameters,
  logger?: Logger,
  clock?: Clock,
): PipeDeliveryAgent {
  const key = `transports.${name}`;
  const argv = parseArgvTemplate(t.argv, `${key}.argv`);
  const flags = t.flags === undefined ? '' : parseString(t.flags, `${key}.flags`);
  let uid: number | undefined;
  let gid: number | undefined;
  if (t.user !== undefined) {
    const spec = parseString(t.user, `${key}.user`);
    const [userName = '', groupName] = spec.split(':');
    if (userName === 'root' || userName === '0') {
      throw new ConfigError(
        `${key}.user: the pipe transport refuses to run commands as root; name an unprivileged user`,
        `${key}.user`,
      );
    }
    const user = /^\d+$/.test(userName)
      ? { uid: Number(userName), gid: Number(userName) }
      : passwdUserSync(userName);
    if (!user || user.uid === undefined) {
      if (process.getuid?.() === 0) {
        throw new ConfigError(
          `${key}.user: no such user "${userName}" in /etc/passwd; create it or name another`,
          `${key}.user`,
        );
      }
    } else {
      uid = user.uid;
      gid = user.gid;
    }
    if (groupName !== undefined && /^\d+$/.test(groupName)) gid = Number(groupName);
  } else if (process.getuid?.() === 0) {
    throw new ConfigError(
      `${key}.user: required when Postern runs as root (pipe(8) never runs commands as root); e.g. "user": "nobody"`,
      `${key}.user`,
    );
  }
  const eolText =
    t.eol === undefined
      ? '\n'
      : parseString(t.eol, `${key}.eol`).replace(/\\r/g, '\r').replace(/\\n/g, '\n');
  if (eolText !== '\n' && eolText !== '\r\n') {
    throw new ConfigError(`${key}.eol: expected "\\n" or "\\r\\n"`, `${key}.eol`);
  }
  return new PipeDeliveryAgent({
    name,
    argv,
    flags,
    ...(uid === undefined ? {} : { uid }),
    ...(gid === undefined ? {} : { gid }),
    ...(t.size === undefined ? {} : { size: parseInteger(t.size, `${key}.size`) }),
    ...(t.timeLimit === undefined ? {} : { timeLimit: parseTime(t.timeLimit, `${key}.timeLimit`) }),
    eol: eolText,
    ...(t.nullSender === undefined
      ? {}
      : { nullSender: parseString(t.nullSender, `${key}.nullSender`) }),
    ...(t.directory === undefined
      ? {}
      : { directory: parseString(t.directory, `${key}.directory`) }),
    params,
    ...(logger ? { logger } : {}),
    ...(clock ? { clock } : {}),
  });
}
