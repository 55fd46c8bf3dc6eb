// One bench run's footprint on the machine: its temporary directory, the child processes it
// started and the FUSE mounts beneath that directory. Guarantees: cleanup() stops every
// server it started, unmounts whatever is still mounted under the work directory, and only
// then removes the directory; it runs on success, on error and on SIGINT/SIGTERM/SIGHUP.
// Never touches a process or a mount it did not create.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Mount points as the kernel lists them (octal escapes such as \040 decoded). */
export function readMounts() {
  const unescape = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((line) => {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    return {
      dev: fields[2] ?? '',
      mountpoint: unescape(fields[4] ?? ''),
      fstype: fields[dash + 1] ?? '',
      source: unescape(fields[dash + 2] ?? ''),
    };
  });
}

/** The mount that holds `path` (longest mount point prefix). */
export function mountOf(path) {
  let best = { mountpoint: '/', fstype: 'unknown', source: 'unknown' };
  for (const m of readMounts()) {
    const prefix = m.mountpoint.endsWith('/') ? m.mountpoint : `${m.mountpoint}/`;
    if ((path === m.mountpoint || path.startsWith(prefix)) &&
        m.mountpoint.length >= best.mountpoint.length) {
      best = m;
    }
  }
  return best;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A child process, its exit as a promise. */
class Child {
  constructor(proc) {
    this.proc = proc;
    this.exited = false;
    this.exit = new Promise((resolve) => {
      proc.on('close', (code, signal) => {
        this.exited = true;
        resolve({ code, signal });
      });
      proc.on('error', (error) => {
        this.exited = true;
        resolve({ code: -1, signal: null, error });
      });
    });
  }

  kill(signal) {
    if (!this.exited) this.proc.kill(signal);
  }

  /** Waits for the exit; false if it did not come within `ms`. */
  async waitExit(ms) {
    const timer = sleep(ms).then(() => false);
    return Promise.race([this.exit.then(() => true), timer]);
  }
}

export class Session {
  constructor(baseDir) {
    this.workDir = mkdtempSync(join(baseDir, 'understudy-bench-'));
    this.children = new Set();
    this.aborted = false;
    this.cleaned = false;
    /** RLIMIT_NOFILE for FUSE servers (null: inherit); set by the CLI. */
    this.nofileMax = null;
  }

  /**
   * Runs a command to completion; resolves with code, output and wall time. A run that
   * outlives `timeoutMs` is killed (SIGKILL) and reported with `timedOut`.
   */
  async run(cmd, args, { cwd, timeoutMs = 600_000, stdoutFile } = {}) {
    if (this.aborted) throw new Error('bench aborted');
    const started = process.hrtime.bigint();
    const proc = spawn(cmd, args, { cwd, stdio: ['ignore', stdoutFile ?? 'pipe', 'pipe'] });
    const child = new Child(proc);
    this.children.add(child);
    let stdout = '';
    let stderr = '';
    proc.stdout?.on('data', (d) => { stdout += d; });
    proc.stderr?.on('data', (d) => { stderr += d; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    const { code, signal, error } = await child.exit;
    clearTimeout(timer);
    this.children.delete(child);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    return { code, signal, error, stdout, stderr, elapsedMs, timedOut };
  }

  /** Like run(), but a failure (non-zero exit, signal, timeout) throws with its stderr. */
  async check(cmd, args, options) {
    const r = await this.run(cmd, args, options);
    if (r.code !== 0) {
      const why = r.timedOut ? 'timed out' : r.error ? r.error.message
        : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
      const output = r.stderr || r.stdout;
      const cause = output.split('\n').find((l) => /error/i.test(l)) ?? '';
      throw new Error(`${cmd} ${args.join(' ')}: ${why} ${cause}\n${tail(output)}`);
    }
    return r;
  }

  /** Starts a long-running child (a FUSE server) whose output goes to `logFd`. */
  start(cmd, args, logFd) {
    if (this.aborted) throw new Error('bench aborted');
    const child = new Child(spawn(cmd, args, { stdio: ['ignore', logFd, logFd] }));
    this.children.add(child);
    child.exit.then(() => this.children.delete(child));
    return child;
  }

  /** Mount points under the work directory that are still mounted. */
  leftoverMounts() {
    return readMounts().map((m) => m.mountpoint)
      .filter((p) => p.startsWith(`${this.workDir}/`)).reverse();
  }

  /** Stops children, unmounts leftovers, removes the work directory. Idempotent. */
  async cleanup() {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const child of this.children) child.kill('SIGTERM');
    for (const child of this.children) {
      if (!(await child.waitExit(10_000))) child.kill('SIGKILL');
    }
    for (const mountpoint of this.leftoverMounts()) {
      await lazyUnmount(mountpoint);
    }
    const stuck = this.leftoverMounts();
    if (stuck.length > 0) {
      process.stderr.write(`bench: still mounted, ${this.workDir} kept: ${stuck.join(', ')}\n`);
      return;
    }
    rmSync(this.workDir, { recursive: true, force: true, maxRetries: 3 });
  }

  /** Cleans up on SIGINT/SIGTERM/SIGHUP and exits with 128 + signal number. */
  installSignalHandlers() {
    const numbers = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
    for (const [signal, number] of Object.entries(numbers)) {
      process.on(signal, () => {
        if (this.aborted) return;
        this.aborted = true;
        process.stderr.write(`\nbench: ${signal}: stopping servers, unmounting, cleaning up\n`);
        this.cleanup().finally(() => process.exit(128 + number));
      });
    }
  }
}

/**
 * Detaches a FUSE mount whose server has exited or been killed: aborts its connection first
 * (/sys/fs/fuse/connections/<dev>/abort), because a child that inherited the server's
 * /dev/fuse fd can keep a dead connection alive, and then umount(8), which stats the mount
 * point, would wait forever for an answer. Then umount -l. Only for our own mounts.
 */
export async function lazyUnmount(mountpoint) {
  const m = readMounts().find((x) => x.mountpoint === mountpoint);
  if (m === undefined) return true;
  if (m.fstype.startsWith('fuse')) {
    const [major, minor] = m.dev.split(':').map(Number);
    if (major === 0) {
      try { writeFileSync(`/sys/fs/fuse/connections/${minor}/abort`, '1'); } catch { /* gone */ }
    }
  }
  for (const [cmd, args] of [['umount', ['-l', mountpoint]],
    ['fusermount3', ['-u', '-z', mountpoint]]]) {
    const code = await new Promise((resolve) => {
      const p = spawn(cmd, args, { stdio: 'ignore' });
      const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
      p.on('close', (c) => { clearTimeout(timer); resolve(c); });
      p.on('error', () => { clearTimeout(timer); resolve(-1); });
    });
    if (code === 0) return true;
  }
  return false;
}

/** The last lines of a command's output, for error messages. */
export function tail(text, lines = 12) {
  return String(text).trimEnd().split('\n').slice(-lines).join('\n');
}

export { sleep };
