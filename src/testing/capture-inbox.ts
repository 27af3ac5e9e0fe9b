/**
 * CaptureInbox: the captured messages of a test MTA and everything that waits on them —
 * `waitForMessage`, `waitForMessages`, `expectNoMessage`, `for await` iterators — and the
 * change events the capture server's web UI follows.
 *
 * Postfix counterpart: none (a mailbox a test reads).
 *
 * Rules a test can rely on:
 * - Messages are kept oldest first, at most `maxMessages` of them; the oldest is dropped
 *   when a new one would exceed that.
 * - Each wait returns the oldest matching message that no earlier wait returned; a wait
 *   that is still pending gets a new message before a later wait does. A wait that
 *   times out gives back what it had taken. `messages` always lists everything kept.
 * - `clear()` forgets every message, settles pending waits (they reject; a pending
 *   expectNoMessage resolves, as nothing arrived) and ends iterators; `close()` does
 *   the same and makes later waits reject at once.
 *
 * Does not: persist anything; read the messages (see captured-message.ts).
 *
 * @module
 */

import { formatAddress } from '../address/address.js';
import type { CapturedMessage } from './captured-message.js';

/**
 * What a wait matches: a recipient address (any envelope recipient), a predicate, or
 * fields — `subject`, `text` and `html` equal the string or match the RegExp; `from`
 * and `to` compare addresses (case-insensitive) or test a RegExp against `Name <address>`;
 * `to` looks at every envelope recipient and the To and Cc mailboxes.
 *
 * @example
 * ```ts
 * await mta.waitForMessage('bob@example.com');
 * await mta.waitForMessage((m) => m.attachments.length > 0);
 * await mta.waitForMessage({ subject: /welcome/i, from: 'app@example.com' });
 * ```
 */
export type MessageMatch =
  | string
  | ((message: CapturedMessage) => boolean)
  | {
      readonly subject?: string | RegExp;
      readonly from?: string | RegExp;
      readonly to?: string | RegExp;
      readonly text?: string | RegExp;
      readonly html?: string | RegExp;
    };

/**
 * A change in the inbox, as the capture server's event stream reports it.
 *
 * @example
 * ```ts
 * const event: InboxEvent = { type: 'delete', ids: ['4Xk9Qz1Ab3kF2'] };
 * ```
 */
export type InboxEvent =
  | { readonly type: 'new'; readonly message: CapturedMessage }
  | { readonly type: 'delete'; readonly ids: readonly string[] }
  | { readonly type: 'clear' };

/** How long waitForMessage waits by default: below the test runners' 5 s test timeout. */
export const DEFAULT_WAIT_MS = 3000;
/** How long expectNoMessage watches by default. */
export const DEFAULT_QUIET_MS = 500;
/** How many messages are kept by default (Mailpit's default `--max`). */
export const DEFAULT_MAX_MESSAGES = 500;

interface PendingWait {
  readonly match: MessageMatch | undefined;
  readonly count: number;
  readonly taken: CapturedMessage[];
  settle(error?: Error): void;
}

interface Watch {
  readonly match: MessageMatch | undefined;
  fail(message: CapturedMessage): void;
  /** Ends the watch early: nothing can arrive any more (clear, close). */
  end(): void;
}

interface IteratorState {
  /** The sequence number of the last message yielded. */
  last: number;
  wake: (() => void) | undefined;
}

function fieldMatches(value: string | undefined, want: string | RegExp): boolean {
  if (value === undefined) return false;
  return typeof want === 'string' ? value === want : want.test(value);
}

function addressMatches(
  candidates: readonly { name: string; address: string }[],
  want: string | RegExp,
): boolean {
  return candidates.some((c) =>
    typeof want === 'string'
      ? c.address.toLowerCase() === want.toLowerCase()
      : want.test(c.name ? `${c.name} <${c.address}>` : c.address),
  );
}

/** Whether `message` satisfies `match`. */
export function matchesMessage(message: CapturedMessage, match: MessageMatch | undefined): boolean {
  if (match === undefined) return true;
  if (typeof match === 'string') {
    const want = match.toLowerCase();
    return message.envelope.recipients.some((r) => r.toLowerCase() === want);
  }
  if (typeof match === 'function') return match(message);
  if (match.subject !== undefined && !fieldMatches(message.subject, match.subject)) return false;
  if (match.text !== undefined && !fieldMatches(message.text, match.text)) return false;
  if (match.html !== undefined && !fieldMatches(message.html, match.html)) return false;
  if (match.from !== undefined && !addressMatches(message.from ? [message.from] : [], match.from))
    return false;
  if (match.to !== undefined) {
    const all = [
      ...message.envelope.recipients.map((address) => ({ name: '', address })),
      ...message.to,
      ...message.cc,
    ];
    if (!addressMatches(all, match.to)) return false;
  }
  return true;
}

