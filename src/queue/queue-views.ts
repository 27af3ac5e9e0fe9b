/**
 * Queue inspection views: the mailq listing and the qshape table, as text.
 *
 * Postfix counterpart: showq(8) behind `postqueue -p` / mailq(1), and qshape(1).
 *
 * - mailq: `-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------`, one
 *   block per message: the ID with `*` (active) or `!` (hold), size, arrival time and
 *   sender; the last deferral reason in parentheses; then each pending recipient;
 *   a total `-- N Kbytes in M Requests.` (or `Mail queue is empty`).
 * - qshape: messages by recipient domain (rows, busiest first, after a TOTAL row) and
 *   age bucket in minutes (columns `T 5 10 20 40 80 160 320 640 1280 1280+`), from the
 *   stores' in-memory summaries — no message file is read.
 *
 * SECURITY: every string from the queue is made printable before it is shown.
 *
 * @module
 */

import { formatAddress } from '../address/address.js';
import type { QueueEntry, QueueSummary } from './types.js';

/** Control characters out, so queue data cannot drive the terminal. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Wed Oct 21 13:40:33` (ctime without the year, as showq prints it), in UTC. */
function arrivalText(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
}

/**
 * The mailq listing of `entries`.
 *
 * @example
 * ```ts
 * console.log(formatMailq(await store.list()));
 * ```
 */
export function formatMailq(entries: readonly QueueEntry[]): string {
  if (entries.length === 0) return 'Mail queue is empty\n';
  const out = ['-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------'];
  let bytes = 0;
  for (const e of entries) {
    bytes += e.size;
    const mark = e.state === 'active' ? '*' : e.state === 'hold' ? '!' : ' ';
    const sender = e.sender === '' ? 'MAILER-DAEMON' : printable(formatAddress(e.sender));
    out.push(
      `${`${e.queueId}${mark}`.padEnd(11)} ${String(e.size).padStart(8)} ${arrivalText(e.arrivalTime).padEnd(20)}  ${sender}`,
    );
    const pending = e.recipients.filter((r) => r.state === 'pending');
    const shown = new Set<string>();
    for (const r of pending) {
      if (r.reason && !shown.has(r.reason)) {
        shown.add(r.reason);
        out.push(`${' '.repeat(40)}(${printable(r.reason)})`);
      }
      out.push(`${' '.repeat(41)}${printable(formatAddress(r.address))}`);
    }
    out.push('');
  }
  const kb = Math.ceil(bytes / 1024);
  out.push(`-- ${kb} Kbytes in ${entries.length} Request${entries.length === 1 ? '' : 's'}.`);
  return `${out.join('\n')}\n`;
}

/**
 * The qshape table as data.
 *
 * @example
 * ```ts
 * const shape: QueueShape = queueShape(await store.summaries({ states: ['deferred'] }), Date.now());
 * console.log(shape.total.total, shape.rows[0]?.domain);
 * ```
 */
export interface QueueShape {
  /** Upper bounds of the age buckets, minutes; the last column is "older". */
  readonly buckets: readonly number[];
  /** The TOTAL row. */
  readonly total: QueueShapeRow;
  /** One row per domain, largest first. */
  readonly rows: readonly QueueShapeRow[];
}

/**
 * One qshape row: a domain, its total and a count per age bucket.
 *
 * @example
 * ```ts
 * for (const row of queueShape(summaries, Date.now()).rows) console.log(row.domain, row.total, row.counts);
 * ```
 */
export interface QueueShapeRow {
  /** The recipient domain (`TOTAL` for the total row). */
  readonly domain: string;
  /** Messages for the domain. */
  readonly total: number;
  /** One count per bucket plus one for older than the last bound. */
  readonly counts: readonly number[];
}

/** qshape's default buckets: 5 minutes, doubling nine times. */
export const DEFAULT_BUCKETS: readonly number[] = [5, 10, 20, 40, 80, 160, 320, 640, 1280];

/**
 * Counts messages per recipient domain and age (a message counts once in each domain
 * it still has a pending recipient at), busiest domains first; `top` rows at most.
 *
 * @example
 * ```ts
 * const shape = queueShape(await store.summaries(), Date.now(), { top: 10 });
 * ```
 */
export function queueShape(
  rows: Iterable<QueueSummary>,
  now: number,
  options: { buckets?: readonly number[]; top?: number } = {},
): QueueShape {
  const counter = new ShapeCounter(now, options.buckets);
  for (const r of rows) counter.add(r);
  return counter.shape(options.top === undefined ? {} : { top: options.top });
}

/**
 * Builds the qshape table one summary at a time, so a view of a huge queue needs no
 * list of every message.
 *
 * @example
 * ```ts
 * const counter = new ShapeCounter(Date.now());
 * await store.forEachSummary?.((s) => counter.add(s));
 * console.log(formatShape(counter.shape({ top: 10 })));
 * ```
 */
export class ShapeCounter {
  readonly #byDomain = new Map<string, number[]>();
  readonly #total: number[];
  readonly #now: number;
  readonly #buckets: readonly number[];

  constructor(now: number, buckets: readonly number[] = DEFAULT_BUCKETS) {
    this.#now = now;
    this.#buckets = buckets;
    this.#total = new Array<number>(buckets.length + 1).fill(0);
  }

  /** Counts one message in its age bucket, once per pending domain. */
  add(summary: QueueSummary): void {
    const buckets = this.#buckets;
    const minutes = Math.max(0, this.#now - summary.arrivalTime) / 60_000;
    let b = buckets.findIndex((bound) => minutes < bound);
    if (b < 0) b = buckets.length;
    this.#total[b]!++;
    for (const d of summary.domains) {
      let counts = this.#byDomain.get(d);
      if (!counts) {
        counts = new Array<number>(buckets.length + 1).fill(0);
        this.#byDomain.set(d, counts);
      }
      counts[b]!++;
    }
  }

  /** The table: busiest domains first, `top` rows at most. */
  shape(options: { top?: number } = {}): QueueShape {
    const sum = (c: readonly number[]) => c.reduce((a, b) => a + b, 0);
    const all = [...this.#byDomain.entries()]
      .map(([domain, counts]) => ({ domain, total: sum(counts), counts }))
      .sort((a, b) => b.total - a.total || (a.domain < b.domain ? -1 : 1));
    return {
      buckets: this.#buckets,
      total: { domain: 'TOTAL', total: sum(this.#total), counts: this.#total },
      rows: options.top === undefined ? all : all.slice(0, options.top),
    };
  }
}

/**
 * The qshape table as text.
 *
 * @example
 * ```ts
 * console.log(formatShape(queueShape(await store.summaries(), Date.now())));
 * ```
 */
export function formatShape(shape: QueueShape): string {
  const head = ['T', ...shape.buckets.map(String), `${shape.buckets.at(-1) ?? 0}+`];
  const lines = [shape.total, ...shape.rows];
  const cols = head.map((h, i) =>
    Math.max(h.length, ...lines.map((l) => String(i === 0 ? l.total : l.counts[i - 1]).length)),
  );
  const nameWidth = Math.max(6, ...lines.map((l) => printable(l.domain).length));
  const row = (name: string, cells: string[]) =>
    `${name.padStart(nameWidth)} ${cells.map((c, i) => c.padStart(cols[i]!)).join(' ')}`;
  const out = [row('', head)];
  for (const l of lines)
    out.push(row(printable(l.domain || '(none)'), [String(l.total), ...l.counts.map(String)]));
  return `${out.join('\n')}\n`;
}
