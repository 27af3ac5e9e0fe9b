import { describe, expect, it } from 'vitest';
import {
  computed,
  defineParameters,
  expand,
  expandList,
  sameAs,
} from '../../../src/config/parameter-declaration.js';
import { param } from '../../../src/config/parameter-kinds.js';
import { ParameterSet } from '../../../src/config/parameter-set.js';
import { ConfigError } from '../../../src/errors.js';

const HOST = defineParameters({
  host: param.string({
    postfix: 'myhostname',
    doc: 'The host name.',
    default: 'h.example',
    check: (v, _, key) => (v.includes(' ') ? `${key}: no blanks in "${v}"` : undefined),
  }),
  domain: param.string({
    postfix: 'mydomain',
    doc: 'The domain.',
    default: computed('$host less its first label', ['host'], (p) =>
      String(p.host).replace(/^[^.]*\./, ''),
    ),
  }),
});

// Declared before the table it reads from, as a receiver's table is listed before core.
const SERVER = defineParameters({
  banner: param.string({ postfix: null, doc: 'A banner.', default: expand('$host says hi') }),
  destinations: param.list({
    postfix: null,
    doc: 'Local domains.',
    default: expandList(['$host', 'localhost.$domain']),
  }),
  timeout: param.time({ postfix: 'x_timeout', doc: 'A timeout.', default: '5m' }),
  limit: param.integer({ postfix: null, doc: 'A limit.', default: 10, min: 1 }),
  checks: param.table({ postfix: null, doc: 'Checks.', default: undefined }),
  moreChecks: param.table({ postfix: null, doc: 'More checks.', default: sameAs('checks') }),
});

function set(): ParameterSet<Record<string, unknown>> {
  return new ParameterSet({ server: SERVER, host: HOST });
}

describe('ParameterSet', () => {
  it('computes a default after the parameters it reads, whichever table declares them', () => {
    const p = set().resolve({ host: 'mx.example.org', checks: 'regexp:/etc/checks' });
    expect(p.banner).toBe('mx.example.org says hi');
    expect(p.domain).toBe('example.org');
    expect(p.destinations).toEqual(['mx.example.org', 'localhost.example.org']);
    expect(p.moreChecks).toBe('regexp:/etc/checks');
    expect(p.timeout).toBe(300_000);
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.keys(p)).toEqual([
      'banner',
      'destinations',
      'timeout',
      'limit',
      'checks',
      'moreChecks',
      'host',
      'domain',
    ]);
  });

  it('reports every problem at once, each with its key', () => {
    let error: unknown;
    try {
      set().resolve({ timeout: 'soon', limit: 0, host: 'a b' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.problems.map((p) => p.key)).toEqual(['timeout', 'limit', 'host']);
    expect(e.key).toBe('timeout');
    expect(e.message).toMatch(/^3 problems in the configuration:\n {2}timeout: expected a time/);
    expect(e.message).toContain('\n  limit: expected a whole number >= 1, got 0');
    expect(e.message).toContain('\n  host: no blanks in "a b"');
  });

  it('says nothing more of a default computed from a value that failed', () => {
    const problems: ConfigError[] = [];
    const p = set().resolve({ host: 42 }, { problems });
    expect(problems.map((x) => x.message)).toEqual(['host: expected a string, got 42']);
    expect(p.domain).toBeUndefined();
    expect(p.banner).toBeUndefined();
  });

  it('throws a lone problem as itself', () => {
    expect(() => set().resolve({ limit: 'many' })).toThrow(
      new ConfigError('limit: expected a whole number >= 1, got "many"', 'limit'),
    );
  });

  it('names a problem by the key given for it (a listener override)', () => {
    const problems: ConfigError[] = [];
    set().resolve({ timeout: 'x' }, { problems, keyOf: (n) => `smtpd[1].${n}` });
    expect(problems[0]?.key).toBe('smtpd[1].timeout');
    expect(problems[0]?.message).toMatch(/^smtpd\[1\]\.timeout: expected a time/);
  });

  it('overrides parse only what is given and leave computed values as resolved', () => {
    const s = set();
    const main = s.resolve({});
    const p = s.override(main, { host: 'other.example', timeout: 30 });
    expect(p.host).toBe('other.example');
    expect(p.timeout).toBe(30_000);
    expect(p.banner).toBe('h.example says hi');
    expect(() => s.override(main, { limit: -1 })).toThrow(/limit: expected a whole number/);
  });

  it('refuses tables that cannot be resolved', () => {
    expect(() => new ParameterSet({ a: HOST, b: HOST })).toThrow(
      'parameter host is declared by both a and b',
    );
    const unknownRef = defineParameters({
      x: param.string({ postfix: null, doc: 'x', default: expand('$nowhere') }),
    });
    expect(() => new ParameterSet({ t: unknownRef })).toThrow(
      'the default of x refers to an unknown parameter, nowhere',
    );
    const loop = defineParameters({
      x: param.string({ postfix: null, doc: 'x', default: expand('$y') }),
      y: param.string({ postfix: null, doc: 'y', default: sameAs('x') }),
    });
    expect(() => new ParameterSet({ t: loop })).toThrow(/refer to each other: x → y → x/);
    const otherKind = defineParameters({
      n: param.integer({ postfix: null, doc: 'n', default: 1 }),
      s: param.string({ postfix: null, doc: 's', default: sameAs('n') }),
    });
    expect(() => new ParameterSet({ t: otherKind })).toThrow(
      /copies n, a parameter of another kind/,
    );
    expect(() =>
      defineParameters({ Bad_name: param.string({ postfix: null, doc: '', default: '' }) }),
    ).toThrow(/not a camelCase parameter name/);
  });

  it('describes each parameter with its Postfix name and default', () => {
    const d = set().describe();
    const timeout = d.find((p) => p.name === 'timeout');
    expect(timeout).toMatchObject({
      component: 'server',
      postfix: 'x_timeout',
      kind: 'time',
      defaultText: '"5m"',
    });
    expect(timeout?.schema).toMatchObject({
      description: 'A timeout. Postfix: x_timeout. Default: "5m".',
      default: '5m',
    });
    const banner = d.find((p) => p.name === 'banner');
    expect(banner?.schema.description).toBe("A banner. Postern's own. Default: $host says hi.");
    expect(banner?.schema).not.toHaveProperty('default');
  });
});