function describeMatch(match: MessageMatch | undefined): string {
  if (match === undefined) return 'message';
  if (typeof match === 'string') return `message to <${match}>`;
  if (typeof match === 'function') return `message matching ${match.name || 'the predicate'}`;
  const fields = Object.entries(match).map(([k, v]) => `${k}: ${String(v)}`);
  return `message with ${fields.join(', ')}`;
}

function describeMessages(messages: readonly CapturedMessage[]): string {
  if (messages.length === 0) return ' (nothing was captured)';
  const list = messages
    .map(
      (m) =>
        `"${m.subject ?? ''}" to ${m.envelope.recipients.map((r) => `<${formatAddress(r)}>`).join(', ')}`,
    )
    .join('; ');
  return ` (captured so far: ${list})`;
}

/** The captured messages and the waits on them. */
export class CaptureInbox {
  readonly #max: number;
  #messages: CapturedMessage[] = [];
  readonly #byId = new Map<string, CapturedMessage>();
  readonly #seq = new WeakMap<CapturedMessage, number>();
  #nextSeq = 1;
  /** Messages a wait has returned (or holds while it waits for more). */
  #returned = new WeakSet<CapturedMessage>();
  readonly #read = new Set<string>();
  readonly #waits: PendingWait[] = [];
  readonly #watches = new Set<Watch>();
  readonly #iterators = new Set<IteratorState>();
  readonly #listeners = new Set<(event: InboxEvent) => void>();
  #closed = false;

