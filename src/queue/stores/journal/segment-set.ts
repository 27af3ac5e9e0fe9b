/**
 * The journal's segment files: which exist, which one takes appends, rotation to a
 * new one, shared read handles, and deletion of segments nothing live refers to.
 *
 * Rotation: when a batch would take the current segment past `segmentSize`, the
 * current one is fdatasync'ed (sealed) and a new one is created: its header, naming
 * the previous segment and how much of it is valid, is written and fdatasync'ed and
 * the directory fsync'ed before any frame goes in, so an acknowledged frame is never
 * in a file whose directory entry could vanish. A segment whose batch failed to write
 * or sync is abandoned the same way, at its last good length (bytes past it are
 * ignored by recovery), so a failure never leaves a half-written batch to be trusted.
 *
 * Preallocation: once the current segment has taken a sixteenth of `segmentSize`, a
 * spare segment is zero-filled and synced in the background (segment-spare.ts), and
 * rotation turns it into the next segment: header written and synced, file renamed,
 * directory synced. Every commit's fdatasync then writes into blocks already
 * allocated and written, and does not commit the file's size and allocation with the
 * data. The first segment after a fresh start grows as it is written: it gives way to
 * the spare as soon as one is ready, unless it is half full already. Later segments
 * are made without a spare only when the fill cannot keep up or fails. A segment's
 * valid length is the end of its last frame, not the file's size: the rest is zeros.
 *
 * Reclamation is in order: a segment is deleted only when it and every older segment
 * hold no live message. Frames that end a message (removed, moved) may sit in a later
 * segment than the message, so deleting out of order could bring a finished message
 * back after a crash; deleting a prefix cannot. Before deleting, everything written is
 * synced (see journal.ts), so those ending frames are durable first. A segment in
 * which recovery found a damaged stretch is renamed `.damaged` instead (it may hold
 * the remains of a message an operator wants to see), as Postfix moves a bad queue
 * file to `corrupt/`.
 *
 * Postfix counterpart: none — Postfix writes one file per message; this is the
 * segment lifecycle of a log-structured store (a write-ahead log's segments).
 *
 * Does not do: decide what goes into a batch (group-commit.ts) or what is live
 * (journal.ts counts live messages per segment here).
 *
 * @module
 */

import { join } from 'node:path';
import { QueueStoreError } from '../../../errors.js';
import { encodeSegmentHeader, SEGMENT_HEADER_SIZE, segmentName } from './journal-format.js';
import { type JournalFile, type JournalIo, writeFully } from './journal-io.js';
import { SegmentSpare } from './segment-spare.js';

/** One segment file. */
export class Segment {
  readonly sequence: number;
  readonly path: string;
  /** Open handle, shared by the writer and every reader. */
  file: JournalFile;
  /** Valid length: header and frames written. */
  size: number;
  /** Bytes allocated and written (zeros past `size`): appends there do not grow the file. */
  allocated: number;
  /** Bytes known durable (fdatasync'ed). */
  syncedSize: number;
  /** Live messages whose message frame is here. */
  live = 0;
  /** Reads in progress (content streams); the file is not closed under them. */
  readers = 0;
  /** Recovery found a damaged stretch: keep the file (renamed) instead of deleting it. */
  damaged = false;
  /** A batch failed here: no more appends; bytes past `size` are abandoned. */
  broken = false;

  constructor(sequence: number, path: string, file: JournalFile, size: number, allocated = size) {
    this.sequence = sequence;
    this.path = path;
    this.file = file;
    this.size = size;
    this.syncedSize = size;
    this.allocated = Math.max(size, allocated);
  }
}

/** Options of SegmentSet. */
export interface SegmentSetOptions {
  readonly directory: string;
  readonly io: JournalIo;
  /** Rotate once a segment would grow past this many bytes. */
  readonly segmentSize: number;
  /** Zero-fill the next segment in the background (default true). */
  readonly preallocate?: boolean;
  /** Told when the background fill of a spare segment failed (it is tried again later). */
  readonly onSpareError?: (err: unknown) => void;
}

