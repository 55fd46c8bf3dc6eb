/**
 * POSIX behaviour cases for comparing a plain directory with the mount, and the runner for them.
 * Owns: a table of cases, each a python3 snippet (python3 has the syscalls Node lacks:
 * renameat2 via ctypes, xattrs, SEEK_DATA, O_DIRECT, mmap) or a Node function, whose outcome is
 * a JSON list of [label, result] steps: return values, errno names, normalized stat fields
 * (never inode numbers, ctime or atime; mtimes only where the case set them).
 * Guarantees: a case touches only the directory it is given (it is its cwd).
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';

/** One step of an outcome: a label and what happened. */
export type Step = [string, unknown];

/** A case: its name, and how to run it in a fresh directory. */
export interface PosixCase {
  name: string;
  /** python3 source run with the prelude below, cwd = the case dir. */
  py?: string;
  /** Or a Node function of the case dir. */
  node?: (dir: string) => Step[];
}

// Defined for every snippet. step() records a return value (or 'ok' when it is an fd or None)
// or the errno name; st() is a normalized lstat; as_user() runs code as another user.
const PRELUDE = String.raw`
import os, sys, json, errno, stat, mmap, ctypes, subprocess
OUT = []
libc = ctypes.CDLL(None, use_errno=True)
def _errname(e): return 'E:' + errno.errorcode.get(e, str(e))
def _norm(r):
    if r is None: return 'ok'
    if isinstance(r, (bytes, bytearray)): return 'b:' + bytes(r).hex() if len(r) <= 64 else 'b:%d:%s' % (len(r), __import__('hashlib').sha256(bytes(r)).hexdigest()[:16])
    if isinstance(r, (list, tuple)): return [_norm(x) for x in r]
    if isinstance(r, dict): return {k: _norm(v) for k, v in r.items()}
    return r
def step(label, fn, *a, **kw):
    try:
        r = fn(*a, **kw)
    except OSError as e:
        OUT.append([label, _errname(e.errno)]); return None
    OUT.append([label, _norm(r)]); return r
def quiet(label, fn, *a, **kw):
    try:
        r = fn(*a, **kw)
    except OSError as e:
        OUT.append([label, _errname(e.errno)]); return None
    OUT.append([label, 'ok']); return r
def st(path, follow=False):
    s = os.stat(path, follow_symlinks=follow)
    kinds = {stat.S_IFREG: 'file', stat.S_IFDIR: 'dir', stat.S_IFLNK: 'symlink', stat.S_IFIFO: 'fifo', stat.S_IFSOCK: 'socket'}
    d = {'type': kinds.get(stat.S_IFMT(s.st_mode), 'other'), 'mode': oct(stat.S_IMODE(s.st_mode)), 'nlink': s.st_nlink, 'uid': s.st_uid, 'gid': s.st_gid}
    if d['type'] != 'dir': d['size'] = s.st_size
    return d
def stat_step(label, path, follow=False): return step(label, st, path, follow)
def read_all(path):
    with open(path, 'rb') as f: return f.read()
def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try: os.write(fd, data)
    finally: os.close(fd)
def mtime(path): return os.stat(path, follow_symlinks=False).st_mtime_ns
def c_call(fn, *args):
    if fn(*args) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
def renameat2(old, new, flags):
    c_call(libc.renameat2, -100, os.fsencode(old), -100, os.fsencode(new), ctypes.c_uint(flags))
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
def fallocate(fd, mode, off, length): c_call(libc.fallocate, fd, mode, off, length)
def as_user(uid, gid, code, label):
    r = subprocess.run(['setpriv', '--reuid=%d' % uid, '--regid=%d' % gid, '--clear-groups', sys.executable, '-c',
        "import os\nexec(os.environ['US_PRELUDE'])\n" + code + "\ndone()"], capture_output=True, text=True)
    if r.returncode != 0:
        OUT.append([label, 'child failed: ' + r.stderr[-400:]]); return
    for l, v in json.loads(r.stdout): OUT.append([label + '/' + l, v])
def done():
    sys.stdout.write(json.dumps(OUT))
`;

/** Runs one case in `dir` and returns its steps (a crashed snippet is a step too). */
export function runCase(posixCase: PosixCase, dir: string): Step[] {
  if (posixCase.node !== undefined) {
    try {
      return posixCase.node(dir);
    } catch (error) {
      return [['threw', String(error)]];
    }
  }
  const code = `import os\nexec(os.environ['US_PRELUDE'])\n${posixCase.py ?? ''}\ndone()`;
  const result = spawnSync('python3', ['-c', code], {
    cwd: dir, encoding: 'utf8', env: { ...process.env, US_PRELUDE: PRELUDE }, maxBuffer: 64 << 20,
  });
  if (result.status !== 0) return [['python failed', (result.stderr ?? '').slice(-1500)]];
  return JSON.parse(result.stdout) as Step[];
}

