/**
 * StatementBatcher: many callers' writes, one statement. Calls made while the previous
 * statements are in flight are gathered and sent together when one finishes, so the
 * batch grows with the load and costs nothing when there is none: a lone call goes out
 * on the next turn of the event loop.
 *
 * Postfix counterpart: none; the effect is the group commit of a journalling file
 * system, which Postfix gets from the kernel. For PostgresQueueStore it means several
 * messages per COMMIT (each 250 still waits for its own message's COMMIT), several
 * deletions per statement, and one round trip for what would be many.
 *
 * The `run` function gets the items of one batch and answers one result or Error per
 * item, in order; each caller's promise settles with its own. If `run` throws, every
 * item of that batch gets the error.
 *
 * Told which items are on their way (`expected`: for the group commit, the messages
 * whose transaction is open and will commit in a moment), a batch about to go waits for
 * them up to `expectedMs`, and goes the moment they have all joined: fewer, larger
 * COMMITs when a few sessions commit at nearly the same time (PostgreSQL's
 * `commit_delay`, decided by the node that knows what is coming). With nothing on its
 * way, a lone item may still wait a moment for company (`companyMs`) when the batcher
 * has had some of late, as `commit_delay` does only with `commit_siblings` active
 * transactions: a lone writer, whose next item cannot come before this one is done,
 * never waits.
 *
 * Does not do: retry, or delay a call to wait for company unless told to (`gatherMs`,
 * for writes nobody waits on; `expected`; `companyMs`): latency stays one round trip
 * when the load is light and nothing is on its way.
 *
 * @module
 */

import { asError } from '../../util/error-message.js';

/** How a batcher sends its items. */
export interface BatcherOptions<I, O> {
  /** Sends one batch; one result (or Error) per item, in the order given. */
  readonly run: (items: readonly I[]) => Promise<readonly (O | Error)[]>;
  /** Batches in flight at once. @default 1 */
  readonly maxInFlight?: number;
  /** Most items in one batch. @default 200 */
  readonly maxItems?: number;
  /** Weight of an item (bytes, say) and the most weight per batch; one item always fits. */
  readonly weight?: (item: I) => number;
  readonly maxWeight?: number;
  /**
   * How long a batch waits for company after its first item, for writes nobody waits
   * on (a removal after delivery): more items per statement. @default 0
   */
  readonly gatherMs?: number;
  /**
   * Items on their way (a message being written will commit in a moment):
   * a batch about to go out while some are waits up to `expectedMs` for them, and no
   * longer once they have all joined. @default none
   */
  readonly expected?: () => number;
  /** @default 0 */
  readonly expectedMs?: number;
  /**
   * How long a batch about to go with nothing on its way waits for company, when this
   * batcher has had company within `companyWindowMs` (a batch of several items, or
   * items on their way): PostgreSQL's `commit_delay` with `commit_siblings`, the
   * siblings being the other writers on this node. A lone writer never waits: its
   * next item cannot come before this one is done. @default 0
   */
  readonly companyMs?: number;
  /** @default 100 */
  readonly companyWindowMs?: number;
}

/** Items taken from a batcher by another statement, and how to settle them. */
export interface TakenItems<I, O> {
  readonly items: readonly I[];
  /** One result (or Error) per item in order, or one Error for all. */
  readonly settle: (out: readonly (O | Error)[] | Error) => void;
}

interface Waiting<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (err: Error) => void;
}

/** Gathers calls into batches; see the module header. */
export class StatementBatcher<I, O> {
  readonly #run: BatcherOptions<I, O>['run'];
  readonly #maxInFlight: number;
  readonly #maxItems: number;
  readonly #weight: ((item: I) => number) | undefined;
  readonly #maxWeight: number;
  readonly #gatherMs: number;
  #queue: Waiting<I, O>[] = [];
  #inFlight = 0;
  #scheduled = false;
  /** The gather wait under way (gatherMs), if any. */
  #gather: NodeJS.Timeout | undefined;
  readonly #expected: (() => number) | undefined;
  readonly #expectedMs: number;
  readonly #companyMs: number;
  readonly #companyWindowMs: number;
  /** When this batcher last had company (performance.now()); -Infinity: never. */
  #companyAt = Number.NEGATIVE_INFINITY;
  /** A batch waiting for the items expected: how many it waits for, and its send. */
  #waiting: { readonly target: number; readonly send: () => void } | undefined;
  /** Batches sent so far (for tests and diagnostics). */
  batches = 0;