/** The segments of one journal directory, oldest first. */
export class SegmentSet {
  readonly #directory: string;
  readonly #io: JournalIo;
  readonly #segmentSize: number;
  readonly #spare: SegmentSpare | undefined;
  /** Size of the current segment from which a spare is prepared. */
  readonly #prepareAt: number;
  /** By sequence, in ascending order (added in that order). */
  readonly #segments = new Map<number, Segment>();
  #current: Segment | undefined;
  /** The segment appends went to first after the open. */
  #first: Segment | undefined;
  #lastSequence = 0;
  #reclaiming: Promise<number> | undefined;
  #again = false;
  /** Called when a reader lets go of a segment nothing live is in (a reclaim may go on). */
  onUnused: (() => void) | undefined;
  /** Segments created, and deleted or set aside, since open. */
  created = 0;
  deleted = 0;

  constructor(options: SegmentSetOptions) {
    this.#directory = options.directory;
    this.#io = options.io;
    this.#segmentSize = options.segmentSize;
    this.#prepareAt = Math.max(SEGMENT_HEADER_SIZE + 1, Math.floor(options.segmentSize / 16));
    if (options.preallocate !== false) {
      this.#spare = new SegmentSpare(options.directory, options.io, options.segmentSize);
      this.#spare.onError = options.onSpareError;
    }
  }

  /** Spare segments zero-filled since open. */
  get preallocated(): number {
    return this.#spare?.filled ?? 0;
  }

  /** Deletes what an earlier run left of a spare segment (at open, before appends). */
  async removeLeftoverSpare(): Promise<void> {
    await this.#spare?.removeLeftover();
  }

  /** Adds a segment found at recovery (in ascending order). */
  adopt(segment: Segment): void {
    this.#segments.set(segment.sequence, segment);
    this.#lastSequence = Math.max(this.#lastSequence, segment.sequence);
  }

  /** Makes sure new sequence numbers are above `sequence` (a file recovery skipped). */
  reserve(sequence: number): void {
    this.#lastSequence = Math.max(this.#lastSequence, sequence);
  }

  get(sequence: number): Segment | undefined {
    return this.#segments.get(sequence);
  }

  get current(): Segment | undefined {
    return this.#current;
  }

