import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { formatTransportSpec, parseTransportSpec } from '../../../src/rewrite/transport-spec.js';

describe('parseTransportSpec (transport(5) RESULT FORMAT)', () => {
  const cases: [string, string, string | undefined][] = [
    ['smtp', 'smtp', undefined],
    ['smtp:', 'smtp', undefined],
    ['local:mx.example.com', 'local', 'mx.example.com'],
    ['smtp:[mx.example.com]:2525', 'smtp', '[mx.example.com]:2525'],
    ['smtp:[ipv6:2001:db8::1]:25', 'smtp', '[ipv6:2001:db8::1]:25'],
    ['relay:[a.example], [b.example]', 'relay', '[a.example], [b.example]'],
    ['error:5.1.1 no such user', 'error', '5.1.1 no such user'],
    ['error:5.1.1 text: with colon', 'error', '5.1.1 text: with colon'],
    ['discard:silently', 'discard', 'silently'],
    [':[relay.example.com]', '', '[relay.example.com]'],
    [':', '', undefined],
    ['', '', undefined],
    ['  smtp:[gw]  ', 'smtp', '[gw]'],
  ];
  for (const [spec, transport, nexthop] of cases) {
    it(JSON.stringify(spec), () => {
      expect(parseTransportSpec(spec)).toEqual({ transport, nexthop });
    });
  }

  it('refuses a transport name with white space (a forgotten colon)', () => {
    expect(() => parseTransportSpec('error 5.1.1 no such user')).toThrow(ConfigError);
    expect(() => parseTransportSpec('smt\np:x')).toThrow(/transport:nexthop/);
  });

  it('formats back', () => {
    for (const s of ['smtp', 'smtp:[gw]:25', ':[gw]', 'error:5.1.1 gone']) {
      expect(formatTransportSpec(parseTransportSpec(s))).toBe(s);
    }
  });
});
