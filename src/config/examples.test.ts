import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfig, peerById, vaultsAsSource, vaultsAsTarget } from './index.js';

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');

t.test('examples/understudy.yaml loads as alpha: source of db, target of files', async (t) => {
  const config = loadConfig(join(EXAMPLES, 'understudy.yaml'));
  t.equal(config.node.id, 'alpha');
  t.same(config.node.listen.map((a) => `${a.host}:${a.port}`),
    ['198.18.0.1:7400', '198.18.1.1:7400']);
  t.match(config.node.fingerprint, /^sha256:3A:91:0C:(..:){28}D1$/);
  t.same(config.peers.map((peer) => peer.id), ['beta']);
  t.same(vaultsAsSource(config).map((vault) => vault.name), ['db']);
  t.match(vaultsAsTarget(config), [{ name: 'files', source: 'beta',
    replica: '/var/lib/understudy/replicas/files' }]);
  t.match(vaultsAsSource(config)[0], { mode: 'sync', journalBytesMax: 10 * 2 ** 30,
    sync: { fsyncTimeoutMs: 5000, onTimeout: 'fail' }, exclude: ['**/*.tmp', 'tmp/**'] });
  t.match(peerById(config, 'beta'), { fingerprint: /^sha256:C4:07:/,
    addresses: [{ host: '198.18.0.2', port: 7400 }, { host: '198.18.1.2', port: 7400 }] });
  t.equal(peerById(config, 'alpha'), undefined, 'a node is never its own peer');
});

t.test('examples/understudy.yaml loads as beta with --node beta', async (t) => {
  const config = loadConfig(join(EXAMPLES, 'understudy.yaml'), { nodeId: 'beta' });
  t.equal(config.node.id, 'beta');
  t.same(config.node.listen.map((a) => a.host), ['198.18.0.2', '198.18.1.2']);
  t.same(config.peers.map((peer) => peer.id), ['alpha']);
  t.same(vaultsAsSource(config).map((vault) => vault.name), ['files']);
  t.match(vaultsAsTarget(config), [{ name: 'db', replica: '/srv/replicas/db' }]);
});

t.test('examples/minimal.yaml loads with every default', async (t) => {
  const config = loadConfig(join(EXAMPLES, 'minimal.yaml'));
  t.same(vaultsAsSource(config), [{
    name: 'data', source: 'alpha', path: '/srv/data',
    targets: [{ node: 'beta', replica: '/var/lib/understudy/replicas/data' }],
    include: ['**'], exclude: [], mode: 'async', journalBytesMax: 2 ** 30,
    sync: { fsyncTimeoutMs: 5000, onTimeout: 'fail' },
  }]);
  t.same(vaultsAsTarget(config), []);
  t.equal(config.node.heartbeatIntervalMs, 500);
});
