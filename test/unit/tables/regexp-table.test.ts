import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, TableError } from '../../../src/errors.js';
import { createTable } from '../../../src/tables/create-table.js';
import { RegexpTable } from '../../../src/tables/regexp-table.js';

const dir = mkdtempSync(join(tmpdir(), 'postern-regexp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const path = join(dir, `re${n++}`);
  writeFileSync(path, text);
  return path;
}
function buildError(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('did not throw');
}

describe('regexp tables (regexp_table(5))', () => {
  it('takes the first matching rule; case-insensitive unless "i" toggles it', async () => {
    // regexp_table(5) EXAMPLE: "Disallow sender-specified routing".
    const t = createTable(
      `regexp:${file(
        [
          '# Disallow sender-specified routing. This is a must if you relay mail',
          '/[%!@].*[%!@]/       550 Sender-specified routing rejected',
          '/^postmaster@/       OK',
          '/^(.*)-outgoing@(.*)$/   550 Use ${1}@$(2) instead',
          '/^CaseSensitive$/i   exact',
        ].join('\n'),
      )}`,
      'smtpdSenderRestrictions',
    );
    expect(await t.lookup('a%b@c@d')).toBe('550 Sender-specified routing rejected');
    expect(await t.lookup('POSTMASTER@example.com')).toBe('OK');
    expect(await t.lookup('ann-outgoing@example.com')).toBe('550 Use ann@example.com instead');
    expect(await t.lookup('CaseSensitive')).toBe('exact');
    expect(await t.lookup('casesensitive')).toBeUndefined();
    expect(await t.lookup('plain@example.com')).toBeUndefined();
    expect(t.flags).toEqual({ pattern: true, foldCase: false, substitution: true });
  });

  it('supports negation, if/endif nesting, continuation lines and $$', async () => {
    const t = createTable(
      `pcre:${file(
        [
          'if /@example\\.com$/',
          '  # comment inside the block',
          'if !/^admin/',
          '/^(\\w+)@/ user $1 costs $$5',
          'endif',
          '/^admin@/ admin',
          '    continued',
          'endif',
          '!/@example\\.com$/ foreign',
        ].join('\n'),
      )}`,
      'k',
    );
    expect(await t.lookup('bob@example.com')).toBe('user bob costs $5');
    expect(await t.lookup('admin@example.com')).toBe('admin    continued');
    expect(await t.lookup('bob@example.org')).toBe('foreign');
  });

  it('handles header_checks-style rules and POSIX classes', async () => {
    // header_checks(5): "/^Subject: make money fast/ REJECT".
    const t = createTable(
      'regexp:{ {/^Subject:[[:space:]]+make money fast/ REJECT}, {/^X-Mailer: (.*)/ WARN mailer $1} }',
      'headerChecks',
    );
    expect(await t.lookup('Subject:  Make Money Fast now')).toBe('REJECT');
    expect(await t.lookup('X-Mailer: spamtool 1.0')).toBe('WARN mailer spamtool 1.0');
    expect(await t.lookup('Subject: hello')).toBeUndefined();
  });

  it('pcre flags: s, A, x, m', async () => {
    const t = new RegexpTable(
      'pcre',
      '{ {/a.b/s dotall}, {/c d # comment/x extended}, {/^line2/m multi}, {/zz/A anchored} }',
    );
    expect(await t.lookup('a\nb')).toBe('dotall');
    expect(await t.lookup('xcdx')).toBe('extended');
    expect(await t.lookup('line1\nline2')).toBe('multi');
    expect(await t.lookup('zzz')).toBe('anchored');
    expect(await t.lookup('xzz')).toBeUndefined();
  });

  it('accepts another delimiter and needless escapes', async () => {
    const t = createTable('regexp:{ {#^a\\#b$# hash}, {/^x\\-y$/ dash} }', 'k');
    expect(await t.lookup('a#b')).toBe('hash');
    expect(await t.lookup('x-y')).toBe('dash');
  });

  it('names file:line for a pattern that does not compile', () => {
    const path = file('/ok/ fine\n\n/(unclosed/ bad\n');
    const err = buildError(() => createTable(`regexp:${path}`, 'headerChecks'));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`headerChecks: regexp:${path}: ${path}:3:`);
    expect(err.message).toContain('does not compile');
  });

  it.each([
    ['/abc/ ', /has no result/],
    ['/abc', /no closing/],
    ['/abc/q x', /unknown flag "q"/],
    ['/(a)/ $2', /\$2 refers to a group/],
    ['!/(a)/ $1', /negated pattern/],
    ['/a/ cost $x', /write \$\$ for a literal/],
    ['if /a/\n/b/ c', /"if" without a matching "endif"/],
    ['endif', /"endif" without/],
    ['abc def', /expected a pattern/],
  ])('refuses %j', (text, message) => {
    const err = buildError(() => createTable(`regexp:${file(text)}`, 'k'));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(message);
  });

  it('refuses U in pcre tables with a hint', () => {
    expect(() => new RegexpTable('pcre', '{ {/a+/U x} }')).toThrow(/lazy quantifiers/);
  });

  it('refuses $1 when substitution is off (tables of addresses)', async () => {
    const err = buildError(() =>
      createTable('regexp:{ {/^(.*)@example\\.com$/ $1@example.net} }', 'virtualAliasMaps', {
        substitution: false,
      }),
    );
    expect(err.message).toMatch(/substitution is not allowed/);
    const ok = createTable('regexp:{ {/^a@example\\.com$/ b@example.net} }', 'virtualAliasMaps', {
      substitution: false,
    });
    expect(ok.flags.substitution).toBe(false);
    expect(await ok.lookup('A@example.com')).toBe('b@example.net');
  });

  it('an empty group gives no value, not an empty one', async () => {
    const t = createTable('regexp:{ {/^x(.*)$/ $1} }', 'k');
    expect(await t.lookup('xabc')).toBe('abc');
    expect(await t.lookup('x')).toBeUndefined();
  });

  it('constructor errors are TableError config', () => {
    const err = buildError(() => new RegexpTable('regexp', '{ {/(/ x} }'));
    expect(err).toBeInstanceOf(TableError);
    expect((err as TableError).kind).toBe('config');
    expect(err.message).toContain('rule 1');
  });
});
