// Invariant 2 (and 1) under a daemon crash: SIGKILL `understudy mount` in the middle of a
// randomized workload, then check
//   (a) every write(2) a worker saw succeed on a file that still had a name is in the journal
//       (`journal dump --json`: WRITE records matched by data digest, offset and fid), and
//   (b) `journal apply` into an empty dir succeeds and the replica equals the backing dir,
//       except for what the ops in flight at the kill may have changed: those ops may have been
//       applied to the backing dir without being journaled (no reply reached the caller, so
//       that is allowed). Left out of the comparison, per worker, is only the first op that
//       did not return (no "end" line) or returned ENOTCONN/ECONNABORTED/EIO: its paths
//       (whole subtrees for namespace ops), the inode it had open, and its parent dirs' mtimes.
// UNDERSTUDY_CRASH_SEEDS (default "11,12"), UNDERSTUDY_CRASH_SECONDS (workload length, default
// 30; the kill comes after a seeded number of finished ops, 500 to 2000).
import t from 'tap';
import { lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import {
  PLAIN_MODE, applyJournal, integrationSkipReason, runCli, startMount, tempDir,
} from '../helpers/mount-harness.js';
import { diffTrees, digestTree, formatDifferences } from '../helpers/tree-digest.js';
import type { WorkloadLogLine } from '../helpers/workload.js';
import {
  createSentinel, sentinelUnchanged, prepareWorkloadDir, readWorkerLog, slowestOps, startWorkload, summarizeLogs, workloadPayload,
} from '../helpers/workload.js';

/** A WRITE record as `journal dump --json` shows it. */
interface DumpedWrite {
  seq: number;
  fid: string;
  offset: number;
  path: string;
  bytes: number;
  sha16: string;
}

function parseDump(stdout: string): { writes: DumpedWrite[]; records: number; unparsable: string[] } {
  const writes: DumpedWrite[] = [];
  const unparsable: string[] = [];
  let records = 0;
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      unparsable.push(line);
      continue;
    }
    records += 1;
    if (record.kind !== 'WRITE') continue;
    const data = record.data as { bytes?: number; sha256?: string } | undefined;
    writes.push({
      seq: Number(record.seq), fid: String(record.fid), offset: Number(record.offset),
      path: String(record.path), bytes: Number(data?.bytes), sha16: String(data?.sha256),
    });
  }
  return { writes, records, unparsable };
}

function sha16(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}

/**
 * True when the journal holds `data` as written at `offset` (null: O_APPEND, offset unknown) to
 * file `fid` (undefined: not checked): one record with the same digest, or consecutive records
 * that the kernel split the write into (it splits at page boundaries), each holding the
 * matching slice. For an append, any record holding a prefix of the data may start the chain.
 */
function journaled(data: Buffer, offset: number | null, fid: string | undefined,
  bySha: Map<string, DumpedWrite[]>, byOffset: Map<number, DumpedWrite[]>, all: DumpedWrite[]): boolean {
  const fidOk = (record: DumpedWrite): boolean => fid === undefined || record.fid === fid;
  const whole = bySha.get(sha16(data)) ?? [];
  if (whole.some((r) => r.bytes === data.length && fidOk(r) && (offset === null || r.offset === offset))) {
    return true;
  }
  const covered = (start: number): boolean => {
    let at = start;
    const end = start + data.length;
    while (at < end) {
      const piece = (byOffset.get(at) ?? []).find((r) => r.bytes > 0 && at + r.bytes <= end && fidOk(r) &&
        r.sha16 === sha16(data.subarray(at - start, at - start + r.bytes)));
      if (piece === undefined) return false;
      at += piece.bytes;
    }
    return true;
  };
  if (offset !== null) return covered(offset);
  return all.some((r) => fidOk(r) && r.bytes > 0 && r.bytes < data.length &&
    r.sha16 === sha16(data.subarray(0, r.bytes)) && covered(r.offset));
}

const NAMESPACE_OPS = new Set(['rename', 'link', 'symlink', 'unlink', 'mkdir', 'rmdir', 'create', 'unlink-open']);
const CONNECTION_ERRORS = new Set(['ENOTCONN', 'ECONNABORTED', 'EIO']);

