/**
 * local(8)'s delivery switch: what one local recipient turns into — mailbox, command,
 * file, forwarded address, another transport, or a bounce/defer — through aliases,
 * :include: files and .forward files.
 *
 * Postfix counterpart: local/recipient.c (deliver_recipient, deliver_switch),
 * local/alias.c, local/include.c, local/dotforward.c, local/token.c, local/resolve.c,
 * local/unknown.c. Followed closely:
 * - nesting deeper than 100 bounces 5.4.6 ("recipient nesting limit exceeded", or
 *   "alias database loop for X" inside aliases): loops such as `a: b` / `b: a` or an
 *   :include: file that includes itself end there;
 * - an alias that lists its own name delivers to that user instead of expanding again;
 * - a recipient already named in a `Delivered-To:` header bounces 5.4.6 "mail
 *   forwarding loop";
 * - aliases are tried for `user+ext`, then `user`; `\user` skips aliases and .forward;
 * - an alias with an `owner-NAME` companion makes `owner-NAME` the sender of what it
 *   expands to, and its local members are re-submitted as new messages; members of
 *   :include: files are always re-submitted; remote addresses are always re-submitted
 *   (Postfix's forward.c);
 * - `|command` and `/file` are allowed only where `allowMailToCommands` /
 *   `allowMailToFiles` list the origin (`alias`, `forward`, `include`), else 5.7.1;
 * - an empty .forward, or one that lists the user, means mailbox delivery;
 * - a user the UserDatabase does not know goes to `fallbackTransport`, then
 *   `luserRelay`, else bounces 5.1.1;
 * - with `privileges` (Postern running as root), file and command actions carry the
 *   rights they run with: an aliases file's owner's, the user's for a .forward, the
 *   :include: file owner's when reached without rights (delivery-rights.ts); .forward
 *   and :include: files are read with those rights, and an :include: file the rights
 *   cannot read bounces 5.3.5.
 *
 * Does not: deliver anything (local-agent.ts executes the actions), duplicate
 * suppression across messages.
 *
 * @module
 */

import { splitAddress } from '../address/address.js';
import { TableError } from '../errors.js';
import { type AliasTarget, parseAliasTargets, parseTargetFile } from '../tables/alias-table.js';
import { TableList } from '../tables/lookup-table.js';
import { splitExtension } from '../tables/search-order.js';
import type { LookupTable } from '../tables/types.js';
import type { Address } from '../types.js';
import { errorMessage } from '../util/error-message.js';
import type { LocalUser, UserDatabase } from '../util/user-database.js';
import { type DeliveryRights, RightsError } from './delivery-rights.js';
import {
  localExpand,
  readForwardFile,
  readIncludeFile,
  TargetFileError,
  type TargetFileReader,
} from './forward-file.js';
import { deliveredToKey } from './mail-copy.js';

/** Where a command or file destination came from (allowMailTo* classes). */
export type ExpansionOrigin = 'alias' | 'forward' | 'include';

/** What to do for one destination. */
export type LocalAction =
  | {
      readonly kind: 'mailbox';
      readonly address: Address;
      readonly user: LocalUser;
      readonly extension?: string;
      readonly sender: Address;
    }
  | {
      readonly kind: 'command';
      readonly command: string;
      readonly address: Address;
      readonly origin: ExpansionOrigin;
      readonly user?: LocalUser;
      /** Whose rights it runs with; none: `defaultPrivs` (when Postern runs as root). */
      readonly rights?: DeliveryRights;
      readonly sender: Address;
    }
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly address: Address;
      readonly origin: ExpansionOrigin;
      /** Whose rights it is written with; none: `defaultPrivs` (when Postern runs as root). */
      readonly rights?: DeliveryRights;
      readonly sender: Address;
    }
  | { readonly kind: 'forward'; readonly address: Address; readonly sender: Address }
  | { readonly kind: 'transport'; readonly transport: string; readonly address: Address }
  | {
      readonly kind: 'result';
      readonly status: 'bounced' | 'deferred';
      readonly enhanced: string;
      readonly text: string;
      readonly address: Address;
    };

/** Settings the switch needs (from LocalParameters). */
export interface ExpansionSettings {
  readonly recipientDelimiter: string;
  readonly myorigin: string;
  readonly mydestination: readonly string[];
  readonly forwardPath: readonly string[];
  readonly forwardExpansionFilter: string;
  readonly allowMailToCommands: readonly string[];
  readonly allowMailToFiles: readonly string[];
  readonly fallbackTransport: string;
  readonly luserRelay: string;
}

/**
 * Where delivery rights come from, when Postern runs as root (delivery-rights.ts has
 * the rules). Without it every file is read, and every right is, this process's own.
 */
