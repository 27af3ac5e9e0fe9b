/**
 * QueueIdMap (and the QueueIdHash under it): random sequences of additions and
 * removals agree with a Map — lookups, size, the values listed — through growth past
 * the first capacity, long probe runs and the reset when it empties; and a map of
 * 20 000 entries adds under 24 bytes of heap per entry (a Map: about 36).
 *
 * @module
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QueueIdMap } from '../../../../src/queue/stores/queue-id-hash.js';
import { liveHeap } from '../../../helpers/live-heap.js';

interface Item {
  readonly queueId: string;
  readonly n: number;
}

describe('QueueIdMap', () => {
  it('agrees with a Map under random additions and removals', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            add: fc.boolean(),
            key: fc.integer({ min: 0, max: 4000 }),
            count: fc.integer({ min: 1, max: 900 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (steps) => {
          const map = new QueueIdMap<Item>();
          const model = new Map<string, Item>();
          let n = 0;
          for (const step of steps) {
            for (let i = 0; i < step.count; i++) {
              const id = `Q${(step.key + i * 11) % 4001}`;
              if (step.add && !model.has(id)) {
                const item = { queueId: id, n: n++ };
                map.add(item);
                model.set(id, item);
              } else if (step.add) {
                expect(() => map.add({ queueId: id, n: -1 })).toThrow(/already/);
              } else if (map.delete(id) !== model.get(id)) {
                throw new Error(`${id}: delete gave the wrong value`);
              } else {
                model.delete(id);
              }
            }
            const wrong: string[] = [];
            for (let k = 0; k <= 4000; k++) {
              const id = `Q${k}`;
              if (map.get(id) !== model.get(id) || map.has(id) !== model.has(id)) wrong.push(id);
            }
            const listed = [...map.values()].map((v) => v.n).sort((a, b) => a - b);
            const want = [...model.values()].map((v) => v.n).sort((a, b) => a - b);
            expect({ size: map.size, listed, wrong }).toEqual({
              size: model.size,
              listed: want,
              wrong: [],
            });
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('holds 20 000 entries in under 24 bytes of heap each', () => {
    const items = Array.from({ length: 20_000 }, (_, i) => ({ queueId: `4Zq${i}B`, n: i }));
    const before = liveHeap();
    const map = new QueueIdMap<Item>();
    for (const item of items) map.add(item);
    const perEntry = (liveHeap() - before) / items.length;
    expect(map.size).toBe(items.length);
    expect(perEntry).toBeLessThan(24);
  });
});
