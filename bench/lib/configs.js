// The configurations the fs bench compares: a plain directory, understudy's mount (with and
// without the kernel writeback cache), libfuse's passthrough_ll example built from the
// installed libfuse3-dev, and a fuse-native JavaScript passthrough. Each has probe() (can it
// run here? once per bench run; returns a reason to skip, or null) and start() (a fresh
// instance over a new backing directory, which beforeMount(backing) may fill first; returns
// where to work and how to stop).
// Never installs into the project: fuse-native goes to a temp prefix.

import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMounts, lazyUnmount, sleep, tail } from './session.js';

const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_DIR = join(BENCH_DIR, '..');
const UNDERSTUDY_BIN = join(REPO_DIR, 'bin', 'understudy');
const PASSTHROUGH_LL_SOURCE = '/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c';
/** Where fuse-native is installed at bench time; never the project's node_modules. */
export const FUSE_NATIVE_PREFIX = '/tmp/understudy-bench-fuse-native';
const MOUNT_READY_MS_MAX = 30_000;
const STOP_MS_MAX = 20_000;

/** Starts a FUSE server and waits until `mountpoint` shows up with a fuse fstype. */
async function startFuseServer(session, name, cmd, args, mountpoint, fstypeOk) {
  const logPath = join(dirname(mountpoint), `${name}.log`);
  const logFd = openSync(logPath, 'a');
  // passthrough_ll keeps an fd per inode the kernel knows and hits EMFILE at the inherited
  // limit (20,000 here) in the 20,000-file workload; --nofile raises it where allowed.
  const limited = session.nofileMax === null ? [cmd, args]
    : ['prlimit', [`--nofile=${session.nofileMax}:${session.nofileMax}`, '--', cmd, ...args]];
  const child = session.start(limited[0], limited[1], logFd);
  closeSync(logFd);
  const deadline = Date.now() + MOUNT_READY_MS_MAX;
  for (;;) {
    const m = readMounts().find((x) => x.mountpoint === mountpoint);
    if (m !== undefined && fstypeOk(m.fstype)) break;
    const log = () => tail(readFileSync(logPath, 'utf8'));
    if (child.exited) throw new Error(`${name} exited before mounting:\n${log()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not mount ${mountpoint} within ${MOUNT_READY_MS_MAX} ms:\n` +
        log());
    }
    await sleep(25);
  }
  return async () => {
    child.kill('SIGTERM');
    let clean = await child.waitExit(STOP_MS_MAX);
    if (!clean) {
      child.kill('SIGKILL');
      await child.waitExit(5_000);
    }
    if (readMounts().some((x) => x.mountpoint === mountpoint)) {
      clean = false;
      await lazyUnmount(mountpoint);
    }
    return clean ? null : `${name} did not exit and unmount on SIGTERM within ${STOP_MS_MAX} ms`;
  };
}

/** Fresh directories for one run of a mounted configuration. */
function mountDirs(runDir) {
  const dirs = {
    backing: join(runDir, 'backing'), mnt: join(runDir, 'mnt'), journal: join(runDir, 'journal'),
  };
  mkdirSync(dirs.backing, { recursive: true });
  mkdirSync(dirs.mnt, { recursive: true });
  return dirs;
}

const plain = {
  id: 'plain',
  label: 'plain',
  async probe() { return null; },
  async start(session, runDir, beforeMount) {
    const dir = join(runDir, 'plain');
    mkdirSync(dir, { recursive: true });
    await beforeMount(dir);
    return { dir, backing: dir, stop: async () => null };
  },
};

/** Help text of `understudy mount`, or the reason it cannot run; cached per process. */
let understudyHelp;
async function understudyMountHelp(session) {
  understudyHelp ??= (async () => {
    const r = await session.run(process.execPath, [UNDERSTUDY_BIN, 'mount', '--help'],
      { timeoutMs: 30_000 });
    if (r.code !== 0) {
      return { error: `\`understudy mount --help\` failed (exit ${r.code}): ` +
        tail(r.stderr || r.stdout, 3).replace(/\s+/g, ' ') };
    }
    return { text: r.stdout + r.stderr };
  })();
  return understudyHelp;
}

