/**
 * Starts and stops `bin/understudy mount` for integration tests, and cleans up after them.
 * Guarantees: every mount, child and temp dir it creates is removed in t.teardown, even when
 * the test fails (stale mounts with `umount -l`). With UNDERSTUDY_TEST_PLAIN=1 no mount is
 * made: the "mount point" is the backing dir itself, to validate the harness on plain dirs.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root. */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
/** The CLI under test; UNDERSTUDY_BIN may name another build of it (e.g. one built elsewhere). */
export const UNDERSTUDY_BIN = process.env.UNDERSTUDY_BIN ?? join(REPO_ROOT, 'bin', 'understudy');
/** True when suites run against plain directories instead of the mount (harness check). */
export const PLAIN_MODE = process.env.UNDERSTUDY_TEST_PLAIN === '1';

/** The minimal slice of a tap test the harness needs. */
export interface TestLike {
  teardown(fn: () => unknown): void;
  comment(...args: unknown[]): void;
}

/**
 * Why integration tests cannot run here, or undefined when they can. Under CI=true a missing
 * requirement is a failure, not a skip, so the caller should fail with the reason instead.
 */
export function integrationSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'integration tests need root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'integration tests need /dev/fuse';
  }
  if (!PLAIN_MODE && process.env.UNDERSTUDY_BIN === undefined) {
    try {
      accessSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'));
    } catch {
      return 'the project is not built (dist/cli/main.js missing): run npm run build';
    }
  }
  return undefined;
}

/** Decodes the octal escapes mountinfo uses for spaces and other bytes in paths. */
function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The fstype of the mount at exactly `path`, or undefined if nothing is mounted there. */
export function mountedFsType(path: string): string | undefined {
  let found: string | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const mountPoint = left.split(' ')[4];
    if (mountPoint !== undefined && unescapeMountinfo(mountPoint) === path) {
      found = right.split(' ')[0];  // the last one stacked at the path wins
    }
  }
  return found;
}

/** Detaches whatever is mounted at `path`, if anything (a stale FUSE mount included). */
export function lazyUnmount(path: string): void {
  for (let i = 0; i < 4 && mountedFsType(path) !== undefined; i += 1) {
    spawnSync('umount', ['-l', path], { stdio: 'ignore' });
  }
}

/** A fresh temp dir, world-traversable (permission tests run as nobody), removed at teardown. */
export function tempDir(t: TestLike, prefix: string): string {
  const base = process.env.UNDERSTUDY_TEST_TMP ?? '/tmp';
  const dir = mkdtempSync(join(base, `understudy-${prefix}-`));
  chmodSync(dir, 0o755);
  if (process.env.UNDERSTUDY_TEST_KEEP === '1') {
    t.comment(`UNDERSTUDY_TEST_KEEP=1: keeping ${dir}`);
  } else {
    t.teardown(() => {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // Paths past PATH_MAX defeat rmSync; rm(1) walks with fd-relative calls.
        spawnSync('rm', ['-rf', '--one-file-system', dir], { stdio: 'ignore' });
      }
    });
  }
  return dir;
}

/** A running `understudy mount` (or its plain-mode stand-in). */
export interface MountHandle {
  mountpoint: string;
  backing: string;
  journal: string;
  /** Stops with a signal, waits for exit; returns the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /**
   * SIGKILLs the daemon and waits for it to die. The stale mount stays (ops on it fail with
   * ENOTCONN) until `clearStale`, so that clients still running never fall through to the
   * directory underneath.
   */
  crash(): Promise<void>;
  /** Detaches the mount left by a crashed daemon (`umount -l`). */
  clearStale(): void;
  /** The daemon's output so far, for assertion messages. */
  output(): string;
  child?: ChildProcess;
}

/** The environment for the CLI: without tap's NODE_OPTIONS (its loader hooks break bin/). */
export function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

// tap's processinfo wraps child_process and puts its NODE_OPTIONS back into every child's
// environment, so the CLI runs through `env -u NODE_OPTIONS`.
const CLI_PREFIX = ['-u', 'NODE_OPTIONS', UNDERSTUDY_BIN];

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
}

/**
 * Mounts `backing` at `mountpoint` with journal `journal` and resolves once mountinfo shows
 * fstype fuse.understudy. Rejects (after cleaning up) if the daemon exits first or never gets
 * there within `readyMsMax` (a harness guard, not a measured threshold).
 */
export async function startMount(t: TestLike, options: {
  mountpoint: string; backing: string; journal: string; extraArgs?: string[]; readyMsMax?: number;
  /** RLIMIT_NOFILE (soft and hard) of the daemon, set with prlimit(1). */
  nofile?: number;
}): Promise<MountHandle> {
  const { mountpoint, backing, journal } = options;
  mkdirSync(mountpoint, { recursive: true });
  mkdirSync(journal, { recursive: true });
  if (PLAIN_MODE) {
    return {
      mountpoint: backing, backing, journal,
      stop: async () => 0, crash: async () => undefined, clearStale: () => undefined,
      output: () => '(plain mode: no mount)',
    };
  }
  // UNDERSTUDY_MOUNT_ARGS adds options to every mount, e.g. "--writeback-cache".
  const envArgs = (process.env.UNDERSTUDY_MOUNT_ARGS ?? '').split(' ').filter((arg) => arg !== '');
  const args = ['mount', mountpoint, '--backing', backing, '--journal', journal, ...envArgs,
    ...(options.extraArgs ?? [])];
  const command = options.nofile === undefined ? ['env', ...CLI_PREFIX, ...args]
    : ['prlimit', `--nofile=${options.nofile}:${options.nofile}`, '--', 'env', ...CLI_PREFIX, ...args];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv() });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const done = await Promise.race([exited(child).then(() => true), sleep(10_000).then(() => false)]);
      if (!done) child.kill('SIGKILL');
    }
    lazyUnmount(mountpoint);
  });

  const readyMsMax = options.readyMsMax ?? 30_000;
  const startedAt = Date.now();
  while (mountedFsType(mountpoint) !== 'fuse.understudy') {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`understudy mount exited (${child.exitCode ?? child.signalCode}) before ` +
        `mounting ${mountpoint}:\n${output}`);
    }
    if (Date.now() - startedAt > readyMsMax) {
      child.kill('SIGKILL');
      lazyUnmount(mountpoint);
      throw new Error(`understudy mount did not mount ${mountpoint} within ${readyMsMax} ms:\n${output}`);
    }
    await sleep(25);
  }
  return {
    mountpoint, backing, journal, child,
    output: () => output,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      child.kill(signal);
      const code = await exited(child);
      return code;
    },
    crash: async () => {
      child.kill('SIGKILL');
      await exited(child);
    },
    clearStale: () => lazyUnmount(mountpoint),
  };
}

/** Result of one CLI run. */
export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bin/understudy <args>` to completion. */
export function runCli(args: string[]): CliResult {
  const result = spawnSync('env', [...CLI_PREFIX, ...args], { encoding: 'utf8', maxBuffer: 1 << 30, env: cliEnv() });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/**
 * Replays `journal` into `target` with `journal apply`. In plain mode there is no journal, so
 * the "replica" is a `cp -a` copy of `backing`: that checks the harness and digest, not the product.
 */
export function applyJournal(journal: string, target: string, backing: string): CliResult {
  if (PLAIN_MODE) {
    const result = spawnSync('cp', ['-a', `${backing}/.`, target], { encoding: 'utf8' });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }
  return runCli(['journal', 'apply', journal, target]);
}
