/**
 * config.schema.json: generated from the parameter tables and checked in, so it must be
 * what the tables make now (`npm run schema` writes it), and a real validator (Ajv, in
 * strict draft 2020-12 mode) must take the README's example config and the embedded one,
 * refuse what resolveMtaConfig() refuses for a misspelt key or a value of the wrong form,
 * and take every parameter's own default.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/mta/config-schema.js';
import { EMBEDDED_CONFIG } from '../../../src/mta/embedded-config.js';
import { MAIN_PARAMETERS } from '../../../src/mta/main-parameters.js';
import { resolveMtaConfig } from '../../../src/mta/mta-config.js';

const SCHEMA_FILE = new URL('../../../config.schema.json', import.meta.url);
const README = new URL('../../../README.md', import.meta.url);
const checkedIn = readFileSync(SCHEMA_FILE, 'utf8');
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(JSON.parse(checkedIn));

/** The README's example JSON config (the first ```json block of "Run a mail server"). */
function readmeExample(): Record<string, unknown> {
  const text = readFileSync(README, 'utf8');
  const m = /takes a JSON\s+config[^\n]*\n\n```json\n([\s\S]*?)\n```/.exec(text);
  if (!m?.[1]) throw new Error('README.md has no example JSON config');
  return JSON.parse(m[1]) as Record<string, unknown>;
}

/** Ajv's errors as `path keyword detail` lines. */
function errorsOf(config: unknown): string[] {
  validate(config);
  return (validate.errors ?? []).map(
    (e) => `${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`,
  );
}

describe('config.schema.json', () => {
  it('is what the parameter tables make now (run `npm run schema` after changing one)', () => {
    expect(checkedIn).toBe(`${JSON.stringify(configSchema(), null, 2)}\n`);
  });

  it("takes the README's example config, which resolveMtaConfig() takes too", () => {
    const example = readmeExample();
    expect(example.$schema).toBe('./node_modules/postern/config.schema.json');
    expect(errorsOf(example)).toEqual([]);
    expect(resolveMtaConfig(example).params.myhostname).toBe('mx.example.com');
    expect(errorsOf(EMBEDDED_CONFIG)).toEqual([]);
  });

  it('refuses a misspelt key, at the top and in a listener', () => {
    const example = readmeExample();
    expect(errorsOf({ ...example, smtpdBaner: 'hi' })).toEqual([
      ' unevaluatedProperties {"unevaluatedProperty":"smtpdBaner"}',
    ]);
    expect(errorsOf({ smtpd: [{ listen: '127.0.0.1:25', smtpdTimout: '30s' }] })).toEqual([
      '/smtpd/0 unevaluatedProperties {"unevaluatedProperty":"smtpdTimout"}',
    ]);
    expect(() => resolveMtaConfig({ ...example, smtpdBaner: 'hi' })).toThrow(/smtpdBaner/);
    expect(
      errorsOf({ transports: { relay: { type: 'smtp', smtpTlsSecurityLevl: 'encrypt' } } }),
    ).toEqual([
      '/transports/relay unevaluatedProperties {"unevaluatedProperty":"smtpTlsSecurityLevl"}',
    ]);
  });

  it("takes a transport's parameter overrides and a pipe's command", () => {
    expect(
      errorsOf({
        transports: {
          relay: { type: 'smtp', smtpTlsSecurityLevel: 'encrypt', destinationConcurrencyLimit: 5 },
          filter: {
            type: 'pipe',
            argv: ['/usr/bin/filter', '${recipient}'],
            user: 'mail',
            flags: 'R',
          },
        },
      }),
    ).toEqual([]);
    expect(
      errorsOf({ transports: { relay: { type: 'smtp', smtpTlsSecurityLevel: 'always' } } }),
    ).not.toEqual([]);
  });

  it('refuses a value of the wrong form, as the parameter kinds do', () => {
    for (const bad of [
      { messageSizeLimit: 'lots' },
      { maximalQueueLifetime: 'five days' },
      { smtpdTlsSecurityLevel: 'always' },
      { disableVrfyCommand: 'maybe' },
      { smtpd: [{ smtpdTimeout: '30s' }] },
      { queueStore: { type: 'cloud' } },
      { transports: { archive: { type: 'carrier-pigeon' } } },
    ]) {
      expect(errorsOf(bad), JSON.stringify(bad)).not.toEqual([]);
      expect(() => resolveMtaConfig(bad), JSON.stringify(bad)).toThrow();
    }
  });

  it("takes every parameter's default as a config would give it", () => {
    for (const p of MAIN_PARAMETERS.describe()) {
      const given = (p.schema as { default?: unknown }).default;
      if (given === undefined) continue;
      expect(errorsOf({ [p.name]: given }), p.name).toEqual([]);
    }
  });
});
