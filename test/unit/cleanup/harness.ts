/** Shared set-up for the Cleanup tests: real MemoryQueueStore, Rewriter and Logger. */

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Cleanup } from '../../../src/cleanup/cleanup.js';
import { ManualClock } from '../../../src/clock.js';
import { Logger } from '../../../src/log.js';
import { type MainParameters, resolveParameters } from '../../../src/mta/main-parameters.js';
import { MemoryQueueStore } from '../../../src/queue/stores/memory-store.js';
import type { MessageRecord, QueueStore } from '../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../src/queue-id.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';
import type {
  LogEvent,
  NewRecipient,
  SenderParams,
  SubmissionAction,
  SubmissionResult,
  SubmissionSource,
} from '../../../src/types.js';

export const T0 = Date.parse('2026-11-29T12:00:00Z');

export const REMOTE: SubmissionSource = {
  component: 'smtpd',
  protocol: 'ESMTP',
  client: { address: '192.0.2.10', name: 'client.example.net' },
  helo: 'helo.example.net',
};
export const LOOPBACK: SubmissionSource = {
  component: 'smtpd',
  protocol: 'ESMTP',
  client: { address: '127.0.0.1', name: 'localhost' },
  helo: 'localhost',
};

export interface Harness {
  params: MainParameters;
  store: QueueStore;
  cleanup: Cleanup;
  clock: ManualClock;
  logs: LogEvent[];
}

export async function harness(
  overrides: Record<string, unknown> = {},
  store: QueueStore = new MemoryQueueStore(),
): Promise<Harness> {
  const params = resolveParameters({ myhostname: 'mx.example.com', ...overrides });
  await store.open();
  const clock = new ManualClock(T0);
  const logs: LogEvent[] = [];
  const logger = new Logger([(e) => logs.push(e)], () => clock.now());
  const cleanup = new Cleanup({
    params,
    store,
    rewriter: new Rewriter({ params }),
    queueIds: new QueueIdGenerator('TEST0'),
    clock,
    logger,
  });
  return { params, store, cleanup, clock, logs };
}

export interface Submission {
  source?: SubmissionSource;
  sender?: string;
  senderParams?: SenderParams;
  recipients?: (string | NewRecipient)[];
  actions?: SubmissionAction[];
  content: string | Buffer | Buffer[];
  /** QMQP order: content first, envelope after. */
  contentFirst?: boolean;
}

export async function submit(h: Harness, s: Submission): Promise<SubmissionResult> {
  const tx = await h.cleanup.open(s.source ?? REMOTE);
  const envelope = (): void => {
    if (s.sender !== undefined) tx.setSender(s.sender, s.senderParams);
    for (const r of s.recipients ?? []) tx.addRecipient(typeof r === 'string' ? { address: r } : r);
    for (const a of s.actions ?? []) tx.apply(a);
  };
  if (!s.contentFirst) envelope();
  const chunks = Array.isArray(s.content) ? s.content : [Buffer.from(s.content)];
  await pipeline(Readable.from(chunks, { objectMode: false }), tx.content);
  if (s.contentFirst) envelope();
  return tx.commit();
}

/** The record and content of every message in incoming. */
export async function incoming(
  store: QueueStore,
): Promise<{ record: MessageRecord; content: string }[]> {
  const claimed = await store.claim({
    owner: 'test',
    limit: 100,
    now: Date.now(),
    leaseMs: 60_000,
  });
  const out: { record: MessageRecord; content: string }[] = [];
  for (const c of claimed)
    out.push({ record: c.record, content: await readAll(store.openContent(c.record.queueId)) });
  return out;
}

export async function readAll(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(parts).toString('utf8');
}

/** The one message in incoming. */
export async function only(store: QueueStore): Promise<{ record: MessageRecord; content: string }> {
  const all = await incoming(store);
  if (all.length !== 1) throw new Error(`expected one message in incoming, found ${all.length}`);
  return all[0]!;
}
