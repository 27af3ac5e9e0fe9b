/**
 * LocalDeliveryAgent: final delivery for local domains — Postern's local(8).
 *
 * Postfix counterpart: local(8). For each recipient the delivery switch
 * (alias-expansion.ts) decides — aliases (`aliasMaps`), :include: files, .forward files
 * (`forwardPath`), the user database, `fallbackTransport`, `luserRelay` — and this
 * class carries the decisions out:
 * - mailbox: `mailboxTransport` (handed to that transport's agent, like deliver_pass),
 *   else `mailboxCommand`, else `homeMailbox` under the user's home, else
 *   `mailSpoolDirectory` (a Maildir per user when it ends in `/`, else an mbox file per
 *   user), through MailboxDelivery with Return-Path, X-Original-To and Delivered-To;
 * - `|command` through command-delivery.ts (a clean environment with SHELL HOME USER
 *   EXTENSION DOMAIN LOGNAME LOCAL ORIGINAL_RECIPIENT RECIPIENT SENDER ENVID CLIENT_*
 *   SASL_USERNAME, values filtered by `commandExpansionFilter`, `/bin/sh -c` only for
 *   command text with shell metacharacters, `commandTimeLimit`);
 * - `/file` (mbox, or Maildir for a path ending in `/`);
 * - forwarded addresses: re-submitted through the Submission port as one new message
 *   per envelope sender, with `Delivered-To: <recipient>` prepended (forward.c);
 * - `fallbackTransport`: handed to that transport's agent.
 *
 * One result per recipient: any deferred part defers the recipient (all its parts are
 * tried again, as in Postfix, where file and command deliveries may repeat); else any
 * bounced part bounces it; else it is sent (DSN action `expanded` after an alias or
 * .forward expansion). `localDestinationConcurrencyLimit` is the QueueManager's.
 *
 * Rights (when Postern runs as root; otherwise everything runs as Postern's own user):
 * mailboxes, and files and commands from a user's .forward, use the user's uid, gid and
 * groups; files and commands from aliases use the aliases file owner's, from :include:
 * files the rights they were reached with or the include file owner's, and
 * `defaultPrivs` where that leaves none or root (delivery-rights.ts). Files and
 * mailboxes the recipient controls are written, and .forward and :include: files read,
 * by a helper process running as that user (mailbox-helper.ts, pooled per user and
 * ended after `maxIdle`); mbox files in the spool are written by the server
 * (local-mailbox.ts).
 *
 * Does not: biff, `strict_mailbox_ownership`, duplicate suppression across messages.
 *
 * SECURITY: no path is built from an address without validation (mailbox-path.ts);
 * command text comes only from alias, include and .forward files or `mailboxCommand`,
 * never from an address, and addresses reach a command only through filtered
 * environment variables — a shell command in which such a variable would start a word
 * with `-` is not run (command-delivery.ts). A message already delivered to a recipient (Delivered-To)
 * bounces 5.4.6 before anything is written.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { systemClock } from '../clock.js';
import { type ComponentLogger, type Logger, silentLogger } from '../log.js';
import { parseTransportSpec } from '../rewrite/transport-spec.js';
import { SmtpReply } from '../smtp-reply.js';
import { aliasTableFrom } from '../tables/alias-table.js';
import type { LookupTable } from '../tables/types.js';
import type { Address, Clock, Recipient, RecipientResult, SubmissionPort } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import { createUserDatabase, type LocalUser, type UserDatabase } from '../util/user-database.js';
import {
  type ExpansionPrivileges,
  expandLocalRecipient,
  type LocalAction,
} from './alias-expansion.js';
import {
  commandEnvironment,
  evaluateCommand,
  optionLikeShellRefusal,
  runCommand,
  shellArgv,
} from './command-delivery.js';
import {
  commandIds,
  type DeliveryRights,
  RightsError,
  resolveDefaultPrivs,
  runsAsRoot,
  SystemAccounts,
} from './delivery-rights.js';
import { localMailboxTarget } from './local-mailbox.js';
import type { LocalParameters } from './local-parameters.js';
import { localPrivileges } from './local-privileges.js';
import { ContentReadError, copyMessage, deliveredToSet, deliveryHeaders } from './mail-copy.js';
import { MailboxDelivery, type MailboxOutcome } from './mailbox-delivery.js';
import { MailboxHelperPool } from './mailbox-helper-pool.js';
import { fromLine } from './mbox.js';
import type { DeliveryAgent, DeliveryReporter, DeliveryRequest } from './types.js';

/**
 * Options for LocalDeliveryAgent.
 *
 * @example
 * ```ts
 * const agent = new LocalDeliveryAgent({
 *   params: resolveParameters({ homeMailbox: 'Maildir/' }),
 *   aliases: AliasTable.fromText('postmaster: alice'),
 * } satisfies LocalDeliveryAgentOptions);
 * ```
 */