  constructor(options: { maxMessages?: number } = {}) {
    const max = options.maxMessages ?? DEFAULT_MAX_MESSAGES;
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`maxMessages must be a whole number of at least 1; got ${max}`);
    this.#max = max;
  }

  /** Everything kept, oldest first. */
  get messages(): readonly CapturedMessage[] {
    return this.#messages;
  }

  /** A kept message by its ID (the queue ID). */
  get(id: string): CapturedMessage | undefined {
    return this.#byId.get(id);
  }

  /** Whether the capture server's API has shown the message (Mailpit's `Read`). */
  isRead(id: string): boolean {
    return this.#read.has(id);
  }

  /** Marks messages read or unread (all when `ids` is omitted). */
  setRead(read: boolean, ids?: readonly string[]): void {
    for (const id of ids ?? [...this.#byId.keys()]) {
      if (read && this.#byId.has(id)) this.#read.add(id);
      else this.#read.delete(id);
    }
  }

  /** Listens for changes; returns the unsubscribe function. */
  onChange(listener: (event: InboxEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Keeps a newly accepted message and hands it to whoever waits. */
  add(message: CapturedMessage): void {
    if (this.#closed) return;
    this.#messages.push(message);
    this.#byId.set(message.queueId, message);
    this.#seq.set(message, this.#nextSeq++);
    const dropped: string[] = [];
    while (this.#messages.length > this.#max) {
      const old = this.#messages.shift()!;
      this.#forget(old);
      dropped.push(old.queueId);
    }
    if (dropped.length > 0) this.#emit({ type: 'delete', ids: dropped });
    this.#emit({ type: 'new', message });
    for (const watch of [...this.#watches])
      if (matchesMessage(message, watch.match)) watch.fail(message);
    for (const wait of [...this.#waits]) {
      if (!matchesMessage(message, wait.match)) continue;
      this.#returned.add(message);
      wait.taken.push(message);
      if (wait.taken.length === wait.count) wait.settle();
      break;
    }
    for (const it of this.#iterators) it.wake?.();
  }

  /** Removes messages by ID; returns the IDs removed. */
  remove(ids: readonly string[]): string[] {
    const gone = new Set(ids.filter((id) => this.#byId.has(id)));
    if (gone.size === 0) return [];
    this.#messages = this.#messages.filter((m) => !gone.has(m.queueId));
    for (const id of gone) this.#forget(this.#byId.get(id)!);
    this.#emit({ type: 'delete', ids: [...gone] });
    return [...gone];
  }

  /**
   * Resolves with `count` matching messages not returned before (oldest first); rejects
   * after `timeout` ms, naming what was captured.
   */
  waitFor(
    name: string,
    match: MessageMatch | undefined,
    count: number,
    timeout: number,
  ): Promise<CapturedMessage[]> {
    if (!Number.isInteger(count) || count < 1)
      return Promise.reject(
        new RangeError(`${name}: count must be a whole number of at least 1; got ${count}`),
      );
    if (this.#closed)
      return Promise.reject(new Error(`${name}: the test MTA is closed; create a new one`));
    const taken: CapturedMessage[] = [];
    for (const m of this.#messages) {
      if (taken.length === count) break;
      if (!this.#returned.has(m) && matchesMessage(m, match)) taken.push(m);
    }
    for (const m of taken) this.#returned.add(m);
    if (taken.length === count) return Promise.resolve(taken);
    return new Promise((resolve, reject) => {
      const wait: PendingWait = {
        match,
        count,
        taken,
        settle: (error) => {
          clearTimeout(timer);
          const i = this.#waits.indexOf(wait);
          if (i >= 0) this.#waits.splice(i, 1);
          if (!error) {
            resolve(taken);
            return;
          }
          // Give back what this wait had taken, so a later wait can have it.
          for (const m of taken) this.#returned.delete(m);
          reject(error);
        },
      };
      const what = count === 1 ? describeMatch(match) : `${count} × ${describeMatch(match)}`;
      const timer = setTimeout(() => {
        const got = count === 1 ? '' : `; ${taken.length} of ${count} arrived`;
        wait.settle(
          new Error(
            `${name}: no ${what} arrived within ${timeout} ms${got}${describeMessages(this.#messages)}`,
          ),
        );
      }, timeout);
      this.#waits.push(wait);
    });
  }

  /**
   * Resolves after `within` ms if no matching message that no wait returned is kept or
   * arrives meanwhile; rejects at once when one is or does.
   */
  expectNone(match: MessageMatch | undefined, within: number): Promise<void> {
    const unexpected = (m: CapturedMessage) =>
      new Error(
        `expectNoMessage: expected no ${describeMatch(match)} within ${within} ms, but "${m.subject ?? ''}" to ${m.envelope.recipients.map((r) => `<${formatAddress(r)}>`).join(', ')} arrived`,
      );
    const present = this.#messages.find((m) => !this.#returned.has(m) && matchesMessage(m, match));
    if (present) return Promise.reject(unexpected(present));
    return new Promise((resolve, reject) => {
      const watch: Watch = {
        match,
        fail: (m) => {
          clearTimeout(timer);
          this.#watches.delete(watch);
          reject(unexpected(m));
        },
        end: () => {
          clearTimeout(timer);
          this.#watches.delete(watch);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#watches.delete(watch);
        resolve();
      }, within);
      this.#watches.add(watch);
    });
  }

  /** Iterates over kept and arriving messages; ends at clear() or close(). */
  iterate(): AsyncIterator<CapturedMessage> {
    const state: IteratorState = { last: 0, wake: undefined };
    if (this.#closed) state.last = -1;
    else this.#iterators.add(state);
    return {
      next: async () => {
        for (;;) {
          if (state.last < 0) return { value: undefined, done: true };
          const next = this.#messages.find((m) => this.#seq.get(m)! > state.last);
          if (next) {
            state.last = this.#seq.get(next)!;
            return { value: next, done: false };
          }
          await new Promise<void>((r) => {
            state.wake = r;
          });
          state.wake = undefined;
        }
      },
      return: async () => {
        this.#endIterator(state);
        return { value: undefined, done: true };
      },
    };
  }

  /** Forgets every message; pending waits reject and iterators end. */
  clear(): void {
    this.#settleAll('clear() was called while waiting');
    this.#messages = [];
    this.#byId.clear();
    this.#read.clear();
    this.#returned = new WeakSet();
    this.#emit({ type: 'clear' });
  }

  /** As clear(), and later waits reject at once. */
  close(): void {
    if (this.#closed) return;
    this.#settleAll('the test MTA was closed while waiting');
    this.#closed = true;
  }

  #settleAll(reason: string): void {
    for (const wait of [...this.#waits]) wait.settle(new Error(`waitForMessage: ${reason}`));
    for (const watch of [...this.#watches]) watch.end();
    for (const it of [...this.#iterators]) this.#endIterator(it);
  }

  #endIterator(state: IteratorState): void {
    state.last = -1;
    this.#iterators.delete(state);
    state.wake?.();
  }

  #forget(message: CapturedMessage): void {
    this.#byId.delete(message.queueId);
    this.#read.delete(message.queueId);
  }

  #emit(event: InboxEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A failing listener (a closed event stream) must not stop the capture.
      }
    }
  }
}
