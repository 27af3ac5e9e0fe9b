/**
 * Starts an SmtpReceiver on 127.0.0.1 with a RecordingSubmission and a real Rewriter,
 * and collects its log events.
 *
 * @module
 */

import { Logger } from '../../src/log.js';
import { resolveParameters } from '../../src/mta/main-parameters.js';
import { SmtpReceiver } from '../../src/receive/smtpd-receiver.js';
import { Rewriter } from '../../src/rewrite/rewriter.js';
import type { LogEvent } from '../../src/types.js';
import { type RawReply, RawSmtpClient } from './raw-smtp-client.js';
import { RecordingSubmission, type RecordingSubmissionOptions } from './recording-submission.js';

export interface ReceiverFixture {
  readonly receiver: SmtpReceiver;
  readonly submission: RecordingSubmission;
  readonly port: number;
  readonly logs: LogEvent[];
  /** Connects and reads the greeting. */
  connect(): Promise<{ client: RawSmtpClient; greeting: RawReply }>;
  /** Connects, reads the greeting and sends EHLO. */
  ehlo(name?: string): Promise<RawSmtpClient>;
  close(): Promise<void>;
}

/**
 * Test defaults: a fixed host name, no error delay, 127.0.0.1 outside mynetworks, and an
 * empty localRecipientMaps (every local part of the test host is accepted).
 */
export const TEST_HOST = 'mx.example.test';

export async function startReceiver(
  overrides: Record<string, unknown> = {},
  submissionOptions: RecordingSubmissionOptions = {},
): Promise<ReceiverFixture> {
  const params = resolveParameters({
    myhostname: TEST_HOST,
    mynetworks: ['192.0.2.0/24'],
    smtpdErrorSleepTime: 0,
    // Every local part of the test host is a recipient unless a test sets its own tables.
    localRecipientMaps: '',
    ...overrides,
  });
  const logs: LogEvent[] = [];
  const logger = new Logger([(e) => logs.push(e)]);
  const submission = new RecordingSubmission(submissionOptions);
  const receiver = new SmtpReceiver({
    params,
    submission,
    rewriter: new Rewriter({ params }),
    logger,
  });
  const { port } = await receiver.listen({ host: '127.0.0.1', port: 0 });
  const clients: RawSmtpClient[] = [];
  const connect = async (): Promise<{ client: RawSmtpClient; greeting: RawReply }> => {
    const r = await RawSmtpClient.greeted(port);
    clients.push(r.client);
    return r;
  };
  return {
    receiver,
    submission,
    port,
    logs,
    connect,
    async ehlo(name = 'client.example.org') {
      const { client } = await connect();
      const r = await client.command(`EHLO ${name}`);
      if (r.code !== 250) throw new Error(`EHLO failed: ${r.raw}`);
      return client;
    },
    async close() {
      for (const c of clients) c.close();
      await receiver.close();
    },
  };
}