export interface LocalDeliveryAgentOptions {
  /** The parameters the agent reads (`homeMailbox`, `mailSpoolDirectory`, `aliasMaps`...). */
  readonly params: LocalParameters;
  /** Logs under component `local`. @default silentLogger */
  readonly logger?: Logger;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Alias table; overrides `params.aliasMaps`. */
  readonly aliases?: LookupTable;
  /** Who the users are; overrides `params.localUserDatabase`. */
  readonly users?: UserDatabase;
  /** Where forwarded mail is re-submitted (Cleanup). Without it forwarding defers. */
  readonly submission?: SubmissionPort;
  /** Agents by transport name, for `mailboxTransport` and `fallbackTransport`. */
  readonly transports?: (name: string) => DeliveryAgent | undefined;
}

export { aliasTableFrom } from '../tables/alias-table.js';

type Outcome = MailboxOutcome;

/**
 * Delivers to local users: aliases, `.forward`, mailboxes (mbox or Maildir) and commands,
 * as the user. Postfix counterpart: local(8).
 *
 * @example
 * ```ts
 * const local = new LocalDeliveryAgent({ params: resolveParameters({ homeMailbox: 'Maildir/' }) });
 * const agents = new AgentRegistry().register('local', local);
 * ```
 */
export class LocalDeliveryAgent implements DeliveryAgent {
  readonly #params: LocalParameters;
  readonly #log: ComponentLogger;
  readonly #clock: Clock;
  readonly #aliases: LookupTable | undefined;
  readonly #users: UserDatabase;
  readonly #mailboxes: MailboxDelivery;
  readonly #submission: SubmissionPort | undefined;
  readonly #transports: ((name: string) => DeliveryAgent | undefined) | undefined;
  /** Only when Postern runs as root. */
  readonly #root:
    | {
        defaultPrivs: DeliveryRights;
        accounts: SystemAccounts;
        helpers: MailboxHelperPool;
        privileges: ExpansionPrivileges;
      }
    | undefined;

