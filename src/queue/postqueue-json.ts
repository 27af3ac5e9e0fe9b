/**
 * The queue listing as `postqueue -j` prints it: one JSON object per message and line.
 *
 * Postfix counterpart: postqueue(1) `-j` (showq_json.c): `queue_name`, `queue_id`,
 * `arrival_time` (seconds), `message_size`, `forced_expire`, `sender` and the
 * `recipients` still to be delivered, each with its `delay_reason` when it has one —
 * so scripts written for Postfix's JSON read Postern's. Addresses are in external
 * form (a local part quoted where RFC 5321 needs it), as in the mailq listing; the
 * null sender is `""`.
 *
 * Does not: list the maildrop (Postern's listing covers the queue store's states), or
 * force-expire messages (`forced_expire` is always false).
 *
 * @module
 */

import { formatAddress } from '../address/address.js';
import type { QueueEntry } from './types.js';

/**
 * One line per message, in postqueue -j's field order and spacing.
 *
 * @example
 * ```ts
 * process.stdout.write(formatPostqueueJson(await store.list()));
 * // {"queue_name": "deferred", "queue_id": "8E9Ph0phjYN4wG", "arrival_time": 1765018590, ...}
 * ```
 */
export function formatPostqueueJson(entries: readonly QueueEntry[]): string {
  let out = '';
  for (const e of entries) {
    const recipients = e.recipients
      .filter((r) => r.state === 'pending')
      .map(
        (r) =>
          `{${pairs([
            ['address', JSON.stringify(formatAddress(r.address))],
            ...(r.reason ? ([['delay_reason', JSON.stringify(r.reason)]] as const) : []),
          ])}}`,
      );
    out += `{${pairs([
      ['queue_name', JSON.stringify(e.state)],
      ['queue_id', JSON.stringify(e.queueId)],
      ['arrival_time', String(Math.floor(e.arrivalTime / 1000))],
      ['message_size', String(e.size)],
      ['forced_expire', 'false'],
      ['sender', JSON.stringify(e.sender === '' ? '' : formatAddress(e.sender))],
      ['recipients', `[${recipients.join(', ')}]`],
    ])}}\n`;
  }
  return out;
}

function pairs(items: readonly (readonly [string, string])[]): string {
  return items.map(([k, v]) => `"${k}": ${v}`).join(', ');
}