function errnoOf(fn: () => unknown): unknown {
  try {
    const value = fn();
    return value === undefined ? 'ok' : value;
  } catch (error) {
    return `E:${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
}

/** The table. Each case name is also its directory name on both sides. */
export const POSIX_CASES: PosixCase[] = [
  { name: 'open-flags', py: String.raw`
write_file('f', b'hello')
os.mkdir('d')
quiet('O_CREAT|O_EXCL on existing file', os.open, 'f', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
quiet('O_CREAT|O_EXCL on existing dir', os.open, 'd', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
quiet('O_DIRECTORY on a file', os.open, 'f', os.O_RDONLY | os.O_DIRECTORY)
quiet('O_WRONLY on a dir', os.open, 'd', os.O_WRONLY)
quiet('open missing without O_CREAT', os.open, 'missing', os.O_RDONLY)
quiet('open below a file', os.open, 'f/x', os.O_RDONLY | os.O_CREAT, 0o644)
fd = os.open('f', os.O_WRONLY | os.O_TRUNC)
stat_step('after O_TRUNC', 'f')
os.close(fd)
fd = os.open('new', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
os.close(fd)
stat_step('O_CREAT|O_EXCL new file (mode 0640, umask applied)', 'new')
os.umask(0o077)
fd = os.open('masked', os.O_WRONLY | os.O_CREAT, 0o666); os.close(fd)
stat_step('umask 077 applied', 'masked')
` },
  { name: 'o-append', py: String.raw`
write_file('f', b'abc')
fd = os.open('f', os.O_WRONLY | os.O_APPEND)
os.lseek(fd, 0, os.SEEK_SET)
step('write after seek 0', os.write, fd, b'XY')
step('pwrite at 0 with O_APPEND (Linux appends)', os.pwrite, fd, b'Z', 0)
step('offset after', os.lseek, fd, 0, os.SEEK_CUR)
os.close(fd)
step('content', read_all, 'f')
` },
  { name: 'offsets', py: String.raw`
fd = os.open('f', os.O_RDWR | os.O_CREAT, 0o644)
step('pwrite at 10', os.pwrite, fd, b'0123456789', 10)
step('size', lambda: os.fstat(fd).st_size)
step('pread hole', os.pread, fd, 10, 0)
step('pread across EOF', os.pread, fd, 100, 15)
step('pread past EOF', os.pread, fd, 10, 1000)
step('read at offset', lambda: (os.lseek(fd, 12, 0), os.read(fd, 3))[1])
step('write at current offset', os.write, fd, b'AB')
step('content', os.pread, fd, 100, 0)
os.close(fd)
` },
  { name: 'truncate', py: String.raw`
write_file('f', b'x' * 100)
step('truncate down', os.truncate, 'f', 10)
step('content after down', read_all, 'f')
step('truncate up', os.truncate, 'f', 20)
step('content after up', read_all, 'f')
fd = os.open('f', os.O_RDWR)
step('ftruncate 0', os.ftruncate, fd, 0)
step('size', lambda: os.fstat(fd).st_size)
os.close(fd)
step('truncate negative', os.truncate, 'f', -1)
os.mkdir('d')
step('truncate a dir', os.truncate, 'd', 0)
step('truncate missing', os.truncate, 'missing', 0)
os.utime('f', ns=(1, 5_000_000_007))
os.truncate('f', 0)
step('truncate to same size 0 keeps explicit mtime? (changed)', lambda: mtime('f') != 5_000_000_007)
` },
  { name: 'rename', py: String.raw`
write_file('a', b'A'); write_file('b', b'B')
step('rename file over file', os.rename, 'a', 'b')
step('content of b', read_all, 'b')
step('a gone', os.path.lexists, 'a')
os.mkdir('d'); os.mkdir('e'); os.mkdir('full'); write_file('full/x', b'x')
step('rename file over dir', os.rename, 'b', 'd')
step('rename dir over file', os.rename, 'd', 'b')
step('rename dir over empty dir', os.rename, 'd', 'e')
step('d gone', os.path.lexists, 'd')
step('rename dir over non-empty dir', os.rename, 'e', 'full')
os.mkdir('e/child')
step('rename dir into its own child', os.rename, 'e', 'e/child/x')
step('rename to itself', os.rename, 'b', 'b')
os.link('b', 'b2')
step('rename between hard links of one inode', os.rename, 'b', 'b2')
step('both names stay', lambda: (os.path.lexists('b'), os.path.lexists('b2')))
step('rename missing', os.rename, 'missing', 'x')
step('rename into missing dir', os.rename, 'b', 'nodir/x')
step('rename across dirs', os.rename, 'b', 'full/b')
step('listing', lambda: sorted(os.listdir('.')))
step('listing full', lambda: sorted(os.listdir('full')))
step('rename . ', os.rename, '.', 'dot')
` },
  { name: 'renameat2', py: String.raw`
write_file('a', b'A'); write_file('b', b'B'); os.mkdir('d'); write_file('d/x', b'X')
step('NOREPLACE onto existing', renameat2, 'a', 'b', 1)
step('NOREPLACE onto new name', renameat2, 'a', 'c', 1)
step('EXCHANGE file and file', renameat2, 'b', 'c', 2)
step('contents after exchange', lambda: (read_all('b'), read_all('c')))
step('EXCHANGE file and dir', renameat2, 'b', 'd', 2)
step('types after exchange', lambda: (st('b')['type'], st('d')['type'], read_all('b/x')))
step('EXCHANGE with missing', renameat2, 'b', 'missing', 2)
step('NOREPLACE|EXCHANGE', renameat2, 'b', 'd', 3)
` },
  { name: 'link-unlink-rmdir', py: String.raw`
write_file('f', b'data'); os.mkdir('d'); write_file('d/x', b'')
step('link', os.link, 'f', 'g')
stat_step('nlink after link', 'f')
step('link onto existing name', os.link, 'f', 'g')
step('link a dir', os.link, 'd', 'd2')
step('link missing', os.link, 'missing', 'm')
fd = os.open('g', os.O_WRONLY); os.pwrite(fd, b'DA', 0); os.close(fd)
step('write via one name, read via other', read_all, 'f')
step('unlink a dir', os.unlink, 'd')
step('rmdir non-empty', os.rmdir, 'd')
step('rmdir a file', os.rmdir, 'f')
step('rmdir .', os.rmdir, '.')
step('unlink missing', os.unlink, 'missing')
step('unlink one link', os.unlink, 'g')
stat_step('nlink after unlink', 'f')
os.unlink('d/x')
step('rmdir now empty', os.rmdir, 'd')
fd = os.open('f', os.O_RDWR)
os.unlink('f')
step('fstat nlink of open unlinked file', lambda: os.fstat(fd).st_nlink)
step('write to unlinked open file', os.pwrite, fd, b'more', 4)
step('read it back', os.pread, fd, 100, 0)
os.close(fd)
step('listing', lambda: sorted(os.listdir('.')))
` },
  { name: 'symlinks', py: String.raw`
write_file('f', b'data')
step('symlink', os.symlink, 'f', 'l')
step('readlink', os.readlink, 'l')
stat_step('lstat of symlink', 'l')
step('stat through symlink', st, 'l', True)
step('readlink on a file', os.readlink, 'f')
step('symlink onto existing name', os.symlink, 'x', 'l')
step('dangling symlink', os.symlink, 'nowhere', 'dang')
fd = step('O_CREAT through dangling symlink', os.open, 'dang', os.O_WRONLY | os.O_CREAT, 0o600)
if fd is not None: os.close(fd)
step('target created', lambda: st('nowhere'))
step('O_NOFOLLOW on symlink', os.open, 'l', os.O_RDONLY | os.O_NOFOLLOW)
step('long target', os.symlink, 'x' * 4000, 'long')
step('long target read back', lambda: len(os.readlink('long')))
step('symlink loop', lambda: (os.symlink('loop2', 'loop1'), os.symlink('loop1', 'loop2'), os.stat('loop1'))[2])
step('absolute target kept', lambda: (os.symlink('/etc/passwd', 'abs'), os.readlink('abs'))[1])
` },
  { name: 'special-files', py: String.raw`
step('mkfifo', os.mkfifo, 'fifo', 0o640)
stat_step('fifo stat', 'fifo')
step('mknod regular', os.mknod, 'reg', 0o600 | stat.S_IFREG)
stat_step('mknod regular stat', 'reg')
step('mknod char device', os.mknod, 'null', 0o666 | stat.S_IFCHR, os.makedev(1, 3))
step('char device rdev', lambda: (os.major(os.lstat('null').st_rdev), os.minor(os.lstat('null').st_rdev), st('null')['mode']))
import socket
s = socket.socket(socket.AF_UNIX); step('bind unix socket', s.bind, 'sock'); s.close()
step('socket type', lambda: st('sock')['type'])
` },
  { name: 'chmod-chown-utimes', py: String.raw`
write_file('f', b'data'); os.mkdir('d')
step('chmod 4755', os.chmod, 'f', 0o4755); stat_step('after chmod', 'f')
step('chmod 7777', os.chmod, 'f', 0o7777); stat_step('after chmod 7777', 'f')
step('chown 1000:1000', os.chown, 'f', 1000, 1000); stat_step('after chown (suid/sgid cleared?)', 'f')
step('chown -1:2000', os.chown, 'f', -1, 2000); stat_step('after chown gid only', 'f')
step('chmod dir 3775', os.chmod, 'd', 0o3775); stat_step('dir after chmod', 'd')
step('chown dir', os.chown, 'd', 65534, 65534); stat_step('dir after chown', 'd')
step('utime ns', os.utime, 'f', ns=(1_000_000_001, 2_000_000_002))
step('mtime ns', mtime, 'f')
step('atime ns', lambda: os.stat('f').st_atime_ns)
step('utime dir', os.utime, 'd', ns=(3, 4_000_000_004))
step('dir mtime ns', mtime, 'd')
os.symlink('f', 'l')
step('lutime symlink', os.utime, 'l', ns=(5, 6_000_000_006), follow_symlinks=False)
step('symlink mtime ns', mtime, 'l')
step('target mtime unchanged', mtime, 'f')
step('chmod missing', os.chmod, 'missing', 0o644)
step('lchown symlink', os.chown, 'l', 1000, 1000, follow_symlinks=False); stat_step('symlink owner', 'l')
before = mtime('d'); write_file('d/new', b'')
step('dir mtime changes on create', lambda: mtime('d') != before)
before = mtime('f'); fd = os.open('f', os.O_WRONLY); os.write(fd, b'x'); os.close(fd)
step('file mtime changes on write', lambda: mtime('f') != before)
` },
  // chown(2) with owner and group both -1 still changes the inode: ctime moves and, on
  // anything but a directory, setuid (and setgid per the kernel's rules) is dropped.
  { name: 'chown-minus-one', py: String.raw`
import time
def ctime_moves(fn, path):
    before = os.lstat(path).st_ctime_ns
    time.sleep(0.05)  # the kernel's clock for ctime is coarse: let it advance
    fn()
    return os.lstat(path).st_ctime_ns != before
write_file('f', b'x'); os.chmod('f', 0o6755)
step('chown -1 -1 moves ctime', ctime_moves, lambda: os.chown('f', -1, -1), 'f')
stat_step('06755 file after root chown -1 -1', 'f')
os.chmod('f', 0o6745)
step('chown -1 -1 of 06745', os.chown, 'f', -1, -1)
stat_step('06745 file after root chown -1 -1', 'f')
os.chmod('f', 0o6755)
step('fchown -1 -1', lambda: (lambda fd: (os.fchown(fd, -1, -1), os.close(fd)))(os.open('f', os.O_RDONLY)))
stat_step('06755 file after fchown -1 -1', 'f')
os.mkdir('d'); os.chmod('d', 0o7755)
step('dir chown -1 -1 moves ctime', ctime_moves, lambda: os.chown('d', -1, -1), 'd')
stat_step('07755 dir after chown -1 -1', 'd')
os.symlink('f', 'l')
step('lchown -1 -1 moves ctime', ctime_moves, lambda: os.chown('l', -1, -1, follow_symlinks=False), 'l')
os.mkfifo('p', 0o644); os.chmod('p', 0o6644)
step('fifo chown -1 -1', os.chown, 'p', -1, -1)
stat_step('fifo after chown -1 -1', 'p')
for name, mode, gid in (('u1', 0o6755, 1000), ('u2', 0o6745, 2000), ('u3', 0o6745, 2000),
                        ('u4', 0o6745, 1000)):
    write_file(name, b'u'); os.chown(name, 1000, gid); os.chmod(name, mode)
as_user(1000, 1000, '''
step('owner chown -1 -1 of 06755', os.chown, 'u1', -1, -1)
stat_step('06755 after owner chown -1 -1', 'u1')
step('owner outside the group: chown -1 -1 of 06745', os.chown, 'u2', -1, -1)
stat_step('06745 after chown -1 -1 outside the group', 'u2')
step('owner outside the group: chown -1 1000 of 06745', os.chown, 'u3', -1, 1000)
stat_step('06745 after chgrp from outside the group', 'u3')
step('owner in the group: chown -1 1000 of 06745', os.chown, 'u4', -1, 1000)
stat_step('06745 after chgrp inside the group', 'u4')
''', 'user1000')
os.chmod('u1', 0o6745)
step('root chown 1000:1000 of 06745', os.chown, 'u1', 1000, 1000)
stat_step('06745 after root chown', 'u1')
` },
  // A change of a file's data by a caller without CAP_FSETID drops setuid, and setgid when
  // the file is group-executable or the caller is outside the file's group.
  { name: 'setid-kill', py: String.raw`
ops = ('write', 'truncate', 'otrunc', 'fallocate', 'copy')
for op in ops:
    for tag, mode, gid in (('in', 0o6745, 1000), ('out', 0o6745, 2000), ('outx', 0o6755, 2000)):
        n = op + '-' + tag
        write_file(n, b'data'); os.chown(n, 1000, gid); os.chmod(n, mode)
write_file('src', b'source bytes'); os.chmod('src', 0o644)
write_file('rootw', b'r'); os.chown('rootw', 1000, 2000); os.chmod('rootw', 0o6745)
as_user(1000, 1000, '''
def write(n):
    fd = os.open(n, os.O_WRONLY); os.write(fd, b'x'); os.close(fd)
def otrunc(n): os.close(os.open(n, os.O_WRONLY | os.O_TRUNC))
def falloc(n):
    fd = os.open(n, os.O_WRONLY); os.posix_fallocate(fd, 0, 8192); os.close(fd)
def copy(n):
    fi = os.open('src', os.O_RDONLY); fo = os.open(n, os.O_WRONLY)
    os.copy_file_range(fi, fo, 5, 0, 0); os.close(fi); os.close(fo)
fns = {'write': write, 'truncate': lambda n: os.truncate(n, 2), 'otrunc': otrunc,
       'fallocate': falloc, 'copy': copy}
for op, fn in fns.items():
    for tag in ('in', 'out', 'outx'):
        step(op + ' ' + tag, fn, op + '-' + tag)
        stat_step(op + ' ' + tag + ' after', op + '-' + tag)
''', 'owner')
fd = os.open('rootw', os.O_WRONLY); os.write(fd, b'x'); os.close(fd)
stat_step('root write keeps setuid and setgid', 'rootw')
` },
  // New nodes in a setgid directory of a group the caller is not in: setgid is dropped from a
  // group-executable file only (mode_strip_sgid), directories inherit it.
  { name: 'setgid-create', py: String.raw`
os.mkdir('sg'); os.chown('sg', 0, 2000); os.chmod('sg', 0o2777)
os.mkdir('plain'); os.chmod('plain', 0o777)
as_user(1000, 1000, '''
os.umask(0)
for d in ('sg', 'plain'):
    for m in (0o2644, 0o2754, 0o6755, 0o4644):
        f = '%s/f%o' % (d, m)
        step('create ' + f, lambda: os.close(os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, m)))
        stat_step(f, f)
        step('mkfifo ' + f + 'p', os.mkfifo, f + 'p', m)
        stat_step(f + 'p', f + 'p')
        step('mkdir ' + f + 'd', os.mkdir, f + 'd', m)
        stat_step(f + 'd', f + 'd')
''', 'user1000')
` },
  { name: 'xattrs', py: String.raw`
write_file('f', b'data'); os.mkdir('d')
step('set user.a', os.setxattr, 'f', 'user.a', b'1')
step('get user.a', os.getxattr, 'f', 'user.a')
step('XATTR_CREATE on existing', os.setxattr, 'f', 'user.a', b'2', os.XATTR_CREATE)
step('XATTR_REPLACE on missing', os.setxattr, 'f', 'user.b', b'2', os.XATTR_REPLACE)
step('XATTR_REPLACE on existing', os.setxattr, 'f', 'user.a', b'3', os.XATTR_REPLACE)
step('binary value', os.setxattr, 'f', 'user.bin', bytes(range(256)))
step('get binary', os.getxattr, 'f', 'user.bin')
step('empty value', os.setxattr, 'f', 'user.empty', b'')
step('get empty', os.getxattr, 'f', 'user.empty')
step('3000-byte value', os.setxattr, 'f', 'user.mid', b'm' * 3000)
step('get 3000-byte', os.getxattr, 'f', 'user.mid')
step('64 KiB value', os.setxattr, 'f', 'user.big', b'v' * 65536)
step('get 64 KiB', os.getxattr, 'f', 'user.big')
step('too big value', os.setxattr, 'f', 'user.huge', b'v' * 65537)
step('list', lambda: sorted(os.listxattr('f')))
step('remove', os.removexattr, 'f', 'user.a')
step('remove missing', os.removexattr, 'f', 'user.a')
step('get missing', os.getxattr, 'f', 'user.a')
step('dir xattr', os.setxattr, 'd', 'user.dir', b'x')
step('dir list', lambda: sorted(os.listxattr('d')))
os.symlink('f', 'l')
step('user xattr on symlink', os.setxattr, 'l', 'user.x', b'1', follow_symlinks=False)
step('unknown namespace', os.setxattr, 'f', 'bogus.x', b'1')
step('trusted xattr (root)', os.setxattr, 'f', 'trusted.other', b'1')
step('get trusted', os.getxattr, 'f', 'trusted.other')
step('security xattr', os.setxattr, 'f', 'security.test', b'1')
step('list after', lambda: sorted(os.listxattr('f')))
step('name too long', os.setxattr, 'f', 'user.' + 'n' * 251, b'1')
` },
  { name: 'fallocate', py: String.raw`
fd = os.open('f', os.O_RDWR | os.O_CREAT, 0o644)
step('posix_fallocate 0..64K', os.posix_fallocate, fd, 0, 65536)
step('size', lambda: os.fstat(fd).st_size)
step('allocated', lambda: os.fstat(fd).st_blocks * 512 >= 65536)
step('KEEP_SIZE past EOF', fallocate, fd, 1, 65536, 65536)
step('size after KEEP_SIZE', lambda: os.fstat(fd).st_size)
os.pwrite(fd, b'x' * 65536, 0)
step('PUNCH_HOLE|KEEP_SIZE 4K..12K', fallocate, fd, 3, 4096, 8192)
step('read punched', lambda: os.pread(fd, 65536, 0).count(b'\0'))
step('size after punch', lambda: os.fstat(fd).st_size)
step('ZERO_RANGE 16K..20K', fallocate, fd, 16, 16384, 4096)
step('read zeroed', lambda: os.pread(fd, 65536, 0).count(b'\0'))
step('PUNCH_HOLE without KEEP_SIZE', fallocate, fd, 2, 0, 4096)
step('COLLAPSE_RANGE 4K', fallocate, fd, 8, 0, 4096)
step('size after collapse', lambda: os.fstat(fd).st_size)
step('INSERT_RANGE 4K', fallocate, fd, 32, 0, 4096)
step('size after insert', lambda: os.fstat(fd).st_size)
step('content hash', os.pread, fd, 1 << 20, 0)
os.close(fd)
` },
  { name: 'sparse-seek', py: String.raw`
fd = os.open('f', os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b'a' * 4096, 0)
os.pwrite(fd, b'b' * 4096, 1 << 20)
step('size', lambda: os.fstat(fd).st_size)
step('sparse (blocks < size)', lambda: os.fstat(fd).st_blocks * 512 < (1 << 20))
step('SEEK_DATA from 0', os.lseek, fd, 0, os.SEEK_DATA)
step('SEEK_HOLE from 0', os.lseek, fd, 0, os.SEEK_HOLE)
step('SEEK_DATA from 8K', os.lseek, fd, 8192, os.SEEK_DATA)
step('SEEK_HOLE from 1M', os.lseek, fd, 1 << 20, os.SEEK_HOLE)
step('SEEK_DATA past EOF', os.lseek, fd, 3 << 20, os.SEEK_DATA)
step('SEEK_END', os.lseek, fd, 0, os.SEEK_END)
step('read hole', os.pread, fd, 16, 8192)
os.close(fd)
` },
  { name: 'beyond-4GiB', py: String.raw`
fd = os.open('big', os.O_RDWR | os.O_CREAT, 0o644)
step('pwrite at 5 GiB', os.pwrite, fd, b'tail', 5 << 30)
step('size', lambda: os.fstat(fd).st_size)
step('pread at 5 GiB', os.pread, fd, 8, 5 << 30)
step('pread at 4 GiB (hole)', os.pread, fd, 4, 4 << 30)
step('truncate to 4 GiB + 1', os.ftruncate, fd, (4 << 30) + 1)
step('size after', lambda: os.fstat(fd).st_size)
step('truncate down to 8 KiB', os.ftruncate, fd, 8192)
step('content after', os.pread, fd, 16384, 0)
os.close(fd)
` },
  { name: 'o-direct', py: String.raw`
fd = step('open O_DIRECT', os.open, 'f', os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
if fd is not None:
    buf = mmap.mmap(-1, 8192)
    buf.write(b'd' * 8192)
    step('aligned write 8K', os.pwrite, fd, buf, 0)
    step('aligned write at 8K', os.pwrite, fd, buf, 8192)
    rb = mmap.mmap(-1, 4096)
    step('aligned read', os.preadv, fd, [rb], 4096)
    step('unaligned write', os.pwrite, fd, b'x' * 10, 3)
    os.close(fd)
    step('content (buffered read)', read_all, 'f')
` },
  { name: 'odd-names', py: String.raw`
names = [b'with space', b'new\nline', b'\xff\xfe bytes', b'tab\there', b'-dash', b'x' * 255, b'\xe2\x98\x83 snowman', b'a\\\\b', b'quote"s']
for n in names:
    step('create ' + repr(n)[:40], write_file, n, n)
step('name of 256 bytes', write_file, b'y' * 256, b'')
step('listing', lambda: sorted(os.listdir(b'.')))
for n in names:
    step('read ' + repr(n)[:40], read_all, n)
step('rename odd', os.rename, b'\xff\xfe bytes', b'\xff renamed')
step('mkdir odd', os.mkdir, b'dir \xff\n')
step('symlink odd target', os.symlink, b'\xff\n target', b'link \xff')
step('readlink odd', os.readlink, b'link \xff')
` },
  { name: 'deep-paths', py: String.raw`
comp = 'c' * 250
top = os.getcwd()
depth = 0
total = 0
while total < 4600:
    r = step('mkdir level', os.mkdir, comp)
    if r is None and OUT[-1][1] != 'ok': break
    os.chdir(comp); depth += 1; total += len(comp) + 1
    OUT.pop()
step('depth reached', lambda: depth)
step('create deep file', write_file, 'leaf', b'deep')
step('read deep file', read_all, 'leaf')
step('rename deep file', os.rename, 'leaf', 'leaf2')
stat_step('stat deep file', 'leaf2')
step('getcwd works', lambda: len(os.getcwd()) > 4096)
os.chdir(top)
rel = '/'.join([comp] * depth) + '/leaf2'
step('open by path longer than PATH_MAX', os.open, rel, os.O_RDONLY)
half = '/'.join([comp] * (depth // 2))
os.chdir(half)
rest = '/'.join([comp] * (depth - depth // 2)) + '/leaf2'
step('read by relative path from half way', read_all, rest)
os.chdir(top)
step('rename top of deep tree', os.rename, comp, 'renamed')
step('deep file still reachable', lambda: (os.chdir('renamed/' + '/'.join([comp] * (depth // 2))), read_all('/'.join([comp] * (depth - 1 - depth // 2)) + '/leaf2'))[1])
os.chdir(top)
import shutil
step('remove the deep tree (fd-relative)', shutil.rmtree, 'renamed')
step('listing after', os.listdir, '.')
` },
  { name: 'permissions-as-nobody', py: String.raw`
os.mkdir('priv', 0o700); write_file('priv/secret', b's', 0o644)
os.mkdir('sticky'); os.chmod('sticky', 0o1777)
os.mkdir('sgid'); os.chown('sgid', 0, 1234); os.chmod('sgid', 0o2777)
write_file('rootfile', b'r', 0o644)
write_file('suid', b'x', 0o644); os.chmod('suid', 0o6777)
os.mkdir('open'); os.chmod('open', 0o777)
as_user(65534, 65534, '''
step('list 0700 dir of root', os.listdir, 'priv')
step('open file in 0700 dir', os.open, 'priv/secret', os.O_RDONLY)
step('write root 0644 file', os.open, 'rootfile', os.O_WRONLY)
step('chmod root file', os.chmod, 'rootfile', 0o777)
step('chown root file', os.chown, 'rootfile', 65534, 65534)
step('utime root file to now', os.utime, 'rootfile')
step('create in sticky dir', write_file, 'sticky/mine', b'm', 0o666)
stat_step('new file owner = caller, umask applied', 'sticky/mine')
step('create in sgid dir', write_file, 'sgid/f', b'', 0o666)
stat_step('file in sgid dir inherits group', 'sgid/f')
step('mkdir in sgid dir', os.mkdir, 'sgid/sub')
stat_step('subdir inherits group and setgid', 'sgid/sub')
step('create in root 0755 dir', write_file, 'nope', b'')
fd = os.open('suid', os.O_WRONLY)
step('write to 06777 file as non-owner', os.write, fd, b'y')
os.close(fd)
step('mkdir in 0777 dir', os.mkdir, 'open/nobodys')
step('chmod own file 04755', os.chmod, 'sticky/mine', 0o4755)
stat_step('own file after chmod', 'sticky/mine')
step('setxattr user.* on own file', os.setxattr, 'sticky/mine', 'user.x', b'1')
step('setxattr user.* on root file', os.setxattr, 'rootfile', 'user.x', b'1')
step('setxattr trusted.* as non-root', os.setxattr, 'sticky/mine', 'trusted.x', b'1')
''', 'nobody')
stat_step('06777 file after non-owner write (suid/sgid cleared)', 'suid')
as_user(1000, 1000, '''
step('unlink another user file in sticky dir', os.unlink, 'sticky/mine')
step('rename another user file in sticky dir', os.rename, 'sticky/mine', 'sticky/taken')
step('create own file in sticky dir', write_file, 'sticky/u1000', b'', 0o600)
step('read nobody file 0755', read_all, 'sticky/mine')
''', 'user1000')
as_user(65534, 65534, '''
step('read 0600 file of another user', os.open, 'sticky/u1000', os.O_RDONLY)
step('unlink own file in sticky dir', os.unlink, 'sticky/mine')
''', 'nobody again')
step('root reads 0600 file of user', read_all, 'sticky/u1000')
` },
  { name: 'mmap-shared', py: String.raw`
write_file('f', b'\0' * 8192)
fd = os.open('f', os.O_RDWR)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[100:105] = b'hello'
m[5000:5003] = b'abc'
step('msync', m.flush)
step('read back via read()', lambda: os.pread(fd, 8, 100))
m[200:203] = b'xyz'
m.close()
os.close(fd)
step('read after munmap+close', lambda: read_all('f')[198:205])
step('whole content', read_all, 'f')
fd = os.open('f', os.O_RDWR)
os.pwrite(fd, b'W', 0)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ)
step('write() visible through existing mmap', lambda: m[0:1])
m.close(); os.close(fd)
` },
  { name: 'copy-file-range', py: String.raw`
write_file('src', bytes(range(256)) * 64)
fdi = os.open('src', os.O_RDONLY); fdo = os.open('dst', os.O_WRONLY | os.O_CREAT, 0o644)
step('copy_file_range', os.copy_file_range, fdi, fdo, 10000, 100, 50)
os.close(fdi); os.close(fdo)
step('dst content', read_all, 'dst')
stat_step('dst stat', 'dst')
` },
  { name: 'o-tmpfile', py: String.raw`
fd = step('open O_TMPFILE', os.open, '.', os.O_TMPFILE | os.O_RDWR, 0o640)
if fd is not None:
    step('write to the unnamed file', os.pwrite, fd, b'made in the dark', 0)
    step('fstat nlink', lambda: os.fstat(fd).st_nlink)
    step('linkat it into the tree', c_call, libc.linkat, -100, b'/proc/self/fd/%d' % fd, -100, b'named', 0x400)
    step('write after naming', os.pwrite, fd, b'!', 16)
    os.close(fd)
    step('content by name', read_all, 'named')
    stat_step('stat by name', 'named')
fd = step('O_TMPFILE|O_EXCL then linkat refused', os.open, '.', os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
if fd is not None:
    step('linkat of an O_EXCL tmpfile', c_call, libc.linkat, -100, b'/proc/self/fd/%d' % fd, -100, b'never', 0x400)
    os.close(fd)
` },
  { name: 'utimensat-special', py: String.raw`
write_file('f', b'x')
os.utime('f', ns=(1_000_000_000, 2_000_000_000))
class TS(ctypes.Structure): _fields_ = [('sec', ctypes.c_long), ('nsec', ctypes.c_long)]
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
def utimensat(path, a, m):
    times = (TS * 2)(TS(*a), TS(*m))
    c_call(libc.utimensat, -100, os.fsencode(path), times, 0)
step('atime only (mtime UTIME_OMIT)', utimensat, 'f', (5, 0), (0, UTIME_OMIT))
step('mtime kept', mtime, 'f')
step('atime set', lambda: os.stat('f').st_atime_ns)
step('mtime UTIME_NOW', utimensat, 'f', (0, UTIME_OMIT), (0, UTIME_NOW))
step('mtime moved to now', lambda: mtime('f') > 2_000_000_000)
step('both omitted', utimensat, 'f', (0, UTIME_OMIT), (0, UTIME_OMIT))
step('negative time', os.utime, 'f', ns=(-1_000_000_000, -2_500_000_000))
step('negative mtime read back', mtime, 'f')
step('far future', os.utime, 'f', ns=(1, 4_102_444_800_123_456_789))
step('far future read back', mtime, 'f')
os.symlink('f', 'l')
step('fchmodat AT_SYMLINK_NOFOLLOW on a symlink', c_call, libc.fchmodat, -100, b'l', 0o600, 0x100)
` },
  { name: 'readdir-and-dirs', py: String.raw`
for i in range(200): write_file('f%03d' % i, b'')
os.makedirs('a/b/c')
step('listing count', lambda: len(os.listdir('.')))
step('listing', lambda: sorted(os.listdir('.'))[:5] + sorted(os.listdir('.'))[-3:])
stat_step('nested dir', 'a/b/c')
stat_step('parent nlink', 'a')
step('mkdir existing', os.mkdir, 'a')
step('mkdir with mode 1750', os.mkdir, 'm', 0o1750); stat_step('mode kept', 'm')
step('mkdir missing parent', os.mkdir, 'x/y')
step('rmdir then listing', lambda: (os.rmdir('a/b/c'), sorted(os.listdir('a/b')))[1])
` },
  { name: 'node-fs', node: (dir: string): Step[] => {
    const steps: Step[] = [];
    const file = join(dir, 'f');
    writeFileSync(file, 'abc');
    const fd = openSync(file, 'a');
    writeSync(fd, 'de');
    writeSync(fd, 'f', 0);  // position ignored with O_APPEND on Linux
    closeSync(fd);
    steps.push(['append flag', readFileSync(file, 'utf8')]);
    const odd = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xff, 0x0a, 0x20, 0x80])]);
    steps.push(['write Buffer path with 0xff', errnoOf(() => writeFileSync(odd, 'odd'))]);
    steps.push(['read it', errnoOf(() => readFileSync(odd, 'utf8'))]);
    steps.push(['readdir buffers', readdirSync(dir, { encoding: 'buffer' }).map((b) => b.toString('hex')).sort()]);
    steps.push(['openSync wx on existing', errnoOf(() => openSync(file, 'wx'))]);
    const st = statSync(file, { bigint: true });
    steps.push(['stat', { size: Number(st.size), mode: Number(st.mode).toString(8), nlink: Number(st.nlink) }]);
    return steps;
  } },
];
