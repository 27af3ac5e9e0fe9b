/**
 * createTestMta(): a complete Postern MTA for a test suite — real SmtpReceiver, Cleanup,
 * Rewriter and QueueManager over a memory queue — that listens on 127.0.0.1 (a free
 * port), accepts mail for any domain and captures every accepted message instead of
 * delivering it; with `http`, it also serves the capture server's Mailpit-compatible
 * API and web UI.
 *
 * Capture happens at acceptance (capture-store.ts): when the client reads its 250, the
 * message is in `messages`, once per transaction with all its recipients. The test MTA
 * sends no postmaster notices unless the config asks for them (`notifyClasses`).
 *
 * Does not: relay anything (every transport is the capture), persist mail, or check
 * AUTH credentials (with `acceptAnyAuth`, any login succeeds).
 *
 * SECURITY: both listeners bind loopback addresses unless told otherwise; the capture
 * server is for development machines and CI, not for exposure to a network.
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

import type { DeliveryAgent } from '../deliver/types.js';
import { Logger } from '../log.js';
import { Mta } from '../mta/mta.js';
import type { MtaConfig } from '../mta/mta-config.js';
import { SmtpReply } from '../smtp-reply.js';
import type { LogEvent } from '../types.js';
import {
  CaptureInbox,
  DEFAULT_QUIET_MS,
  DEFAULT_WAIT_MS,
  type MessageMatch,
} from './capture-inbox.js';
import { CaptureServer, parseHostPort } from './capture-server.js';
import { CapturingQueueStore } from './capture-store.js';
import { type CapturedMessage, parseCapturedMessage } from './captured-message.js';
import { type FaultOptions, FaultPlan, type FaultStage, STAGE_OF, seededRandom } from './faults.js';

export type { MessageMatch } from './capture-inbox.js';

/**
 * Options for createTestMta().
 *
 * @example
 * ```ts
 * const mta = await createTestMta({
 *   config: { messageSizeLimit: 1_000_000 },
 *   http: true, // the capture server's API and web UI on a free port: mta.httpUrl
 *   seed: 42,
 *   onLog: (e) => console.log(formatLogLine(e)),
 * } satisfies TestMtaOptions);
 * ```
 */
export interface TestMtaOptions {
  /** More configuration (main parameters); the listener and the store are the test MTA's. */
  readonly config?: MtaConfig;
  /** Receives Postfix-style log events (e.g. `(e) => console.log(formatLogLine(e))`). */
  readonly onLog?: (event: LogEvent) => void;
  /** Where the SMTP listener binds, `HOST:PORT`. @default '127.0.0.1:0' (a free port) */
  readonly smtp?: string;
  /**
   * Serve the capture server's Mailpit-compatible API and web UI: `true` for a free
   * port on 127.0.0.1, or `HOST:PORT`. Its address is `httpUrl`. @default false
   */
  readonly http?: boolean | string;
  /** Offer AUTH (PLAIN, LOGIN) without TLS and accept any login. @default false */
  readonly acceptAnyAuth?: boolean;
  /** At most this many messages are kept; the oldest is dropped. @default 500 */
  readonly maxMessages?: number;
  /** Seed for the faults' `probability`, so a run can be replayed. @default Math.random */
  readonly seed?: number;
}

/**
 * A whole MTA in the process that captures every accepted message, with fault
 * injection at each SMTP stage: what createTestMta() returns.
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
  /** The capture server's base URL (`http://127.0.0.1:8025`) when `http` was given. */
  readonly httpUrl: string | undefined;
  /** Everything captured and kept, oldest first (also what earlier waits returned). */
  readonly messages: readonly CapturedMessage[];
  /**
   * The oldest matching message that no earlier wait returned, now or when it arrives;
   * rejects after `timeout` ms (default 3000) naming what was captured.
   */
  waitForMessage(match?: MessageMatch, options?: { timeout?: number }): Promise<CapturedMessage>;
  /** As waitForMessage, for `count` messages (oldest first). */
  waitForMessages(
    count: number,
    match?: MessageMatch,
    options?: { timeout?: number },
  ): Promise<CapturedMessage[]>;
  /**
   * Resolves after `within` ms (default 500) if no matching message that no wait returned
   * is captured by then; rejects as soon as one is.
   */
  expectNoMessage(match?: MessageMatch, options?: { within?: number }): Promise<void>;
  /** Forgets captured messages; pending waits reject and `for await` loops end. */
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
  /** Stops the listeners and the MTA; pending waits reject and `for await` loops end. */
  close(): Promise<void>;
  /** Iterates over messages as they arrive (`for await (const m of mta)`). */
  [Symbol.asyncIterator](): AsyncIterator<CapturedMessage>;
}

const LIST_KEY = {
  client: 'smtpdClientRestrictions',
  helo: 'smtpdHeloRestrictions',
  sender: 'smtpdSenderRestrictions',
  recipient: 'smtpdRecipientRestrictions',
  data: 'smtpdDataRestrictions',
  'end-of-data': 'smtpdEndOfDataRestrictions',
} as const;