/** The op of one worker that may have been cut by the kill, if any (see the header). */
function cutOp(log: WorkloadLogLine[]): { begin: WorkloadLogLine; inos: number[] } | undefined {
  const ends = new Map<number, WorkloadLogLine>();
  const inos = new Map<number, number[]>();
  for (const line of log) {
    if (line.phase === 'end') ends.set(line.i, line);
    if (line.phase === 'opened' && typeof line.ino === 'number') inos.set(line.i, [...(inos.get(line.i) ?? []), line.ino]);
  }
  for (const line of log) {
    if (line.phase !== 'begin') continue;
    const end = ends.get(line.i);
    if (end === undefined || (end.ok === false && CONNECTION_ERRORS.has(end.err ?? ''))) {
      return { begin: line, inos: [...(inos.get(line.i) ?? []), ...(typeof end?.ino === 'number' ? [end.ino] : [])] };
    }
  }
  return undefined;
}

/** Inode number -> relative paths, for every non-directory below `root` (never following links). */
function inodePaths(root: string): Map<number, string[]> {
  const result = new Map<number, string[]>();
  const visit = (relative: string): void => {
    for (const name of readdirSync(join(root, relative))) {
      const child = relative === '' ? name : `${relative}/${name}`;
      const st = lstatSync(join(root, child));
      if (st.isDirectory()) visit(child);
      else result.set(st.ino, [...(result.get(st.ino) ?? []), child]);
    }
  };
  visit('');
  return result;
}