function understudy(writeback) {
  return {
    id: writeback ? 'understudy-wb' : 'understudy',
    label: writeback ? 'understudy --writeback-cache' : 'understudy',
    journaled: true,
    async probe(session) {
      if (process.getuid?.() !== 0) return 'mounting needs root';
      const help = await understudyMountHelp(session);
      if (help.error) return help.error;
      if (writeback && !help.text.includes('--writeback-cache')) {
        return '`understudy mount` does not accept --writeback-cache';
      }
      return null;
    },
    async start(session, runDir, beforeMount) {
      const d = mountDirs(runDir);
      await beforeMount(d.backing);
      const args = [UNDERSTUDY_BIN, 'mount', d.mnt, '--backing', d.backing, '--journal', d.journal];
      if (writeback) args.push('--writeback-cache');
      const stop = await startFuseServer(session, this.id, process.execPath, args, d.mnt,
        (fstype) => fstype === 'fuse.understudy');
      return { dir: d.mnt, backing: d.backing, journalDir: d.journal, stop };
    },
  };
}

const passthroughLl = {
  id: 'passthrough-ll',
  label: 'libfuse passthrough_ll',
  binary: null,
  async probe(session) {
    if (!existsSync(PASSTHROUGH_LL_SOURCE)) {
      return `${PASSTHROUGH_LL_SOURCE} is missing (Debian package libfuse3-dev ships it; ` +
        'apt-get source is not available without deb-src lines)';
    }
    const out = join(session.workDir, 'passthrough_ll');
    const flags = await session.run('pkg-config', ['--cflags', '--libs', 'fuse3']);
    if (flags.code !== 0) return 'pkg-config cannot find fuse3 (install libfuse3-dev)';
    const cc = await session.run('cc', ['-O2', '-Wall', '-o', out, PASSTHROUGH_LL_SOURCE,
      ...flags.stdout.trim().split(/\s+/)]);
    if (cc.code !== 0) return `cannot compile passthrough_ll: ${tail(cc.stderr, 3)}`;
    this.binary = out;
    return null;
  },
  async start(session, runDir, beforeMount) {
    const d = mountDirs(runDir);
    await beforeMount(d.backing);
    // The example's defaults (cache=auto, timeout 1 s, no writeback, no xattr), foreground.
    const args = ['-f', '-o', `source=${d.backing}`, d.mnt];
    const stop = await startFuseServer(session, this.id, this.binary, args, d.mnt,
      (fstype) => fstype.startsWith('fuse'));
    return { dir: d.mnt, backing: d.backing, stop };
  },
};

/** Installs fuse-native into FUSE_NATIVE_PREFIX and libfuse2 if missing; null or a reason. */
async function ensureFuseNative(session) {
  const load = () => session.run(process.execPath, ['-e',
    `require(${JSON.stringify(join(FUSE_NATIVE_PREFIX, 'node_modules', 'fuse-native'))})`]);
  if (!existsSync(join(FUSE_NATIVE_PREFIX, 'node_modules', 'fuse-native', 'package.json'))) {
    mkdirSync(FUSE_NATIVE_PREFIX, { recursive: true });
    const npm = await session.run('npm', ['install', '--no-save', '--prefix', FUSE_NATIVE_PREFIX,
      'fuse-native'], { timeoutMs: 300_000 });
    if (npm.code !== 0) return `npm install fuse-native failed: ${tail(npm.stderr, 3)}`;
  }
  let r = await load();
  if (r.code !== 0 && r.stderr.includes('libfuse.so.2')) {
    process.stderr.write('bench: fuse-native needs libfuse.so.2: apt-get install -y libfuse2\n');
    await session.run('apt-get', ['install', '-y', 'libfuse2'], { timeoutMs: 300_000 });
    r = await load();
  }
  if (r.code !== 0) return `fuse-native does not load: ${tail(r.stderr, 2).replace(/\s+/g, ' ')}`;
  return null;
}

const fuseNative = {
  id: 'fuse-native',
  label: 'fuse-native (JS)',
  async probe(session) {
    if (process.getuid?.() !== 0) return 'mounting needs root';
    return ensureFuseNative(session);
  },
  async start(session, runDir, beforeMount) {
    const d = mountDirs(runDir);
    await beforeMount(d.backing);
    const args = [join(BENCH_DIR, 'fuse-native-passthrough.js'),
      join(FUSE_NATIVE_PREFIX, 'node_modules', 'fuse-native'), d.backing, d.mnt];
    const stop = await startFuseServer(session, this.id, process.execPath, args, d.mnt,
      (fstype) => fstype.startsWith('fuse'));
    return { dir: d.mnt, backing: d.backing, stop };
  },
};

/** Every configuration, in table order; `plain` is the reference and always first. */
export const CONFIGS = [plain, understudy(false), understudy(true), passthroughLl, fuseNative];