const CAPTURED = new SmtpReply(250, '2.0.0', 'captured at acceptance');

/** The transport behind every route: the message was captured when it was queued. */
const capturedAgent: DeliveryAgent = {
  async deliver(request, reporter) {
    for (const r of request.recipients)
      reporter.recipient(r.id, { status: 'sent', reply: CAPTURED, relay: 'capture' });
  },
};

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
  const inbox = new CaptureInbox(
    options.maxMessages !== undefined ? { maxMessages: options.maxMessages } : {},
  );
  const faults = new FaultPlan(
    options.seed !== undefined ? seededRandom(options.seed) : Math.random,
  );
  const own = options.config ?? {};
  // One fault hook in front of each stage's list; smtpdDelayReject off so that each stage
  // answers at its own command.
  const stageLists: Record<string, unknown> = {};
  for (const [stage, restrictionStage] of Object.entries(STAGE_OF)) {
    const key = LIST_KEY[restrictionStage as keyof typeof LIST_KEY];
    const list = own[key];
    stageLists[key] = [
      faults.hook(stage as FaultStage),
      ...(Array.isArray(list) ? list : list ? [list] : []),
    ];
  }
  // Mail for any domain from any client is accepted (after the config's own recipient
  // checks): nothing is relayed, every transport captures. The trailing
  // reject_unauth_destination is never reached; it satisfies the open-relay guard.
  if (own.smtpdRelayRestrictions === undefined) {
    stageLists.smtpdRelayRestrictions = [];
    (stageLists.smtpdRecipientRestrictions as unknown[]).push(
      () => 'OK',
      'reject_unauth_destination',
    );
  }
  const logger = new Logger(options.onLog ? [options.onLog] : []);
  const store = new CapturingQueueStore(
    async (record, raw) => {
      try {
        inbox.add(
          await parseCapturedMessage(raw, {
            queueId: record.queueId,
            sender: record.sender,
            recipients: record.recipients.map((r) => r.address),
            deliveredAt: new Date(),
            authUser: record.source.authUser,
          }),
        );
      } catch (err) {
        logger.warning('capture', record.queueId, `cannot parse the message: ${String(err)}`);
      }
    },
    { logger },
  );
  const smtp = parseHostPort(options.smtp ?? '127.0.0.1:0', 'smtp');
  const mta = new Mta(
    {
      myhostname: 'postern.test',
      // Postmaster notices (an injected 4xx is a "resource" problem) only when asked for.
      notifyClasses: [],
      // Every address is captured, local parts of postern.test included.
      localRecipientMaps: '',
      ...own,
      ...stageLists,
      smtpdDelayReject: false,
      smtpd: [
        {
          listen: `${smtp.host.includes(':') ? `[${smtp.host}]` : smtp.host}:${smtp.port}`,
          ...(options.acceptAnyAuth
            ? {
                smtpdSaslAuthEnable: true,
                smtpdTlsAuthOnly: false,
                smtpdSaslMechanisms: ['PLAIN', 'LOGIN'],
                authenticator: () => true,
              }
            : {}),
        },
      ],
      queueStore: store,
      localTransport: 'capture',
      defaultTransport: 'capture',
      relayTransport: 'capture',
      agents: { capture: capturedAgent },
    },
    { logger, smtpdCommandCheck: faults.commandCheck },
  );
  await mta.start();
  const { host, port } = mta.listeners[0]!;
  let server: CaptureServer | undefined;
  if (options.http) {
    const where = parseHostPort(options.http === true ? '127.0.0.1:0' : options.http, 'http');
    server = new CaptureServer({ inbox, faults, smtp: { host, port }, logger });
    try {
      await server.listen(where.host, where.port);
    } catch (err) {
      await mta.stop();
      throw err;
    }
  }

  const testMta: TestMta = {
    host,
    port,
    httpUrl: server?.url,
    mta,
    get messages() {
      return inbox.messages;
    },
    async waitForMessage(match, { timeout = DEFAULT_WAIT_MS } = {}) {
      const [message] = await inbox.waitFor('waitForMessage', match, 1, timeout);
      return message!;
    },
    waitForMessages(count, match, { timeout = DEFAULT_WAIT_MS } = {}) {
      return inbox.waitFor('waitForMessages', match, count, timeout);
    },
    expectNoMessage(match, { within = DEFAULT_QUIET_MS } = {}) {
      return inbox.expectNone(match, within);
    },
    clear() {
      inbox.clear();
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
    async close() {
      inbox.close();
      await server?.close();
      await mta.stop();
    },
    [Symbol.asyncIterator]() {
      return inbox.iterate();
    },
  };
  return testMta;
}

/**
 * A test SMTP server for testing a program's own outbound mail: the same server as
 * createTestMta (it accepts mail for any domain and captures it), with the same fault
 * controls.
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
