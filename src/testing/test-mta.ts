/**
 * createTestMta(): a complete Postern MTA for a test suite — real SmtpReceiver, Cleanup,
 * Rewriter and QueueManager over a MemoryQueueStore — that listens on 127.0.0.1 (a free
 * port) and captures every message instead of delivering it.
 *
 * @example
 * const mta = await createTestMta();
 * await sendWelcomeMail({ host: mta.host, port: mta.port }); // the code under test
 * const msg = await mta.waitForMessage('new.user@example.com');
 * expect(msg.subject).toBe('Welcome!');
 * await mta.close();
 *
 * @module
 */

import type { MtaConfig } from '../config/mta-config.js';
import { Logger } from '../log.js';
import { Mta } from '../mta.js';
import { formatAddress } from '../rewrite/address.js';
import type { LogEvent } from '../types.js';
import { CaptureAgent } from './capture-agent.js';
import type { CapturedMessage } from './captured-message.js';
import { type FaultOptions, FaultPlan, type FaultStage, STAGE_OF } from './faults.js';

/**
 * What `waitForMessage` matches: a recipient address, a predicate, or fields to equal.
 *
 * @example
 * ```ts
 * await mta.waitForMessage('bob@example.com');
 * await mta.waitForMessage((m) => m.attachments.length > 0);
 * await mta.waitForMessage({ subject: 'Welcome!' });
 * ```
 */
export type MessageMatch =
  | string
  | ((message: CapturedMessage) => boolean)
  | Partial<Pick<CapturedMessage, 'subject' | 'from' | 'text' | 'html'>>;

/**
 * Options for createTestMta().
 *
 * @example
 * ```ts
 * const mta = await createTestMta({
 *   config: { messageSizeLimit: 1_000_000 },
 *   onLog: (e) => console.log(formatLogLine(e)),
 * } satisfies TestMtaOptions);
 * ```
 */
export interface TestMtaOptions {
  /** More configuration (main parameters); the listener and the store are the test MTA's. */
  readonly config?: MtaConfig;
  /** Receives Postfix-style log events (e.g. `(e) => console.log(formatLogLine(e))`). */
  readonly onLog?: (event: LogEvent) => void;
}

/**
 * A whole MTA in the process that captures every delivery, with fault injection at each
 * SMTP stage: what createTestMta() returns.
 *
 * @example
 * ```ts
 * const mta: TestMta = await createTestMta();
 * mta.failNext('RCPT', '550 5.1.1 no such user', { recipient: 'gone@example.com' });
 * await sendWelcomeMail({ host: mta.host, port: mta.port });
 * const msg = await mta.waitForMessage('new.user@example.com', { timeout: 2000 });
 * await mta.close();
 * ```
 */
export interface TestMta {
  /** The address the SMTP listener is bound to (`127.0.0.1`). */
  readonly host: string;
  /** The listener's port (a free one). */
  readonly port: number;
  /** Everything captured so far, oldest first. */
  readonly messages: readonly CapturedMessage[];
  /** The next (or an already captured) message that matches; rejects after `timeout` ms (default 5000). */
  waitForMessage(match?: MessageMatch, options?: { timeout?: number }): Promise<CapturedMessage>;
  /** Forgets captured messages. */
  clear(): void;
  /** The next matching occurrence of `stage` answers `reply` (`'550 5.1.1 no such user'`). */
  failNext(stage: FaultStage, reply: string, options?: FaultOptions): void;
  /** The next matching occurrence of `stage` waits `ms` before it is answered. */
  delayNext(stage: FaultStage, ms: number, options?: FaultOptions): void;
  /** The next matching occurrence of `stage` gets `421` and the connection is closed. */
  dropNext(stage: FaultStage, options?: FaultOptions): void;
  /** Removes every fault not yet used. */
  clearFaults(): void;
  /** The underlying Mta (queue, components). */
  readonly mta: Mta;
  /** Stops the listener and the MTA; pending waits reject. */
  close(): Promise<void>;
  /** Iterates over messages as they arrive (`for await (const m of mta)`). */
  [Symbol.asyncIterator](): AsyncIterator<CapturedMessage>;
}

function describeMatch(match: MessageMatch | undefined): string {
  if (match === undefined) return 'any message';
  if (typeof match === 'string') return `a message to <${match}>`;
  if (typeof match === 'function') return `a message matching ${match.name || 'the predicate'}`;
  return `a message with ${JSON.stringify(match)}`;
}

