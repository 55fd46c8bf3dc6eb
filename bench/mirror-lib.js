// The mirror bench's footprint on the machine: two hosts made of network namespaces on a
// bridge in a third one (198.18.0.0/15 only, names unique per run), the long-running children
// it starts in them (understudy daemons, lsyncd, rsync daemon, probes), and one temporary
// directory. Guarantees: cleanup() kills every child's process group, unmounts whatever is
// still mounted below the directory, removes it and deletes the namespaces; it runs on
// success, on error and on SIGINT/SIGTERM/SIGHUP. Never touches a host interface, nor a
// process, mount or namespace it did not create.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lazyUnmount, readMounts } from './lib/session.js';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const nowNs = () => process.hrtime.bigint();
export const msSince = (startNs) => Number(nowNs() - startNs) / 1e6;

/** Runs a command to completion; throws with its stderr when it fails. */
export function sh(args, { allowFail = false, input } = {}) {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', input, timeout: 600_000 });
  if (!allowFail && r.status !== 0) {
    throw new Error(`${args.join(' ')}: exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim()}`);
  }
  return r;
}

/** A long-running child in its own process group; `exit` resolves when it has gone. */
class Child {
  constructor(name, proc) {
    this.name = name;
    this.proc = proc;
    this.done = false;
    this.exit = new Promise((resolve) => {
      proc.on('close', (code, signal) => { this.done = true; resolve({ code, signal }); });
      proc.on('error', (error) => { this.done = true; resolve({ code: -1, error }); });
    });
  }

  /** Signals the whole group (nsenter execs, so the group leader is the program itself). */
  signal(sig) {
    if (this.done) return;
    try { process.kill(-this.proc.pid, sig); } catch { /* already gone */ }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 15_000) {
    this.signal('SIGTERM');
    const timer = sleep(graceMs).then(() => false);
    if (!(await Promise.race([this.exit.then(() => true), timer]))) {
      this.signal('SIGKILL');
      await this.exit;
    }
    // Anything left in the group (an rsync forked by lsyncd) goes too.
    try { process.kill(-this.proc.pid, 'SIGKILL'); } catch { /* group empty */ }
  }
}

export class Rig {
  /** `baseDir`: where the temporary directory goes (a disk, not tmpfs). */
  constructor(baseDir) {
    this.tag = `usm-${process.pid}`;
    this.ns = { a: `${this.tag}-a`, b: `${this.tag}-b`, br: `${this.tag}-br` };
    this.ip = { a: '198.18.77.1', b: '198.18.77.2', nowhere: '198.18.77.3' };
    this.workDir = mkdtempSync(join(baseDir, 'understudy-bench-mirror-'));
    chmodSync(this.workDir, 0o755);
    this.children = new Set();
    this.madeNs = [];
    this.cleaned = false;
    this.aborted = false;
  }

  /** Two hosts `a` and `b`, each with one veth into a bridge in a third namespace. */
  makeHosts() {
    for (const name of Object.values(this.ns)) {
      sh(['ip', 'netns', 'add', name]);
      this.madeNs.push(name);
    }
    sh(['ip', '-n', this.ns.br, 'link', 'add', 'br0', 'type', 'bridge']);
    sh(['ip', '-n', this.ns.br, 'link', 'set', 'br0', 'up']);
    for (const id of ['a', 'b']) {
      const name = this.ns[id];
      sh(['ip', '-n', this.ns.br, 'link', 'add', `p${id}`, 'type', 'veth', 'peer', 'name',
        'eth0', 'netns', name]);
      sh(['ip', '-n', this.ns.br, 'link', 'set', `p${id}`, 'master', 'br0', 'up']);
      sh(['ip', '-n', name, 'addr', 'add', `${this.ip[id]}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', name, 'link', 'set', 'eth0', 'up']);
      sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    }
  }

  /**
   * Starts `argv` in host `host`'s network namespace (`nsenter --net`, so mounts stay in
   * ours), output appended to `logFile` (with `pipes`, stdin and stdout are pipes and only
   * stderr goes there), in its own process group.
   */
  start(name, host, argv, logFile, { pipes = false } = {}) {
    if (this.aborted) throw new Error('bench aborted');
    const log = openSync(logFile, 'a');
    const full = ['nsenter', `--net=/run/netns/${this.ns[host]}`, 'env', '-u', 'NODE_OPTIONS',
      ...argv];
    const proc = spawn(full[0], full.slice(1), {
      detached: true, stdio: pipes ? ['pipe', 'pipe', log] : ['ignore', log, log],
    });
    closeSync(log);
    const child = new Child(name, proc);
    this.children.add(child);
    void child.exit.then(() => this.children.delete(child));
    return child;
  }

  /** Stops children, unmounts leftovers, removes the directory and namespaces. Idempotent. */
  async cleanup({ keep = false } = {}) {
    if (this.cleaned) return;
    this.cleaned = true;
    await Promise.all([...this.children].map((c) => c.stop()));
    const leftovers = () => readMounts().map((m) => m.mountpoint)
      .filter((p) => p.startsWith(`${this.workDir}/`)).reverse();
    for (const mountpoint of leftovers()) await lazyUnmount(mountpoint);
    for (const name of this.madeNs) sh(['ip', 'netns', 'del', name], { allowFail: true });
    const stuck = leftovers();
    if (stuck.length > 0) {
      process.stderr.write(`bench: still mounted, ${this.workDir} kept: ${stuck.join(', ')}\n`);
    } else if (keep) {
      process.stderr.write(`bench: kept ${this.workDir}\n`);
    } else {
      rmSync(this.workDir, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  /** Cleans up on SIGINT/SIGTERM/SIGHUP and exits with 128 + the signal's number. */
  installSignalHandlers(extra = async () => {}) {
    const numbers = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
    for (const [signal, number] of Object.entries(numbers)) {
      process.on(signal, () => {
        if (this.aborted) return;
        this.aborted = true;
        process.stderr.write(`\nbench: ${signal}: stopping children, unmounting, cleaning up\n`);
        extra().catch(() => {}).then(() => this.cleanup())
          .finally(() => process.exit(128 + number));
      });
    }
  }
}

/** Sorted copy; quantile by nearest rank. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x))
    .sort((x, y) => x - y);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** `{ median, min, max, n }` of the finite numbers in `values`. */
export function summary(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}
