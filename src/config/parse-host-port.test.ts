import t from 'tap';
import { ConfigValueInvalidError, parseHostPort } from './index.js';

t.test('parses IPv4, bracketed IPv6 and host names', async (t) => {
  t.same(parseHostPort('198.18.0.1:7400'), { host: '198.18.0.1', port: 7400, kind: 'ipv4' });
  t.same(parseHostPort('[::1]:7400'), { host: '::1', port: 7400, kind: 'ipv6' });
  t.same(parseHostPort('[2001:db8::7]:1'), { host: '2001:db8::7', port: 1, kind: 'ipv6' });
  t.same(parseHostPort('node-b.example:65535'),
    { host: 'node-b.example', port: 65535, kind: 'name' });
  t.same(parseHostPort('beta:7400'), { host: 'beta', port: 7400, kind: 'name' });
  t.same(parseHostPort('[fe80::1%eth0]:7400'), { host: 'fe80::1%eth0', port: 7400, kind: 'ipv6' });
});

t.test('rejects bad hosts and ports with the reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['198.18.0.1', /no port/],
    ['198.18.0.1:0', /not 1\.\.65535/],
    ['198.18.0.1:65536', /not 1\.\.65535/],
    ['198.18.0.1:http', /not 1\.\.65535/],
    ['198.18.0.1:', /not 1\.\.65535/],
    ['::1:7400', /must be in brackets/],
    ['[::1:7400', /without a closing/],
    ['[zz::1]:7400', /not an IPv6 address/],
    ['[198.18.0.1]:7400', /not an IPv6 address/],
    ['300.1.2.3:7400', /not an IPv4 address/],
    ['-bad-.example:7400', /not a host name/],
    ['under_score:7400', /not a host name/],
    [':7400', /not a host name/],
  ];
  for (const [value, reason] of cases) {
    const error = t.throws(() => parseHostPort(value), ConfigValueInvalidError, value);
    t.match((error as ConfigValueInvalidError).problem, reason, value);
  }
});
