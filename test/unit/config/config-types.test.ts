/**
 * The config is typed from the parameter tables: every parameter's key and value type
 * is known to the compiler, so a wrong type or a misspelt key fails `npm run typecheck`
 * (each `@ts-expect-error` below must meet an error, or tsc fails) and editors complete
 * the keys. The functions holding the refused configs are compiled, never run.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  defineConfig,
  type ListenerConfig,
  type MainParameterInput,
  type MainParameters,
  Mta,
  type MtaConfig,
  type SmtpdParameters,
  type TimeInput,
} from '../../../src/index.js';

describe('MtaConfig', () => {
  it('types every main parameter, as a config gives it', () => {
    expectTypeOf<MtaConfig['myhostname']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<MtaConfig['maximalQueueLifetime']>().toEqualTypeOf<TimeInput | undefined>();
    expectTypeOf<MtaConfig['smtpdTlsSecurityLevel']>().toEqualTypeOf<
      'none' | 'may' | 'encrypt' | undefined
    >();
    expectTypeOf<MtaConfig['disableVrfyCommand']>().toEqualTypeOf<
      boolean | 'yes' | 'no' | undefined
    >();
    expectTypeOf<keyof MainParameters>().toEqualTypeOf<keyof MainParameterInput>();
    expectTypeOf<MtaConfig>().toExtend<MainParameterInput>();
    expectTypeOf<ListenerConfig>().toExtend<MainParameterInput>();
  });

  it('gives each component the resolved values it reads', () => {
    expectTypeOf<MainParameters['maximalQueueLifetime']>().toEqualTypeOf<number>();
    expectTypeOf<SmtpdParameters['smtpdBanner']>().toEqualTypeOf<string>();
    expectTypeOf<MainParameters>().toExtend<SmtpdParameters>();
  });

  it('refuses a wrong type, a misspelt key and an unknown value at compile time', () => {
    const refused = (): void => {
      // @ts-expect-error myhostname is a string
      new Mta({ myhostname: 42 });
      // @ts-expect-error smtpdBaner is not a parameter (smtpdBanner is)
      defineConfig({ smtpdBaner: 'hello' });
      // @ts-expect-error smtpdTlsSecurityLevel is none, may or encrypt
      defineConfig({ smtpdTlsSecurityLevel: 'always' });
      // @ts-expect-error a time is seconds or a number with Postfix's unit
      defineConfig({ maximalQueueLifetime: 'five days' });
      // @ts-expect-error a listener's overrides are typed as the main parameters are
      defineConfig({ smtpd: [{ listen: '0.0.0.0:25', smtpdTimeout: true }] });
      // @ts-expect-error a listener needs listen
      defineConfig({ qmqpd: [{ qmqpdTimeout: '5m' }] });
    };
    expect(refused).toBeTypeOf('function');
  });

  it('defineConfig() returns the config it is given', () => {
    const config = defineConfig({
      myhostname: 'mx.example.com',
      maximalQueueLifetime: '2d',
      smtpd: [{ listen: '127.0.0.1:0', smtpdTlsSecurityLevel: 'may', tls: 'wrapper' }],
    });
    expectTypeOf(config).toEqualTypeOf<MtaConfig>();
    expect(config.maximalQueueLifetime).toBe('2d');
  });
});
