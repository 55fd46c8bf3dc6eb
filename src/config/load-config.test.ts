import t from 'tap';
import {
  ConfigInvalidError, parseConfig, loadConfig, type ConfigProblem,
} from './index.js';

const FINGERPRINT = `sha256:${'ab'.repeat(32)}`;

// Line numbers below are this text's; each test changes one or more lines.
const BASE = `node:
  id: alpha
  stateDir: /var/lib/understudy
  listen: ["198.18.0.1:7400"]
peers:
  - id: beta
    addresses: ["198.18.0.2:7400"]
    fingerprint: "${FINGERPRINT}"
vaults:
  - name: db
    source: alpha
    path: /srv/db
    targets:
      - node: beta
    mode: async
    journalBytesMax: 1GiB
`;

const SECOND_VAULT = `  - name: logs
    source: alpha
    path: /srv/logs
    targets:
      - node: beta
`;

function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`test bug: "${from}" is not in the text`);
  return text.replace(from, to);
}

function problemsOf(text: string, nodeId?: string): ConfigProblem[] {
  try {
    parseConfig(text, 'test.yaml', nodeId === undefined ? {} : { nodeId });
  } catch (error) {
    if (error instanceof ConfigInvalidError) return [...error.problems];
    throw error;
  }
  return [];
}

t.test('the base text used by these tests is valid', async (t) => {
  t.same(problemsOf(BASE), []);
  t.same(problemsOf(BASE + SECOND_VAULT), []);
});

t.test('a typo in a key is reported at the key, naming the known ones', async (t) => {
  const problems = problemsOf(edit(BASE, 'journalBytesMax', 'journalByteMax'));
  t.match(problems, [{ file: 'test.yaml', line: 16, col: 5, field: 'vaults[0].journalByteMax',
    problem: /unknown field "journalByteMax"/, expected: /journalBytesMax/ }]);
  t.equal(problems.length, 1);
});

t.test('a typo in listen reports the key and the missing listen addresses', async (t) => {
  const problems = problemsOf(edit(BASE, 'listen:', 'listn:'));
  t.match(problems, [
    { line: 2, col: 3, field: 'node', problem: /no listen addresses/ },
    { line: 4, col: 3, field: 'node.listn', problem: /unknown field/ },
  ]);
});

t.test('a value of the wrong type names the field and the type expected', async (t) => {
  const problems = problemsOf(edit(BASE, 'listen:', 'insecure: yes\n  listen:'));
  t.match(problems, [{ line: 4, col: 13, field: 'node.insecure', problem: /"yes" is not boolean/,
    expected: 'true or false' }]);
  t.equal(problems.length, 1);
});

t.test('a value outside an enum lists the allowed ones', async (t) => {
  const problems = problemsOf(edit(BASE, 'mode: async', 'mode: asynch'));
  t.match(problems, [{ line: 15, col: 11, field: 'vaults[0].mode',
    problem: /"asynch" is not one of the allowed values/, expected: 'async or sync' }]);
});

t.test('a missing required field is reported at its mapping', async (t) => {
  const problems = problemsOf(edit(BASE, '    path: /srv/db\n', ''));
  t.match(problems, [{ line: 10, col: 5, field: 'vaults[0].path', problem: 'missing',
    expected: 'an absolute path' }]);
  t.equal(problems.length, 1);
});

t.test('a size that does not parse, or is too small, is reported', async (t) => {
  t.match(problemsOf(edit(BASE, '1GiB', '10 gigs')), [{ line: 16, col: 22,
    field: 'vaults[0].journalBytesMax', problem: /unknown unit "gigs"/, expected: /10GiB/ }]);
  t.match(problemsOf(edit(BASE, '1GiB', '1MiB')), [{ line: 16,
    problem: /1048576 bytes, below the minimum/, expected: /at least 16MiB/ }]);
  t.same(problemsOf(edit(BASE, '1GiB', '16MiB')), []);
  t.match(problemsOf(edit(BASE, '1GiB', 'true')), [{ line: 16, problem: /not integer,string/ }]);
});

