/**
 * `postern/queue`: the queue as an operator sees it — the operations of `postern
 * queue` (list, hold, release, delete, requeue, flush), the control server a running
 * Mta answers them on, the mailq and qshape views, and queue IDs. This file only
 * re-exports; the QueueStore contract, the stores and the QueueManager are exported from
 * `postern`.
 *
 * Postfix counterpart: postqueue(1), postsuper(1), qshape(1), showq(8) and the
 * public/ and private/ sockets they talk through; the queue ID format of
 * `enable_long_queue_ids`.
 *
 * Does not: schedule or deliver (the QueueManager does), or start a control server
 * on its own: an Mta started with a file queue serves one in its queue directory.
 *
 * SECURITY: the control server's two sockets are its access control: `private/`
 * (every operation, the queue owner only) and `public/` (the listing only).
 *
 * @example
 * ```ts
 * import { FileQueueStore } from 'postern';
 * import { directQueueOperations, formatMailq } from 'postern/queue';
 *
 * const store = new FileQueueStore({ directory: '/var/spool/postern' });
 * await store.open();
 * const ops = directQueueOperations(store);
 * process.stdout.write(formatMailq(await ops.list()));
 * ```
 *
 * @module postern/queue
 */

export type { DestinationView } from '../queue/qmgr/scheduler.js';
export type { ControlAccess, QueueOperations } from '../queue/queue-control.js';
export {
  directQueueOperations,
  managerOperations,
  QueueControlServer,
} from '../queue/queue-control.js';
export type { QueueShape, QueueShapeRow } from '../queue/queue-views.js';
export { formatMailq, formatShape, queueShape, ShapeCounter } from '../queue/queue-views.js';
export { isQueueId } from '../queue-id.js';
