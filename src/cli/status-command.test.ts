import t from 'tap';
import type { NodeStatus } from '../daemon/index.js';
import { activityLines, statusRows } from './status-command.js';

const node = (over: Record<string, unknown>): NodeStatus => ({ node: 'alpha', pid: 1,
  epochMs: 0, vaults: [{ vault: 'www', role: 'source', mode: 'async', effectiveMode: 'async',
    modeNote: null, sync: null, path: '/srv/www',
    journal: { lastSeq: 10, writtenSeq: 10, durableSeq: 10, firstSeq: 1, segments: 1, bytes: 1 },
    targets: [{ node: 'beta', state: 'syncing', ackedSeq: 4, lagRecords: 6, lagBytes: 60,
      lagSeconds: 1, address: '198.18.0.2:7400', lastError: null, sync: null, lastSync: null,
      verify: null, ...over }] }] });

t.test('a syncing target shows its progress in the table and under it', async (t) => {
  const status = node({ sync: { vault: 'www', target: 'beta', startedAtMs: 1000, pass: 1,
    phase: 'emit', entries: 30, totalEntries: 120, bytes: 3 << 20, totalBytes: 12 << 20,
    percent: 25 } });
  t.equal(statusRows([status])[1]?.[4], 'syncing 25%');
  t.same(activityLines([status], 13_000), ['~ www -> beta: sync pass 1, emit: 30/120 files, ' +
    '3.0 MiB/12.0 MiB (25.0%), running for 12 s']);
});

t.test('a running verify and the last sync are shown; the state stays as it is',
  async (t) => {
  const status = node({ state: 'in-sync', verify: { phase: 'target manifest',
    startedAtMs: 0 }, lastSync: { endedAtMs: 0, entries: 5, dataBytes: 2048, setAside: 2,
    setAsideFolder: '/var/lib/understudy/set-aside/www/x', passes: 1, elapsedMs: 1500 } });
  t.equal(statusRows([status])[1]?.[4], 'in-sync');
  t.same(activityLines([status], 3000), [
    '~ www -> beta: verify target manifest, running for 3 s',
    '  www -> beta: last sync 3 s ago: 5 files, 2.0 KiB in 1.5 s, 2 set aside in ' +
      '/var/lib/understudy/set-aside/www/x (on the target)']);
});

t.test('the last error stays after recovery, with its age', async (t) => {
  const status = node({ state: 'in-sync', lastError: 'connect ECONNREFUSED 198.18.0.2:7400',
    lastErrorAtMs: 10_000 });
  t.equal(statusRows([status], 55_000)[1]?.[11], 'connect ECONNREFUSED 198.18.0.2:7400 (45 s ago)');
  t.equal(statusRows([status], 10_000 + 3 * 3600_000)[1]?.[11],
    'connect ECONNREFUSED 198.18.0.2:7400 (3 h ago)');
  t.equal(statusRows([node({})], 55_000)[1]?.[11], '-', 'no error: a dash');
});
