/**
 * Runs `bin/understudy demo --dir <tmp>` for the application suites, the way an operator
 * tries the product: vault `demo` mounted over <dir>/data, replicated into <dir>/replica.
 * Guarantees: the demo is stopped (SIGTERM, then SIGKILL) and its mounts detached in
 * t.teardown, even when the test fails. Never imports src/: status, verify and lag come from
 * the CLI (`status --json`, `verify --json`) on the demo's own control socket.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnv, lazyUnmount, mountedFsType, runCli, tempDir, UNDERSTUDY_BIN }
  from './mount-harness.js';
import type { CliResult, TestLike } from './mount-harness.js';

/** The slice of one target's line in `understudy status --json` the suites look at. */
export interface DemoTargetStatus {
  node: string;
  state: string;
  ackedSeq: number | null;
  lagRecords: number | null;
  lagBytes: number | null;
}

/** The source vault of the demo, as `understudy status --json` shows it. */
export interface DemoSourceStatus {
  journal: { lastSeq: number };
  targets: DemoTargetStatus[];
}

/** A running `understudy demo`. */
export interface DemoHandle {
  dir: string;
  /** The vault path: a FUSE mount while the demo runs. */
  data: string;
  /** The target's replica (read-only while mirrored). */
  replica: string;
  socket: string;
  /** The source vault's status, from `understudy status --json`. */
  status(): DemoSourceStatus;
  /**
   * Resolves once the target is in-sync with lag 0 and acked = the journal's last seq, the same
   * over two polls; rejects with the last status after `waitMsMax` (a guard, not a threshold).
   */
  caughtUp(waitMsMax?: number): Promise<DemoSourceStatus>;
  /** `understudy verify demo --json`: exit 0 identical, 1 different, 2 error. */
  verify(): CliResult;
  /** Stops the demo with SIGTERM and returns its exit code (unmounts data/ and replica/). */
  stop(): Promise<number | null>;
  /**
   * SIGKILLs the demo (source and target at once) and waits for it to die. data/ stays a
   * stale mount (ENOTCONN) until `clearStale`, so that applications still running never fall
   * through to the directory underneath; the replica keeps what the target had applied.
   */
  crash(): Promise<void>;
  /** Detaches the stale mount left on data/ by `crash` (`umount -l`). */
  clearStale(): void;
  /** The demo's output so far, for assertion messages. */
  output(): string;
}

/** UNDERSTUDY_DEMO_MODE=sync runs the application suites on a sync-mode vault. */
function demoModeOfEnv(): 'async' | 'sync' {
  const mode = process.env['UNDERSTUDY_DEMO_MODE'] ?? 'async';
  if (mode !== 'async' && mode !== 'sync') throw new Error(`UNDERSTUDY_DEMO_MODE=${mode}`);
  return mode;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/**
 * Whether `child` exits within `msMax` (a guard); the guard's timer is cleared, so it never
 * keeps the test process alive after the child is gone.
 */
export async function exitsWithin(child: ChildProcess, msMax: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<boolean>((resolveGuard) => {
    timer = setTimeout(() => resolveGuard(false), msMax);
  });
  try {
    return await Promise.race([exited(child).then(() => true), guard]);
  } finally {
    clearTimeout(timer);
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
}

/** Parses `status --json` and returns the demo vault's source side. */
function sourceStatus(result: CliResult): DemoSourceStatus {
  if (result.status !== 0) {
    throw new Error(`understudy status exited ${result.status}: ${result.stderr}`);
  }
  const reply = JSON.parse(result.stdout) as { nodes: { vaults: ({ role: string } &
    Partial<DemoSourceStatus>)[] }[] };
  for (const node of reply.nodes) {
    for (const vault of node.vaults) {
      if (vault.role === 'source' && vault.journal !== undefined && vault.targets !== undefined) {
        return { journal: vault.journal, targets: vault.targets };
      }
    }
  }
  throw new Error(`no source vault in status: ${result.stdout}`);
}

/**
 * Starts `understudy demo` in a fresh temp dir (`understudy-<prefix>-*`) with its own control
 * socket, and resolves once data/ is mounted and (unless `untilMounted`) the target's first
 * sync is done.
 */
export async function startDemo(t: TestLike, prefix: string, options: {
  mode?: 'async' | 'sync';
  readyMsMax?: number;
  /** Fills <dir>/data before the demo mounts over it (the first sync then copies it). */
  prepare?: (data: string) => void;
  /** Resolve once mounted, without waiting for the first sync (default: wait). */
  untilMounted?: boolean;
} = {}): Promise<DemoHandle> {
  const dir = tempDir(t, prefix);
  const data = join(dir, 'data');
  const replica = join(dir, 'replica');
  if (options.prepare !== undefined) {
    mkdirSync(data);
    options.prepare(data);
  }
  const socket = join(dir, 'control.sock');
  const args = ['-u', 'NODE_OPTIONS', UNDERSTUDY_BIN, 'demo', '--dir', dir, '--socket', socket,
    '--mode', options.mode ?? demoModeOfEnv()];
  const child = spawn('env', args, { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv() });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if (!await exitsWithin(child, 20_000)) {
        child.kill('SIGKILL');
        await exited(child);
      }
    }
    lazyUnmount(data);
    lazyUnmount(replica);
  });

  const status = (): DemoSourceStatus =>
    sourceStatus(runCli(['status', '--json', '--socket', socket]));
  const caughtUp = async (waitMsMax = 120_000): Promise<DemoSourceStatus> => {
    let last: DemoSourceStatus | string = 'no answer yet';
    let previous = -1;
    for (const until = Date.now() + waitMsMax; Date.now() < until; await sleep(200)) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const code = child.exitCode ?? child.signalCode;
        throw new Error(`understudy demo exited (${code}):\n${output}`);
      }
      try {
        const now = status();
        last = now;
        const done = now.targets.length > 0 && now.targets.every((x) => x.state === 'in-sync' &&
          x.lagRecords === 0 && x.lagBytes === 0 && x.ackedSeq === now.journal.lastSeq);
        const stable = now.journal.lastSeq === previous;
        previous = now.journal.lastSeq;
        if (done && stable) return now;
      } catch (error) {
        last = (error as Error).message;
      }
    }
    throw new Error(`the target did not catch up within ${waitMsMax} ms; last status: ${
      JSON.stringify(last)}`);
  };

  const readyMsMax = options.readyMsMax ?? 60_000;
  for (const until = Date.now() + readyMsMax; mountedFsType(data) !== 'fuse.understudy';) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`understudy demo exited (${child.exitCode ?? child.signalCode}) before ` +
        `mounting ${data}:\n${output}`);
    }
    if (Date.now() > until) throw new Error(`understudy demo did not mount ${data}:\n${output}`);
    await sleep(50);
  }
  if (options.untilMounted !== true) await caughtUp(readyMsMax);
  return {
    dir, data, replica, socket, status, caughtUp,
    verify: () => runCli(['verify', 'demo', '--json', '--socket', socket]),
    stop: async () => {
      child.kill('SIGTERM');
      return exited(child);
    },
    crash: async () => {
      child.kill('SIGKILL');
      await exited(child);
    },
    clearStale: () => lazyUnmount(data),
    output: () => output,
  };
}

/**
 * Copies the replica with `cp -a` (the replica itself is read-only) into `to`, which must not
 * exist yet, so an application can open the copy as after a failover.
 */
export function copyReplica(demo: DemoHandle, to: string): void {
  const result = spawnSync('cp', ['-a', demo.replica, to], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`cp -a ${demo.replica} ${to}: ${result.stderr}`);
}
