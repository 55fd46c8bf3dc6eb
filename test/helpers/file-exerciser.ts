/**
 * A random-op exerciser of one file, checked against an in-memory model (in the spirit of
 * fsx, written for these suites): pwrite, ftruncate, fallocate (plain, KEEP_SIZE, PUNCH_HOLE,
 * ZERO_RANGE with and without KEEP_SIZE), copy_file_range within the file, writes through a
 * shared mmap, preads, fsync and reopen. Guarantees: the op sequence depends only on the seed
 * (its own splitmix64, never Python's `random`); every read is compared with the model.
 */
import { spawnSync } from 'node:child_process';

/** What one run saw: op counts, the first mismatch with the model, the final size and hash. */
export interface ExerciserOutcome {
  ops: Record<string, number>;
  /** The first read that differed from the model, or null. */
  mismatch: string | null;
  /** An op that failed with an errno, or null (none of the ops may fail on a sane fs). */
  error: string | null;
  size: number;
  sha256: string;
}

// argv: path, seed, ops. Prints one JSON object (ExerciserOutcome).
const EXERCISER_PY = String.raw`
import os, sys, json, mmap, ctypes, hashlib
path, seed, nops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE = 0x01, 0x02, 0x10
SIZE_MAX, LEN_MAX = 1 << 20, 64 << 10
M64 = (1 << 64) - 1
state = seed & M64
def rnd(n):
    # splitmix64: the sequence is fixed by the seed on every Python version.
    global state
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return (z ^ (z >> 31)) % n
model = bytearray()
counts = {}
out = {'mismatch': None, 'error': None}
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
def payload(i, n):
    tag = b'%08x.' % i
    return (tag * (n // len(tag) + 1))[:n]
def put(off, data):
    global model
    if off > len(model): model += bytes(off - len(model))
    model[off:off + len(data)] = data
def zero(off, end):
    end = min(end, len(model))
    if end > off: model[off:end] = bytes(end - off)
def check(i, off, n):
    got = os.pread(fd, n, off)
    want = bytes(model[off:off + n])
    if got != want and out['mismatch'] is None:
        at = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                  min(len(got), len(want)))
        out['mismatch'] = ('op %d: read of %d at %d: %d bytes back, want %d; '
                           'first difference at %d') % (i, n, off, len(got), len(want), off + at)
def fallocate(mode, off, n):
    if libc.fallocate(fd, mode, off, n) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
for i in range(nops):
    kind = ['write', 'write', 'write', 'read', 'truncate', 'falloc', 'punch', 'zero',
            'zero_keep', 'copy', 'mmap', 'fsync', 'reopen'][rnd(13)]
    off, n = rnd(SIZE_MAX), 1 + rnd(LEN_MAX)
    try:
        if kind == 'write':
            data = payload(i, n); os.pwrite(fd, data, off); put(off, data)
        elif kind == 'read':
            off = rnd(len(model) + 1); check(i, off, n)
        elif kind == 'truncate':
            off = rnd(SIZE_MAX + LEN_MAX); os.ftruncate(fd, off)
            model = model[:off] if off <= len(model) else model + bytes(off - len(model))
        elif kind == 'falloc':
            keep = rnd(2) == 1
            fallocate(KEEP_SIZE if keep else 0, off, n)
            if not keep and off + n > len(model): model += bytes(off + n - len(model))
        elif kind == 'punch':
            fallocate(PUNCH_HOLE | KEEP_SIZE, off, n); zero(off, off + n)
        elif kind == 'zero':
            fallocate(ZERO_RANGE, off, n)
            if off + n > len(model): model += bytes(off + n - len(model))
            zero(off, off + n)
        elif kind == 'zero_keep':
            fallocate(ZERO_RANGE | KEEP_SIZE, off, n); zero(off, off + n)
        elif kind == 'copy':
            # Within one file the ranges must not overlap (EINVAL), so the destination is
            # placed after the source or before it. The source ends at EOF: a copy that
            # extends the file would otherwise read its own new bytes (or the hole before
            # them) past the old EOF, in chunks of the kernel's choosing.
            src = rnd(len(model) + 1); n = min(1 + rnd(4 * LEN_MAX), len(model) - src)
            dst = src + n + rnd(SIZE_MAX) if rnd(2) == 0 or src < n else rnd(src - n + 1)
            done = 0
            while done < n:  # n == 0 copies nothing
                got = os.copy_file_range(fd, fd, n - done, src + done, dst + done)
                if got == 0: break
                done += got
            if done > 0: put(dst, bytes(model[src:src + done]))
        elif kind == 'mmap':
            if len(model) == 0: kind = 'mmap_skipped'
            else:
                off = rnd(len(model)); n = min(n, len(model) - off)
                m = mmap.mmap(fd, len(model))
                data = payload(i, n); m[off:off + n] = data; m.flush(); m.close(); put(off, data)
        elif kind == 'fsync':
            os.fsync(fd)
        elif kind == 'reopen':
            os.close(fd); fd = os.open(path, os.O_RDWR)
    except OSError as e:
        out['error'] = 'op %d (%s, offset %d, length %d): %s' % (i, kind, off, n, e.strerror)
        break
    counts[kind] = counts.get(kind, 0) + 1
    if i % 250 == 249 or i == nops - 1:
        if os.fstat(fd).st_size != len(model) and out['mismatch'] is None:
            out['mismatch'] = 'op %d: size %d, want %d' % (i, os.fstat(fd).st_size, len(model))
        check(i, 0, len(model) + 1)
os.close(fd)
out.update(ops=counts, size=len(model), sha256=hashlib.sha256(model).hexdigest())
print(json.dumps(out))
`;

/** Runs the exerciser on `path` (created or truncated) and returns what it saw. */
export function runExerciser(path: string, seed: number, ops: number): ExerciserOutcome {
  const result = spawnSync('python3', ['-c', EXERCISER_PY, path, String(seed), String(ops)], {
    encoding: 'utf8', maxBuffer: 1 << 24,
  });
  if (result.status !== 0) {
    throw new Error(
      `file exerciser failed (${result.status ?? result.signal}) on ${path}:\n${result.stderr}`);
  }
  return JSON.parse(result.stdout) as ExerciserOutcome;
}