  constructor(options: LocalDeliveryAgentOptions) {
    const p = options.params;
    this.#params = p;
    this.#log = (options.logger ?? silentLogger).for('local');
    this.#clock = options.clock ?? systemClock;
    this.#aliases = options.aliases ?? aliasTableFrom(p.aliasMaps);
    this.#users = options.users ?? createUserDatabase(p.localUserDatabase);
    this.#submission = options.submission;
    this.#transports = options.transports;
    if (runsAsRoot()) {
      const accounts = new SystemAccounts();
      const helpers = new MailboxHelperPool({ maxIdleMs: p.maxIdle });
      this.#root = {
        defaultPrivs: resolveDefaultPrivs(p.defaultPrivs),
        accounts,
        helpers,
        privileges: localPrivileges(accounts, helpers),
      };
    }
    this.#mailboxes = new MailboxDelivery({
      ...(this.#root ? { helpers: this.#root.helpers } : {}),
      hostname: p.myhostname,
      sizeLimit: p.mailboxSizeLimit,
      lock: {
        attempts: p.deliverLockAttempts,
        delayMs: p.deliverLockDelay,
        staleMs: p.staleLockTime,
      },
      clock: this.#clock,
    });
  }

  /** Ends the helper processes. */
  async close(): Promise<void> {
    await this.#root?.helpers.close();
  }

  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    let seen: Set<string>;
    try {
      seen = await deliveredToSet(request.openContent());
    } catch (err) {
      const text =
        err instanceof ContentReadError ? err.message : new ContentReadError(err).message;
      this.#log.warning(request.queueId, text);
      const reply = new SmtpReply(451, '4.3.0', text);
      for (const r of request.recipients)
        reporter.recipient(r.id, { status: 'deferred', reply, relay: 'local' });
      return;
    }
    for (const recipient of request.recipients) {
      // Unreported recipients are deferred by the caller when we stop early.
      if (request.signal.aborted) return;
      reporter.recipient(recipient.id, await this.#deliverOne(request, recipient, seen));
    }
  }

  async #deliverOne(
    request: DeliveryRequest,
    recipient: Recipient,
    seen: ReadonlySet<string>,
  ): Promise<RecipientResult> {
    const p = this.#params;
    const expansion = await expandLocalRecipient(recipient.address, {
      settings: p,
      ...(this.#aliases ? { aliases: this.#aliases } : {}),
      users: this.#users,
      deliveredTo: seen,
      sender: request.sender,
      warn: (text) => this.#log.warning(request.queueId, text),
      ...(this.#root ? { privileges: this.#root.privileges } : {}),
    });
    const outcomes: Outcome[] = [];
    const forwards = new Map<Address, Address[]>();
    for (const action of expansion.actions) {
      if (request.signal.aborted)
        return result('deferred', new SmtpReply(451, '4.3.0', 'delivery interrupted; will retry'));
      if (action.kind === 'forward') {
        const list = forwards.get(action.sender) ?? [];
        if (!list.some((a) => a.toLowerCase() === action.address.toLowerCase()))
          list.push(action.address);
        forwards.set(action.sender, list);
        continue;
      }
      const outcome = await this.#execute(request, recipient, action);
      if (outcome.status === 'deferred')
        this.#log.warning(request.queueId, `${action.address}: ${outcome.reply.text}`);
      else if (outcome.status === 'bounced')
        this.#log.info(request.queueId, `${action.address}: ${outcome.reply.text}`);
      outcomes.push(outcome);
    }
    for (const [sender, addresses] of forwards) {
      outcomes.push(await this.#forward(request, recipient, sender, addresses));
    }
    const deferred = outcomes.find((o) => o.status === 'deferred');
    if (deferred) return result('deferred', deferred.reply);
    const bounced = outcomes.find((o) => o.status === 'bounced');
    if (bounced) return result('bounced', bounced.reply);
    if (outcomes.length === 0) {
      // Every expansion was a duplicate: nothing left to do (Postfix: been_here).
      return result('sent', new SmtpReply(250, '2.0.0', 'alias expanded'), 'expanded');
    }
    const reply =
      outcomes.length === 1 ? outcomes[0]!.reply : new SmtpReply(250, '2.0.0', 'alias expanded');
    return result('sent', reply, expansion.expanded ? 'expanded' : 'delivered');
  }

  async #execute(
    request: DeliveryRequest,
    recipient: Recipient,
    action: Exclude<LocalAction, { kind: 'forward' }>,
  ): Promise<Outcome> {
    const p = this.#params;
    switch (action.kind) {
      case 'result':
        return {
          status: action.status,
          reply: new SmtpReply(
            action.status === 'bounced' ? (action.enhanced.startsWith('5.1.') ? 550 : 554) : 450,
            action.enhanced,
            `<${action.address}>: ${action.text}`,
          ),
        };
      case 'transport':
        return this.#pass(request, recipient, action.transport, action.address);
      case 'command':
        return this.#command(
          request,
          recipient,
          action.command,
          action.address,
          action.sender,
          action.origin === 'forward' ? action.user : undefined,
          action.rights,
        );
      case 'file': {
        const maildir = action.path.endsWith('/');
        // file.c: no rights, or root's, means default_privs.
        const rights = this.#root ? (action.rights ?? this.#root.defaultPrivs) : undefined;
        return this.#mailboxes.write(
          request,
          { path: path.resolve(action.path), maildir, file: true, ...(rights ? { rights } : {}) },
          {
            returnPath: action.sender,
            originalTo: recipient.originalAddress,
            deliveredTo: recipient.address,
          },
        );
      }
      case 'mailbox': {
        if (p.mailboxTransport !== '')
          return this.#pass(request, recipient, p.mailboxTransport, action.address);
        if (p.mailboxCommand !== '') {
          let rights: DeliveryRights | undefined;
          try {
            rights = await this.#root?.accounts.rightsOfUser(action.user);
          } catch (err) {
            if (!(err instanceof RightsError)) throw err;
            return configError(err);
          }
          return this.#command(
            request,
            recipient,
            p.mailboxCommand,
            action.address,
            action.sender,
            action.user,
            rights,
          );
        }
        const target = await localMailboxTarget(action.user, p, this.#root?.accounts);
        if ('error' in target) return target.error;
        return this.#mailboxes.write(request, target, {
          returnPath: action.sender,
          originalTo: recipient.originalAddress,
          deliveredTo: recipient.address,
        });
      }
    }
  }

  /** deliver_pass: hand one recipient to another transport's agent. */
  async #pass(
    request: DeliveryRequest,
    recipient: Recipient,
    spec: string,
    address: Address,
  ): Promise<Outcome> {
    const { transport, nexthop } = parseTransportSpec(spec);
    const agent = this.#transports?.(transport);
    if (!agent || agent === this) {
      return {
        status: 'deferred',
        reply: new SmtpReply(
          451,
          '4.3.5',
          `mail transport unavailable: "${transport}" is not a usable transport for local delivery`,
        ),
      };
    }
    let got: RecipientResult | undefined;
    const sub: DeliveryRequest = {
      ...request,
      transport,
      nexthop: nexthop || request.nexthop,
      recipients: [{ ...recipient, address }],
      openContent: () => request.openContent(),
    };
    await agent.deliver(sub, {
      recipient: (_id, r) => {
        got ??= r;
      },
      destination: () => undefined,
    });
    return (
      got ?? {
        status: 'deferred',
        reply: new SmtpReply(451, '4.3.0', `no outcome from transport ${transport}; will retry`),
      }
    );
  }

  async #command(
    request: DeliveryRequest,
    recipient: Recipient,
    command: string,
    address: Address,
    sender: Address,
    user: LocalUser | undefined,
    rights: DeliveryRights | undefined,
  ): Promise<Outcome> {
    const p = this.#params;
    const at = address.lastIndexOf('@');
    const local = (at < 0 ? address : address.slice(0, at)).toLowerCase();
    const domain = at < 0 ? '' : address.slice(at + 1);
    const delimiterAt =
      p.recipientDelimiter === ''
        ? -1
        : [...local].findIndex((c) => p.recipientDelimiter.includes(c));
    const extension = delimiterAt > 0 ? local.slice(delimiterAt + 1) : undefined;
    const name = user?.name ?? (delimiterAt > 0 ? local.slice(0, delimiterAt) : local);
    const client = request.source.client;
    const env = commandEnvironment(
      {
        SHELL: user?.shell ?? '/bin/sh',
        HOME: user?.home,
        USER: name,
        LOGNAME: name,
        LOCAL: local,
        EXTENSION: extension,
        DOMAIN: domain,
        RECIPIENT: address,
        ORIGINAL_RECIPIENT: recipient.originalAddress,
        SENDER: sender,
        ENVID: request.envid,
        CLIENT_ADDRESS: client?.address || undefined,
        CLIENT_HOSTNAME: client?.name,
        CLIENT_PORT: client?.port === undefined ? undefined : String(client.port),
        CLIENT_PROTOCOL: request.source.protocol,
        CLIENT_HELO: request.source.helo,
        SASL_USERNAME: request.source.authUser,
      },
      { filter: p.commandExpansionFilter, exported: p.exportEnvironment },
    );
    const argv = shellArgv(command);
    const refused = optionLikeShellRefusal(argv, env);
    if (refused) return refused;
    const ids = commandIds(rights, this.#root?.defaultPrivs);
    const head =
      fromLine(sender, this.#clock.now()) +
      deliveryHeaders({
        returnPath: sender,
        originalTo: recipient.originalAddress,
        deliveredTo: recipient.address,
        eol: '\n',
      });
    const input = copyMessage(request.openContent(), {
      head: Buffer.from(head, 'utf8'),
      eol: '\n',
    });
    const run = await runCommand({
      argv,
      env,
      cwd: (await isDirectory(user?.home)) ? user!.home! : '/',
      ...ids,
      timeLimitMs: p.commandTimeLimit,
      input,
      signal: request.signal,
      clock: this.#clock,
    });
    const outcome = evaluateCommand(run, 'Command');
    return outcome.status === 'sent'
      ? {
          status: 'sent',
          reply: new SmtpReply(250, '2.0.0', `delivered to command: ${command.slice(0, 100)}`),
        }
      : outcome;
  }

  /** forward.c: one new message per envelope sender, with Delivered-To prepended. */
  async #forward(
    request: DeliveryRequest,
    recipient: Recipient,
    sender: Address,
    addresses: readonly Address[],
  ): Promise<Outcome> {
    if (!this.#submission) {
      return {
        status: 'deferred',
        reply: new SmtpReply(
          451,
          '4.3.5',
          'mail forwarding is not available: no submission port configured',
        ),
      };
    }
    const notify = recipient.notify?.filter((n) => n !== 'SUCCESS');
    let tx: Awaited<ReturnType<SubmissionPort['open']>> | undefined;
    try {
      tx = await this.#submission.open({ component: 'local', protocol: 'local' });
      tx.setSender(sender, {
        ...(request.envid === undefined ? {} : { envid: request.envid }),
        ...(request.ret === undefined ? {} : { ret: request.ret }),
        bodyType: request.bodyType,
        smtputf8: request.smtputf8,
      });
      for (const a of addresses) {
        tx.addRecipient({
          address: a,
          ...(notify === undefined ? {} : { notify: notify.length === 0 ? ['NEVER'] : notify }),
          ...(recipient.orcpt === undefined ? {} : { orcpt: recipient.orcpt }),
        });
      }
      const head = Buffer.from(deliveryHeaders({ deliveredTo: recipient.address }), 'utf8');
      const content = request.openContent();
      async function* withHead(): AsyncGenerator<Buffer> {
        yield head;
        for await (const chunk of content)
          yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), 'latin1');
      }
      await pipeline(Readable.from(withHead()), tx.content);
      const committed = await tx.commit();
      if (committed.reply.positive) {
        return {
          status: 'sent',
          reply: new SmtpReply(
            250,
            '2.0.0',
            `forwarded as ${committed.queueId ?? 'a new message'}`,
          ),
        };
      }
      const r = committed.reply;
      return { status: r.permanent ? 'bounced' : 'deferred', reply: r };
    } catch (err) {
      await tx?.abort().catch(() => undefined);
      return {
        status: 'deferred',
        reply: new SmtpReply(451, '4.3.0', `mail forwarding failed: ${errorMessage(err)}`),
      };
    }
  }
}

function result(
  status: RecipientResult['status'],
  reply: SmtpReply,
  action?: 'delivered' | 'expanded',
): RecipientResult {
  return { status, reply, relay: 'local', ...(action === undefined ? {} : { action }) };
}

async function isDirectory(dir: string | undefined): Promise<boolean> {
  if (dir === undefined) return false;
  return (await fs.stat(dir).catch(() => undefined))?.isDirectory() ?? false;
}

function configError(err: Error): Outcome {
  return {
    status: 'deferred',
    reply: new SmtpReply(451, '4.3.5', `mail system configuration error: ${err.message}`),
  };
}
