// The sync bench's footprint and tools: two hosts made of network namespaces on a bridge in a
// third one (198.18.78.0/24 only, names unique per run), the long-running children started in
// them (understudy daemons, the rsync daemon), one temporary directory on a disk, and the
// deterministic data set (small files, large files, the 1% block rewrite and its undo).
// Guarantees: cleanup() stops every child's process group, unmounts whatever is still mounted
// below the directory, removes it and deletes the namespaces; on success, error and
// SIGINT/SIGTERM/SIGHUP. Never touches a host interface, nor anything it did not create.

import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import {
  chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync,
  statSync, utimesSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const BLOCK_BYTES = 4096;

/** Runs a command to completion; throws with its stderr unless `allowFail`. */
export function sh(args, { allowFail = false, cwd } = {}) {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', cwd, timeout: 1_800_000,
    maxBuffer: 64 * 2 ** 20 });
  if (!allowFail && r.status !== 0) {
    throw new Error(`${args.join(' ')}: exit ${r.status ?? r.signal}: ` +
      `${(r.stderr ?? '').trim().slice(-2000)}`);
  }
  return r;
}

/** Runs a command asynchronously (the event loop keeps turning); resolves with its result. */
export function run(args, { allowFail = false, onLine } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let seen = 0;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (onLine === undefined) return;
      // Whole lines only, as they arrive (for timestamps of progress events).
      for (let nl = stdout.indexOf('\n', seen); nl >= 0; nl = stdout.indexOf('\n', seen)) {
        onLine(stdout.slice(seen, nl));
        seen = nl + 1;
      }
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (!allowFail && code !== 0) {
        reject(new Error(`${args.join(' ')}: exit ${code ?? signal}: ${stderr.trim().slice(-2000)}`));
      } else {
        resolve({ code, stdout, stderr });
      }
    });
  });
}

/** Mount points from /proc/self/mountinfo (octal escapes decoded). */
function mountPoints() {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((line) => line.split(' ')[4].replace(/\\([0-7]{3})/g,
      (_, o) => String.fromCharCode(parseInt(o, 8))));
}

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

  signal(sig) {
    if (this.done) return;
    try { process.kill(-this.proc.pid, sig); } catch { /* already gone */ }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 20_000) {
    this.signal('SIGTERM');
    const timer = sleep(graceMs).then(() => false);
    if (!(await Promise.race([this.exit.then(() => true), timer]))) {
      this.signal('SIGKILL');
      await this.exit;
    }
  }
}

export class Rig {
  /** `baseDir`: where the temporary directory goes (a disk, not tmpfs). */
  constructor(baseDir) {
    this.tag = `uss-${process.pid}`;
    this.ns = { a: `${this.tag}-a`, b: `${this.tag}-b`, br: `${this.tag}-br` };
    this.ip = { a: '198.18.78.1', b: '198.18.78.2' };
    this.workDir = mkdtempSync(join(baseDir, 'understudy-bench-sync-'));
    chmodSync(this.workDir, 0o755);
    this.children = new Set();
    this.madeNs = [];
    this.cleaned = false;
    this.aborted = false;
  }

  /** Hosts `a` and `b`, each with one veth (`eth0`) into a bridge in a third namespace. */
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
   * Bytes through host a's veth so far, both directions (tx + rx): data, checksums, protocol,
   * TCP/IP headers. Read over netlink (`ip -s`), the counters /sys/class/net/eth0/statistics
   * shows inside the namespace.
   */
  linkBytes() {
    const r = sh(['ip', '-n', this.ns.a, '-j', '-s', 'link', 'show', 'eth0']);
    const s = JSON.parse(r.stdout)[0].stats64;
    return s.tx.bytes + s.rx.bytes;
  }

