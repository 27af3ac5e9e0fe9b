/**
 * One behaviour every LookupTable type must show, run against each type by
 * table-conformance.test.ts: found, not found, case folding as the flags say, a
 * retry error stopping the search, a config error for bad content, and an empty value
 * as a config error, never as "found nothing".
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, TableError } from '../../../src/errors.js';
import { TableList } from '../../../src/tables/lookup-table.js';
import type { LookupTable } from '../../../src/tables/types.js';

export interface TableFactory {
  readonly type: string;
  /** Builds a table holding `entries` (each key matches exactly that lookup key). */
  make(entries: Readonly<Record<string, string>>): LookupTable | Promise<LookupTable>;
  /** Two keys this type can hold, and a key it does not hold. */
  readonly keys: readonly [string, string];
  readonly missing: string;
  /** The first key in another case, and whether the type finds it so. */
  readonly otherCase: string;
  readonly findsOtherCase: boolean;
  /** Builds a table whose content is wrong (bad syntax). */
  readonly broken: () => unknown;
  /**
   * A table of this type whose lookups cannot be answered while `state.fail` is true
   * and that finds `recovered` for the first key afterwards, if the type can fail.
   */
  readonly failing?: (state: { fail: boolean }) => LookupTable;
}

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function isConfigError(err: unknown): boolean {
  return err instanceof ConfigError || (err instanceof TableError && err.kind === 'config');
}

export function tableConformance(f: TableFactory): void {
  describe(`LookupTable conformance: ${f.type}`, () => {
    const [k1, k2] = f.keys;

    it('finds each value and misses with undefined', async () => {
      const t = await f.make({ [k1]: 'value one', [k2]: 'smtp:[relay.example]:2525' });
      expect(await t.lookup(k1)).toBe('value one');
      expect(await t.lookup(k2)).toBe('smtp:[relay.example]:2525');
      expect(await t.lookup(f.missing)).toBeUndefined();
      expect(typeof t.name).toBe('string');
      expect(t.name.length).toBeGreaterThan(0);
    });

    it('folds case as its flags say', async () => {
      const t = await f.make({ [k1]: 'v' });
      expect(await t.lookup(f.otherCase)).toBe(f.findsOtherCase ? 'v' : undefined);
    });

    it('treats an empty value as a configuration error', async () => {
      const err = await caught(async () => {
        const t = await f.make({ [k1]: '' });
        await t.lookup(k1);
      });
      expect(isConfigError(err)).toBe(true);
    });

    it('reports bad content as a configuration error', async () => {
      const err = await caught(f.broken);
      expect(isConfigError(err)).toBe(true);
      expect((err as Error).message.length).toBeGreaterThan(10);
    });

    it('answers the same for repeated and concurrent lookups', async () => {
      const t = await f.make({ [k1]: 'v1', [k2]: 'v2' });
      const got = await Promise.all([k1, k2, k1, f.missing, k2].map((k) => t.lookup(k)));
      expect(got).toEqual(['v1', 'v2', 'v1', undefined, 'v2']);
    });

    it('stops a table list at the first value', async () => {
      const a = await f.make({ [k1]: 'first' });
      const b = await f.make({ [k1]: 'second', [k2]: 'only-b' });
      const list = new TableList([a, b]);
      expect(await list.lookup(k1)).toBe('first');
      expect(await list.lookup(k2)).toBe('only-b');
      expect(await list.lookup(f.missing)).toBeUndefined();
    });

    if (f.failing) {
      const failing = f.failing;
      it('throws TableError retry when it cannot answer, and a list stops there', async () => {
        const err = await caught(() => failing({ fail: true }).lookup(k1));
        expect(err).toBeInstanceOf(TableError);
        expect((err as TableError).kind).toBe('retry');
        const later = await f.make({ [k1]: 'must not answer' });
        const listErr = await caught(() =>
          new TableList([failing({ fail: true }), later]).lookup(k1),
        );
        expect((listErr as TableError).kind).toBe('retry');
      });

      it('does not remember a failure', async () => {
        const state = { fail: true };
        const t = failing(state);
        expect(((await caught(() => t.lookup(k1))) as TableError).kind).toBe('retry');
        state.fail = false;
        expect(await t.lookup(k1)).toBe('recovered');
      });
    }
  });
}