const skipReason = integrationSkipReason();
if (skipReason !== undefined && process.env.CI !== 'true') {
  t.plan(0, skipReason);
} else {
  if (skipReason !== undefined) t.fail(skipReason);
  const seeds = (process.env.UNDERSTUDY_CRASH_SEEDS ?? '11,12').split(',').map(Number);
  const seconds = Number(process.env.UNDERSTUDY_CRASH_SECONDS ?? '30');
  const workers = 4;

  for (const seed of seeds) {
    t.test(`seed ${seed}: SIGKILL the mount mid-workload, then journal and replica checks`, async (t) => {
      const base = tempDir(t, `crash-${seed}`);
      const backing = join(base, 'backing');
      const mountpoint = join(base, 'mnt');
      const journal = join(base, 'journal');
      const replica = join(base, 'replica');
      mkdirSync(backing);
      // Hostile symlinks in the workload point here (absolute, and as ../../sentinel).
      const sentinel = createSentinel(join(base, 'sentinel'));
      const mount = await startMount(t, { mountpoint, backing, journal });
      prepareWorkloadDir(mount.mountpoint);

      // Does the mount show backing inode numbers? Then fids can be checked and open files
      // followed across renames.
      const inoPassthrough = PLAIN_MODE ||
        statSync(join(mount.mountpoint, 'd0')).ino === statSync(join(backing, 'd0')).ino;
      t.comment(`st_ino through the mount ${inoPassthrough ? 'equals' : 'differs from'} the backing inode`);

      const workload = startWorkload(t, {
        dir: mount.mountpoint, seed, workers, durationMs: seconds * 1000, logDir: join(base, 'logs'), sentinel,
      });
      // The kill comes after a seeded amount of progress (not of time: the machine may be busy).
      const killAfterOps = 500 + ((seed * 7919) % 1500);
      let finishedOps = 0;
      let workersExited = false;
      void workload.done.then(() => { workersExited = true; });
      while (finishedOps < killAfterOps && !workersExited) {
        await new Promise((resolveWait) => setTimeout(resolveWait, 50));
        finishedOps = workload.logs().reduce((sum, file) =>
          sum + readWorkerLog(file).filter((line) => line.phase === 'end').length, 0);
      }
      t.notOk(workersExited, `the kill came while the workers were running (after ${finishedOps} ops)`);
      await mount.crash();
      workload.stop();
      const outcomes = await workload.done;
      mount.clearStale();
      for (const outcome of outcomes) {
        t.notOk(outcome.hung, `worker ${outcome.worker} finished after the crash (ops must fail, not hang)`);
      }
      const logs = outcomes.map((outcome) => readWorkerLog(outcome.log));
      t.comment(`slowest ops: ${slowestOps(logs).join('; ')}`);
      t.comment(`killed after ${finishedOps} ops; outcomes: ${JSON.stringify(summarizeLogs(logs))}`);

      // (a) Every acknowledged write is in the journal.
      if (PLAIN_MODE) {
        t.comment('plain mode: no journal to check');
      } else {
        const dump = runCli(['journal', 'dump', journal, '--json']);
        t.equal(dump.status, 0, 'journal dump succeeds after the crash', { stderr: dump.stderr });
        const parsed = parseDump(dump.stdout);
        t.same(parsed.unparsable, [], 'every dump line is JSON');
        t.comment(`journal: ${parsed.records} records, ${parsed.writes.length} WRITE`);
        const bySha = new Map<string, DumpedWrite[]>();
        const byOffset = new Map<number, DumpedWrite[]>();
        for (const write of parsed.writes) {
          bySha.set(write.sha16, [...(bySha.get(write.sha16) ?? []), write]);
          byOffset.set(write.offset, [...(byOffset.get(write.offset) ?? []), write]);
        }
        const missing: string[] = [];
        let checked = 0;
        let orphaned = 0;
        for (const line of logs.flat()) {
          if (line.phase !== 'end' || line.ok !== true || (line.op !== 'write' && line.op !== 'append')) continue;
          if (line.nlink === 0) {
            orphaned += 1;  // no name when stat ran: maybe none at the write either; not journaled then
            continue;
          }
          const bytesWritten = line.bytesWritten ?? 0;
          const data = workloadPayload(seed, line.w, line.i, line.length ?? 0).subarray(0, bytesWritten);
          const offset = line.op === 'write' ? (line.offset ?? 0) : null;
          const fid = inoPassthrough && typeof line.ino === 'number' ? String(line.ino) : undefined;
          checked += 1;
          if (!journaled(data, offset, fid, bySha, byOffset, parsed.writes)) {
            missing.push(`worker ${line.w} op ${line.i} ${line.op} ${line.path} offset ${offset ?? 'append'} ` +
              `${bytesWritten} bytes sha256 ${sha16(data)}… ino ${line.ino}`);
          }
        }
        t.comment(`acknowledged writes checked: ${checked} (skipped ${orphaned} on files with no name left)`);
        t.ok(checked > 0, 'some acknowledged writes were checked');
        t.same(missing, [], `every acknowledged write is in the journal:\n${formatDifferences(missing)}`);
      }

      // (b) The journal replays, and the replica is the backing dir minus the cut ops.
      mkdirSync(replica);
      const applied = applyJournal(journal, replica, backing);
      t.ok(sentinelUnchanged(sentinel), 'nothing outside the tree was written through a symlink');
      t.equal(applied.status, 0, 'journal apply succeeds after a crash', { stdout: applied.stdout, stderr: applied.stderr });

      const prefixes: string[] = [];
      const exact = new Set<string>();
      const parents = new Set<string>();
      const inodes = inodePaths(backing);
      const cuts: string[] = [];
      for (const log of logs) {
        const cut = cutOp(log);
        if (cut === undefined) continue;
        const { begin } = cut;
        const paths = [begin.path, begin.from, begin.to].filter((p): p is string => typeof p === 'string');
        cuts.push(`worker ${begin.w} op ${begin.i} ${begin.op} ${paths.join(' -> ')} inos [${cut.inos.join(', ')}]`);
        for (const path of paths) {
          if (NAMESPACE_OPS.has(begin.op)) prefixes.push(path); else exact.add(path);
          parents.add(dirname(path));
        }
        if (inoPassthrough) {
          for (const ino of cut.inos) for (const path of inodes.get(ino) ?? []) exact.add(path);
        }
      }
      t.comment(`ops cut by the kill (left out of the comparison): ${cuts.length === 0 ? 'none' : cuts.join('; ')}`);
      const options = {
        ignoreRootAttributes: true,
        ignorePath: (key: string) => exact.has(key) || prefixes.some((p) => key === p || key.startsWith(`${p}/`)),
        // A cut op may have changed a parent's entries (and so its mtime) or a hard link's peer.
        ignoreContentOf: (key: string) => parents.has(key),
      };
      const differences = diffTrees(digestTree(backing, options), digestTree(replica, options), options);
      t.same(differences, [],
        `replica equals backing outside the cut ops (A = backing, B = replica):\n${formatDifferences(differences)}`);
    });
  }
}