t.test('a bad listen or peer address names the list item', async (t) => {
  const problems = problemsOf(edit(edit(BASE, '198.18.0.1:7400', '198.18.0.1:99999'),
    '"198.18.0.2:7400"', '"198.18.0.2:7400", "fe80::2:7400"'));
  t.match(problems, [
    { line: 4, col: 12, field: 'node.listen[0]', problem: /port "99999" is not 1\.\.65535/ },
    { line: 7, col: 36, field: 'peers[0].addresses[1]', problem: /must be in brackets/ },
  ]);
});

t.test('heartbeatIntervalMs must be 10..60000', async (t) => {
  t.match(problemsOf(edit(BASE, 'listen:', 'heartbeatIntervalMs: 5\n  listen:')), [
    { line: 4, field: 'node.heartbeatIntervalMs', problem: /5 must be >= 10/,
      expected: /10 to 60000/ }]);
  t.match(problemsOf(edit(BASE, 'listen:', 'heartbeatIntervalMs: 60001\n  listen:')), [
    { line: 4, field: 'node.heartbeatIntervalMs', problem: /must be <= 60000/ }]);
});

t.test('a vault source or target that is not a peer is named', async (t) => {
  const problems = problemsOf(edit(edit(BASE, 'source: alpha', 'source: gamma'),
    'node: beta', 'node: delta'));
  t.match(problems, [
    { line: 11, col: 13, field: 'vaults[0].source', problem: /node gamma is neither/,
      expected: /alpha, beta/ },
    { line: 14, col: 15, field: 'vaults[0].targets[0].node', problem: /node delta is neither/ },
  ]);
});

t.test('a vault cannot target its own source, nor the same node twice', async (t) => {
  t.match(problemsOf(edit(BASE, 'node: beta', 'node: alpha')), [{ line: 14,
    field: 'vaults[0].targets[0].node', problem: /is the source of this vault/ }]);
  const twice = edit(BASE, '      - node: beta\n', '      - node: beta\n      - node: beta\n');
  t.match(problemsOf(twice), [{ line: 15, field: 'vaults[0].targets[1].node',
    problem: /a target twice/ }]);
  t.equal(problemsOf(twice).length, 1);
});

t.test('a vault name used twice is reported at the second one', async (t) => {
  const problems = problemsOf(BASE + edit(SECOND_VAULT, 'name: logs', 'name: db'));
  t.match(problems, [{ line: 17, col: 11, field: 'vaults[1].name',
    problem: /vault db is declared twice \(also vaults\[0\]\)/ }]);
  t.equal(problems.length, 1);
});

t.test('peers: unique ids, and a fingerprint unless insecure', async (t) => {
  const twice = edit(BASE, 'vaults:', `  - id: beta\n    addresses: ["b:1"]\n` +
    `    fingerprint: "${FINGERPRINT}"\nvaults:`);
  t.match(problemsOf(twice), [{ line: 9, field: 'peers[1].id', problem: /declared twice/ }]);
  const bare = edit(BASE, `    fingerprint: "${FINGERPRINT}"\n`, '');
  t.match(problemsOf(bare), [{ line: 6, col: 5, field: 'peers[0]',
    problem: /peer beta has no fingerprint/, expected: /insecure: true/ }]);
  t.same(problemsOf(edit(bare, 'listen:', 'insecure: true\n  listen:')), []);
  t.match(problemsOf(edit(BASE, FINGERPRINT, 'sha256:AB:CD')), [{ line: 8,
    field: 'peers[0].fingerprint', expected: /32 hex pairs/ }]);
});

