/**
 * A configuration's mistakes, all at once: every problem of a config in one ConfigError
 * (each with its key), the nearest known name for a misspelt key, and JSON syntax
 * mistakes placed by line and column.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { didYouMean } from '../../../src/config/did-you-mean.js';
import { jsonSyntaxError } from '../../../src/config/json-syntax.js';
import { ConfigError } from '../../../src/errors.js';
import { PARAMETER_NAMES } from '../../../src/mta/main-parameters.js';
import { resolveMtaConfig } from '../../../src/mta/mta-config.js';

/** The ConfigError resolveMtaConfig() throws for `config`. */
function problemsOf(config: unknown): ConfigError {
  try {
    resolveMtaConfig(config);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

describe('did you mean', () => {
  it.each([
    ['smtpdBaner', 'smtpdBanner'],
    ['messagesizelimit', 'messageSizeLimit'],
    ['message_size_limit', 'messageSizeLimit'],
    ['myhostnmae', 'myhostname'],
    ['relayHost', 'relayhost'],
    ['mynetwork', 'mynetworks'],
  ])('%s → %s', (given, meant) => {
    expect(didYouMean(given, PARAMETER_NAMES)).toBe(meant);
  });

  it('guesses nothing for a name far from every parameter', () => {
    expect(didYouMean('frobnicate', PARAMETER_NAMES)).toBeUndefined();
    expect(didYouMean('x', PARAMETER_NAMES)).toBeUndefined();
  });
});

describe('resolveMtaConfig reports every problem at once', () => {
  it('names each key, with the parameter a misspelt one means', () => {
    const err = problemsOf({
      myhostname: 'mx.example.com',
      smtpdBaner: 'hello',
      messageSizeLimit: 'big',
      maximalQueueLifetime: 'soon',
      smtpd: [
        { listen: 'nowhere', smtpdTimout: '30s' },
        { listen: '127.0.0.1:25', maxproc: -1 },
      ],
      transports: { relay: { type: 'carrier-pigeon' }, ok: { type: 'smtp' } },
      queueStore: { type: 'cloud' },
    });
    expect(err.problems.map((p) => p.key)).toEqual([
      'smtpdBaner',
      'messageSizeLimit',
      'maximalQueueLifetime',
      'smtpd[0].listen',
      'smtpd[0].smtpdTimout',
      'smtpd[1].maxproc',
      'transports.relay.type',
      'queueStore',
    ]);
    expect(err.message).toMatch(/^8 problems in the configuration:\n/);
    expect(err.message).toContain(
      'unknown configuration key "smtpdBaner"; did you mean "smtpdBanner"?',
    );
    expect(err.message).toContain(
      'smtpd[0]: unknown key "smtpdTimout"; did you mean "smtpdTimeout"?',
    );
    expect(err.key).toBe('smtpdBaner');
  });

  it("reports a main parameter's mistake once, not again for each listener that overrides another", () => {
    const err = problemsOf({
      messageSizeLimit: 'big',
      smtpd: [
        { listen: '127.0.0.1:25', smtpdTimeout: '30s' },
        { listen: '127.0.0.1:587', smtpdTimeout: 'never' },
      ],
    });
    expect(err.problems.map((p) => p.key)).toEqual(['messageSizeLimit', 'smtpd[1].smtpdTimeout']);
  });

  it('takes "$schema" (a JSON config naming its schema) and nothing else beginning with $', () => {
    expect(
      resolveMtaConfig({ $schema: './node_modules/postern/config.schema.json' }).params.myhostname,
    ).toBeTruthy();
    expect(problemsOf({ $schemas: 'x' }).key).toBe('$schemas');
  });
});

describe('JSON syntax mistakes', () => {
  it.each([
    ['{\n  "myhostname": "x",,\n}\n', 2, 21, 'a property name in double quotes'],
    ['{\n  "a": 1,\n}', 3, 1, 'a property name in double quotes'],
    ['{\n  "a" 1\n}', 2, 7, '":" after the property name'],
    ['{\n  "a": tru\n}', 2, 8, 'a value'],
    ['{\n  "a": [1, 2\n}', 3, 1, '"," or "]" after an array item'],
    ['{\n  "a": "x\n"}', 2, 8, 'the string to end with " before the end of the line'],
    ['{"a": 1', 1, 8, '"," or "}" after a property value'],
    ['{"a": 1} x', 1, 10, 'the end of the text after the value'],
    ['', 1, 1, 'a value'],
  ])('%j: line %i, column %i', (text, line, column, expected) => {
    const mistake = jsonSyntaxError(text);
    expect(mistake).toMatchObject({ line, column });
    expect(mistake?.expected.startsWith(expected)).toBe(true);
  });

  it('finds a mistake exactly when JSON.parse() refuses the text', () => {
    const parses = (text: string): boolean => {
      try {
        JSON.parse(text);
        return true;
      } catch {
        return false;
      }
    };
    const near = fc
      .tuple(fc.json(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', ' ', 'x', '\n'))
      .map(([text, at, ch]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + ch + text.slice(i + (at % 2));
      });
    fc.assert(
      fc.property(fc.oneof(fc.json(), near, fc.string()), (text) => {
        expect(jsonSyntaxError(text) === undefined).toBe(parses(text));
      }),
      { numRuns: 3000 },
    );
  });
});
