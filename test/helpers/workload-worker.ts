/**
 * One worker of the randomized file-system workload (started by workload.ts, one process each).
 * Owns: a seeded sequence of operations on a shared namespace under --dir, and a JSON-lines log
 * of each (a "begin" line before the syscall, an "end" line with its outcome after it).
 * Guarantees: the sequence of operations and arguments depends only on (seed, worker); results
 * never steer choices. Races with other workers (ENOENT, ENOTEMPTY, ...) are expected outcomes.
 * Never touches anything outside --dir (the log file aside).
 *
 * Usage: node --import @tapjs/typescript/import workload-worker.ts
 *          --dir D --seed S --worker W --duration-ms MS --log FILE --sentinel FILE
 * The sentinel is a file outside the tree that hostile symlinks point at; nothing may change it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';
import { workloadPayload } from './workload.js';

interface Args {
  dir: string;
  seed: number;
  worker: number;
  durationMs: number;
  log: string;
  sentinel: string;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string => {
    const at = argv.indexOf(`--${name}`);
    const value = at >= 0 ? argv[at + 1] : undefined;
    if (value === undefined) throw new Error(`workload-worker: --${name} is required`);
    return value;
  };
  return {
    dir: get('dir'), seed: Number(get('seed')), worker: Number(get('worker')),
    durationMs: Number(get('duration-ms')), log: get('log'), sentinel: get('sentinel'),
  };
}

/** mulberry32: small, fast, good enough to pick operations reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

// The python3 co-process does what Node's fs cannot: xattrs, fallocate with mode bits, and
// writes through a shared writable mmap. One JSON request per line, one JSON reply per line.
const HELPER_PY = String.raw`
import sys, os, json, mmap, ctypes, errno, base64
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
def run(req):
    op = req['op']; path = req['path']
    if op == 'setxattr':
        os.setxattr(path, req['name'], bytes.fromhex(req['value']), req.get('flags', 0), follow_symlinks=False)
        return {}
    if op == 'removexattr':
        os.removexattr(path, req['name'], follow_symlinks=False)
        return {}
    if op == 'fallocate':
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            if libc.fallocate(fd, req['mode'], req['offset'], req['length']) != 0:
                e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
            st = os.fstat(fd)
            return {'ino': st.st_ino, 'nlink': st.st_nlink}
        finally:
            os.close(fd)
    if op == 'mmapwrite':
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        try:
            data = bytes.fromhex(req['data']); off = req['offset']
            st = os.fstat(fd)
            if st.st_size < off + len(data):
                return {'skipped': 'file too short'}
            m = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            m[off:off + len(data)] = data
            m.flush()
            m.close()
            st = os.fstat(fd)
            return {'ino': st.st_ino, 'nlink': st.st_nlink}
        finally:
            os.close(fd)
    raise ValueError('unknown op ' + op)
for line in sys.stdin:
    req = json.loads(line)
    try:
        reply = {'ok': True, **run(req)}
    except OSError as e:
        reply = {'ok': False, 'err': errno.errorcode.get(e.errno, str(e.errno))}
    except Exception as e:
        reply = {'ok': False, 'err': 'EPY:' + type(e).__name__}
    sys.stdout.write(json.dumps(reply) + '\n'); sys.stdout.flush()
`;

type Reply = { ok: boolean; err?: string; [key: string]: unknown };

// A mmap write can die of SIGBUS when another worker truncates the file under it: that is a
// race outcome (logged as EHELPERDIED), and the next call starts a fresh co-process.
function startHelper(): { call(req: Record<string, unknown>): Promise<Reply>; close(): void } {
  let child: ChildProcess | undefined;
  let waiting: Array<(reply: Reply) => void> = [];
  const ensure = (): ChildProcess => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) return child;
    const fresh = spawn('python3', ['-u', '-c', HELPER_PY], { stdio: ['pipe', 'pipe', 'inherit'] });
    const mine: Array<(reply: Reply) => void> = [];
    waiting = mine;
    createInterface({ input: fresh.stdout! }).on('line', (line) => mine.shift()?.(JSON.parse(line) as Reply));
    fresh.stdin!.on('error', () => undefined);  // EPIPE after a SIGBUS: the exit handler replies
    fresh.on('exit', () => {
      for (const resolveReply of mine.splice(0)) resolveReply({ ok: false, err: 'EHELPERDIED' });
    });
    child = fresh;
    return fresh;
  };
  return {
    call: (req) => new Promise<Reply>((resolveReply) => {
      const current = ensure();
      waiting.push(resolveReply);
      current.stdin!.write(`${JSON.stringify(req)}\n`);
    }),
    close: () => { child?.stdin?.end(); },
  };
}

const UIDS = [0, 1000, 1001, 65534];
const MODES = [0o644, 0o600, 0o755, 0o640, 0o4755, 0o2755, 0o1777, 0o444];
const FALLOC_MODES = [0, 1 /* KEEP_SIZE */, 3 /* PUNCH_HOLE|KEEP_SIZE */, 16 /* ZERO_RANGE */];

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!isAbsolute(args.dir) || args.dir.split('/').length < 4) {
    throw new Error(`workload-worker: refusing to run on ${args.dir}: give a deep absolute temp dir`);
  }
  const random = prng((args.seed * 7919 + args.worker * 104729) >>> 0);
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const logFd = openSync(args.log, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o644);
  // t: wall-clock ms, so that stalls (an op that takes seconds) can be found afterwards.
  const log = (entry: Record<string, unknown>): void => {
    writeSync(logFd, `${JSON.stringify({ ...entry, t: Date.now() })}\n`);
  };
  const helper = startHelper();
  let stopping = false;
  process.on('SIGTERM', () => { stopping = true; });

  const filePath = (): string => {
    const r = int(10);
    if (r < 2) return `f${int(6)}`;
    if (r < 7) return `d${int(4)}/f${int(6)}`;
    return `d${int(4)}/s${int(2)}/f${int(4)}`;
  };
  const dirPath = (): string => `d${int(4)}/s${int(2)}`;
  const anyPath = (): string => (int(4) === 0 ? dirPath() : filePath());
  const abs = (path: string): string => join(args.dir, path);
  const payload = (i: number, length: number): Buffer => workloadPayload(args.seed, args.worker, i, length);
  // For ops that write through an fd: the inode they will touch, whatever its name becomes.
  const opened = async (i: number, op: string, fh: fsp.FileHandle): Promise<void> => {
    try {
      log({ w: args.worker, i, phase: 'opened', op, ino: (await fh.stat()).ino });
    } catch (error) {
      log({ w: args.worker, i, phase: 'opened', op, statErr: (error as NodeJS.ErrnoException).code });
    }
  };
  const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

  // Each op returns extra fields for its "end" line; a thrown errno becomes { ok: false, err }.
  type Op = { name: string; args: Record<string, unknown>; run: () => Promise<Record<string, unknown>> };
  const writeAt = async (fh: fsp.FileHandle, data: Buffer, offset: number | null) => {
    const { bytesWritten } = await fh.write(data, 0, data.length, offset);
    const st = await fh.stat();
    const written = data.subarray(0, bytesWritten);
    return { bytesWritten, sha256: sha(written), ino: st.ino, nlink: st.nlink, sizeAfter: st.size };
  };
  const chooseOp = (i: number): Op => {
    const r = int(100);
    if (r < 22) {
      const path = r < 8 ? `f${int(2)}` : filePath();  // f0/f1: hot shared files
      const offset = int(256) * 1024 + int(4096);
      const data = payload(i, 1 + (int(10) === 0 ? int(200_000) : int(8192)));
      return { name: 'write', args: { path, offset, length: data.length }, run: async () => {
        const fh = await fsp.open(abs(path), constants.O_WRONLY | constants.O_CREAT, 0o644);
        await opened(i, 'write', fh);
        try { return await writeAt(fh, data, offset); } finally { await fh.close(); }
      } };
    }
    if (r < 30) {
      const path = r < 26 ? `f${int(2)}` : filePath();
      const data = payload(i, 1 + int(4096));
      return { name: 'append', args: { path, length: data.length }, run: async () => {
        const fh = await fsp.open(abs(path), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644);
        await opened(i, 'append', fh);
        try { return await writeAt(fh, data, null); } finally { await fh.close(); }
      } };
    }
    if (r < 35) {
      const path = filePath();
      const size = int(300_000);
      return { name: 'truncate', args: { path, size }, run: async () => { await fsp.truncate(abs(path), size); return {}; } };
    }
    if (r < 40) {
      const path = filePath();
      const exclusive = int(2) === 0;
      return { name: 'create', args: { path, exclusive }, run: async () => {
        const flags = constants.O_WRONLY | constants.O_CREAT | (exclusive ? constants.O_EXCL : constants.O_TRUNC);
        const fh = await fsp.open(abs(path), flags, 0o640);
        await fh.close();
        return {};
      } };
    }
    if (r < 48) {
      const from = anyPath();
      const to = anyPath();
      return { name: 'rename', args: { from, to }, run: async () => { await fsp.rename(abs(from), abs(to)); return {}; } };
    }
    if (r < 52) {
      const from = filePath();
      const to = filePath();
      return { name: 'link', args: { from, to }, run: async () => { await fsp.link(abs(from), abs(to)); return {}; } };
    }
    if (r < 54) {
      // Targets in the op pool resolve beside the link, never through '..' or from '/': other
      // ops follow them (open, truncate, chmod), and dirs get renamed to any depth.
      const path = filePath();
      const target = pick(['f0', 'f1', 'dangling', 's0/f1', 's1']);
      return { name: 'symlink', args: { path, target }, run: async () => { await fsp.symlink(target, abs(path)); return {}; } };
    }
    if (r < 55) {
      // Hostile links for the applier's confinement: they point out of the tree (at the
      // sentinel), live only at dN/evilN, which no other op resolves, and are only unlinked.
      const path = `d${int(4)}/evil${int(2)}`;
      const target = pick([args.sentinel, '../../sentinel', '/', '..']);
      return { name: 'symlink', args: { path, target }, run: async () => { await fsp.symlink(target, abs(path)); return {}; } };
    }
    if (r < 60) {
      const path = r < 56 ? `d${int(4)}/evil${int(2)}` : filePath();
      return { name: 'unlink', args: { path }, run: async () => { await fsp.unlink(abs(path)); return {}; } };
    }
    if (r < 63) {
      const path = filePath();
      const data = payload(i, 1 + int(8192));
      return { name: 'unlink-open', args: { path, length: data.length }, run: async () => {
        const fh = await fsp.open(abs(path), constants.O_RDWR | constants.O_CREAT, 0o644);
        await opened(i, 'unlink-open', fh);
        try {
          await fh.write(data, 0, data.length, 0);
          await fsp.unlink(abs(path));
          await fh.write(data, 0, data.length, data.length);  // writes to a file with no name
          const st = await fh.stat();
          return { nlinkAfter: st.nlink };
        } finally { await fh.close(); }
      } };
    }
    if (r < 67) {
      const path = dirPath();
      return { name: 'mkdir', args: { path }, run: async () => { await fsp.mkdir(abs(path), 0o755); return {}; } };
    }
    if (r < 69) {
      const path = dirPath();
      return { name: 'rmdir', args: { path }, run: async () => { await fsp.rmdir(abs(path)); return {}; } };
    }
    if (r < 73) {
      const path = anyPath();
      const mode = pick(MODES);
      return { name: 'chmod', args: { path, mode }, run: async () => { await fsp.chmod(abs(path), mode); return {}; } };
    }
    if (r < 76) {
      const path = anyPath();
      const uid = pick(UIDS);
      const gid = pick(UIDS);
      return { name: 'chown', args: { path, uid, gid }, run: async () => { await fsp.lchown(abs(path), uid, gid); return {}; } };
    }
    if (r < 80) {
      const path = anyPath();
      const atime = 1_000_000_000 + int(1_000_000_000) + int(1000) / 1000;
      const mtime = 1_000_000_000 + int(1_000_000_000) + int(1000) / 1000;
      return { name: 'utimes', args: { path, atime, mtime }, run: async () => { await fsp.lutimes(abs(path), atime, mtime); return {}; } };
    }
    if (r < 85) {
      const path = anyPath();
      const name = `user.k${int(4)}`;
      const value = payload(i, int(64)).toString('hex');
      const flags = pick([0, 0, 1, 2]);
      return { name: 'setxattr', args: { path, name, flags }, run: async () => {
        const reply = await helper.call({ op: 'setxattr', path: abs(path), name, value, flags });
        if (!reply.ok) throw Object.assign(new Error(reply.err), { code: reply.err });
        return {};
      } };
    }
    if (r < 88) {
      const path = anyPath();
      const name = `user.k${int(4)}`;
      return { name: 'removexattr', args: { path, name }, run: async () => {
        const reply = await helper.call({ op: 'removexattr', path: abs(path), name });
        if (!reply.ok) throw Object.assign(new Error(reply.err), { code: reply.err });
        return {};
      } };
    }
    if (r < 93) {
      const path = filePath();
      const mode = pick(FALLOC_MODES);
      const offset = int(64) * 4096;
      const length = (1 + int(32)) * 4096;
      return { name: 'fallocate', args: { path, mode, offset, length }, run: async () => {
        const reply = await helper.call({ op: 'fallocate', path: abs(path), mode, offset, length });
        if (!reply.ok) throw Object.assign(new Error(reply.err), { code: reply.err });
        return { ino: reply.ino, nlink: reply.nlink };
      } };
    }
    const path = r < 96 ? `f${int(2)}` : filePath();
    const offset = int(64 * 1024);
    const data = payload(i, 1 + int(4096));
    return { name: 'mmap-write', args: { path, offset, length: data.length }, run: async () => {
      const reply = await helper.call({ op: 'mmapwrite', path: abs(path), offset, data: data.toString('hex') });
      if (!reply.ok) throw Object.assign(new Error(reply.err), { code: reply.err });
      if (reply.skipped !== undefined) return { skipped: reply.skipped };
      return { sha256: sha(data), bytesWritten: data.length, ino: reply.ino, nlink: reply.nlink };
    } };
  };

  const deadline = Date.now() + args.durationMs;
  let i = 0;
  while (!stopping && Date.now() < deadline) {
    const op = chooseOp(i);
    log({ w: args.worker, i, phase: 'begin', op: op.name, ...op.args });
    let end: Record<string, unknown>;
    try {
      end = { ok: true, ...(await op.run()) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      end = { ok: false, err: typeof code === 'string' ? code : String(error) };
    }
    log({ w: args.worker, i, phase: 'end', op: op.name, ...op.args, ...end });
    i += 1;
  }
  helper.close();
  closeSync(logFd);
}

await main();