  constructor(options: BatcherOptions<I, O>) {
    this.#run = options.run;
    this.#maxInFlight = options.maxInFlight ?? 1;
    this.#maxItems = options.maxItems ?? 200;
    this.#weight = options.weight;
    this.#maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY;
    this.#gatherMs = options.gatherMs ?? 0;
    this.#expected = options.expected;
    this.#expectedMs = options.expectedMs ?? 0;
    this.#companyMs = options.companyMs ?? 0;
    this.#companyWindowMs = options.companyWindowMs ?? 100;
  }

  /** Items waiting for a batch or in one. */
  get pending(): number {
    return this.#queue.length + this.#inFlight;
  }

  /** Adds `item` to the next batch; settles with its own result. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      const waiting = this.#waiting;
      if (waiting && (this.#queue.length >= waiting.target || this.#queue.length >= this.#maxItems))
        waiting.send();
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight || this.#queue.length === 0) return;
    this.#scheduled = true;
    const send = () => {
      this.#scheduled = false;
      this.#gather = undefined;
      while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) this.#send();
    };
    // The next turn at the earliest, so every call made in this one joins the batch.
    if (this.#gatherMs > 0 && this.#queue.length < this.#maxItems)
      this.#gather = setTimeout(send, this.#gatherMs);
    else setImmediate(() => this.#awaitExpected(send));
  }

  /**
   * Sends now, or once the items on their way have joined (at most `expectedMs`), or,
   * with none on their way but company of late, after `companyMs`.
   */
  #awaitExpected(send: () => void): void {
    const more = this.#expectedMs > 0 && this.#expected ? this.#expected() : 0;
    const now = performance.now();
    if (more > 0 || this.#queue.length > 1) this.#companyAt = now;
    if (this.#queue.length >= this.#maxItems) {
      send();
      return;
    }
    if (more > 0) {
      this.#wait(this.#queue.length + more, this.#expectedMs, send, send);
      return;
    }
    // A lone item with company of late waits for some. The first to join may have others
    // on their way: asked on the next turn, when its own writer no longer counts.
    if (
      this.#queue.length === 1 &&
      this.#companyMs > 0 &&
      now - this.#companyAt <= this.#companyWindowMs
    ) {
      this.#wait(2, this.#companyMs, send, () => setImmediate(() => this.#awaitExpected(send)));
      return;
    }
    send();
  }

  /** Calls `reached` once `target` items wait, or `send` after `ms`. */
  #wait(target: number, ms: number, send: () => void, reached: () => void): void {
    let done = false;
    const end = (then: () => void) => () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.#waiting = undefined;
      then();
    };
    const timer = setTimeout(end(send), ms);
    this.#waiting = { target, send: end(reached) };
  }

  #take(): Waiting<I, O>[] {
    let n = 0;
    let weight = 0;
    while (n < this.#queue.length && n < this.#maxItems) {
      const w = this.#weight ? this.#weight(this.#queue[n]!.item) : 0;
      if (n > 0 && weight + w > this.#maxWeight) break;
      weight += w;
      n++;
    }
    return this.#queue.splice(0, n);
  }

  #send(): void {
    const batch = this.#take();
    this.#inFlight++;
    this.batches++;
    let results: Promise<readonly (O | Error)[]>;
    try {
      results = this.#run(batch.map((w) => w.item));
    } catch (err) {
      results = Promise.reject(err);
    }
    results
      .then(
        (out) => settle(batch, out),
        (err: unknown) => settle(batch, asError(err)),
      )
      .finally(() => {
        this.#inFlight--;
        this.#kick();
      });
  }

  /**
   * Takes up to `max` items that wait for a batch, for another statement to carry
   * (removals riding along with a group commit); undefined when none wait. The taker
   * settles every one through `settle`, as `run` would have.
   */
  takeWaiting(max: number): TakenItems<I, O> | undefined {
    if (this.#queue.length === 0) return undefined;
    const batch = this.#queue.splice(0, max);
    if (this.#queue.length === 0 && this.#gather) {
      // Nothing left to gather for: the next item starts a wait of its own.
      clearTimeout(this.#gather);
      this.#gather = undefined;
      this.#scheduled = false;
    }
    return { items: batch.map((w) => w.item), settle: (out) => settle(batch, out) };
  }
}

/** Settles each caller of `batch` with its own result, or all with one error. */
function settle<I, O>(batch: readonly Waiting<I, O>[], out: readonly (O | Error)[] | Error): void {
  for (const [i, w] of batch.entries()) {
    if (out instanceof Error) w.reject(out);
    else if (i >= out.length) w.reject(new Error('no result for a batched write'));
    else if (out[i] instanceof Error) w.reject(out[i] as Error);
    else w.resolve(out[i] as O);
  }
}