t.test('vault paths on one source must not contain one another', async (t) => {
  const inside = edit(SECOND_VAULT, '/srv/logs', '/srv/db/logs');
  t.match(problemsOf(BASE + inside), [{ line: 19, col: 11, field: 'vaults[1].path',
    problem: /\/srv\/db\/logs is inside the path of vault db on alpha \(\/srv\/db\)/ }]);
  const outer = edit(SECOND_VAULT, '/srv/logs', '/srv/');
  t.match(problemsOf(BASE + outer), [{ line: 19, problem: /\/srv contains the path of vault db/ }]);
  // The same path on different sources is two machines' directories: allowed.
  const elsewhere = edit(edit(SECOND_VAULT, 'source: alpha', 'source: beta'), 'node: beta',
    'node: alpha');
  t.same(problemsOf(BASE + edit(elsewhere, '/srv/logs', '/srv/db')), []);
});

t.test('replicas on one node must not overlap each other or its vault paths', async (t) => {
  const target = '      - node: beta\n';
  const withReplica = `${target}        replica: /srv/replica\n`;
  const sameReplica = edit(BASE, target, withReplica) + edit(SECOND_VAULT, target, withReplica);
  t.match(problemsOf(sameReplica), [{ line: 23, field: 'vaults[1].targets[0].replica',
    problem: /is the same directory as the replica of vault db on beta/ }]);
  const overVault = edit(edit(SECOND_VAULT, 'source: alpha', 'source: beta'), 'node: beta',
    'node: alpha\n        replica: /srv/db/copy');
  t.match(problemsOf(BASE + overVault), [{ line: 22,
    problem: /is inside the path of vault db on alpha/ }]);
});

t.test('a replica inside stateDir is an error, except below <stateDir>/replicas/', async (t) => {
  const inState = edit(BASE, '      - node: beta\n',
    '      - node: beta\n        replica: /var/lib/understudy/db\n');
  t.match(problemsOf(inState), [{ line: 15, col: 18, field: 'vaults[0].targets[0].replica',
    problem: /is inside node.stateDir \(\/var\/lib\/understudy\)/ }]);
  t.same(problemsOf(edit(inState, 'understudy/db', 'understudy/replicas/db')), []);
  t.match(problemsOf(edit(inState, 'understudy/db', 'understudy/replicas')), [{ line: 15 }]);
});

t.test('stateDir inside a vault path or a replica is an error', async (t) => {
  t.match(problemsOf(edit(BASE, 'path: /srv/db', 'path: /var/lib')), [{ line: 12,
    field: 'vaults[0].path', problem: /contains node.stateDir/ }]);
  t.match(problemsOf(edit(BASE, 'path: /srv/db', 'path: /var/lib/understudy/journals')), [
    { line: 12, problem: /is inside node.stateDir/ }]);
  const keys = edit(BASE, 'listen:',
    'tls: { key: /srv/db/node.key, cert: /etc/n.crt }\n  listen:');
  t.match(problemsOf(keys), [{ line: 4, field: 'node.tls.key',
    problem: /is inside the path of vault db/ }]);
});

t.test('paths must be absolute', async (t) => {
  t.match(problemsOf(edit(BASE, 'path: /srv/db', 'path: srv/db')), [{ line: 12,
    field: 'vaults[0].path', problem: /relative path/ }]);
  t.match(problemsOf(edit(BASE, 'stateDir: /var', 'stateDir: var')), [{ line: 3,
    field: 'node.stateDir', problem: /relative path/ }]);
});

t.test('globs must stay inside the vault root', async (t) => {
  const text = edit(BASE, 'mode: async', 'exclude: ["ok/**", "../x"]\n    mode: async');
  t.match(problemsOf(text), [{ line: 15, col: 24, field: 'vaults[0].exclude[1]',
    problem: /leaves the vault root/ }]);
  t.equal(problemsOf(edit(text, '../x', '/etc/**')).length, 1);
});

t.test('YAML syntax errors carry line and column', async (t) => {
  // The parser notices the unclosed list where the next key begins.
  const problems = problemsOf(edit(BASE, '"198.18.0.1:7400"]', '"198.18.0.1:7400"'));
  t.match(problems, [{ line: 5, col: 1, field: '', problem: /^YAML syntax: Flow sequence/,
    expected: 'valid YAML' }]);
  t.match(problemsOf(edit(BASE, '  stateDir:', '  id: beta\n  stateDir:')), [{ line: 3,
    problem: /YAML syntax: Map keys must be unique/ }]);
});