  /** Every segment, oldest first. */
  all(): Segment[] {
    return [...this.#segments.values()];
  }

  /** Total bytes in the segments. */
  get bytes(): number {
    let n = 0;
    for (const s of this.#segments.values()) n += s.size;
    return n;
  }

  /**
   * The segment a batch of `bytes` goes into: the current one, or a new one when the
   * current one is full or broken (or there is none yet). Called by the group
   * committer between batches only, so nothing else writes meanwhile.
   */
  async segmentFor(bytes: number): Promise<Segment> {
    const current = this.#current;
    if (current && current.size >= this.#prepareAt) this.#spare?.prepare();
    if (
      current &&
      !current.broken &&
      (current.size + bytes <= this.#segmentSize || current.size === SEGMENT_HEADER_SIZE) &&
      // The first segment after the open, if made without a spare (a fresh start), gives
      // way to one that is ready, unless it is half full already.
      !(
        current === this.#first &&
        current.size + bytes > current.allocated &&
        current.size < this.#segmentSize / 2 &&
        this.#spare?.ready
      )
    ) {
      return current;
    }
    if (current && !current.broken && current.syncedSize < current.size) {
      // Sealing: what was written lazily becomes durable before the segment is left.
      try {
        await current.file.datasync();
        current.syncedSize = current.size;
      } catch (err) {
        current.broken = true;
        throw err;
      }
    }
    return this.rotate();
  }

  /**
   * Appends go on in `segment`, the newest one recovered, after its last valid frame
   * (instead of a new segment at every start).
   */
  resume(segment: Segment): void {
    this.#current = segment;
    this.#first = segment;
  }

  /**
   * Starts a new segment after the current one (or the newest recovered one),
   * vouching for the valid length of that one: the spare if one is ready, else a new
   * file.
   */
  async rotate(): Promise<Segment> {
    const before = this.#current ?? this.all().at(-1);
    const sequence = ++this.#lastSequence;
    const path = join(this.#directory, segmentName(sequence));
    const header = encodeSegmentHeader(sequence, before?.sequence ?? 0, before?.size ?? 0);
    const spare = this.#spare?.take();
    this.#spare?.retry();
    const file = spare ? spare.file : await this.#io.open(path, 'wx+');
    try {
      await writeFully(file, [header], 0);
      await file.datasync();
      // The spare is named a segment only once its header is durable.
      if (spare) await this.#io.rename(spare.path, path);
      await this.#io.syncDirectory(this.#directory);
    } catch (err) {
      await file.close().catch(() => undefined);
      await this.#io.unlink(spare?.path ?? path).catch(() => undefined);
      if (spare) await this.#io.unlink(path).catch(() => undefined);
      throw err;
    }
    const segment = new Segment(sequence, path, file, SEGMENT_HEADER_SIZE, spare?.size);
    this.#segments.set(sequence, segment);
    this.#first ??= segment;
    this.#current = segment;
    this.created++;
    return segment;
  }

  /** Takes a segment's handle for a read; give it back with `release`. */
  acquire(sequence: number): Segment {
    const segment = this.#segments.get(sequence);
    if (!segment)
      throw new QueueStoreError(`journal segment ${segmentName(sequence)} is gone (a bug)`);
    segment.readers++;
    return segment;
  }

  release(segment: Segment): void {
    segment.readers--;
    if (segment.readers === 0 && segment.live === 0 && segment !== this.#current) {
      this.onUnused?.();
    }
  }

  /** Whether a reclaim could delete something now. */
  reclaimable(): boolean {
    const oldest = this.#segments.values().next().value as Segment | undefined;
    return oldest !== undefined && oldest !== this.#current && oldest.live === 0;
  }

  /**
   * Deletes the oldest segments while they hold nothing live, nobody reads them and
   * they are not the current one; a damaged one is renamed `.damaged` instead. Each
   * deletion is made durable (directory fsync) before the next, so they happen in
   * order even across a crash. `beforeDelete` runs once first (the journal syncs its
   * pending frames there). Resolves with the number of segments removed.
   */
  reclaim(beforeDelete?: () => Promise<void>): Promise<number> {
    if (this.#reclaiming) {
      this.#again = true;
      return this.#reclaiming;
    }
    const run = async (): Promise<number> => {
      let removed = 0;
      do {
        this.#again = false;
        if (!this.reclaimable()) break;
        if (beforeDelete) await beforeDelete();
        for (const segment of [...this.#segments.values()]) {
          if (segment === this.#current || segment.live > 0 || segment.readers > 0) break;
          // Out of the set first, so nothing can take a read handle on it meanwhile.
          this.#segments.delete(segment.sequence);
          try {
            if (segment.damaged) await this.#io.rename(segment.path, `${segment.path}.damaged`);
            else await this.#io.unlink(segment.path);
          } catch (err) {
            this.#putBack(segment);
            throw err;
          }
          await segment.file.close().catch(() => undefined);
          await this.#io.syncDirectory(this.#directory);
          this.deleted++;
          removed++;
        }
      } while (this.#again);
      return removed;
    };
    // run() may finish before it is stored (nothing to do): clear it only if current.
    const running: Promise<number> = run().finally(() => {
      if (this.#reclaiming === running) this.#reclaiming = undefined;
    });
    this.#reclaiming = running;
    return running;
  }

  /** Returns a segment whose deletion failed to its place (the set stays in order). */
  #putBack(segment: Segment): void {
    const rest = [...this.#segments.values()];
    this.#segments.clear();
    for (const s of [segment, ...rest].sort((a, b) => a.sequence - b.sequence))
      this.#segments.set(s.sequence, s);
  }

  /** Closes every handle (after the writer has stopped). */
  async close(): Promise<void> {
    await this.#spare?.close();
    await this.#reclaiming?.catch(() => undefined);
    for (const segment of this.#segments.values())
      await segment.file.close().catch(() => undefined);
    this.#segments.clear();
    this.#current = undefined;
  }
}
