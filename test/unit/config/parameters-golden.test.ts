import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PARAMETER_NAMES, resolveParameters } from '../../../src/mta/main-parameters.js';
import { RELOADABLE_PARAMETERS } from '../../../src/mta/mta-reload.js';
import { BASES, encode, PROBES, template } from './parameters-golden.js';

interface Golden {
  readonly names: readonly string[];
  readonly reloadable: readonly string[];
  readonly messages: readonly string[];
  readonly parsed: Readonly<Record<string, readonly (readonly unknown[])[]>>;
  readonly [defaults: `defaults:${string}`]: Readonly<Record<string, unknown>>;
}

const golden = JSON.parse(
  readFileSync(new URL('./fixtures/parameters-golden.json', import.meta.url), 'utf8'),
) as Golden;

/** What `name` makes of `probe`, in the golden file's form. */
function outcome(name: string, probe: unknown): readonly unknown[] {
  try {
    const p = resolveParameters({
      myhostname: 'mx.example.com',
      [name]: probe,
    }) as unknown as Record<string, unknown>;
    return ['=', encode(p[name])];
  } catch (err) {
    const message = template((err as Error).message, name, probe);
    const key = (err as { key?: string }).key;
    return key === name ? ['!', message] : ['!', message, key];
  }
}

describe('every parameter keeps the default and checks of the single table it came from', () => {
  it('has the same parameters, reloadable ones included', () => {
    expect([...PARAMETER_NAMES].sort()).toEqual([...golden.names].sort());
    // The reloadable set is now the receivers' tables; allowUntrustedRouting, an smtpd
    // parameter that nothing reads yet, joined it with them.
    expect([...RELOADABLE_PARAMETERS].sort()).toEqual(
      [...golden.reloadable, 'allowUntrustedRouting'].sort(),
    );
  });

  it.each(Object.keys(BASES))('resolves the %s base config to the same values', (base) => {
    const p = resolveParameters(BASES[base]) as unknown as Record<string, unknown>;
    const got = Object.fromEntries(golden.names.map((n) => [n, encode(p[n])]));
    expect(got).toEqual(golden[`defaults:${base}`]);
  });

  it.each(golden.names)('parses and checks %s as before', (name) => {
    const expected = (golden.parsed[name] ?? []).map((r) =>
      r[0] === '!' ? ['!', golden.messages[r[1] as number], ...r.slice(2)] : r,
    );
    const got = PROBES.map((probe) => outcome(name, probe));
    expect(got).toEqual(expected);
  });
});
