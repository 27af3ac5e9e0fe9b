/**
 * JournalTable: the queue journal's live messages in typed-array columns. Random
 * sequences of additions and removals are checked against a Map (lookups, journal
 * order, freed slots reused, columns intact across growth and reset), and a journal
 * of many queued messages is checked to add little to the JavaScript heap.
 *
 * @module
 */

import { promises as fs } from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../../../src/queue/stores/journal/journal.js';
import {
  DUE_HOLD,
  DUE_INCOMING,
  JournalTable,
} from '../../../../../src/queue/stores/journal/journal-table.js';
import { QueueIdGenerator } from '../../../../../src/queue-id.js';
import { liveHeap } from '../../../../helpers/live-heap.js';
import { contentFor, storedFor, tempDir } from './journal-harness.js';

interface Facts {
  segment: number;
  frameOffset: number;
  recordLength: number;
  contentLength: number;
  due: number;
}

function factsOf(table: JournalTable, slot: number): Facts {
  return {
    segment: table.segment(slot),
    frameOffset: table.frameOffset(slot),
    recordLength: table.recordLength(slot),
    contentLength: table.contentLength(slot),
    due: table.due(slot),
  };
}

/** Checks the table against the model: every lookup, the order, the facts. */
function check(table: JournalTable, model: Map<string, Facts>, gone: Iterable<string>): void {
  const listed = [...table.slots()];
  const slots = new Set(listed.map(([, slot]) => slot));
  const wrong: string[] = [];
  for (const [id, slot] of listed) {
    const want = model.get(id);
    const got = factsOf(table, slot);
    if (
      table.slot(id) !== slot ||
      !table.holds(id, slot) ||
      !want ||
      Object.entries(want).some(([k, v]) => got[k as keyof Facts] !== v)
    )
      wrong.push(id);
  }
  for (const id of gone) if (!model.has(id) && table.slot(id) !== undefined) wrong.push(id);
  expect({
    size: table.size,
    order: listed.map(([id]) => id),
    distinctSlots: slots.size,
    wrong,
  }).toEqual({ size: model.size, order: [...model.keys()], distinctSlots: model.size, wrong: [] });
}

const ids = new QueueIdGenerator();
const dirs: string[] = [];
const journals: Journal[] = [];

afterEach(async () => {
  for (const j of journals.splice(0)) await j.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

describe('JournalTable', () => {
  it('agrees with a Map under random additions and removals, through growth and reset', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            add: fc.boolean(),
            // A small key space: collisions, re-additions after removal, long probe runs.
            key: fc.integer({ min: 0, max: 3000 }),
            count: fc.integer({ min: 1, max: 700 }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        (steps) => {
          const table = new JournalTable();
          const model = new Map<string, Facts>();
          const seen = new Set<string>();
          let n = 0;
          for (const step of steps) {
            for (let i = 0; i < step.count; i++) {
              const id = `Q${(step.key + i * 7) % 3001}`;
              seen.add(id);
              if (step.add && !model.has(id)) {
                n++;
                const facts: Facts = {
                  segment: 1 + (n % 5),
                  frameOffset: 2 ** 33 + n * 1000,
                  recordLength: n % 4096,
                  contentLength: 100_000 + n,
                  due: n % 3 === 0 ? DUE_HOLD : n % 3 === 1 ? DUE_INCOMING : 1.7e12 + n,
                };
                table.add(
                  id,
                  facts.segment,
                  facts.frameOffset,
                  facts.recordLength,
                  facts.contentLength,
                  facts.due,
                );
                model.set(id, facts);
              } else if (!step.add) {
                const slot = table.slot(id);
                const deleted = table.delete(id);
                if (deleted !== slot || (slot !== undefined && table.holds(id, slot)))
                  throw new Error(`${id}: deleted slot ${deleted}, looked up ${slot}`);
                model.delete(id);
              }
            }
            check(table, model, seen);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it('reuses freed slots, keeps extra state only while it holds something, and refuses a duplicate', () => {
    const table = new JournalTable();
    const a = table.add('A1', 1, 0, 10, 20, DUE_INCOMING);
    const b = table.add('B2', 1, 100, 10, 20, DUE_INCOMING);
    table.addUpdate(a, 2, 50, 30);
    table.addUpdate(a, 2, 90, 30);
    table.dropUpdate(a, 2, 50);
    expect(table.extra(a)?.updates).toEqual([2, 90, 30]);
    table.dropUpdate(a, 2, 90);
    expect(table.extra(a)).toBeUndefined();
    table.moreOf(b).pending = 1;
    expect(() => table.add('B2', 1, 0, 1, 1, DUE_INCOMING)).toThrow(/already/);
    table.delete('B2');
    expect(table.extra(b)).toBeUndefined();
    const c = table.add('C3', 3, 0, 1, 1, DUE_HOLD);
    expect(c).toBe(b);
    expect(table.holds('B2', c)).toBe(false);
    expect([...table.slots()].map(([id]) => id)).toEqual(['A1', 'C3']);
  });

  it('a journal of 20 000 queued messages adds under 48 bytes of heap per message', async () => {
    const dir = await tempDir('postern-journal-table-');
    dirs.push(dir);
    // No hand-off: what is measured is what the journal keeps per queued message.
    const journal = await Journal.open({ directory: dir, handoffBudget: 0 });
    journals.push(journal);
    const n = 20_000;
    const queued = Array.from({ length: n }, () => ids.next());
    const first = queued.shift()!;
    await journal.appendMessage(storedFor(first), [contentFor(first)]);
    const content = [Buffer.from('Subject: t\r\n\r\nx\r\n')];
    const before = liveHeap();
    for (let i = 0; i < queued.length; i += 500) {
      await Promise.all(
        queued.slice(i, i + 500).map((id) => journal.appendMessage(storedFor(id), content)),
      );
    }
    const perMessage = (liveHeap() - before) / queued.length;
    expect(journal.size).toBe(n);
    // The queue IDs are held by the caller (`queued`), as the store's index holds them:
    // about 30 bytes remain here (a pointer per slot and the array's slack). An object
    // and a Map slot per message came to about 150.
    expect(perMessage).toBeLessThan(48);
  }, 60_000);
});