export interface ExpansionPrivileges {
  /** Rights of the owner of an alias table's file; undefined when root owns it or it has no file. @throws RightsError */
  tableOwner(table: LookupTable): Promise<DeliveryRights | undefined>;
  /** Rights of the account with `uid`; undefined for root. @throws RightsError */
  rightsOfUid(uid: number): Promise<DeliveryRights | undefined>;
  /** Rights of a local user; undefined for root or a user without a uid. @throws RightsError */
  rightsOfUser(user: LocalUser): Promise<DeliveryRights | undefined>;
  /** Reads .forward and :include: files with `rights` (undefined: this process's own). */
  reader(rights: DeliveryRights | undefined): TargetFileReader;
}

/** Inputs of one expansion. */
export interface ExpansionContext {
  readonly settings: ExpansionSettings;
  readonly aliases?: LookupTable;
  readonly users: UserDatabase;
  /** Delivered-To values already in the message (deliveredToKey form). */
  readonly deliveredTo: ReadonlySet<string>;
  /** The envelope sender. */
  readonly sender: Address;
  /** Warnings (ignored .forward files...). */
  readonly warn?: (text: string) => void;
  /** Delivery rights (Postern running as root). */
  readonly privileges?: ExpansionPrivileges;
}

/** The result of expanding one recipient. */
export interface Expansion {
  readonly actions: LocalAction[];
  /** An alias or .forward file was expanded (DSN action `expanded`). */
  readonly expanded: boolean;
}

interface State {
  level: number;
  expFrom?: string;
  origin?: ExpansionOrigin;
  /** owner-NAME address when an alias has one. */
  owner?: Address;
  sender: Address;
  /** Rights for files and commands; none: default rights (local.h USER_ATTR). */
  rights?: DeliveryRights;
}

const NESTING_LIMIT = 100;

/** Runs the delivery switch for `address` (a recipient in a local domain). */
export async function expandLocalRecipient(
  address: Address,
  ctx: ExpansionContext,
): Promise<Expansion> {
  const run = new Run(ctx);
  await run.recipient(address, { level: 0, sender: ctx.sender }, false);
  return { actions: run.actions, expanded: run.expanded };
}

class Run {
  readonly actions: LocalAction[] = [];
  expanded = false;
  readonly #ctx: ExpansionContext;
  readonly #seen = new Set<string>();

  constructor(ctx: ExpansionContext) {
    this.#ctx = ctx;
  }

