/**
 * Runs the seeded randomized workload: N worker processes (workload-worker.ts) on one directory.
 * Owns: starting, stopping and killing the workers, and reading back their JSON-lines logs.
 * Guarantees: every worker is killed at teardown; a worker that does not finish within its
 * duration plus `hangMsMax` is reported as hung (a deadlocked mount), never waited on forever.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestLike } from './mount-harness.js';
import { REPO_ROOT } from './mount-harness.js';

/** One line of a worker log ("begin" before the syscall, "end" with its outcome). */
export interface WorkloadLogLine {
  w: number;
  i: number;
  phase: 'begin' | 'opened' | 'end';
  /** Wall-clock ms when the line was written. */
  t?: number;
  op: string;
  ok?: boolean;
  err?: string;
  path?: string;
  from?: string;
  to?: string;
  offset?: number;
  length?: number;
  bytesWritten?: number;
  sha256?: string;
  ino?: number;
  nlink?: number;
  sizeAfter?: number;
  skipped?: string;
  [key: string]: unknown;
}

/** How to run a workload. */
export interface WorkloadOptions {
  dir: string;
  seed: number;
  workers: number;
  durationMs: number;
  logDir: string;
  /** A file outside `dir` that hostile symlinks point at; see `sentinelUnchanged`. */
  sentinel: string;
  hangMsMax?: number;
}

/** The outcome of one worker process. */
export interface WorkerOutcome {
  worker: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  hung: boolean;
  stderr: string;
  log: string;
}

/** A running workload. */
export interface Workload {
  /** Resolves when every worker has exited (or was killed as hung). */
  done: Promise<WorkerOutcome[]>;
  /** Asks every worker to finish its current op and exit. */
  stop(): void;
  /** SIGKILLs every worker at once. */
  kill(): void;
  children: ChildProcess[];
  /** The log file of each worker. */
  logs(): string[];
}

const WORKER = join(REPO_ROOT, 'test', 'helpers', 'workload-worker.ts');

/** The bytes worker `worker` writes at its op `i`: a unique tag repeated, so every write differs. */
export function workloadPayload(seed: number, worker: number, i: number, length: number): Buffer {
  const tag = Buffer.from(`<s${seed}w${worker}i${i}>`);
  const data = Buffer.alloc(length);
  for (let at = 0; at < length; at += tag.length) tag.copy(data, at);
  return data;
}

/** Content of the sentinel file hostile symlinks point at. */
export const SENTINEL_CONTENT = 'understudy sentinel: nothing may follow a link to here\n';

/** Creates the sentinel file at `path` (outside the tree under test). */
export function createSentinel(path: string): string {
  writeFileSync(path, SENTINEL_CONTENT, { mode: 0o644 });
  return path;
}

/** True when the sentinel still has its content and mode (no one wrote through a link). */
export function sentinelUnchanged(path: string): boolean {
  const st = statSync(path);
  return readFileSync(path, 'utf8') === SENTINEL_CONTENT && (st.mode & 0o7777) === 0o644;
}

/** The directories every workload starts from (created through whatever `dir` is). */
export function prepareWorkloadDir(dir: string): void {
  for (let d = 0; d < 4; d += 1) mkdirSync(join(dir, `d${d}`), { recursive: true });
}

/** Starts `workers` processes on `dir`; kills them at teardown if still running. */
export function startWorkload(t: TestLike, options: WorkloadOptions): Workload {
  if (options.workers < 4) throw new Error('a workload needs at least 4 workers');
  mkdirSync(options.logDir, { recursive: true });
  const hangMsMax = options.hangMsMax ?? 60_000;
  const children: ChildProcess[] = [];
  const outcomes: Array<Promise<WorkerOutcome>> = [];
  const logs: string[] = [];
  for (let worker = 0; worker < options.workers; worker += 1) {
    const log = join(options.logDir, `worker-${options.seed}-${worker}.jsonl`);
    logs.push(log);
    const child = spawn(process.execPath, [
      '--import', '@tapjs/typescript/import', WORKER,
      '--dir', options.dir, '--seed', String(options.seed), '--worker', String(worker),
      '--duration-ms', String(options.durationMs), '--log', log, '--sentinel', options.sentinel,
    ], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    outcomes.push(new Promise((resolveOutcome) => {
      let hung = false;
      const timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, options.durationMs + hangMsMax);
      child.once('exit', (exitCode, signal) => {
        clearTimeout(timer);
        resolveOutcome({ worker, exitCode, signal, hung, stderr, log });
      });
    }));
  }
  t.teardown(() => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
  return {
    done: Promise.all(outcomes),
    stop: () => { for (const child of children) child.kill('SIGTERM'); },
    kill: () => { for (const child of children) child.kill('SIGKILL'); },
    children,
    logs: () => [...logs],
  };
}

/** Reads one worker log; a torn last line (the worker was killed mid-write) is dropped. */
export function readWorkerLog(file: string): WorkloadLogLine[] {
  if (!existsSync(file)) return [];
  const lines: WorkloadLogLine[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    try {
      lines.push(JSON.parse(line) as WorkloadLogLine);
    } catch {
      // Only the last line can be torn, and only when the worker was killed.
    }
  }
  return lines;
}

/** Counts of outcomes per op, e.g. { write: { ok: 120, ENOENT: 3 } }, for test comments. */
export function summarizeLogs(logs: WorkloadLogLine[][]): Record<string, Record<string, number>> {
  const summary: Record<string, Record<string, number>> = {};
  for (const line of logs.flat()) {
    if (line.phase !== 'end') continue;
    const perOp = (summary[line.op] ??= {});
    const key = line.ok === true ? 'ok' : (line.err ?? 'error');
    perOp[key] = (perOp[key] ?? 0) + 1;
  }
  return summary;
}

/** Ops whose "begin" has no "end" in the log: they were in flight when the worker stopped. */
export function inFlightOps(log: WorkloadLogLine[]): WorkloadLogLine[] {
  const ended = new Set(log.filter((line) => line.phase === 'end').map((line) => line.i));
  return log.filter((line) => line.phase === 'begin' && !ended.has(line.i));
}

/** The slowest finished ops (begin to end), slowest first: a stall in the mount shows here. */
export function slowestOps(logs: WorkloadLogLine[][], count = 3): string[] {
  const spans: Array<{ ms: number; text: string }> = [];
  for (const log of logs) {
    const begins = new Map<number, WorkloadLogLine>();
    for (const line of log) {
      if (line.phase === 'begin') begins.set(line.i, line);
      const begin = begins.get(line.i);
      if (line.phase === 'end' && begin?.t !== undefined && line.t !== undefined) {
        spans.push({ ms: line.t - begin.t, text: `worker ${line.w} op ${line.i} ${line.op} ` +
          `${line.path ?? `${line.from} -> ${line.to}`} ${line.ok === true ? 'ok' : line.err}` });
      }
    }
  }
  return spans.sort((a, b) => b.ms - a.ms).slice(0, count).map((span) => `${span.ms} ms: ${span.text}`);
}
