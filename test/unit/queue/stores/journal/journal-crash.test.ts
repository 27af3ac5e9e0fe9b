/**
 * Crashes in the middle of batched commits under load, and what recovery finds:
 * - kill -9 of a real child process committing from 20 writers into preallocated
 *   segments, which reports each acknowledgement to this process through a pipe before
 *   it is killed, three times on the same journal (each run appending after the last
 *   frame the one before left): every acknowledged message is there, intact, and every
 *   acknowledged removal holds;
 * - a simulated power cut (the file-system layer cuts every file back to what was
 *   fdatasync'ed, keeps a random, possibly garbled part of the rest, and undoes file
 *   creations and deletions whose directory was not synced) while segments rotate and
 *   finished ones are deleted, twice on the same journal: the same for commits,
 *   removals and moves, which also proves that nothing was acknowledged before its
 *   bytes were synced.
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import { bundleEntry } from '../../../../helpers/bundle-entry.js';
import { readAll } from '../store-conformance.js';
import { contentFor, storedFor, TestIo, tempDir } from './journal-harness.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

/** Checks a recovered journal against what was acknowledged. */
async function expectAcknowledged(
  journal: Journal,
  acked: Iterable<string>,
  removed: ReadonlySet<string>,
  removing: ReadonlySet<string>,
): Promise<number> {
  let live = 0;
  for (const id of acked) {
    const entry = journal.get(id);
    if (removed.has(id)) {
      expect(entry, `${id} was removed durably`).toBeUndefined();
      continue;
    }
    // A removal asked for but not acknowledged may or may not have reached the disk.
    if (removing.has(id) && !entry) continue;
    expect(entry, `${id} was acknowledged`).toBeDefined();
    expect((await readAll(journal.openContent(id))).equals(contentFor(id))).toBe(true);
    expect((await journal.readRecord(id)).record.queueId).toBe(id);
    live++;
  }
  return live;
}

describe('Journal crash recovery', () => {
  let child: string;
  beforeAll(async () => {
    const out = await tempDir('postern-journal-child-');
    dirs.push(out);
    const entry = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
    child = await bundleEntry(entry, out, 'crash-child');
  }, 60_000);

  it('finds every acknowledged message after kill -9 in the middle of batched commits', async () => {
    const directory = await tempDir();
    dirs.push(directory);
    const acked = new Set<string>();
    const removed = new Set<string>();
    const removing = new Set<string>();
    let batched = 0;
    let preallocated = 0;
    // Three kills at different points, each on the journal the previous one left.
    for (const killAfter of [300, 457, 611]) {
      const proc: ChildProcess = spawn(process.execPath, [child, directory, String(256 * 1024)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        proc.once('exit', (_code, signal) => resolve(signal)),
      );
      let partial = '';
      let acksThisRun = 0;
      let syncs = 0;
      let frames = 0;
      proc.stdout!.setEncoding('utf8').on('data', (text: string) => {
        partial += text;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          const [kind, a, b] = line.split(' ');
          if (kind === 'A') {
            acked.add(a!);
            if (++acksThisRun === killAfter) proc.kill('SIGKILL');
          } else if (kind === 'D') {
            removing.add(a!);
          } else if (kind === 'R') {
            removed.add(a!);
          } else if (kind === 'S') {
            syncs = Number(a);
            frames = Number(b);
            preallocated = Math.max(preallocated, Number(line.split(' ')[3]));
          }
        }
      });
      expect(await exited).toBe('SIGKILL');
      expect(acksThisRun).toBeGreaterThanOrEqual(killAfter);
      // Commits were sharing fdatasyncs when the kill came.
      expect(frames).toBeGreaterThan(0);
      if (syncs < frames) batched++;

      const journal = await Journal.open({ directory, segmentSize: 256 * 1024 });
      try {
        const live = await expectAcknowledged(journal, acked, removed, removing);
        expect(live).toBeGreaterThan(0);
        expect(journal.recovery.damaged).toEqual([]);
      } finally {
        await journal.close();
      }
    }
    expect(batched).toBe(3);
    // Commits were going into preallocated segments, resumed after each restart.
    expect(preallocated).toBeGreaterThan(0);
  }, 120_000);

  it('loses no acknowledged commit, removal or move in simulated power cuts under load, twice on the same journal', async () => {
    const ids = new QueueIdGenerator();
    let seed = 12345;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let reclaimed = 0;
    let preallocated = 0;
    let resumed = 0;
    for (let round = 0; round < 6; round++) {
      const directory = await tempDir();
      dirs.push(directory);
      const acked = new Set<string>();
      /** Durably removed or moved: must be gone. */
      const ended = new Set<string>();
      /** A removal or move was asked for (maybe lazily): may be gone. */
      const ending = new Set<string>();
      const deferred = new Map<string, number>();
      // A power cut, recovery, more load into what recovery left (preallocated space
      // after the last frame), a second power cut, recovery again.
      for (let cut = 0; cut < 2; cut++) {
        const io = new TestIo();
        const journal = await Journal.open({ directory, io, segmentSize: 64 * 1024 });
        if (cut > 0 && journal.stats().segmentsCreated === 0) resumed++;
        const start = acked.size;
        const crashAt = start + 150 + Math.floor(random() * 300);
        let crashed: Promise<void> | undefined;
        // Each message ends one way or another, so finished segments get reclaimed while
        // the writers run: most are removed (half of them lazily), every seventh is
        // deferred and later moved out.
        const writer = async (w: number): Promise<void> => {
          const keep: string[] = [];
          for (let i = 0; !io.dead; i++) {
            const id = ids.next();
            await journal.appendMessage(storedFor(id), [contentFor(id)]);
            acked.add(id);
            if (acked.size === crashAt) crashed = io.crash(random);
            if ((i + w) % 7 === 0) {
              const dueAt = 1_700_000_000_000 + i;
              await journal.changeState(id, { state: 'deferred', dueAt }, true);
              deferred.set(id, dueAt);
              keep.push(id);
            } else {
              ending.add(id);
              const durable = (i + w) % 2 === 0;
              await journal.markRemoved(id, durable);
              if (durable) ended.add(id);
            }
            if (keep.length > 2) {
              const old = keep.shift()!;
              ending.add(old);
              await journal.markMoved(old);
              ended.add(old);
            }
          }
        };
        const results = await Promise.allSettled(Array.from({ length: 20 }, (_, w) => writer(w)));
        await crashed;
        // Every writer stopped on the power cut, not on anything else.
        for (const r of results) {
          if (r.status === 'rejected') expect(String(r.reason)).toMatch(/power cut/);
        }
        expect(io.datasyncs).toBeLessThan(acked.size - start);
        reclaimed += journal.stats().segmentsReclaimed;
        preallocated += journal.stats().segmentsPreallocated;
        await journal.close().catch(() => undefined);

        const recovered = await Journal.open({ directory, segmentSize: 64 * 1024 });
        try {
          await expectAcknowledged(recovered, acked, ended, ending);
          for (const [id, dueAt] of deferred) {
            const entry = recovered.get(id);
            if (entry || !ending.has(id)) expect(entry).toMatchObject({ state: 'deferred', dueAt });
          }
          expect(recovered.recovery.damaged).toEqual([]);
        } finally {
          await recovered.close();
        }
      }
    }
    expect(reclaimed).toBeGreaterThan(0);
    // The cuts came while commits went into preallocated segments, and the second load
    // went on in the segment the first one left.
    expect(preallocated).toBeGreaterThan(0);
    expect(resumed).toBeGreaterThan(0);
  }, 120_000);
});