  #result(address: Address, status: 'bounced' | 'deferred', enhanced: string, text: string): void {
    this.actions.push({ kind: 'result', status, enhanced, text, address });
  }

  #isLocalDomain(domain: string): boolean {
    const d = domain.toLowerCase();
    return this.#ctx.settings.mydestination.some((m) => m.toLowerCase() === d);
  }

  /** deliver_recipient: loop checks, then the switch. */
  async recipient(address: Address, parent: State, direct: boolean): Promise<void> {
    const state: State = { ...parent, level: parent.level + 1 };
    if (state.level > NESTING_LIMIT) {
      this.#result(address, 'bounced', '5.4.6', 'recipient nesting limit exceeded');
      return;
    }
    const dupKey = `${state.level} ${address.toLowerCase()}`;
    if (this.#seen.has(dupKey)) return;
    this.#seen.add(dupKey);
    if (this.#ctx.deliveredTo.has(deliveredToKey(address))) {
      this.#result(address, 'bounced', '5.4.6', `mail forwarding loop for ${address}`);
      return;
    }
    const { local: rawLocal, domain } = splitAddress(address);
    const local = rawLocal.toLowerCase();
    let user = local;
    let extension: string | undefined;
    const split = splitExtension(local, this.#ctx.settings.recipientDelimiter);
    if (split && !split.extension.includes('/')) {
      user = split.user;
      extension = split.extension.slice(1);
    }
    if (user === '') {
      this.#result(address, 'bounced', '5.1.3', `null username in "${address}"`);
      return;
    }
    if (!direct) {
      if (await this.#alias(address, local, state)) return;
      if (extension !== undefined && (await this.#alias(address, user, state))) return;
      // Members of owner- lists and include files become new messages (recipient.c).
      if (state.owner !== undefined || state.origin === 'include') {
        this.actions.push({ kind: 'forward', address, sender: state.sender });
        return;
      }
    }
    let entry: LocalUser | undefined;
    try {
      entry = await this.#ctx.users.lookup(user);
    } catch (err) {
      this.#result(address, 'deferred', '4.0.0', `user lookup error: ${errorMessage(err)}`);
      return;
    }
    if (entry === undefined) {
      this.#unknown(address, user, local, extension, domain);
      return;
    }
    if (!direct && (await this.#dotForward(address, entry, extension, domain, local, state)))
      return;
    this.actions.push({
      kind: 'mailbox',
      address,
      user: entry,
      ...(extension === undefined ? {} : { extension }),
      sender: state.sender,
    });
  }

  /** deliver_alias. True when the alias handled the recipient. */
  async #alias(address: Address, name: string, state: State): Promise<boolean> {
    const table = this.#ctx.aliases;
    if (!table) return false;
    if (state.expFrom !== undefined && state.expFrom === name) return false;
    if (state.level > NESTING_LIMIT) {
      this.#result(address, 'bounced', '5.4.6', `alias database loop for ${name}`);
      return true;
    }
    let found: { value: string; table: LookupTable } | undefined;
    let ownerValue: string | undefined;
    try {
      found = await lookupWithTable(table, name);
      if (found !== undefined) ownerValue = await table.lookup(`owner-${name}`);
    } catch (err) {
      if (err instanceof TableError) {
        this.#result(address, 'deferred', '4.3.0', 'alias database unavailable');
        return true;
      }
      throw err;
    }
    if (found === undefined) return false;
    const value = found.value;
    // alias.c: files and commands get the rights of the alias database's owner.
    let rights: DeliveryRights | undefined;
    try {
      rights = await this.#ctx.privileges?.tableOwner(found.table);
    } catch (err) {
      if (!(err instanceof RightsError)) throw err;
      this.#result(address, 'deferred', '4.3.0', 'cannot find alias database owner');
      return true;
    }
    const targets = parseAliasTargets(value);
    if (targets.length === 0) {
      this.#result(address, 'deferred', '4.3.0', 'alias database unavailable');
      return true;
    }
    this.expanded = true;
    const owner =
      ownerValue === undefined ? undefined : `owner-${name}@${this.#ctx.settings.myorigin}`;
    const next: State = {
      level: state.level,
      expFrom: name,
      origin: 'alias',
      sender: owner ?? state.sender,
      ...(owner === undefined ? {} : { owner }),
      ...(rights === undefined ? {} : { rights }),
    };
    for (const t of targets) await this.#token(address, t, next);
    return true;
  }

  /** deliver_token: one destination of an alias, include or .forward file. */
  async #token(address: Address, target: AliasTarget, state: State): Promise<void> {
    const origin = state.origin ?? 'alias';
    switch (target.kind) {
      case 'address': {
        const full = target.address.includes('@')
          ? target.address
          : `${target.address}@${this.#ctx.settings.myorigin}`;
        const { domain } = splitAddress(full);
        if (this.#isLocalDomain(domain)) await this.recipient(full, state, target.direct);
        else this.actions.push({ kind: 'forward', address: full, sender: state.sender });
        return;
      }
      case 'command':
        if (!this.#ctx.settings.allowMailToCommands.includes(origin)) {
          this.#result(address, 'bounced', '5.7.1', 'mail to command is restricted');
          return;
        }
        this.actions.push({
          kind: 'command',
          command: target.command,
          address,
          origin,
          ...(state.rights === undefined ? {} : { rights: state.rights }),
          sender: state.sender,
        });
        return;
      case 'file':
        if (!this.#ctx.settings.allowMailToFiles.includes(origin)) {
          this.#result(address, 'bounced', '5.7.1', 'mail to file is restricted');
          return;
        }
        this.actions.push({
          kind: 'file',
          path: target.path,
          address,
          origin,
          ...(state.rights === undefined ? {} : { rights: state.rights }),
          sender: state.sender,
        });
        return;
      case 'include': {
        const level = state.level + 1;
        if (level > NESTING_LIMIT) {
          this.#result(address, 'bounced', '5.4.6', 'recipient nesting limit exceeded');
          return;
        }
        const privileges = this.#ctx.privileges;
        let rights = state.rights;
        let text: string;
        let owner: number;
        try {
          // include.c: read with the rights the expansion has reached the file with.
          ({ text, uid: owner } = await readIncludeFile(target.path, privileges?.reader(rights)));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (err instanceof TargetFileError)
            this.#result(address, 'bounced', '5.7.1', err.message);
          else if (code === 'EACCES' || code === 'EPERM')
            this.#result(
              address,
              'bounced',
              '5.3.5',
              `cannot open include file ${target.path}: permission denied`,
            );
          else
            this.#result(
              address,
              'deferred',
              '4.3.0',
              `cannot open include file ${target.path}: ${errorMessage(err)}`,
            );
          return;
        }
        if (privileges && rights === undefined) {
          // Reached without rights (a root-owned alias): the file's owner lends its own.
          try {
            rights = await privileges.rightsOfUid(owner);
          } catch (err) {
            if (!(err instanceof RightsError)) throw err;
            this.#result(address, 'deferred', '4.3.5', 'mail system configuration error');
            return;
          }
        }
        this.expanded = true;
        const next: State = {
          ...state,
          level,
          origin: 'include',
          ...(rights === undefined ? {} : { rights }),
        };
        for (const t of parseTargetFile(text)) await this.#token(address, t, next);
        return;
      }
    }
  }

  /** deliver_dotforward. True when a .forward file handled the recipient. */
  async #dotForward(
    address: Address,
    user: LocalUser,
    extension: string | undefined,
    domain: string,
    local: string,
    state: State,
  ): Promise<boolean> {
    if (user.home === undefined) return false;
    if (state.origin === 'forward' && state.expFrom === user.name) return false;
    const s = this.#ctx.settings;
    const values = {
      user: user.name,
      home: user.home,
      shell: user.shell,
      recipient: address,
      extension,
      domain,
      local,
      recipient_delimiter:
        extension === undefined ? undefined : this.#delimiterOf(local, user.name),
    };
    // dotforward.c: the recipient's rights, never those of the file's owner.
    let rights: DeliveryRights | undefined;
    try {
      rights = await this.#ctx.privileges?.rightsOfUser(user);
    } catch (err) {
      if (!(err instanceof RightsError)) throw err;
      this.#result(address, 'deferred', '4.3.5', `mail system configuration error: ${err.message}`);
      return true;
    }
    const read = this.#ctx.privileges?.reader(rights);
    const tried = new Set<string>();
    for (const template of s.forwardPath) {
      const file = localExpand(template, values, s.forwardExpansionFilter);
      if (file === undefined || file === '' || tried.has(file)) continue;
      tried.add(file);
      let text: string | undefined;
      try {
        text = await readForwardFile(file, user.uid, (why) => this.#ctx.warn?.(why), read);
      } catch (err) {
        this.#result(address, 'deferred', '4.3.0', `cannot open ${file}: ${errorMessage(err)}`);
        return true;
      }
      if (text === undefined) continue;
      const targets = parseTargetFile(text);
      if (targets.length === 0) return false;
      this.expanded = true;
      const next: State = {
        level: state.level,
        expFrom: user.name,
        origin: 'forward',
        sender: state.sender,
        ...(rights === undefined ? {} : { rights }),
      };
      for (const t of targets) {
        if (t.kind === 'address' && this.#isSelf(t.address, user.name)) {
          this.actions.push({
            kind: 'mailbox',
            address,
            user,
            ...(extension === undefined ? {} : { extension }),
            sender: state.sender,
          });
          continue;
        }
        if (t.kind === 'command') {
          if (!s.allowMailToCommands.includes('forward')) {
            this.#result(address, 'bounced', '5.7.1', 'mail to command is restricted');
            continue;
          }
          this.actions.push({
            kind: 'command',
            command: t.command,
            address,
            origin: 'forward',
            user,
            ...(rights === undefined ? {} : { rights }),
            sender: state.sender,
          });
          continue;
        }
        await this.#token(address, t, next);
      }
      return true;
    }
    return false;
  }

  #delimiterOf(local: string, user: string): string {
    return local.charAt(user.length);
  }

  #isSelf(target: string, user: string): boolean {
    const bare = target.replace(/^\\/, '');
    const { local, domain } = splitAddress(
      bare.includes('@') ? bare : `${bare}@${this.#ctx.settings.myorigin}`,
    );
    return local.toLowerCase() === user && this.#isLocalDomain(domain);
  }

  /** deliver_unknown: fallback transport, luser relay, or bounce. */
  #unknown(
    address: Address,
    user: string,
    local: string,
    extension: string | undefined,
    domain: string,
  ): void {
    const s = this.#ctx.settings;
    if (s.fallbackTransport !== '') {
      this.actions.push({ kind: 'transport', transport: s.fallbackTransport, address });
      return;
    }
    if (s.luserRelay !== '') {
      const relay = localExpand(
        s.luserRelay,
        {
          user,
          local,
          extension,
          domain,
          recipient: address,
          recipient_delimiter: s.recipientDelimiter.charAt(0),
        },
        s.forwardExpansionFilter,
      );
      if (relay !== undefined && relay !== '') {
        const full = relay.includes('@') ? relay : `${relay}@${s.myorigin}`;
        this.actions.push({ kind: 'forward', address: full, sender: this.#ctx.sender });
        return;
      }
    }
    this.#result(address, 'bounced', '5.1.1', `unknown user: "${user}"`);
  }
}

/** Looks `key` up like TableList does, also saying which member table answered. */
async function lookupWithTable(
  table: LookupTable,
  key: string,
): Promise<{ value: string; table: LookupTable } | undefined> {
  if (table instanceof TableList) {
    for (const member of table.tables) {
      const found = await lookupWithTable(member, key);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const value = await table.lookup(key);
  return value === undefined ? undefined : { value, table };
}