t.test('an empty file says what it should contain', async (t) => {
  t.match(problemsOf(''), [{ line: 1, col: 1, field: '', expected: /node, peers and vaults/ }]);
});

t.test('several mistakes are reported at once, in line order', async (t) => {
  const text = edit(edit(edit(edit(BASE, 'id: alpha', 'id: Alpha'), '1GiB', '1 parsec'),
    'mode: async', 'mode: fast'), 'addresses:', 'adresses:');
  let error: unknown;
  try {
    parseConfig(text, 'test.yaml');
  } catch (caught) {
    error = caught;
  }
  t.type(error, ConfigInvalidError);
  const invalid = error as ConfigInvalidError;
  t.equal(invalid.code, 'CONFIG_INVALID');
  t.match(invalid.problems.map((p) => `${p.line}:${p.field}`), [
    '2:node.id', '6:peers[0].addresses', '7:peers[0].adresses', '15:vaults[0].mode',
    '16:vaults[0].journalBytesMax']);
  t.match(invalid.message,
    /test\.yaml:2:7: node\.id: "Alpha" is not in the expected form; expected a node id/);
  t.match(invalid.message, 'test.yaml:7:5: peers[0].adresses: unknown field "adresses"; ' +
    'expected one of id, addresses, fingerprint');
  t.match(invalid.message, /\(5 problems\)/);
});

t.test('--node picks another node of the file, or says it is not declared', async (t) => {
  t.match(problemsOf(BASE, 'gamma'), [{ line: 2, col: 7, field: 'node.id',
    problem: /--node gamma is not declared/ }]);
  t.match(problemsOf(BASE, 'Bad'), [{ line: 2, problem: /is not a node id/ }]);
  // beta is in the file, but alpha (the source of db) is not a peer that beta could know.
  t.match(problemsOf(BASE, 'beta'), [{ line: 11, field: 'vaults[0].source',
    problem: /node alpha is neither/ }]);
});

t.test('a missing file is one problem with a hint', async (t) => {
  const dir = t.testdir({});
  const file = `${dir}/nope.yaml`;
  const error = t.throws(() => loadConfig(file)) as ConfigInvalidError;
  t.type(error, ConfigInvalidError);
  t.match(error.problems, [{ file, line: 0, problem: 'no such file' }]);
  t.match(error.message, `${file}: (file): no such file; expected a readable YAML file`);
  t.match(error.hint, /--config/);
});

t.test('loadConfig reads a file and resolves it with defaults', async (t) => {
  const dir = t.testdir({ 'n.yaml': BASE });
  const config = loadConfig(`${dir}/n.yaml`);
  t.equal(config.file, `${dir}/n.yaml`);
  t.same(config.node, {
    id: 'alpha', stateDir: '/var/lib/understudy',
    listen: [{ host: '198.18.0.1', port: 7400, kind: 'ipv4' }],
    tls: { key: '/var/lib/understudy/keys/node.key', cert: '/var/lib/understudy/keys/node.crt' },
    insecure: false, heartbeatIntervalMs: 500,
    controlSocket: '/var/lib/understudy/control.sock', fingerprint: null,
  });
  t.same(config.peers, [{ id: 'beta', addresses: [{ host: '198.18.0.2', port: 7400,
    kind: 'ipv4' }], fingerprint: `sha256:${Array(32).fill('AB').join(':')}` }]);
  t.same(config.vaults, [{
    name: 'db', source: 'alpha', path: '/srv/db',
    targets: [{ node: 'beta', replica: '/var/lib/understudy/replicas/db' }],
    include: ['**'], exclude: [], mode: 'async', journalBytesMax: 2 ** 30,
    sync: { fsyncTimeoutMs: 5000, onTimeout: 'fail' },
  }]);
});
