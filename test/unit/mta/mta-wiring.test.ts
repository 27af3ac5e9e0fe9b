import { describe, expect, it } from 'vitest';
import { LocalDeliveryAgent } from '../../../src/deliver/local-agent.js';
import { PipeDeliveryAgent } from '../../../src/deliver/pipe-agent.js';
import { VirtualDeliveryAgent } from '../../../src/deliver/virtual-agent.js';
import { ConfigError } from '../../../src/errors.js';
import { Mta } from '../../../src/mta/mta.js';

describe('Mta wiring of local, virtual and pipe transports', () => {
  it('registers virtual by default and pipe transports from the transports map', () => {
    const mta = new Mta({
      myhostname: 'mx.example.com',
      queueStore: { type: 'memory' },
      smtpd: [],
      transports: {
        filter: {
          type: 'pipe',
          argv: ['/usr/bin/cat', '${recipient}'],
          flags: 'FR',
          user: 'nobody',
          timeLimit: '60s',
        },
      },
    });
    expect(mta.agents.get('local')).toBeInstanceOf(LocalDeliveryAgent);
    expect(mta.agents.get('virtual')).toBeInstanceOf(VirtualDeliveryAgent);
    expect(mta.agents.get('filter')).toBeInstanceOf(PipeDeliveryAgent);
  });

  it('refuses a pipe transport without argv, with a root user, or with an unknown flag', () => {
    const make = (t: Record<string, unknown>) =>
      new Mta({
        myhostname: 'mx.example.com',
        queueStore: { type: 'memory' },
        smtpd: [],
        transports: { p: { type: 'pipe', ...t } },
      });
    expect(() => make({ user: 'nobody' })).toThrow(ConfigError);
    expect(() => make({ argv: ['/bin/true'], user: 'root' })).toThrow(
      /refuses to run commands as root/,
    );
    expect(() => make({ argv: ['/bin/true'], user: 'nobody', flags: 'FZ' })).toThrow(
      /unknown pipe flag/,
    );
  });
});
