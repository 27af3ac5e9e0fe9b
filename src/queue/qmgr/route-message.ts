/**
 * Routing one message of the active window: each pending recipient is resolved to a
 * transport and nexthop, and the recipients are grouped into delivery jobs of at most
 * the transport's recipient limit; recipients that cannot be routed get their outcome
 * at once.
 *
 * Postfix counterpart: qmgr_message_resolve() and qmgr_message_assign() (qmgr_message.c):
 * trivial-rewrite's answer per recipient, a FILTER overriding it, a `deferTransports`
 * transport deferring without an attempt (`deferred transport`), and with a recipient
 * limit of 1 a queue per recipient rather than per nexthop.
 *
 * Does not do: schedule the jobs (the Scheduler does) or record the outcomes (the
 * caller does, through the store).
 *
 * @module
 */

import type { Logger } from '../../log.js';
import { parseTransportSpec } from '../../rewrite/transport-spec.js';
import type { ResolveResult } from '../../rewrite/types.js';
import { SmtpReply } from '../../smtp-reply.js';
import type { Recipient } from '../../types.js';
import type { MessageRecord, RecipientOutcome, StoredOutcome } from '../types.js';
import type { ActiveMessage, Job } from './active-message.js';
import type { QmgrParameters } from './qmgr-parameters.js';
import { logDelivery, routingFailure, storedOutcome } from './stored-outcome.js';

/**
 * Resolves recipients to routes (the Rewriter implements it).
 *
 * @example
 * ```ts
 * const resolver: RouteResolver = new Rewriter({ params });
 * const route = await resolver.resolve('bob@example.net'); // { transport: 'smtp', nexthop: 'example.net', ... }
 * ```
 */
export interface RouteResolver {
  /** The transport, nexthop and class for a recipient (`sender`: sender-dependent maps). */
  resolve(address: string, sender?: string): Promise<ResolveResult>;
  /**
   * Optional: resolve(), answering without a promise when it can (the Rewriter does
   * when no table is to be asked). Used instead of resolve() when present.
   */
  resolveNow?(address: string, sender?: string): ResolveResult | Promise<ResolveResult>;
}

/** What routing needs from the queue manager. */
export interface RoutingContext {
  readonly resolver: RouteResolver;
  readonly params: QmgrParameters;
  readonly logger: Logger;
  now(): number;
  /** The recipient limit of a transport. */
  recipientLimit(transport: string): number;
}

/** A message's routing: jobs to schedule, and outcomes known without an attempt. */
export interface RoutedMessage {
  readonly jobs: Job[];
  readonly immediate: readonly RecipientOutcome[];
}

type Route = { transport: string; nexthop: string } | { bounce: StoredOutcome };

/** Recipients of a message for one transport and nexthop. */
interface Group {
  readonly transport: string;
  readonly nexthop: string;
  readonly recipients: Recipient[];
}

/** Above this many groups a recipient finds its own through a map, not a scan. */
const SCAN_GROUPS = 8;

/**
 * Routes the pending recipients of `message` and notes the destinations of its jobs in
 * `message.destinations`.
 */
