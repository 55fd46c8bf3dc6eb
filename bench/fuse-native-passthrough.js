// A plain JavaScript passthrough file system on fuse-native (libfuse2, high-level API): the
// "JavaScript on the data path" baseline column of `node bench/run.js fs`. Never imported by
// the project; run by the bench as a child process:
//   node bench/fuse-native-passthrough.js <node_modules/fuse-native> <backing> <mountpoint>
// Every call is one fs.* callback on Node's thread pool, as a typical JS server would do it.
// SIGTERM or SIGINT unmounts and exits.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [fuseNativeDir, backing, mountpoint] = process.argv.slice(2);
if (fuseNativeDir === undefined || backing === undefined || mountpoint === undefined) {
  process.stderr.write('usage: fuse-native-passthrough.js <fuse-native dir> <backing> <mnt>\n');
  process.exit(2);
}
const Fuse = createRequire(import.meta.url)(fuseNativeDir);

/** Backing path of a path inside the mount. */
const real = (path) => join(backing, path);

/** Node errors carry a negative errno, which is what fuse-native expects. */
const errno = (error) => (error && typeof error.errno === 'number' ? error.errno : Fuse.EIO);

/** Adapts a Node callback that yields no value. */
const done = (cb) => (error) => cb(error ? errno(error) : 0);

/** Adapts a Node callback that yields one value. */
const value = (cb) => (error, result) => (error ? cb(errno(error)) : cb(0, result));

const ops = {
  getattr: (path, cb) => fs.lstat(real(path), value(cb)),
  fgetattr: (path, fd, cb) => fs.fstat(fd, value(cb)),
  access: (path, mode, cb) => fs.access(real(path), mode, done(cb)),
  statfs: (path, cb) => fs.statfs(real(path), (error, s) => {
    if (error) return cb(errno(error));
    return cb(0, {
      bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail,
      files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255,
    });
  }),
  readdir: (path, cb) => fs.readdir(real(path), value(cb)),
  open: (path, flags, cb) => fs.open(real(path), flags, value(cb)),
  create: (path, mode, cb) => fs.open(real(path), 'w+', mode, value(cb)),
  read: (path, fd, buf, len, pos, cb) =>
    fs.read(fd, buf, 0, len, pos, (error, n) => cb(error ? errno(error) : n)),
  write: (path, fd, buf, len, pos, cb) =>
    fs.write(fd, buf, 0, len, pos, (error, n) => cb(error ? errno(error) : n)),
  flush: (path, fd, cb) => cb(0),
  release: (path, fd, cb) => fs.close(fd, done(cb)),
  fsync: (path, datasync, fd, cb) =>
    (datasync ? fs.fdatasync : fs.fsync)(fd, done(cb)),
  truncate: (path, size, cb) => fs.truncate(real(path), size, done(cb)),
  ftruncate: (path, fd, size, cb) => fs.ftruncate(fd, size, done(cb)),
  utimens: (path, atime, mtime, cb) => fs.lutimes(real(path), atime / 1000, mtime / 1000,
    done(cb)),
  chmod: (path, mode, cb) => fs.chmod(real(path), mode, done(cb)),
  chown: (path, uid, gid, cb) => fs.lchown(real(path), uid, gid, done(cb)),
  unlink: (path, cb) => fs.unlink(real(path), done(cb)),
  rename: (src, dest, cb) => fs.rename(real(src), real(dest), done(cb)),
  link: (src, dest, cb) => fs.link(real(src), real(dest), done(cb)),
  symlink: (src, dest, cb) => fs.symlink(src, real(dest), done(cb)),
  readlink: (path, cb) => fs.readlink(real(path), value(cb)),
  mkdir: (path, mode, cb) => fs.mkdir(real(path), { mode }, done(cb)),
  rmdir: (path, cb) => fs.rmdir(real(path), done(cb)),
};

/**
 * fuse-native passes only the options it knows; big_writes (128 KiB writes instead of 4 KiB)
 * is what any tuned libfuse2 server would ask for, so the baseline gets it too.
 */
class TunedFuse extends Fuse {
  _fuseOptions() {
    const base = super._fuseOptions();
    const extra = 'big_writes,max_write=131072,subtype=fusenative,fsname=fusenative';
    return base === '' ? `-o${extra}` : `${base},${extra}`;
  }
}

const fuse = new TunedFuse(mountpoint, ops, { allowOther: false });
fuse.mount((error) => {
  if (error) {
    process.stderr.write(`fuse-native mount of ${mountpoint} failed: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`fuse-native passthrough: ${backing} at ${mountpoint}\n`);
});

let stopping = false;
/**
 * Unmounts with umount(8) (root), asynchronously: umount stats the mount point, and that
 * getattr needs this thread free to answer it. (fuse-native's own unmount needs libfuse2's
 * fusermount, which Debian's fuse3 does not ship.) The fuse loop ends with the mount.
 */
function stop() {
  if (stopping) return;
  stopping = true;
  execFile('umount', [mountpoint], (error) => {
    if (error) process.stderr.write(`umount ${mountpoint} failed: ${error.message}\n`);
    process.exit(error ? 1 : 0);
  });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
