// SQLite in WAL mode on the mirrored mount (python3's sqlite3 module), checked on a copy of
// the replica. WAL mode maps the -shm file shared between the writers; commits fsync the WAL
// (synchronous=FULL) and checkpoints write the pages back into the database file. Two writer
// processes each commit numbered transactions (5 item rows + a counter update + a progress
// row) and note every commit that returned; then
//  - they leave without closing (os._exit: -wal and -shm stay, as after an application
//    crash): once the target has lag 0, a cp -a copy of the replica opens, PRAGMA
//    integrity_check is ok and it holds exactly the committed transactions;
//  - they are SIGKILLed mid-run: the copy holds every acknowledged transaction, at most one
//    more per writer, and every transaction whole.
// Needs root, /dev/fuse and python3 with sqlite3; skipped with the reason outside CI, failed
// under CI=true.
import t from 'tap';
import type { Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { integrationSkipReason, tempDir } from '../helpers/mount-harness.js';
import { copyReplica, exitsWithin, startDemo } from '../helpers/demo-harness.js';
import type { DemoHandle } from '../helpers/demo-harness.js';
import { diffTrees, digestTree, formatDifferences } from '../helpers/tree-digest.js';

const TRANSACTIONS = Number(process.env['UNDERSTUDY_SQLITE_TRANSACTIONS'] ?? 3000);
const WRITERS = 2;
const ROWS_PER_TRANSACTION = 5;

/** Creates the schema: `python3 - <db>`. */
const SCHEMA_PY = `
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
assert con.execute('PRAGMA journal_mode=WAL').fetchone()[0] == 'wal'
con.executescript('''
  CREATE TABLE item(writer INTEGER, n INTEGER, k INTEGER, payload BLOB,
                    PRIMARY KEY (writer, n, k));
  CREATE TABLE counter(id INTEGER PRIMARY KEY, total INTEGER);
  INSERT INTO counter VALUES (1, 0);
  CREATE TABLE progress(writer INTEGER PRIMARY KEY, n INTEGER);
''')
con.close()
`;

/**
 * One writer: `python3 - <db> <writer> <count> <ack file>`. Each transaction n inserts rows
 * (writer, n, 0..4), adds 5 to the counter and sets progress; the ack file gets n once COMMIT
 * returned. Every 7th transaction also rewrites an older row of its own, so pages are
 * updated in place as well as appended. Ends with os._exit(0): the connection is not closed.
 */
const WRITER_PY = `
import os, sqlite3, sys
db, writer, count, ack = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
con = sqlite3.connect(db, timeout=120, isolation_level=None)
con.execute('PRAGMA synchronous=FULL')
con.execute('PRAGMA busy_timeout=120000')
acks = open(ack, 'a', buffering=1)
for n in range(1, count + 1):
    con.execute('BEGIN IMMEDIATE')
    for k in range(${ROWS_PER_TRANSACTION}):
        payload = (f'{writer}:{n}:{k}:'.encode() * 40)[:300 + (n * 37 + k) % 900]
        con.execute('INSERT INTO item VALUES (?, ?, ?, ?)', (writer, n, k, payload))
    if n % 7 == 0:
        con.execute('UPDATE item SET payload = ? WHERE writer = ? AND n = ? AND k = 0',
                    (b'rewritten' * (n % 50 + 1), writer, n // 2))
    con.execute('UPDATE counter SET total = total + ${ROWS_PER_TRANSACTION} WHERE id = 1')
    con.execute('INSERT OR REPLACE INTO progress VALUES (?, ?)', (writer, n))
    con.execute('COMMIT')
    acks.write(f'{n}\\n')
os._exit(0)
`;

/** Opens a copy and reports integrity and what each writer's transactions left: JSON. */
const CHECK_PY = `
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
out = {'journal_mode': con.execute('PRAGMA journal_mode').fetchone()[0],
       'integrity': [r[0] for r in con.execute('PRAGMA integrity_check')],
       'items': con.execute('SELECT count(*) FROM item').fetchone()[0],
       'counter': con.execute('SELECT total FROM counter WHERE id = 1').fetchone()[0],
       'writers': {}}
for writer, rows, low, high, numbers in con.execute(
        'SELECT writer, count(*), min(n), max(n), count(DISTINCT n) FROM item GROUP BY writer'):
    whole = con.execute('SELECT count(*) FROM (SELECT n FROM item WHERE writer = ? '
                        'GROUP BY n HAVING count(*) != ${ROWS_PER_TRANSACTION})',
                        (writer,)).fetchone()[0]
    progress = con.execute('SELECT n FROM progress WHERE writer = ?', (writer,)).fetchone()
    out['writers'][str(writer)] = {'rows': rows, 'low': low, 'high': high,
                                   'numbers': numbers, 'partial': whole,
                                   'progress': progress[0] if progress else None}
con.close()
print(json.dumps(out))
`;

/** What CHECK_PY reports about one writer. */
interface WriterFacts { rows: number; low: number; high: number; numbers: number;
  partial: number; progress: number | null }
interface CheckFacts { journal_mode: string; integrity: string[]; items: number;
  counter: number; writers: Record<string, WriterFacts> }


function python(script: string, args: string[]): { status: number | null; out: string } {
  const result = spawnSync('python3', ['-', ...args], { input: script, encoding: 'utf8' });
  return { status: result.status, out: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

function skipReason(): string | undefined {
  const reason = integrationSkipReason();
  if (reason !== undefined) return reason;
  const probe = python('import sqlite3\n', []);
  if (probe.status !== 0) return `python3 with sqlite3 is needed: ${probe.out}`;
  return undefined;
}

/** Acknowledged transactions per writer: the last n in its ack file (0 if none). */
function acked(ackFile: string): number {
  const lines = readFileSync(ackFile, 'utf8').split('\n').filter((line) => line !== '');
  return Number(lines.at(-1) ?? 0);
}

/** Makes <data>/db/test.db and starts the writers on it; they are killed at teardown. */
function startWriters(t: Test, demo: DemoHandle, count: number): { children: ChildProcess[];
  ackFiles: string[]; outputs: string[] } {
  mkdirSync(join(demo.data, 'db'));
  const db = join(demo.data, 'db', 'test.db');
  const made = python(SCHEMA_PY, [db]);
  t.equal(made.status, 0, 'a WAL database is made on the mount', { output: made.out });
  const work = tempDir(t, 'sqlite-acks');
  const script = join(work, 'writer.py');
  writeFileSync(script, WRITER_PY);
  const children: ChildProcess[] = [];
  const ackFiles: string[] = [];
  const outputs: string[] = [];
  for (let writer = 1; writer <= WRITERS; writer += 1) {
    const ackFile = join(work, `acks-${writer}`);
    writeFileSync(ackFile, '');
    const child = spawn('python3', [script, db, String(writer), String(count), ackFile],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const index = outputs.push('') - 1;
    const collect = (chunk: Buffer): void => { outputs[index] += chunk.toString(); };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    children.push(child);
    ackFiles.push(ackFile);
  }
  return { children, ackFiles, outputs };
}

/** Waits for lag 0, then: verify says identical and an independent walk agrees. */
async function replicaEqualsSource(t: Test, demo: DemoHandle): Promise<void> {
  await demo.caughtUp();
  const verified = demo.verify();
  t.equal(verified.status, 0, 'understudy verify demo: identical',
    { output: `${verified.stdout}${verified.stderr}` });
  const differences = diffTrees(digestTree(demo.data), digestTree(demo.replica),
    { ignoreRootAttributes: true });
  t.same(differences, [], `the replica equals data/ (independent walk)\n${
    formatDifferences(differences)}`);
}

/** Copies the replica and runs CHECK_PY on the copy's database. */
function checkCopy(t: Test, demo: DemoHandle): CheckFacts {
  const copy = join(demo.dir, 'copy');
  copyReplica(demo, copy);
  // The writers never closed: the copy must be opened from its WAL, as after a crash.
  t.ok(statSync(join(copy, 'db', 'test.db-wal')).size > 0, 'the copy has a non-empty -wal');
  t.ok(statSync(join(copy, 'db', 'test.db-shm')).isFile(), 'the copy has the -shm file');
  const checked = python(CHECK_PY, [join(copy, 'db', 'test.db')]);
  t.equal(checked.status, 0, 'the copy of the replica opens', { output: checked.out });
  const facts = JSON.parse(checked.out) as CheckFacts;
  t.equal(facts.journal_mode, 'wal', 'the copy is still a WAL database');
  t.same(facts.integrity, ['ok'], 'PRAGMA integrity_check on the copy is ok');
  t.equal(facts.counter, facts.items, 'the counter equals the rows: no transaction is torn');
  return facts;
}

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('two WAL writers finish: a copy of the replica has every commit', async (t) => {
    const demo = await startDemo(t, 'app-sqlite');
    const writers = startWriters(t, demo, TRANSACTIONS);
    for (const [index, child] of writers.children.entries()) {
      t.ok(await exitsWithin(child, 600_000), `writer ${index + 1} ends`);
      t.equal(child.exitCode, 0, `writer ${index + 1} commits all its transactions`,
        { output: writers.outputs[index] });
    }
    await replicaEqualsSource(t, demo);
    const facts = checkCopy(t, demo);
    for (let writer = 1; writer <= WRITERS; writer += 1) {
      const ackedCount = acked(writers.ackFiles[writer - 1] ?? '');
      t.equal(ackedCount, TRANSACTIONS, `writer ${writer} saw every commit return`);
      t.same(facts.writers[String(writer)], { rows: TRANSACTIONS * ROWS_PER_TRANSACTION, low: 1,
        high: TRANSACTIONS, numbers: TRANSACTIONS, partial: 0, progress: TRANSACTIONS },
      `writer ${writer}: the copy holds exactly its ${TRANSACTIONS} transactions`);
    }
  });

  t.test('two WAL writers SIGKILLed mid-run: a copy of the replica has every ack', async (t) => {
    const demo = await startDemo(t, 'app-sqlite-crash');
    const writers = startWriters(t, demo, TRANSACTIONS * 100);
    // Kill once both have committed a fair amount: a condition, bounded by a generous guard.
    const want = Math.min(300, TRANSACTIONS);
    for (const until = Date.now() + 300_000; Date.now() < until;) {
      if (writers.ackFiles.every((file) => acked(file) >= want)) break;
      if (writers.children.some((child) => child.exitCode !== null)) break;
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 100));
    }
    for (const [index, child] of writers.children.entries()) {
      t.equal(child.exitCode, null, `writer ${index + 1} is still running when killed`,
        { output: writers.outputs[index] });
      child.kill('SIGKILL');
      t.ok(await exitsWithin(child, 60_000), `writer ${index + 1} is gone`);
    }
    await replicaEqualsSource(t, demo);
    const facts = checkCopy(t, demo);
    for (let writer = 1; writer <= WRITERS; writer += 1) {
      const ackedCount = acked(writers.ackFiles[writer - 1] ?? '');
      const found = facts.writers[String(writer)];
      t.ok(ackedCount >= want, `writer ${writer} had ${ackedCount} commits acknowledged`);
      t.ok(found !== undefined && found.high >= ackedCount && found.high <= ackedCount + 1,
        `writer ${writer}: every acknowledged transaction is in the copy, at most one more ` +
        `(acked ${ackedCount})`, { found });
      t.same(found === undefined ? undefined : { low: found.low, numbers: found.numbers,
        rows: found.rows, partial: found.partial, progress: found.progress },
      { low: 1, numbers: found?.high, rows: (found?.high ?? 0) * ROWS_PER_TRANSACTION,
        partial: 0, progress: found?.high },
      `writer ${writer}: its transactions 1..n are all there, each whole`);
    }
  });
}
