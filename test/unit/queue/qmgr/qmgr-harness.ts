/**
 * Test harness for the queue manager: a fake clock shared by store and manager, a
 * resolver routing by domain, a recording notifier and a delivery agent the test
 * controls (it holds each request until told, and reports destination status).
 *
 * @module
 */

import { ManualClock } from '../../../../src/clock.js';
import { AgentRegistry } from '../../../../src/deliver/agent-registry.js';
import type {
  DeliveryAgent,
  DeliveryReporter,
  DeliveryRequest,
} from '../../../../src/deliver/types.js';
import { resolveParameters } from '../../../../src/mta/main-parameters.js';
import {
  type Notifier,
  QueueManager,
  type RouteResolver,
  type TransportLimits,
} from '../../../../src/queue/qmgr/queue-manager.js';
import { MemoryQueueStore } from '../../../../src/queue/stores/memory-store.js';
import type { MessageRecord, StoredRecipient } from '../../../../src/queue/types.js';
import { QueueIdGenerator } from '../../../../src/queue-id.js';
import type { ResolveResult } from '../../../../src/rewrite/types.js';
import { SmtpReply } from '../../../../src/smtp-reply.js';
import type { DsnNotifyKeyword } from '../../../../src/types.js';

export const T0 = Date.parse('2026-01-05T00:00:00Z');
export const MIN = 60_000;

/** `*@local.test` → local, `*@held.test` → transport `held`, else smtp by domain. */
export const resolver: RouteResolver = {
  async resolve(address: string): Promise<ResolveResult> {
    const domain = address.slice(address.lastIndexOf('@') + 1);
    const transport = domain === 'local.test' ? 'local' : domain === 'held.test' ? 'held' : 'smtp';
    return {
      addressClass: transport === 'local' ? 'local' : 'default',
      transport,
      nexthop: domain,
      recipient: address,
      routed: false,
    };
  },
};

export class RecordingNotifier implements Notifier {
  readonly calls: { queueId: string; kind: string; recipients: string[] }[] = [];
  async notify(
    record: MessageRecord,
    recipients: readonly StoredRecipient[],
    kind: 'failure' | 'delay' | 'success',
  ) {
    this.calls.push({
      queueId: record.queueId,
      kind,
      recipients: recipients.map((r) => r.address),
    });
    return 'DSN0000000001';
  }
}

export type Answer = 'sent' | 'deferred' | 'bounced' | 'refused';

interface Held {
  readonly request: DeliveryRequest;
  readonly finish: () => void;
}

/**
 * An agent whose requests wait until the test releases them (or answer at once when
 * `auto` is set). `refused` reports a failed destination (connection refused) and
 * defers every recipient, like an SMTP client that cannot connect.
 */
export class ControlledAgent implements DeliveryAgent {
  readonly requests: DeliveryRequest[] = [];
  readonly held: Held[] = [];
  readonly inFlight = new Map<string, number>();
  readonly maxInFlight = new Map<string, number>();
  /** Order in which requests started: queue ID of each. */
  readonly started: string[] = [];

  constructor(
    private readonly answer: (address: string, request: DeliveryRequest) => Answer,
    private readonly auto = false,
  ) {}

  async deliver(request: DeliveryRequest, reporter: DeliveryReporter): Promise<void> {
    this.requests.push(request);
    this.started.push(request.queueId);
    const n = (this.inFlight.get(request.nexthop) ?? 0) + 1;
    this.inFlight.set(request.nexthop, n);
    this.maxInFlight.set(request.nexthop, Math.max(n, this.maxInFlight.get(request.nexthop) ?? 0));
    try {
      if (!this.auto) await new Promise<void>((finish) => this.held.push({ request, finish }));
      let refused = false;
      for (const r of request.recipients) {
        const a = this.answer(r.address, request);
        if (a === 'refused') refused = true;
        if (a === 'sent')
          reporter.recipient(r.id, {
            status: 'sent',
            reply: new SmtpReply(250, '2.0.0', 'ok'),
            relay: `${request.nexthop}[192.0.2.1]:25`,
          });
        else if (a === 'bounced')
          reporter.recipient(r.id, {
            status: 'bounced',
            reply: new SmtpReply(550, '5.1.1', 'no such user'),
            relay: `${request.nexthop}[192.0.2.1]:25`,
            remoteMta: `dns; ${request.nexthop}`,
          });
        else
          reporter.recipient(r.id, {
            status: 'deferred',
            reply: new SmtpReply(450, '4.4.1', `connect to ${request.nexthop}: Connection refused`),
          });
      }
      reporter.destination(
        refused
          ? {
              ok: false,
              reply: new SmtpReply(
                421,
                '4.4.1',
                `connect to ${request.nexthop}: Connection refused`,
              ),
            }
          : { ok: true },
      );
    } finally {
      this.inFlight.set(request.nexthop, (this.inFlight.get(request.nexthop) ?? 1) - 1);
    }
  }

  /** Lets the oldest held request answer; resolves after its outcome is processed. */
  async releaseOne(): Promise<boolean> {
    const h = this.held.shift();
    if (!h) return false;
    h.finish();
    await settle();
    return true;
  }
}

/** Lets promise chains and immediate callbacks run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

export async function setup(
  agents: Record<string, DeliveryAgent>,
  overrides: Record<string, unknown> = {},
  transports: Record<string, TransportLimits> = {},
) {
  const clock = new ManualClock(T0);
  const store = new MemoryQueueStore({ clock });
  await store.open();
  const params = resolveParameters({ myhostname: 'mx.example.test', ...overrides });
  const registry = new AgentRegistry();
  for (const [name, agent] of Object.entries(agents)) registry.register(name, agent);
  const notifier = new RecordingNotifier();
  const qmgr = new QueueManager({
    store,
    resolver,
    agents: registry,
    bounce: notifier,
    params,
    clock,
    transports,
  });
  const ids = new QueueIdGenerator('Test0', () => BigInt(clock.now()) * 1000n);
  const enqueue = async (
    recipients: string[],
    options: { sender?: string; arrivalTime?: number; notify?: DsnNotifyKeyword[] } = {},
  ) => {
    const id = ids.next();
    const w = await store.create(id);
    w.content.end('Subject: t\r\n\r\nbody\r\n');
    await w.commit({
      queueId: id,
      sender: options.sender ?? 'sender@example.org',
      recipients: recipients.map((address, i) => ({
        id: i,
        address,
        originalAddress: address,
        ...(options.notify ? { notify: options.notify } : {}),
      })),
      bodyType: '7BIT',
      smtputf8: false,
      eightBit: false,
      size: 21,
      headerSize: 13,
      arrivalTime: options.arrivalTime ?? clock.now(),
      warnTime: 0,
      source: { component: 'test', protocol: 'ESMTP' },
    });
    return id;
  };
  return { clock, store, qmgr, notifier, enqueue, params };
}