export async function routeMessage(
  ctx: RoutingContext,
  message: ActiveMessage,
): Promise<RoutedMessage> {
  const { record } = message.claimed;
  // Most messages have one destination: a list, with a map only for many. Lists are
  // made with their first element: one grown from empty takes room for 16 at once.
  let groups: Group[] | undefined;
  let byKey: Map<string, Group> | undefined;
  let immediate: RecipientOutcome[] | undefined;
  const now = ctx.now();

  for (const rcpt of message.recipients) {
    if (rcpt.state !== 'pending') continue;
    let route: Route;
    try {
      // A FILTER overrides the resolver; no promise per recipient when it answers at once.
      const found = filterRoute(record) ?? routeOf(ctx, rcpt, record);
      // Awaited only when it is a promise: an answer at once takes no turn of its own.
      route = found instanceof Promise ? await found : found;
    } catch (err) {
      const outcome = routingFailure(err, now);
      immediate = append(immediate, { recipientId: rcpt.id, outcome });
      logDelivery(ctx.logger, 'qmgr', record, rcpt, outcome);
      continue;
    }
    if ('bounce' in route) {
      immediate = append(immediate, { recipientId: rcpt.id, outcome: route.bounce });
      logDelivery(ctx.logger, 'error', record, rcpt, route.bounce);
      continue;
    }
    if (!message.flush && ctx.params.deferTransports.includes(route.transport)) {
      const outcome: StoredOutcome = {
        status: 'deferred',
        code: 450,
        enhanced: '4.3.2',
        text: 'deferred transport',
        relay: 'none',
        time: now,
      };
      immediate = append(immediate, { recipientId: rcpt.id, outcome });
      logDelivery(ctx.logger, route.transport, record, rcpt, outcome);
      continue;
    }
    const { transport, nexthop } = route;
    const g = byKey
      ? byKey.get(`${transport}\u0000${nexthop}`)
      : groupOf(groups, transport, nexthop);
    if (g) {
      g.recipients.push(rcpt);
      continue;
    }
    const added: Group = { transport, nexthop, recipients: [rcpt] };
    groups = append(groups, added);
    if (byKey) byKey.set(`${transport}\u0000${nexthop}`, added);
    else if (groups.length > SCAN_GROUPS)
      byKey = new Map(groups.map((x) => [`${x.transport}\u0000${x.nexthop}`, x]));
  }

  let jobs: Job[] | undefined;
  for (const g of groups ?? []) {
    const limit = ctx.recipientLimit(g.transport);
    const queue = `${g.transport}\u0000${g.nexthop}`;
    for (let i = 0; i < g.recipients.length; i += limit) {
      const recipients =
        g.recipients.length <= limit ? g.recipients : g.recipients.slice(i, i + limit);
      // With a recipient limit of 1 the queue is per recipient, as in qmgr.
      const destination = limit === 1 ? `${queue}\u0000${recipients[0]!.address}` : queue;
      if (i === 0) {
        if (message.destinations.length > 0) message.destinations.push(destination);
        else message.destinations = [destination];
      }
      jobs = append(jobs, {
        messageId: record.queueId,
        destination,
        transport: g.transport,
        nexthop: g.nexthop,
        message,
        recipients,
      });
    }
  }
  return { jobs: jobs ?? [], immediate: immediate ?? [] };
}

/** `list` with `item` at its end: the list itself, or a new one of one element. */
function append<T>(list: T[] | undefined, item: T): T[] {
  if (!list) return [item];
  list.push(item);
  return list;
}

/** The group of `transport` and `nexthop` among a message's few, if there is one yet. */
function groupOf(
  groups: readonly Group[] | undefined,
  transport: string,
  nexthop: string,
): Group | undefined {
  if (!groups) return undefined;
  for (const g of groups) if (g.transport === transport && g.nexthop === nexthop) return g;
  return undefined;
}

/** The route a FILTER sets for every recipient of the message, if it has one. */
function filterRoute(record: MessageRecord): Route | undefined {
  if (!record.filter) return undefined;
  const spec = parseTransportSpec(record.filter);
  return spec.transport ? { transport: spec.transport, nexthop: spec.nexthop ?? '' } : undefined;
}

/** The resolver's route for a recipient: a promise only when the resolver has to wait. */
function routeOf(
  ctx: RoutingContext,
  rcpt: Recipient,
  record: MessageRecord,
): Route | Promise<Route> {
  const { resolver } = ctx;
  const answer = resolver.resolveNow
    ? resolver.resolveNow(rcpt.address, record.sender)
    : resolver.resolve(rcpt.address, record.sender);
  return isAnswer(answer)
    ? resolvedRoute(ctx, answer)
    : Promise.resolve(answer).then((resolved) => resolvedRoute(ctx, resolved));
}

/** An answer given at once (a ResolveResult has no `then`). */
function isAnswer(answer: ResolveResult | PromiseLike<ResolveResult>): answer is ResolveResult {
  return typeof (answer as PromiseLike<ResolveResult>).then !== 'function';
}

/** The route of a recipient as the resolver answered. */
function resolvedRoute(ctx: RoutingContext, resolved: ResolveResult): Route {
  if (resolved.error) {
    const e = resolved.error;
    return {
      bounce: storedOutcome(
        { status: 'bounced', reply: new SmtpReply(e.code, e.enhanced, e.text), relay: 'none' },
        ctx.params.softBounce,
        ctx.now(),
      ),
    };
  }
  return { transport: resolved.transport, nexthop: resolved.nexthop };
}