  /** Starts `argv` in host `host`'s network namespace (`nsenter --net`: our mounts). */
  start(name, host, argv, logFile) {
    if (this.aborted) throw new Error('bench aborted');
    const log = openSync(logFile, 'a');
    const full = ['nsenter', `--net=/run/netns/${this.ns[host]}`, 'env', '-u', 'NODE_OPTIONS',
      ...argv];
    const proc = spawn(full[0], full.slice(1), { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    const child = new Child(name, proc);
    this.children.add(child);
    void child.exit.then(() => this.children.delete(child));
    return child;
  }

  /** Runs a command in host `host` to completion (async). */
  runIn(host, argv, opts) {
    return run(['nsenter', `--net=/run/netns/${this.ns[host]}`, ...argv], opts);
  }

  leftoverMounts() {
    return mountPoints().filter((p) => p.startsWith(`${this.workDir}/`)).reverse();
  }

  /** Stops children, unmounts leftovers, removes the directory and namespaces. Idempotent. */
  async cleanup({ keep = false } = {}) {
    if (this.cleaned) return;
    this.cleaned = true;
    await Promise.all([...this.children].map((c) => c.stop()));
    for (let i = 0; i < 3; i += 1) {
      for (const p of this.leftoverMounts()) sh(['umount', '-l', p], { allowFail: true });
    }
    for (const name of this.madeNs) sh(['ip', 'netns', 'del', name], { allowFail: true });
    const stuck = this.leftoverMounts();
    if (stuck.length > 0) {
      process.stderr.write(`bench: still mounted, ${this.workDir} kept: ${stuck.join(', ')}\n`);
    } else if (keep) {
      process.stderr.write(`bench: kept ${this.workDir}\n`);
    } else {
      rmSync(this.workDir, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  /** Cleans up on SIGINT/SIGTERM/SIGHUP and exits with 128 + the signal's number. */
  installSignalHandlers() {
    const numbers = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
    for (const [signal, number] of Object.entries(numbers)) {
      process.on(signal, () => {
        if (this.aborted) return;
        this.aborted = true;
        process.stderr.write(`\nbench: ${signal}: stopping children, unmounting, cleaning up\n`);
        this.cleanup().finally(() => process.exit(128 + number));
      });
    }
  }
}

/** A deterministic byte stream (AES-128-CTR of zeros, keyed by `seed`): incompressible. */
export class Stream {
  constructor(seed) {
    const key = createHash('sha256').update(String(seed)).digest().subarray(0, 16);
    this.cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  }

  bytes(n) { return this.cipher.update(Buffer.alloc(n)); }

  /** An integer in [0, n). */
  below(n) { return this.bytes(6).readUIntLE(0, 6) % n; }
}

/**
 * Writes `count` files of 1..16 KiB (uniform) into `dir`, 1,000 per subdirectory, the same
 * bytes for the same seed; returns their total size.
 */
export function makeSmallFiles(dir, count, seed) {
  const s = new Stream(`small-${seed}`);
  let bytes = 0;
  for (let i = 0; i < count; i += 1) {
    const sub = join(dir, `d${String(Math.floor(i / 1000)).padStart(3, '0')}`);
    if (i % 1000 === 0) mkdirSync(sub, { recursive: true });
    const size = 1024 + s.below(15 * 1024 + 1);
    const fd = openSync(join(sub, `f${String(i).padStart(6, '0')}`), 'w', 0o644);
    writeSync(fd, s.bytes(size));
    closeSync(fd);
    bytes += size;
  }
  return bytes;
}

/** Writes `files` files of `fileBytes` each into `dir`; returns the file names. */
export function makeLargeFiles(dir, files, fileBytes, seed) {
  mkdirSync(dir, { recursive: true });
  const names = [];
  const chunk = 8 * 2 ** 20;
  for (let i = 0; i < files; i += 1) {
    const s = new Stream(`large-${seed}-${i}`);
    const name = `l${String(i).padStart(2, '0')}`;
    const fd = openSync(join(dir, name), 'w', 0o644);
    for (let at = 0; at < fileBytes; at += chunk) writeSync(fd, s.bytes(Math.min(chunk, fileBytes - at)));
    closeSync(fd);
    names.push(name);
  }
  return names;
}

/**
 * The 1% rewrite: in every file, `fraction` of its 4 KiB blocks, chosen at random without
 * repetition (seeded), get new random bytes. Returns what it needs to undo itself: the old
 * blocks and the old times.
 */
export function rewriteBlocks(dir, names, fraction, seed) {
  const s = new Stream(`delta-${seed}`);
  const undo = [];
  let blocks = 0;
  for (const name of names) {
    const path = join(dir, name);
    const st = statSync(path);
    const total = Math.floor(st.size / BLOCK_BYTES);
    const pick = Math.round(total * fraction);
    const chosen = new Set();
    while (chosen.size < pick) chosen.add(s.below(total));
    const fd = openSync(path, 'r+');
    const old = [];
    for (const index of [...chosen].sort((x, y) => x - y)) {
      const before = Buffer.alloc(BLOCK_BYTES);
      readSync(fd, before, 0, BLOCK_BYTES, index * BLOCK_BYTES);
      old.push([index, before]);
      writeSync(fd, s.bytes(BLOCK_BYTES), 0, BLOCK_BYTES, index * BLOCK_BYTES);
    }
    closeSync(fd);
    blocks += pick;
    undo.push({ name, old, atime: st.atime, mtime: st.mtime });
  }
  return { blocks, undo };
}

/** Puts the old blocks back into the same-named files below `dir`, with the old times. */
export function undoRewrite(dir, undo) {
  for (const { name, old, atime, mtime } of undo) {
    const path = join(dir, name);
    const fd = openSync(path, 'r+');
    for (const [index, bytes] of old) writeSync(fd, bytes, 0, BLOCK_BYTES, index * BLOCK_BYTES);
    closeSync(fd);
    utimesSync(path, atime, mtime);
  }
}

/** Sorted copy; median (mean of the middle two for an even count); null when empty. */
export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x))
    .sort((x, y) => x - y);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}