function matches(message: CapturedMessage, match: MessageMatch | undefined): boolean {
  if (match === undefined) return true;
  if (typeof match === 'string') {
    const want = match.toLowerCase();
    return message.envelope.recipients.some((r) => r.toLowerCase() === want);
  }
  if (typeof match === 'function') return match(message);
  return Object.entries(match).every(([k, v]) => message[k as keyof CapturedMessage] === v);
}

/**
 * Starts a test MTA on 127.0.0.1 with a free port.
 *
 * @example
 * ```ts
 * const mta = await createTestMta();
 * try {
 *   await transport.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'Hi', text: 'Hello' });
 *   expect((await mta.waitForMessage('b@example.com')).subject).toBe('Hi');
 * } finally {
 *   await mta.close();
 * }
 * ```
 */
export async function createTestMta(options: TestMtaOptions = {}): Promise<TestMta> {
  const capture = new CaptureAgent();
  const faults = new FaultPlan();
  // One fault hook in front of each stage's list; smtpdDelayReject off so that each stage
  // answers at its own command.
  const stageLists: Record<string, unknown> = {};
  const listKey = {
    client: 'smtpdClientRestrictions',
    helo: 'smtpdHeloRestrictions',
    sender: 'smtpdSenderRestrictions',
    recipient: 'smtpdRecipientRestrictions',
    data: 'smtpdDataRestrictions',
    'end-of-data': 'smtpdEndOfDataRestrictions',
  } as const;
  for (const [stage, restrictionStage] of Object.entries(STAGE_OF)) {
    const key = listKey[restrictionStage as keyof typeof listKey];
    const own = options.config?.[key];
    stageLists[key] = [
      faults.hook(stage as FaultStage),
      ...(Array.isArray(own) ? own : own ? [own] : []),
    ];
  }
  const mta = new Mta(
    {
      myhostname: 'postern.test',
      ...options.config,
      ...stageLists,
      smtpdDelayReject: false,
      smtpd: [{ listen: '127.0.0.1:0' }],
      queueStore: { type: 'memory' },
      localTransport: 'capture',
      defaultTransport: 'capture',
      relayTransport: 'capture',
      agents: { capture },
    },
    { logger: new Logger(options.onLog ? [options.onLog] : []) },
  );
  await mta.start();
  const { host, port } = mta.listeners[0]!;
  const messages: CapturedMessage[] = [];
  const waiters = new Set<(m: CapturedMessage) => void>();
  capture.onMessage((m) => {
    messages.push(m);
    for (const w of [...waiters]) w(m);
  });

  const testMta: TestMta = {
    host,
    port,
    mta,
    get messages() {
      return messages;
    },
    waitForMessage(match, { timeout = 5000 } = {}) {
      const found = messages.find((m) => matches(m, match));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = (m: CapturedMessage) => {
          if (!matches(m, match)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(m);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const seen = messages.length
            ? ` (captured so far: ${messages.map((m) => `"${m.subject ?? ''}" to ${m.envelope.recipients.map((r) => `<${formatAddress(r)}>`).join(', ')}`).join('; ')})`
            : ' (nothing was captured)';
          reject(
            new Error(
              `waitForMessage: no ${describeMatch(match).replace(/^an? /, '')} arrived within ${timeout} ms${seen}`,
            ),
          );
        }, timeout);
        waiters.add(waiter);
      });
    },
    clear() {
      messages.length = 0;
    },
    failNext(stage, reply, opts) {
      faults.add(stage, { kind: 'reply', reply }, opts);
    },
    delayNext(stage, ms, opts) {
      faults.add(stage, { kind: 'delay', ms }, opts);
    },
    dropNext(stage, opts) {
      faults.add(stage, { kind: 'reply', reply: '421 4.4.2 connection dropped by the test' }, opts);
    },
    clearFaults() {
      faults.clear();
    },
    close: () => mta.stop(),
    [Symbol.asyncIterator]() {
      let next = 0;
      return {
        next: async () => {
          while (next >= messages.length)
            await new Promise<CapturedMessage>((r) =>
              waiters.add(function once(m) {
                waiters.delete(once);
                r(m);
              }),
            );
          return { value: messages[next++]!, done: false };
        },
      };
    },
  };
  return testMta;
}

/**
 * A test SMTP server for testing a program's own outbound mail: the same server as
 * createTestMta (it accepts mail for any domain from 127.0.0.1 and captures it), with
 * the same fault controls.
 *
 * @example
 * ```ts
 * const server = await createTestSmtpServer();
 * server.dropNext('DATA');
 * await expect(myMailer.send({ host: server.host, port: server.port })).rejects.toThrow();
 * await server.close();
 * ```
 */
export const createTestSmtpServer: (options?: TestMtaOptions) => Promise<TestMta> = createTestMta;
