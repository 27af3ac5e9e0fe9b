import { describe, expect, it } from 'vitest';
import { resolveParameters } from '../../../src/mta/main-parameters.js';
import { Rewriter } from '../../../src/rewrite/rewriter.js';

// ADDRESS_CLASS_README: the local domain class is $mydestination, $inet_interfaces and
// $proxy_interfaces — mail to user@[one.of.our.addresses] is local.
describe('local class: inet_interfaces and proxy_interfaces address literals', () => {
  it('treats a literal of this machine as local with inet_interfaces = all', async () => {
    const r = new Rewriter({ params: resolveParameters({ myhostname: 'mx.example.test' }) });
    expect((await r.resolve('user@[127.0.0.1]')).addressClass).toBe('local');
    expect(r.isLocalDomain('[127.0.0.1]')).toBe(true);
    expect(r.isLocalDomain('[IPv6:::1]')).toBe(true);
    expect((await r.resolve('user@[192.0.2.99]')).addressClass).toBe('default');
  });

  it('honours explicit addresses, loopback-only and proxy_interfaces', async () => {
    const r = new Rewriter({
      params: resolveParameters({
        myhostname: 'mx.example.test',
        inetInterfaces: ['loopback-only'],
        proxyInterfaces: ['198.51.100.7'],
      }),
    });
    expect(r.isLocalDomain('[127.0.0.1]')).toBe(true);
    expect(r.isLocalDomain('[198.51.100.7]')).toBe(true);
    expect(r.isLocalDomain('[192.0.2.5]')).toBe(false);
    const only = new Rewriter({
      params: resolveParameters({ myhostname: 'mx.example.test', inetInterfaces: ['192.0.2.5'] }),
    });
    expect(only.isLocalDomain('[192.0.2.5]')).toBe(true);
    expect(only.isLocalDomain('[127.0.0.1]')).toBe(false);
    expect((await only.resolve('postmaster@[192.0.2.5]')).addressClass).toBe('local');
  });
});
