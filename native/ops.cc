// FUSE low-level ops of the capture layer: one op_<name> per operation. Each mutation is
// applied to the backing directory, read back with fstat, journaled, and only then replied.
//
// Lock order (never the reverse, never skip back):
//   1. OpsContext::namespace_lock (std::shared_mutex)
//        exclusive: ops that change names (create, mknod, mkdir, symlink, link, unlink,
//                   rmdir, rename) and open(O_CREAT) through create;
//        shared:    data/attr mutations (write, setattr, open(O_TRUNC), setxattr,
//                   removexattr, fallocate, copy_file_range) and ops that learn names
//                   (lookup, readdirplus), so a name learned or used is the backing's.
//   2. Inode::lock (std::mutex) of the one inode a data/attr mutation changes.
//   3. InodeTable's mutex (leaf; taken inside inode_table.cc only).
// Journal calls (enqueue) are made under 1 and 2 so that seq order is the order in which
// mutations took effect (invariant 1); wait_written() and sync_to() run after the locks are
// dropped so that concurrent writers share one group write (invariant 2 still holds: the
// reply is sent only after wait_written()).
#include "ops.h"

// GCC 12 at -O3 reports a false array-bounds/stringop-overflow in std::vector::insert when
// PayloadWriter::append follows PayloadWriter's clear() (GCC bug 107852 family). The appends
// are bounds-correct; silence exactly these two for this file.
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "assert.h"
#include "record_codec.h"

namespace understudy {
namespace {

// The backing is changed only through this mount, so the kernel may cache for long.
constexpr double CACHE_TIMEOUT_S = 86400.0;
constexpr char HIDDEN_XATTR_PREFIX[] = "trusted.understudy.";
constexpr size_t XATTR_LIST_BYTES_MAX = 65536;  // the kernel's XATTR_LIST_MAX

// Reused per FUSE worker thread: no heap allocation per op once warm.
thread_local std::vector<uint8_t> tl_payload;
thread_local std::string tl_path;
thread_local std::string tl_path2;
thread_local std::vector<char> tl_buf;

OpsContext& ctx(fuse_req_t req) { return *static_cast<OpsContext*>(fuse_req_userdata(req)); }

Inode& inode_of(fuse_req_t req, fuse_ino_t ino) { return ctx(req).table->get(ino); }

void count(fuse_req_t req, Op op) {
  ctx(req).counters.ops[static_cast<size_t>(op)].fetch_add(1, std::memory_order_relaxed);
}

/** "/proc/self/fd/N" on the stack: reopening an O_PATH fd or reaching its xattrs. */
struct ProcPath {
  char text[40];
  explicit ProcPath(int fd) { std::snprintf(text, sizeof text, "/proc/self/fd/%d", fd); }
  const char* c_str() const { return text; }
};

int64_t ns_of(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int stat_fd(int fd, struct stat* st) {
  return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

bool is_hidden_xattr(const char* name) {
  return std::strncmp(name, HIDDEN_XATTR_PREFIX, sizeof HIDDEN_XATTR_PREFIX - 1) == 0;
}

// Flags for a backing fd. O_DIRECT is dropped: libfuse's buffers are not aligned for it and
// the kernel already bypasses its own page cache for O_DIRECT opens of the mount. With the
// writeback cache the kernel reads to fill pages and places appends itself (as passthrough_hp).
int backing_open_flags(const OpsContext& c, int flags) {
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_DIRECT);
  if (c.writeback_cache) {
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
    flags &= ~O_APPEND;
  }
  return flags | O_CLOEXEC;
}

enum class Target { JOURNAL, SKIP, FAIL };

// Whether the object at vault path `path` is mirrored (the vault's include/exclude globs);
// a mutation of one that is not is applied to the backing but not journaled, and counted.
bool mirrored(OpsContext& c, std::string_view path, bool is_dir) {
  if (c.filter == nullptr || c.filter->mirrored(path, is_dir)) return true;
  c.counters.unmirrored.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// Decides whether a mutation of `inode` (with `st` read after it) is journaled, and puts its
// path in `out`. Files without links left are not journaled (docs/journal-format.md), nor
// paths outside the vault's globs.
Target path_for(OpsContext& c, Inode& inode, const struct stat& st, std::string& out) {
  if (st.st_nlink == 0) return Target::SKIP;
  switch (c.table->path_of(inode, out)) {
    case PathStatus::OK:
      return mirrored(c, out, S_ISDIR(st.st_mode)) ? Target::JOURNAL : Target::SKIP;
    case PathStatus::TOO_LONG:
      c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
      return Target::FAIL;
    case PathStatus::UNNAMED:
      break;
  }
  c.counters.unnamed_mutations.fetch_add(1, std::memory_order_relaxed);
  if (!inode.unnamed_logged.exchange(true)) {
    std::fprintf(stderr,
                 "understudy: inode %llu changed but has no known name (a hard link made "
                 "outside the mount); not journaled, run a sync\n",
                 static_cast<unsigned long long>(st.st_ino));
  }
  return Target::SKIP;
}

// A failed op changes nothing: a record whose path would pass PATH_BYTES_MAX (the journal
// format's limit) cannot be written, so such an op is refused before it touches the backing.
// Unnamed inodes pass: they are not journaled (counted after applying, as before).
int refuse_long(OpsContext& c, PathStatus status) {
  if (status != PathStatus::TOO_LONG) return 0;
  c.counters.path_too_long.fetch_add(1, std::memory_order_relaxed);
  return ENAMETOOLONG;
}

// The path of an existing inode that a data/attr mutation would journal. Caller holds the
// namespace lock, so the path checked is the one the record will carry.
int check_inode_path(OpsContext& c, Inode& inode) {
  return refuse_long(c, c.table->path_of(inode, tl_path));
}

// The path of entry `name` of `dir` (a new name, or one to remove or move).
int check_entry_path(OpsContext& c, Inode& dir, const char* name) {
  return refuse_long(c, c.table->path_in(dir, name, tl_path));
}

// O_DIRECT alignment of the backing file: statx STATX_DIOALIGN (glibc 2.36's struct statx
// keeps stx_dio_offset_align in its padding, at byte 0x9c), else 512.
uint32_t dio_offset_align(int fd) {
  constexpr unsigned STATX_DIOALIGN_ = 0x2000;
  constexpr size_t DIO_OFFSET_ALIGN_AT = 0x9c;
  static_assert(sizeof(struct statx) == 0x100, "struct statx layout");
  struct statx stx;
  std::memset(&stx, 0, sizeof stx);
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN_, &stx) != 0 ||
      (stx.stx_mask & STATX_DIOALIGN_) == 0) {
    return 512;
  }
  uint32_t align;
  std::memcpy(&align, reinterpret_cast<const char*>(&stx) + DIO_OFFSET_ALIGN_AT, 4);
  return align != 0 ? align : 512;
}

// The kernel passes any offset and size of an O_DIRECT handle of a FUSE file through, and
// the backing fd is not O_DIRECT (ops.cc, backing_open_flags): refuse what the backing file
// system would (EINVAL), so the mount behaves like it. Page-cache writebacks are exempt.
int check_direct(Inode& inode, const fuse_file_info* fi, off_t offset, size_t size) {
  if ((fi->flags & O_DIRECT) == 0 || fi->writepage) return 0;
  uint32_t align = inode.dio_align.load(std::memory_order_relaxed);
  if (align == 0) {
    align = dio_offset_align(inode.fd);
    inode.dio_align.store(align, std::memory_order_relaxed);
  }
  const bool aligned = static_cast<uint64_t>(offset) % align == 0 && size % align == 0;
  return aligned ? 0 : EINVAL;
}

struct Journaled;
bool want_record(OpsContext& c, Inode& inode, const struct stat& st, Journaled* j);

// The journal failed for good (its disk is full, or failing: journal_writer.h). From then
// on the mount keeps serving the application from the backing, without records: a change
// that was applied is replied as it went on the backing (an application told EIO for a
// change that happened would be worse than a replica that misses it), counted in
// `unjournaled`, and the daemon marks every target needs-resync (docs/native-mount.md,
// "When the journal fails").
void note_journal_failure(OpsContext& c) {
  if (c.journal->stats().error != 0 && !c.journal_down.exchange(true)) {
    std::fprintf(stderr, "understudy: the journal failed: changes are applied to the backing "
                         "but no longer journaled; every target needs a resync\n");
  }
}

// fsync (or an O_DSYNC write) whose journal could not be made durable: the data is durable on
// the backing. Async: that is all an fsync promises, so it succeeds once the journal is down.
// Sync mode promises the targets have it too, which they cannot now: EIO, unless the vault
// degrades to async on a timeout.
int journal_down_fsync(OpsContext& c) {
  if (!c.journal_down.load(std::memory_order_relaxed)) return EIO;
  const SyncPolicy policy = c.sync.policy();
  if (policy.sync && !policy.degrade) return EIO;
  return 0;
}

// Appends the record in tl_payload. Returns its seq, or 0 with the failure counted.
uint64_t enqueue(OpsContext& c, RecordKind kind) {
  int err = 0;
  const uint64_t seq = c.journal->enqueue(kind, tl_payload.data(), tl_payload.size(), &err);
  if (seq == 0) {
    c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
    note_journal_failure(c);
    return 0;
  }
  uint64_t cur = c.last_enqueued.load(std::memory_order_relaxed);
  while (seq > cur && !c.last_enqueued.compare_exchange_weak(cur, seq)) {
  }
  return seq;
}

/**
 * The outcome of the journal part of a mutation, settled after the locks are dropped.
 * Invariant 2: a mutation is replied to only once its records are written; one that was
 * applied but could not be journaled replies EIO and is counted, never hidden.
 */
struct Journaled {
  uint64_t seq = 0;     // newest record of the mutation; 0 if none
  bool failed = false;  // applied but not journaled

  void add(uint64_t s) {
    if (s == 0) failed = true;
    else seq = s;
  }
  int settle(OpsContext& c) const {
    if (failed) return unjournaled(c);
    if (seq == 0) return 0;
    if (c.journal->wait_written(seq) != 0) {
      c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
      note_journal_failure(c);
      return unjournaled(c);
    }
    return 0;
  }
  // Applied, not journaled: EIO while the journal works (an op-level failure), the op's own
  // outcome once the journal is down (every target gets a resync then).
  static int unjournaled(OpsContext& c) {
    if (!c.journal_down.load(std::memory_order_relaxed)) return EIO;
    c.counters.unjournaled.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
};

// True when a record for `inode` should be written; its path is then in tl_path.
bool want_record(OpsContext& c, Inode& inode, const struct stat& st, Journaled* j) {
  const Target target = path_for(c, inode, st, tl_path);
  if (target == Target::FAIL) j->failed = true;
  return target == Target::JOURNAL;
}

void touch(Inode& inode, uint64_t seq) {
  // Only ever raised: the seq of the newest record that touched the inode (for fsync).
  uint64_t cur = inode.last_seq.load(std::memory_order_relaxed);
  while (seq > cur && !inode.last_seq.compare_exchange_weak(cur, seq)) {
  }
}

// A name outside the globs changed in directory `dir`: the replica gets no record for the
// name, but the directory's times changed on the backing, so they are journaled (invariant
// 4: a mirrored directory's mtime converges). Rare path: a local string is fine here.
void journal_dir_times(OpsContext& c, Inode& dir, const struct stat& dir_st, Journaled* j) {
  if (j->failed) return;
  std::string path;
  if (c.table->path_of(dir, path) != PathStatus::OK) return;
  if (c.filter != nullptr && !c.filter->mirrored(path, true)) return;
  PayloadWriter w(tl_payload);
  w.u64(dir_st.st_ino);
  w.i64(ns_of(dir_st.st_atim));
  w.i64(ns_of(dir_st.st_mtim));
  w.bytes(path);
  const uint64_t seq = enqueue(c, RecordKind::UTIMENS);
  j->add(seq);
  touch(dir, seq);
}

// Runs `open` (returns an fd, or -1 with errno). On EMFILE the inode table grew past its fd
// budget faster than the evictor drains it: one spare fd of the reserve is given back and
// the open tried again, until the reserve is empty (docs/native-mount.md, "The fd budget").
template <typename Open>
int open_fd(OpsContext& c, Open&& open) {
  for (;;) {
    const int fd = open();
    if (fd >= 0 || errno != EMFILE) return fd;
    c.table->ask_eviction();
    if (!c.fd_reserve.release_one()) {
      errno = EMFILE;
      return -1;
    }
    c.counters.fd_reserve_used.fetch_add(1, std::memory_order_relaxed);
  }
}

void fill_entry(OpsContext& c, Inode& inode, const struct stat& st, fuse_entry_param* e) {
  std::memset(e, 0, sizeof *e);
  e->ino = c.table->ino_of(inode);
  e->attr = st;
  e->attr_timeout = CACHE_TIMEOUT_S;
  e->entry_timeout = CACHE_TIMEOUT_S;
}

// Looks `name` up in `parent` and takes a lookup reference. Caller holds namespace_lock.
int lookup_locked(OpsContext& c, Inode& parent, const char* name, fuse_entry_param* e) {
  const int fd = open_fd(c, [&] { return openat(parent.fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC); });
  if (fd < 0) return errno;
  struct stat st;
  if (const int err = stat_fd(fd, &st); err != 0) {
    close(fd);
    return err;
  }
  Inode& inode = c.table->acquire(fd, st, &parent, name, c.last_enqueued.load());
  fill_entry(c, inode, st, e);
  return 0;
}

// ---- lookups and attributes -------------------------------------------------------------

void op_init(void* userdata, struct fuse_conn_info* conn) {
  auto& c = *static_cast<OpsContext*>(userdata);
  // 1 MiB requests (libfuse 3.14 sizes its buffer for 256 pages and sets max_pages from it).
  conn->max_write = 1u << 20;
  // Reads are replied by splicing from the backing fd; writes come in memory because their
  // bytes are copied into the journal anyway (so no write_buf and no SPLICE_READ).
  conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  conn->want |= conn->capable & FUSE_CAP_CACHE_SYMLINKS;
  // The server runs as root, so its writes never clear setuid/setgid: let the kernel do it.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  // No lock ops: the kernel keeps POSIX and flock locks locally (one mount per backing).
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  if (c.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    c.writeback_cache = false;
  }
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  count(req, Op::LOOKUP);
  OpsContext& c = ctx(req);
  Inode& dir = c.table->get(parent);
  fuse_entry_param e;
  int err;
  {
    std::shared_lock names(c.namespace_lock);  // the name we learn is the backing's
    err = lookup_locked(c, dir, name, &e);
  }
  if (err == ENOENT) {
    // Negative entries may be cached too: a name appears only through this mount.
    std::memset(&e, 0, sizeof e);
    e.entry_timeout = CACHE_TIMEOUT_S;
    fuse_reply_entry(req, &e);
    return;
  }
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_entry(req, &e);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  count(req, Op::FORGET);
  ctx(req).table->forget(inode_of(req, ino), nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t n, struct fuse_forget_data* forgets) {
  count(req, Op::FORGET);
  OpsContext& c = ctx(req);
  for (size_t i = 0; i < n; i++) c.table->forget(c.table->get(forgets[i].ino), forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  count(req, Op::GETATTR);
  struct stat st;
  const int fd = fi != nullptr ? static_cast<int>(fi->fh) : inode_of(req, ino).fd;
  const int err = fi != nullptr ? (fstat(fd, &st) == 0 ? 0 : errno) : stat_fd(fd, &st);
  if (err != 0) return (void)fuse_reply_err(req, err);
  fuse_reply_attr(req, &st, CACHE_TIMEOUT_S);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  count(req, Op::READLINK);
  char target[PATH_MAX + 1];
  const ssize_t n = readlinkat(inode_of(req, ino).fd, "", target, PATH_MAX);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  target[n] = '\0';
  fuse_reply_readlink(req, target);
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  count(req, Op::STATFS);
  struct statvfs sv;
  if (fstatvfs(inode_of(req, ino).fd, &sv) != 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_statfs(req, &sv);
}


// ---- setattr: one record per attribute, in the order size, mode, owner, times -----------

int fd_or_proc(fuse_file_info* fi) { return fi != nullptr ? static_cast<int>(fi->fh) : -1; }

bool caller_in_group(fuse_req_t req, gid_t gid) {
  const fuse_ctx* who = fuse_req_ctx(req);
  if (who->gid == gid) return true;
  gid_t groups[64];
  const int n = fuse_req_getgroups(req, 64, groups);
  for (int i = 0; i < n && i < 64; i++) {
    if (groups[i] == gid) return true;
  }
  return false;
}

// The kernel's setattr_should_drop_sgid() for a caller without CAP_FSETID: setgid goes with
// setuid when the file is group-executable, or when the caller is outside the file's group
// (a setgid file that is not group-executable). The group is only looked up when it matters.
bool kills_sgid(fuse_req_t req, const struct stat& st) {
  if ((st.st_mode & S_ISGID) == 0) return false;
  return (st.st_mode & S_IXGRP) != 0 || !caller_in_group(req, st.st_gid);
}

// With FUSE_HANDLE_KILLPRIV_V2 the server clears setuid and setgid (kills_sgid) when the
// kernel flags a change by a caller without CAP_FSETID, since our own writes, made as root,
// keep them. `st` is refreshed; a CHMOD record says what changed.
int kill_suidgid(fuse_req_t req, OpsContext& c, Inode& inode, struct stat* st, Journaled* j) {
  if (!t_request_kills_suidgid || !c.killpriv_v2.load(std::memory_order_relaxed)) return 0;
  if (!S_ISREG(st->st_mode) || (st->st_mode & (S_ISUID | S_ISGID)) == 0) return 0;
  const mode_t kill = S_ISUID | (kills_sgid(req, *st) ? S_ISGID : 0);
  if ((st->st_mode & kill) == 0) return 0;
  if (chmod(ProcPath(inode.fd).c_str(), st->st_mode & 07777 & ~kill) != 0) return errno;
  if (const int err = stat_fd(inode.fd, st); err != 0) return err;
  if (!want_record(c, inode, *st, j)) return 0;
  PayloadWriter w(tl_payload);
  w.u64(st->st_ino);
  w.u32(st->st_mode & 07777);
  w.bytes(tl_path);
  const uint64_t seq = enqueue(c, RecordKind::CHMOD);
  j->add(seq);
  touch(inode, seq);
  return 0;
}

void journal_truncate(OpsContext& c, Inode& inode, const struct stat& st, Journaled* j) {
  if (!want_record(c, inode, st, j)) return;
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  w.u64(static_cast<uint64_t>(st.st_size));
  w.i64(ns_of(st.st_mtim));
  w.bytes(tl_path);
  const uint64_t seq = enqueue(c, RecordKind::TRUNCATE);
  j->add(seq);
  touch(inode, seq);
}

int set_size(fuse_req_t req, OpsContext& c, Inode& inode, off_t size, fuse_file_info* fi,
             Journaled* j) {
  const int fd = fd_or_proc(fi);
  const int rc = fd >= 0 ? ftruncate(fd, size) : truncate(ProcPath(inode.fd).c_str(), size);
  if (rc != 0) return errno;
  struct stat st;
  if (const int err = stat_fd(inode.fd, &st); err != 0) return err;
  if (const int err = kill_suidgid(req, c, inode, &st, j); err != 0) return err;
  journal_truncate(c, inode, st, j);
  return 0;
}

int set_mode(OpsContext& c, Inode& inode, mode_t mode, fuse_file_info* fi, Journaled* j) {
  const int fd = fd_or_proc(fi);
  const int rc = fd >= 0 ? fchmod(fd, mode) : chmod(ProcPath(inode.fd).c_str(), mode);
  if (rc != 0) return errno;
  struct stat st;
  if (const int err = stat_fd(inode.fd, &st); err != 0) return err;
  if (!want_record(c, inode, st, j)) return 0;
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  w.u32(st.st_mode & 07777);
  w.bytes(tl_path);
  const uint64_t seq = enqueue(c, RecordKind::CHMOD);
  j->add(seq);
  touch(inode, seq);
  return 0;
}

// chown(2) on the backing, `st` read before and refreshed after. The backing's chown, made
// as root, moves ctime and drops setuid, and setgid of a group-executable file, from
// anything but a directory, as the caller's chown would. A caller without CAP_FSETID outside
// the file's group also loses the setgid of a file that is not group-executable
// (kills_sgid), which root keeps: dropped here. `*chowned` says whether the chown itself
// was applied (then it is journaled even if what follows fails).
int chown_backing(fuse_req_t req, Inode& inode, uid_t uid, gid_t gid, struct stat* st,
                  bool* chowned) {
  const bool drop_sgid =
      !S_ISDIR(st->st_mode) && fuse_req_ctx(req)->uid != 0 && kills_sgid(req, *st);
  *chowned = false;
  if (fchownat(inode.fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  if (const int err = stat_fd(inode.fd, st); err != 0) return err;
  *chowned = true;
  if (!drop_sgid || (st->st_mode & S_ISGID) == 0) return 0;
  if (chmod(ProcPath(inode.fd).c_str(), st->st_mode & 07777 & ~S_ISGID) != 0) return errno;
  st->st_mode &= ~S_ISGID;
  return 0;
}

int set_owner(fuse_req_t req, OpsContext& c, Inode& inode, uid_t uid, gid_t gid, Journaled* j) {
  struct stat st;
  if (const int err = stat_fd(inode.fd, &st); err != 0) return err;
  bool chowned;
  const int err = chown_backing(req, inode, uid, gid, &st, &chowned);
  if (!chowned || !want_record(c, inode, st, j)) return err;
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  w.u32(st.st_uid);
  w.u32(st.st_gid);
  w.u32(st.st_mode & 07777);  // a chown may have cleared setuid/setgid
  w.bytes(tl_path);
  const uint64_t seq = enqueue(c, RecordKind::CHOWN);
  j->add(seq);
  touch(inode, seq);
  return err;
}

// A setattr with nothing to set: the kernel calls it for chown(2) with owner and group -1,
// and (with FUSE_HANDLE_KILLPRIV_V2) when a write, fallocate or copy_file_range by a caller
// without CAP_FSETID must drop setuid/setgid first. Both are the backing's chown(-1, -1):
// ctime moves and the bits go as they would; only a changed mode is journaled (CHMOD).
int touch_owner(fuse_req_t req, OpsContext& c, Inode& inode, Journaled* j) {
  struct stat st;
  if (const int err = stat_fd(inode.fd, &st); err != 0) return err;
  const mode_t mode_before = st.st_mode;
  bool chowned;
  const int err = chown_backing(req, inode, static_cast<uid_t>(-1), static_cast<gid_t>(-1), &st,
                                &chowned);
  if (!chowned || st.st_mode == mode_before || !want_record(c, inode, st, j)) return err;
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  w.u32(st.st_mode & 07777);
  w.bytes(tl_path);
  const uint64_t seq = enqueue(c, RecordKind::CHMOD);
  j->add(seq);
  touch(inode, seq);
  return err;
}

int set_times(OpsContext& c, Inode& inode, const struct timespec ts[2], fuse_file_info* fi,
              Journaled* j) {
  const int fd = fd_or_proc(fi);
  int rc = fd >= 0 ? futimens(fd, ts) : utimensat(inode.fd, "", ts, AT_EMPTY_PATH);
  if (rc != 0 && fd < 0 && errno == EINVAL && inode.type != S_IFLNK) {
    rc = utimensat(AT_FDCWD, ProcPath(inode.fd).c_str(), ts, 0);  // older kernels
  }
  if (rc != 0) return errno;
  struct stat st;
  if (const int err = stat_fd(inode.fd, &st); err != 0) return err;
  if (!want_record(c, inode, st, j)) return 0;
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  w.i64(ns_of(st.st_atim));
  w.i64(ns_of(st.st_mtim));
  w.bytes(tl_path);
  const uint64_t seq = enqueue(c, RecordKind::UTIMENS);
  j->add(seq);
  touch(inode, seq);
  return 0;
}

int apply_setattr(fuse_req_t req, OpsContext& c, Inode& inode, const struct stat* attr,
                  int to_set, fuse_file_info* fi, Journaled* j) {
  constexpr int TIMES = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                        FUSE_SET_ATTR_MTIME_NOW;
  constexpr int OWNER = FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID;
  if ((to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE | OWNER | TIMES)) == 0) {
    return touch_owner(req, c, inode, j);
  }
  int err = 0;
  if (to_set & FUSE_SET_ATTR_SIZE) err = set_size(req, c, inode, attr->st_size, fi, j);
  if (err == 0 && (to_set & FUSE_SET_ATTR_MODE)) err = set_mode(c, inode, attr->st_mode, fi, j);
  if (err == 0 && (to_set & OWNER)) {
    const uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
    const gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
    err = set_owner(req, c, inode, uid, gid, j);
  }
  if (err == 0 && (to_set & TIMES)) {
    struct timespec ts[2];
    ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME) ts[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME) ts[1] = attr->st_mtim;
    err = set_times(c, inode, ts, fi, j);
  }
  return err;
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                struct fuse_file_info* fi) {
  count(req, Op::SETATTR);
  OpsContext& c = ctx(req);
  Inode& inode = c.table->get(ino);
  Journaled j;
  struct stat st;
  int err;
  {
    std::shared_lock names(c.namespace_lock);  // the records' paths hold until enqueued
    std::lock_guard<std::mutex> guard(inode.lock);
    err = check_inode_path(c, inode);
    if (err == 0) err = apply_setattr(req, c, inode, attr, to_set, fi, &j);
    if (err == 0) err = stat_fd(inode.fd, &st);
  }
  // Invariant 2: even a partly failed setattr replies only after what it applied is written.
  const int jerr = j.settle(c);
  if (err == 0) err = jerr;
  if (err != 0) return (void)fuse_reply_err(req, err);
  fuse_reply_attr(req, &st, CACHE_TIMEOUT_S);
}

// ---- new names: create, mknod, mkdir, symlink (namespace lock exclusive) -----------------

// The node was made by root: give it the owner and mode the kernel would have given the
// caller (group of a setgid parent, setgid inherited by directories, setgid dropped from a
// group-executable non-directory for a caller outside the group: mode_strip_sgid()) and undo
// the daemon's own umask (the kernel applied the caller's).
int adopt_new_node(fuse_req_t req, const struct stat& parent_st, int fd, mode_t mode,
                   struct stat* st) {
  const fuse_ctx* who = fuse_req_ctx(req);
  const bool setgid_parent = (parent_st.st_mode & S_ISGID) != 0;
  const uid_t uid = who->uid;
  const gid_t gid = setgid_parent ? parent_st.st_gid : who->gid;
  if (const int err = stat_fd(fd, st); err != 0) return err;
  const bool chowned = st->st_uid != uid || st->st_gid != gid;
  if (chowned && fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    return errno;
  }
  if (S_ISLNK(st->st_mode)) return chowned ? stat_fd(fd, st) : 0;
  mode_t want = mode & 07777;
  if (S_ISDIR(st->st_mode) && setgid_parent) want |= S_ISGID;
  // Only with group-exec: a setgid file that is not group-executable keeps the bit for any
  // caller (kernels since 6.0 strip the other case before the request; older ones did not).
  constexpr mode_t SGID_EXEC = S_ISGID | S_IXGRP;
  if (!S_ISDIR(st->st_mode) && (want & SGID_EXEC) == SGID_EXEC && who->uid != 0 &&
      !caller_in_group(req, gid)) {
    want &= ~S_ISGID;
  }
  // A chown clears setuid/setgid, so the mode is set after it.
  if (chowned || (st->st_mode & 07777) != want) {
    if (chmod(ProcPath(fd).c_str(), want) != 0) return errno;
    return stat_fd(fd, st);
  }
  return 0;
}

// After a node named `name` appeared in `dir`: fix its owner, enter it in the table (one
// lookup for the reply) and journal it. `kind` is CREATE, MKDIR or SYMLINK.
int finish_new_node(fuse_req_t req, OpsContext& c, Inode& dir, const char* name, mode_t mode,
                    const char* link, fuse_entry_param* e, Journaled* j) {
  const int fd = open_fd(c, [&] { return openat(dir.fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC); });
  struct stat st, parent_st;
  int err = fd < 0 ? errno : stat_fd(dir.fd, &parent_st);
  if (err == 0) err = adopt_new_node(req, parent_st, fd, mode, &st);
  if (err != 0) {
    // Undo, so that the backing never holds a node the journal does not know of.
    unlinkat(dir.fd, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
    if (fd >= 0) close(fd);
    return err;
  }
  Inode& inode = c.table->acquire(fd, st, &dir, name, c.last_enqueued.load());
  fill_entry(c, inode, st, e);
  if (!want_record(c, inode, st, j)) {
    journal_dir_times(c, dir, parent_st, j);
    return 0;
  }
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  RecordKind kind = RecordKind::CREATE;
  if (link != nullptr) {
    kind = RecordKind::SYMLINK;
  } else {
    kind = S_ISDIR(st.st_mode) ? RecordKind::MKDIR : RecordKind::CREATE;
    w.u32(st.st_mode);
  }
  w.u32(st.st_uid);
  w.u32(st.st_gid);
  if (kind == RecordKind::CREATE) w.u64(st.st_rdev);
  w.i64(ns_of(st.st_mtim));
  w.i64(ns_of(parent_st.st_mtim));
  w.bytes(tl_path);
  if (link != nullptr) w.bytes(link, std::strlen(link));
  const uint64_t seq = enqueue(c, kind);
  j->add(seq);
  touch(inode, seq);
  touch(dir, seq);
  return 0;
}

// Replies to a name op that produced an entry; drops the entry's lookup if the reply is an
// error (the kernel will never forget an entry it did not receive).
void reply_new_entry(fuse_req_t req, OpsContext& c, int err, const Journaled& j,
                     fuse_entry_param* e) {
  if (err == 0) err = j.settle(c);
  else if (const int jerr = j.settle(c); jerr != 0) err = jerr;
  if (err != 0) {
    if (e->ino != 0) c.table->forget(c.table->get(e->ino), 1);
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_entry(req, e);
}

void make_node(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev,
               const char* link) {
  OpsContext& c = ctx(req);
  Inode& dir = c.table->get(parent);
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  Journaled j;
  int err;
  {
    std::unique_lock names(c.namespace_lock);
    int rc = 0;
    if ((err = check_entry_path(c, dir, name)) != 0) rc = -1;
    else if (link != nullptr) rc = symlinkat(link, dir.fd, name);
    else if (S_ISDIR(mode)) rc = mkdirat(dir.fd, name, mode & 07777);
    else rc = mknodat(dir.fd, name, mode, rdev);
    if (err == 0) err = rc == 0 ? finish_new_node(req, c, dir, name, mode, link, &e, &j) : errno;
  }
  reply_new_entry(req, c, err, j, &e);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  count(req, Op::MKNOD);
  make_node(req, parent, name, mode, rdev, nullptr);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  count(req, Op::MKDIR);
  make_node(req, parent, name, S_IFDIR | (mode & 07777), 0, nullptr);
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  count(req, Op::SYMLINK);
  make_node(req, parent, name, S_IFLNK | 0777, 0, link);
}

void set_open_flags(fuse_file_info* fi) {
  fi->keep_cache = 1;  // the backing changes only through this mount
  fi->noflush = 1;     // flush has nothing to do: writes are already on the backing
}

// create() found the name taken (no O_EXCL): a plain open, journaling O_TRUNC.
int open_existing(OpsContext& c, Inode& dir, const char* name, fuse_file_info* fi,
                  fuse_entry_param* e, Journaled* j) {
  const int fd = open_fd(c, [&] {
    return openat(dir.fd, name, backing_open_flags(c, fi->flags) | O_NOFOLLOW);
  });
  if (fd < 0) return errno;
  if (const int err = lookup_locked(c, dir, name, e); err != 0) {
    close(fd);
    return err;
  }
  if (fi->flags & O_TRUNC) journal_truncate(c, c.table->get(e->ino), e->attr, j);
  fi->fh = static_cast<uint64_t>(fd);
  return 0;
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               struct fuse_file_info* fi) {
  count(req, Op::CREATE);
  OpsContext& c = ctx(req);
  Inode& dir = c.table->get(parent);
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  Journaled j;
  int err = 0;
  {
    std::unique_lock names(c.namespace_lock);
    const int flags = backing_open_flags(c, fi->flags) | O_CREAT | O_EXCL | O_NOFOLLOW;
    // Too long a path: only opening an existing file without O_TRUNC writes no record.
    const int long_err = check_entry_path(c, dir, name);
    const bool plain_open = !(fi->flags & (O_EXCL | O_TRUNC)) &&
                            faccessat(dir.fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    const int fd = long_err != 0 && !plain_open
                       ? -1
                       : open_fd(c, [&] { return openat(dir.fd, name, flags, mode & 07777); });
    if (long_err != 0 && !plain_open) {
      err = long_err;
    } else if (fd >= 0) {
      fi->fh = static_cast<uint64_t>(fd);
      err = finish_new_node(req, c, dir, name, S_IFREG | mode, nullptr, &e, &j);
      if (err != 0) close(fd);
    } else if (errno == EEXIST && !(fi->flags & O_EXCL)) {
      err = open_existing(c, dir, name, fi, &e, &j);
    } else {
      err = errno;
    }
  }
  if (err == 0) err = j.settle(c);
  if (err != 0) {
    if (e.ino != 0) {
      c.table->forget(c.table->get(e.ino), 1);
      close(static_cast<int>(fi->fh));
    }
    return (void)fuse_reply_err(req, err);
  }
  set_open_flags(fi);
  fuse_reply_create(req, &e, fi);
}

// ---- objects entering or leaving the vault's globs (rename, link) --------------------------
// A rename or link across the globs' boundary is journaled as the whole object appearing at
// its mirrored name, or as its removal from the replica (docs/native-mount.md, "Include and
// exclude"). Callers hold the namespace lock exclusive, so the state read here from the
// backing is the state the records describe: no other mutation falls between (invariant 1).

// Whether `path` is mirrored, without counting (walks look at objects, not mutations).
bool in_globs(const OpsContext& c, std::string_view path, bool is_dir) {
  return c.filter == nullptr || c.filter->mirrored(path, is_dir);
}

// Applied but not journaled: the op replies EIO, counted (never hidden).
void walk_failed(OpsContext& c, Journaled* j) {
  if (!j->failed) c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
  j->failed = true;
}

// Appends one component; false (and `path` unchanged) when past PATH_BYTES_MAX.
bool join_path(std::string& path, std::string_view name) {
  if (path.size() + 1 + name.size() > PATH_BYTES_MAX) return false;
  if (!path.empty()) path.push_back('/');
  path.append(name);
  return true;
}

// Calls visit(dir_fd, name, st) for every entry of the directory open as O_PATH `fd`.
template <typename Visit>
int for_each_entry(int fd, Visit visit) {
  const int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno;
  DIR* dp = fdopendir(dfd);
  if (dp == nullptr) {
    const int err = errno;
    close(dfd);
    return err;
  }
  for (struct dirent* ent = readdir(dp); ent != nullptr; ent = readdir(dp)) {
    const char* n = ent->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    struct stat st;
    if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) == 0) visit(dfd, n, st);
  }
  closedir(dp);
  return 0;
}

// SETXATTR for every xattr of the object but our own (trusted.understudy.*).
void journal_all_xattrs(OpsContext& c, int fd, const struct stat& st, std::string_view path,
                        Journaled* j) {
  const ProcPath proc(fd);
  std::vector<char> names(XATTR_LIST_BYTES_MAX);
  const ssize_t n = listxattr(proc.c_str(), names.data(), names.size());
  if (n < 0 && errno != ENOTSUP) return walk_failed(c, j);
  std::vector<char> value(65536);  // XATTR_SIZE_MAX
  for (ssize_t at = 0; at < n && !j->failed;) {
    const char* name = names.data() + at;
    at += static_cast<ssize_t>(strnlen(name, static_cast<size_t>(n - at))) + 1;
    if (is_hidden_xattr(name)) continue;
    const ssize_t size = getxattr(proc.c_str(), name, value.data(), value.size());
    if (size < 0) return walk_failed(c, j);
    PayloadWriter w(tl_payload);
    w.u64(st.st_ino);
    w.u32(0);
    w.bytes(path);
    w.bytes(name, std::strlen(name));
    w.bytes(value.data(), static_cast<size_t>(size));
    j->add(enqueue(c, RecordKind::SETXATTR));
  }
}

void journal_times_of(OpsContext& c, const struct stat& st, std::string_view path,
                      Journaled* j) {
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  w.i64(ns_of(st.st_atim));
  w.i64(ns_of(st.st_mtim));
  w.bytes(path);
  j->add(enqueue(c, RecordKind::UTIMENS));
}

// WRITE records of a regular file's data, read from the backing at most 1 MiB at a time;
// holes are skipped and a TRUNCATE gives the size when the file ends in one.
void journal_content(OpsContext& c, int fd, const struct stat& st, std::string_view path,
                     Journaled* j) {
  const int rfd = open(ProcPath(fd).c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return walk_failed(c, j);
  if (tl_buf.size() < WRITE_DATA_BYTES_MAX) tl_buf.resize(WRITE_DATA_BYTES_MAX);
  off_t at = 0, end = 0;
  while (at < st.st_size && !j->failed) {
    off_t data = lseek(rfd, at, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) data = at;                // no SEEK_DATA here: read everything
    off_t hole = lseek(rfd, data, SEEK_HOLE);
    if (hole < 0 || hole > st.st_size) hole = st.st_size;
    for (at = data; at < hole && !j->failed;) {
      const size_t want = std::min(static_cast<size_t>(hole - at), WRITE_DATA_BYTES_MAX);
      const ssize_t n = pread(rfd, tl_buf.data(), want, at);
      if (n <= 0) {
        walk_failed(c, j);
        break;
      }
      PayloadWriter w(tl_payload);
      w.u64(st.st_ino);
      w.u64(static_cast<uint64_t>(at));
      w.i64(ns_of(st.st_mtim));
      w.bytes(path);
      w.raw(tl_buf.data(), static_cast<size_t>(n));
      j->add(enqueue(c, RecordKind::WRITE));
      at += n;
      end = at;
    }
  }
  close(rfd);
  if (end >= st.st_size || j->failed) return;
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  w.u64(static_cast<uint64_t>(st.st_size));
  w.i64(ns_of(st.st_mtim));
  w.bytes(path);
  j->add(enqueue(c, RecordKind::TRUNCATE));
}

// The record that makes the object exist at `path`: CREATE, MKDIR or SYMLINK.
void journal_node(OpsContext& c, int fd, const struct stat& st, std::string_view path,
                  int64_t parent_mtime_ns, Journaled* j) {
  char target[PATH_MAX];
  ssize_t target_bytes = 0;
  if (S_ISLNK(st.st_mode) && (target_bytes = readlinkat(fd, "", target, sizeof target)) < 0) {
    return walk_failed(c, j);
  }
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  RecordKind kind = RecordKind::SYMLINK;
  if (!S_ISLNK(st.st_mode)) {
    kind = S_ISDIR(st.st_mode) ? RecordKind::MKDIR : RecordKind::CREATE;
    w.u32(st.st_mode);
  }
  w.u32(st.st_uid);
  w.u32(st.st_gid);
  if (kind == RecordKind::CREATE) w.u64(st.st_rdev);
  w.i64(ns_of(st.st_mtim));
  w.i64(parent_mtime_ns);
  w.bytes(path);
  if (kind == RecordKind::SYMLINK) w.bytes(target, static_cast<size_t>(target_bytes));
  j->add(enqueue(c, kind));
}

// Journals the object at entry `name` of `dir_fd` whole at vault path `path`: it entered the
// mirrored set. A directory brings everything mirrored beneath it, top-down, then its times.
// `parent_mtime_ns` is the mtime of the directory holding it.
void journal_whole(OpsContext& c, int dir_fd, const char* name, std::string& path,
                   int64_t parent_mtime_ns, Journaled* j) {
  const int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || stat_fd(fd, &st) != 0) {
    if (fd >= 0) close(fd);
    return walk_failed(c, j);
  }
  journal_node(c, fd, st, path, parent_mtime_ns, j);
  if (S_ISDIR(st.st_mode)) journal_all_xattrs(c, fd, st, path, j);
  if (S_ISREG(st.st_mode)) journal_content(c, fd, st, path, j);
  if (S_ISDIR(st.st_mode)) {
    const int err = for_each_entry(fd, [&](int dfd, const char* child, const struct stat& cst) {
      const size_t keep = path.size();
      if (j->failed) return;
      if (!join_path(path, child)) return walk_failed(c, j);
      if (in_globs(c, path, S_ISDIR(cst.st_mode))) {
        journal_whole(c, dfd, child, path, ns_of(st.st_mtim), j);
      }
      path.resize(keep);
    });
    if (err != 0) walk_failed(c, j);
  }
  if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) journal_all_xattrs(c, fd, st, path, j);
  if (!S_ISLNK(st.st_mode)) journal_times_of(c, st, path, j);
  close(fd);
}

// Journals the removal from the replica of the object now at entry `name` of `dir_fd`
// (stat `st`), which the replica holds at `replica_path` because it was mirrored at
// `old_path` (two distinct strings: both grow during the walk). A directory first loses,
// bottom-up, what was mirrored beneath it.
void journal_removal(OpsContext& c, int dir_fd, const char* name, const struct stat& st,
                     std::string& old_path, std::string& replica_path, int64_t parent_mtime_ns,
                     Journaled* j) {
  if (S_ISDIR(st.st_mode)) {
    const int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    const int err = fd < 0 ? errno : for_each_entry(fd, [&](int dfd, const char* child,
                                                             const struct stat& cst) {
      const size_t keep_old = old_path.size(), keep_replica = replica_path.size();
      if (j->failed) return;
      if (!join_path(old_path, child)) return walk_failed(c, j);
      if (!join_path(replica_path, child)) {
        old_path.resize(keep_old);
        return walk_failed(c, j);
      }
      if (in_globs(c, old_path, S_ISDIR(cst.st_mode))) {
        journal_removal(c, dfd, child, cst, old_path, replica_path, ns_of(st.st_mtim), j);
      }
      old_path.resize(keep_old);
      replica_path.resize(keep_replica);
    });
    if (fd >= 0) close(fd);
    if (err != 0) return walk_failed(c, j);
  }
  if (j->failed) return;
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  w.i64(parent_mtime_ns);
  w.bytes(replica_path);
  j->add(enqueue(c, S_ISDIR(st.st_mode) ? RecordKind::RMDIR : RecordKind::UNLINK));
}

// After the RENAME of a directory mirrored at both names (now entry `name` of `dir_fd`):
// what beneath it is mirrored at one name only enters (whole) or leaves (removed).
void journal_moved_subtree(OpsContext& c, int dir_fd, const char* name, std::string& old_path,
                           std::string& new_path, Journaled* j) {
  const int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || stat_fd(fd, &st) != 0) {
    if (fd >= 0) close(fd);
    return walk_failed(c, j);
  }
  const int err = for_each_entry(fd, [&](int dfd, const char* child, const struct stat& cst) {
    const size_t keep_old = old_path.size(), keep_new = new_path.size();
    if (j->failed) return;
    if (!join_path(old_path, child) || !join_path(new_path, child)) {
      old_path.resize(keep_old);
      return walk_failed(c, j);
    }
    const bool is_dir = S_ISDIR(cst.st_mode);
    const bool before = in_globs(c, old_path, is_dir), after = in_globs(c, new_path, is_dir);
    if (before && after && is_dir) {
      journal_moved_subtree(c, dfd, child, old_path, new_path, j);
    } else if (after && !before) {
      c.counters.entered.fetch_add(1, std::memory_order_relaxed);
      journal_whole(c, dfd, child, new_path, ns_of(st.st_mtim), j);
    } else if (before && !after) {
      c.counters.left.fetch_add(1, std::memory_order_relaxed);
      journal_removal(c, dfd, child, cst, old_path, new_path, ns_of(st.st_mtim), j);
    }
    old_path.resize(keep_old);
    new_path.resize(keep_new);
  });
  close(fd);
  if (err != 0) walk_failed(c, j);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  count(req, Op::LINK);
  OpsContext& c = ctx(req);
  Inode& inode = c.table->get(ino);
  Inode& dir = c.table->get(newparent);
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  Journaled j;
  int err = 0;
  {
    std::unique_lock names(c.namespace_lock);
    const PathStatus old_path = c.table->path_of(inode, tl_path2);
    struct stat st, parent_st;
    err = refuse_long(c, old_path);
    if (err == 0) err = check_entry_path(c, dir, newname);
    if (err == 0 && linkat(inode.fd, "", dir.fd, newname, AT_EMPTY_PATH) != 0) err = errno;
    if (err == 0) err = stat_fd(inode.fd, &st);
    if (err == 0) err = stat_fd(dir.fd, &parent_st);
    if (err == 0) {
      c.table->ref(inode, dir, newname);
      fill_entry(c, inode, st, &e);
      // The new name's path is built from the (named) directory; the old from the inode.
      const PathStatus new_path = c.table->path_in(dir, newname, tl_path);
      if (old_path == PathStatus::UNNAMED || new_path == PathStatus::UNNAMED) {
        c.counters.unnamed_mutations.fetch_add(1, std::memory_order_relaxed);
      } else if (old_path != PathStatus::OK || new_path != PathStatus::OK) {
        j.failed = true;
        c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
      } else if (!mirrored(c, tl_path, false)) {
        // A new name outside the globs: only the directory's times change on the replica.
        journal_dir_times(c, dir, parent_st, &j);
      } else if (!in_globs(c, tl_path2, false)) {
        // The file enters the mirrored set under its new name: journaled whole there.
        c.counters.entered.fetch_add(1, std::memory_order_relaxed);
        std::string path = tl_path;
        journal_whole(c, dir.fd, newname, path, ns_of(parent_st.st_mtim), &j);
        touch(inode, j.seq);
        touch(dir, j.seq);
      } else {
        PayloadWriter w(tl_payload);
        w.u64(st.st_ino);
        w.i64(ns_of(parent_st.st_mtim));
        w.bytes(tl_path2);
        w.bytes(tl_path);
        const uint64_t seq = enqueue(c, RecordKind::LINK);
        j.add(seq);
        touch(inode, seq);
        touch(dir, seq);
      }
    }
  }
  reply_new_entry(req, c, err, j, &e);
}

// ---- removing and moving names (namespace lock exclusive) ----------------------------------

// Records whose path names an entry of `dir`: unnamed directories are counted, not journaled.
bool entry_path(OpsContext& c, Inode& dir, const char* name, std::string& out, Journaled* j) {
  switch (c.table->path_in(dir, name, out)) {
    case PathStatus::OK:
      return true;
    case PathStatus::TOO_LONG:
      j->failed = true;
      c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
      return false;
    case PathStatus::UNNAMED:
      break;
  }
  c.counters.unnamed_mutations.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void remove_entry(fuse_req_t req, fuse_ino_t parent, const char* name, bool is_dir) {
  OpsContext& c = ctx(req);
  Inode& dir = c.table->get(parent);
  Journaled j;
  int err = 0;
  {
    std::unique_lock names(c.namespace_lock);
    struct stat st, parent_st;
    if (fstatat(dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) err = errno;
    if (err == 0) err = check_entry_path(c, dir, name);
    if (err == 0 && unlinkat(dir.fd, name, is_dir ? AT_REMOVEDIR : 0) != 0) err = errno;
    if (err == 0) err = stat_fd(dir.fd, &parent_st);
    if (err == 0) {
      const bool named = entry_path(c, dir, name, tl_path, &j);
      const bool journal = named && mirrored(c, tl_path, S_ISDIR(st.st_mode));
      c.table->remove_name(st.st_dev, st.st_ino, dir, name);
      if (named && !journal) journal_dir_times(c, dir, parent_st, &j);
      if (journal) {
        PayloadWriter w(tl_payload);
        w.u64(st.st_ino);
        w.i64(ns_of(parent_st.st_mtim));
        w.bytes(tl_path);
        const uint64_t seq = enqueue(c, is_dir ? RecordKind::RMDIR : RecordKind::UNLINK);
        j.add(seq);
        touch(dir, seq);
      }
    }
  }
  if (err == 0) err = j.settle(c);
  fuse_reply_err(req, err);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  count(req, Op::UNLINK);
  remove_entry(req, parent, name, false);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  count(req, Op::RMDIR);
  remove_entry(req, parent, name, true);
}

struct RenameArgs {
  Inode& dir;
  const char* name;
  Inode& newdir;
  const char* newname;
  unsigned int flags;
};

// What apply_rename read from the backing: both objects (before) and both parents (after).
struct RenameState {
  struct stat old_st, new_st;
  bool replaced;
  struct stat old_parent_st, new_parent_st;
};

// The RENAME record; the paths are in tl_path (old) and tl_path2 (new).
void journal_rename(OpsContext& c, const RenameArgs& a, const RenameState& s, Journaled* j) {
  PayloadWriter w(tl_payload);
  w.u64(s.old_st.st_ino);
  w.u64(s.replaced ? s.new_st.st_ino : 0);
  w.u32(a.flags);
  w.i64(ns_of(s.old_parent_st.st_mtim));
  w.i64(ns_of(s.new_parent_st.st_mtim));
  w.bytes(tl_path);
  w.bytes(tl_path2);
  j->add(enqueue(c, RecordKind::RENAME));
}

// RENAME_EXCHANGE with one side crossing the globs' boundary: both objects leave the replica
// at their old names, then each enters at its new name if it is mirrored there.
void journal_exchange_crossing(OpsContext& c, const RenameArgs& a, const RenameState& s,
                               std::string& old_path, std::string& new_path, Journaled* j) {
  const bool a_dir = S_ISDIR(s.old_st.st_mode), b_dir = S_ISDIR(s.new_st.st_mode);
  const int64_t old_parent_ns = ns_of(s.old_parent_st.st_mtim);
  const int64_t new_parent_ns = ns_of(s.new_parent_st.st_mtim);
  if (in_globs(c, old_path, a_dir)) {  // A, now at the new name, was mirrored at the old
    c.counters.left.fetch_add(1, std::memory_order_relaxed);
    std::string replica_path = old_path;
    journal_removal(c, a.newdir.fd, a.newname, s.old_st, old_path, replica_path, old_parent_ns,
                    j);
  }
  if (in_globs(c, new_path, b_dir)) {  // B, now at the old name, was mirrored at the new
    c.counters.left.fetch_add(1, std::memory_order_relaxed);
    std::string replica_path = new_path;
    journal_removal(c, a.dir.fd, a.name, s.new_st, new_path, replica_path, new_parent_ns, j);
  }
  if (in_globs(c, new_path, a_dir)) {
    c.counters.entered.fetch_add(1, std::memory_order_relaxed);
    journal_whole(c, a.newdir.fd, a.newname, new_path, new_parent_ns, j);
  }
  if (in_globs(c, old_path, b_dir)) {
    c.counters.entered.fetch_add(1, std::memory_order_relaxed);
    journal_whole(c, a.dir.fd, a.name, old_path, old_parent_ns, j);
  }
}

// A rename under include/exclude globs: RENAME when the object is mirrored at both names
// (then what beneath a directory changes state enters or leaves), the whole object when it
// enters the mirrored set, its removal (at the old name) when it leaves, nothing otherwise.
void journal_rename_filtered(OpsContext& c, const RenameArgs& a, const RenameState& s,
                             Journaled* j) {
  std::string old_path = tl_path, new_path = tl_path2;  // the walks reuse the tl_ buffers
  const bool a_dir = S_ISDIR(s.old_st.st_mode);
  const bool before = in_globs(c, old_path, a_dir), after = in_globs(c, new_path, a_dir);
  const bool exchange = (a.flags & RENAME_EXCHANGE) != 0;
  const bool b_dir = exchange && S_ISDIR(s.new_st.st_mode);
  const bool walk = !c.filter->moves_keep_subtrees();
  if (exchange && !(before && after && in_globs(c, new_path, b_dir) &&
                    in_globs(c, old_path, b_dir))) {
    return journal_exchange_crossing(c, a, s, old_path, new_path, j);
  }
  if (before && after) {
    journal_rename(c, a, s, j);
    if (walk && a_dir) journal_moved_subtree(c, a.newdir.fd, a.newname, old_path, new_path, j);
    if (walk && b_dir) journal_moved_subtree(c, a.dir.fd, a.name, new_path, old_path, j);
  } else if (after) {
    c.counters.entered.fetch_add(1, std::memory_order_relaxed);
    journal_whole(c, a.newdir.fd, a.newname, new_path, ns_of(s.new_parent_st.st_mtim), j);
    if (&a.newdir != &a.dir) journal_dir_times(c, a.dir, s.old_parent_st, j);
  } else if (before) {
    c.counters.left.fetch_add(1, std::memory_order_relaxed);
    std::string replica_path = old_path;
    journal_removal(c, a.newdir.fd, a.newname, s.old_st, old_path, replica_path,
                    ns_of(s.old_parent_st.st_mtim), j);
    if (&a.newdir != &a.dir) journal_dir_times(c, a.newdir, s.new_parent_st, j);
  } else {
    c.counters.unmirrored.fetch_add(1, std::memory_order_relaxed);
    journal_dir_times(c, a.dir, s.old_parent_st, j);
    if (&a.newdir != &a.dir) journal_dir_times(c, a.newdir, s.new_parent_st, j);
  }
}

// Applies a rename under the exclusive namespace lock and journals it.
int apply_rename(OpsContext& c, const RenameArgs& a, Journaled* j) {
  struct stat st_old, st_new, old_parent_st, new_parent_st;
  if (fstatat(a.dir.fd, a.name, &st_old, AT_SYMLINK_NOFOLLOW) != 0) return errno;
  bool replaced = fstatat(a.newdir.fd, a.newname, &st_new, AT_SYMLINK_NOFOLLOW) == 0;
  if (!replaced && errno != ENOENT) return errno;
  if (const int err = check_entry_path(c, a.dir, a.name); err != 0) return err;
  if (const int err = check_entry_path(c, a.newdir, a.newname); err != 0) return err;
  if (renameat2(a.dir.fd, a.name, a.newdir.fd, a.newname, a.flags) != 0) return errno;
  if (replaced && st_old.st_dev == st_new.st_dev && st_old.st_ino == st_new.st_ino) {
    return 0;  // two links of one file: rename(2) does nothing
  }
  if (const int err = stat_fd(a.dir.fd, &old_parent_st); err != 0) return err;
  if (const int err = stat_fd(a.newdir.fd, &new_parent_st); err != 0) return err;
  const bool exchange = (a.flags & RENAME_EXCHANGE) != 0;
  // Paths are taken before the table moves the names.
  const bool journal = entry_path(c, a.dir, a.name, tl_path, j) &&
                       entry_path(c, a.newdir, a.newname, tl_path2, j);
  if (replaced && !exchange) {
    c.table->remove_name(st_new.st_dev, st_new.st_ino, a.newdir, a.newname);
  }
  c.table->move_name(st_old.st_dev, st_old.st_ino, a.dir, a.name, a.newdir, a.newname);
  if (exchange) {
    c.table->move_name(st_new.st_dev, st_new.st_ino, a.newdir, a.newname, a.dir, a.name);
  }
  if (!journal) return 0;
  const RenameState state{st_old, st_new, replaced, old_parent_st, new_parent_st};
  if (c.filter != nullptr) journal_rename_filtered(c, a, state, j);
  else journal_rename(c, a, state, j);
  if (j->seq != 0) {
    touch(a.dir, j->seq);
    touch(a.newdir, j->seq);
  }
  return 0;
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
  count(req, Op::RENAME);
  OpsContext& c = ctx(req);
  // RENAME_WHITEOUT is for overlayfs; the journal format knows NOREPLACE and EXCHANGE only.
  if (flags & ~static_cast<unsigned int>(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    return (void)fuse_reply_err(req, EINVAL);
  }
  Journaled j;
  int err;
  {
    std::unique_lock names(c.namespace_lock);
    err = apply_rename(c, {c.table->get(parent), name, c.table->get(newparent), newname, flags},
                       &j);
  }
  if (err == 0) err = j.settle(c);
  fuse_reply_err(req, err);
}

// ---- files ---------------------------------------------------------------------------------

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  count(req, Op::OPEN);
  OpsContext& c = ctx(req);
  Inode& inode = c.table->get(ino);
  const int flags = backing_open_flags(c, fi->flags);
  Journaled j;
  int fd;
  int err = 0;
  if (fi->flags & O_TRUNC) {
    // Truncating is a mutation: same locks as setattr(size).
    std::shared_lock names(c.namespace_lock);
    std::lock_guard<std::mutex> guard(inode.lock);
    fd = -1;
    struct stat st;
    if ((err = check_inode_path(c, inode)) != 0) {
      // refused before truncating anything
    } else if ((fd = open_fd(c, [&] { return open(ProcPath(inode.fd).c_str(), flags); })) < 0) {
      err = errno;
    } else if ((err = stat_fd(inode.fd, &st)) == 0) {
      err = kill_suidgid(req, c, inode, &st, &j);
      journal_truncate(c, inode, st, &j);
    }
  } else {
    fd = open_fd(c, [&] { return open(ProcPath(inode.fd).c_str(), flags); });
    if (fd < 0) err = errno;
  }
  const int jerr = j.settle(c);
  if (err == 0) err = jerr;
  if (err != 0) {
    if (fd >= 0) close(fd);
    return (void)fuse_reply_err(req, err);
  }
  fi->fh = static_cast<uint64_t>(fd);
  set_open_flags(fi);
  fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info* fi) {
  count(req, Op::READ);
  if (const int err = check_direct(inode_of(req, ino), fi, off, size); err != 0) {
    return (void)fuse_reply_err(req, err);
  }
  // Reply from the backing fd; libfuse splices it to /dev/fuse without a copy.
  struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  buf.buf[0].fd = static_cast<int>(fi->fh);
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

// Journals `size` bytes that landed at `offset`, split into records of at most 1 MiB.
void journal_write(OpsContext& c, Inode& inode, const struct stat& st, uint64_t offset,
                   const char* data, size_t size, Journaled* j) {
  for (size_t done = 0; done < size;) {
    const size_t n = std::min(size - done, WRITE_DATA_BYTES_MAX);
    PayloadWriter w(tl_payload);
    w.u64(st.st_ino);
    w.u64(offset + done);
    w.i64(ns_of(st.st_mtim));
    w.bytes(tl_path);
    w.raw(data + done, n);
    const uint64_t seq = enqueue(c, RecordKind::WRITE);
    j->add(seq);
    if (seq == 0) return;
    touch(inode, seq);
    done += n;
  }
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
              struct fuse_file_info* fi) {
  count(req, Op::WRITE);
  OpsContext& c = ctx(req);
  Inode& inode = c.table->get(ino);
  const int fd = static_cast<int>(fi->fh);
  if (const int err = check_direct(inode, fi, off, size); err != 0) {
    return (void)fuse_reply_err(req, err);
  }
  Journaled j;
  ssize_t written = -1;
  int err = 0;
  {
    std::shared_lock names(c.namespace_lock);  // the record's path holds until enqueued
    std::lock_guard<std::mutex> guard(inode.lock);
    struct stat st;
    if ((err = check_inode_path(c, inode)) != 0) {
      // refused before writing anything
    } else if ((written = pwrite(fd, data, size, off)) < 0) err = errno;
    else if (fstat(fd, &st) != 0) err = errno;
    else {
      const int kill_err = kill_suidgid(req, c, inode, &st, &j);
      if (written > 0 && want_record(c, inode, st, &j)) {
        // An O_APPEND fd ignores `off`: the bytes landed at the end, found under inode.lock.
        const bool append = (fi->flags & O_APPEND) && !c.writeback_cache;
        const uint64_t landed = append ? static_cast<uint64_t>(st.st_size - written)
                                       : static_cast<uint64_t>(off);
        journal_write(c, inode, st, landed, data, static_cast<size_t>(written), &j);
      }
      err = kill_err;  // the data is journaled either way; a failed kill is reported
    }
  }
  // Invariant 2: journaled before the reply; O_SYNC/O_DSYNC: durable before the reply.
  const int jerr = j.settle(c);
  if (err == 0) err = jerr;
  if (err == 0 && j.seq != 0 && (fi->flags & O_DSYNC)) {
    if (c.journal->sync_to(j.seq) != 0) {
      c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
      note_journal_failure(c);
      err = journal_down_fsync(c);
    } else {
      err = c.sync.wait(j.seq, c.counters);  // sync mode: on the in-sync targets too
    }
  }
  if (err != 0) return (void)fuse_reply_err(req, err);
  fuse_reply_write(req, static_cast<size_t>(written));
}

void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  count(req, Op::FLUSH);
  fuse_reply_err(req, 0);  // writes are on the backing already; nothing is buffered here
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  count(req, Op::RELEASE);
  close(static_cast<int>(fi->fh));
  fuse_reply_err(req, 0);
}

// fsync: the backing file, then every record that touched the inode (invariant 2); in sync
// mode also the targets' acks of those records.
int sync_inode(OpsContext& c, Inode& inode, int fd, int datasync) {
  if ((datasync ? fdatasync(fd) : fsync(fd)) != 0) return errno;
  const uint64_t seq = inode.last_seq.load();
  if (seq == 0) return 0;
  if (c.journal->sync_to(seq) != 0) {
    c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
    note_journal_failure(c);
    return journal_down_fsync(c);
  }
  return c.sync.wait(seq, c.counters);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info* fi) {
  count(req, Op::FSYNC);
  OpsContext& c = ctx(req);
  fuse_reply_err(req, sync_inode(c, c.table->get(ino), static_cast<int>(fi->fh), datasync));
}

// ---- directories ---------------------------------------------------------------------------

struct DirHandle {
  DIR* dp = nullptr;
  off_t offset = 0;
  struct dirent* entry = nullptr;  // read but not yet replied
};

DirHandle& dir_handle(fuse_file_info* fi) { return *reinterpret_cast<DirHandle*>(fi->fh); }

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  count(req, Op::OPENDIR);
  const int fd = open_fd(ctx(req), [&] {
    return openat(inode_of(req, ino).fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  });
  if (fd < 0) return (void)fuse_reply_err(req, errno);
  DIR* dp = fdopendir(fd);
  if (dp == nullptr) {
    const int err = errno;
    close(fd);
    return (void)fuse_reply_err(req, err);
  }
  auto* d = new DirHandle();
  d->dp = dp;
  fi->fh = reinterpret_cast<uint64_t>(d);
  fi->keep_cache = 1;     // the kernel's directory cache stays valid: names change via us
  fi->cache_readdir = 1;
  fuse_reply_open(req, fi);
}

bool is_dot_or_dotdot(const char* name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

// Adds one entry to the reply buffer; returns its size, or 0 if it does not fit / failed.
size_t add_entry(fuse_req_t req, OpsContext& c, Inode& dir, const struct dirent* ent, char* p,
                 size_t rem, bool plus, int* err) {
  if (!plus) {
    struct stat st;
    std::memset(&st, 0, sizeof st);
    st.st_ino = ent->d_ino;
    st.st_mode = static_cast<mode_t>(ent->d_type) << 12;
    const size_t n = fuse_add_direntry(req, p, rem, ent->d_name, &st, ent->d_off);
    return n > rem ? 0 : n;
  }
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  if (is_dot_or_dotdot(ent->d_name)) {
    e.attr.st_ino = ent->d_ino;  // ino 0: the kernel takes no reference
    e.attr.st_mode = static_cast<mode_t>(ent->d_type) << 12;
  } else if ((*err = lookup_locked(c, dir, ent->d_name, &e)) != 0) {
    return 0;
  }
  const size_t n = fuse_add_direntry_plus(req, p, rem, ent->d_name, &e, ent->d_off);
  if (n > rem) {
    if (e.ino != 0) c.table->forget(c.table->get(e.ino), 1);  // not sent: not referenced
    return 0;
  }
  return n;
}

void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                bool plus) {
  OpsContext& c = ctx(req);
  Inode& dir = c.table->get(ino);
  DirHandle& d = dir_handle(fi);
  if (tl_buf.size() < size) tl_buf.resize(size);
  char* p = tl_buf.data();
  size_t rem = size;
  int err = 0;
  // readdirplus learns names: same rule as lookup.
  std::shared_lock names(c.namespace_lock, std::defer_lock);
  if (plus) names.lock();
  if (off != d.offset) {
    seekdir(d.dp, off);
    d.entry = nullptr;
    d.offset = off;
  }
  for (;;) {
    if (d.entry == nullptr) {
      errno = 0;
      d.entry = readdir(d.dp);
      if (d.entry == nullptr) {
        err = errno;
        break;
      }
    }
    const size_t n = add_entry(req, c, dir, d.entry, p, rem, plus, &err);
    if (n == 0 && err == ENOENT) {
      err = 0;  // removed behind our back (outside the mount): skip it
    } else if (n == 0) {
      break;
    }
    p += n;
    rem -= n;
    d.offset = d.entry->d_off;
    d.entry = nullptr;
  }
  if (plus) names.unlock();
  // An error after some entries is reported on the next call, as readdir(3) does.
  if (err != 0 && rem == size) return (void)fuse_reply_err(req, err);
  fuse_reply_buf(req, tl_buf.data(), size - rem);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                struct fuse_file_info* fi) {
  count(req, Op::READDIR);
  do_readdir(req, ino, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info* fi) {
  count(req, Op::READDIRPLUS);
  do_readdir(req, ino, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  count(req, Op::RELEASEDIR);
  DirHandle* d = &dir_handle(fi);
  closedir(d->dp);
  delete d;
  fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info* fi) {
  count(req, Op::FSYNCDIR);
  OpsContext& c = ctx(req);
  fuse_reply_err(req, sync_inode(c, c.table->get(ino), dirfd(dir_handle(fi).dp), datasync));
}

// ---- extended attributes ------------------------------------------------------------------
// Paths through /proc/self/fd: the xattr calls have no *at form taking an O_PATH fd.

void journal_xattr(OpsContext& c, Inode& inode, RecordKind kind, const char* name,
                   const char* value, size_t size, int flags, Journaled* j) {
  struct stat st;
  if (stat_fd(inode.fd, &st) != 0 || !want_record(c, inode, st, j)) return;
  PayloadWriter w(tl_payload);
  w.u64(st.st_ino);
  if (kind == RecordKind::SETXATTR) w.u32(static_cast<uint32_t>(flags) & 3u);
  w.bytes(tl_path);
  w.bytes(name, std::strlen(name));
  if (kind == RecordKind::SETXATTR) w.bytes(value, size);
  const uint64_t seq = enqueue(c, kind);
  j->add(seq);
  touch(inode, seq);
}

void change_xattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                  size_t size, int flags, bool remove) {
  OpsContext& c = ctx(req);
  // The project's own bookkeeping is invisible and untouchable through the mount.
  if (is_hidden_xattr(name)) return (void)fuse_reply_err(req, EPERM);
  Inode& inode = c.table->get(ino);
  Journaled j;
  int err = 0;
  {
    std::shared_lock names(c.namespace_lock);
    std::lock_guard<std::mutex> guard(inode.lock);
    const ProcPath path(inode.fd);
    if ((err = check_inode_path(c, inode)) != 0) {
      // refused before changing anything
    } else if ((remove ? removexattr(path.c_str(), name)
                       : setxattr(path.c_str(), name, value, size, flags)) != 0) err = errno;
    else journal_xattr(c, inode, remove ? RecordKind::REMOVEXATTR : RecordKind::SETXATTR, name,
                       value, size, flags, &j);
  }
  if (err == 0) err = j.settle(c);
  fuse_reply_err(req, err);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                 size_t size, int flags) {
  count(req, Op::SETXATTR);
  change_xattr(req, ino, name, value, size, flags, false);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  count(req, Op::REMOVEXATTR);
  change_xattr(req, ino, name, nullptr, 0, 0, true);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  count(req, Op::GETXATTR);
  if (is_hidden_xattr(name)) return (void)fuse_reply_err(req, ENODATA);
  const ProcPath path(inode_of(req, ino).fd);
  if (size == 0) {
    const ssize_t n = getxattr(path.c_str(), name, nullptr, 0);
    if (n < 0) return (void)fuse_reply_err(req, errno);
    return (void)fuse_reply_xattr(req, static_cast<size_t>(n));
  }
  if (tl_buf.size() < size) tl_buf.resize(size);
  const ssize_t n = getxattr(path.c_str(), name, tl_buf.data(), size);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_buf(req, tl_buf.data(), static_cast<size_t>(n));
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  count(req, Op::LISTXATTR);
  if (tl_buf.size() < XATTR_LIST_BYTES_MAX) tl_buf.resize(XATTR_LIST_BYTES_MAX);
  const ssize_t n = listxattr(ProcPath(inode_of(req, ino).fd).c_str(), tl_buf.data(),
                              XATTR_LIST_BYTES_MAX);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  // Drop hidden names in place, so the size reported is the size of what is listed.
  size_t kept = 0;
  for (size_t at = 0; at < static_cast<size_t>(n);) {
    const char* name = tl_buf.data() + at;
    const size_t len = strnlen(name, static_cast<size_t>(n) - at) + 1;
    if (!is_hidden_xattr(name)) {
      std::memmove(tl_buf.data() + kept, name, len);
      kept += len;
    }
    at += len;
  }
  if (size == 0) return (void)fuse_reply_xattr(req, kept);
  if (kept > size) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, tl_buf.data(), kept);
}

// ---- ranges -------------------------------------------------------------------------------

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                  struct fuse_file_info* fi) {
  count(req, Op::FALLOCATE);
  OpsContext& c = ctx(req);
  Inode& inode = c.table->get(ino);
  const int fd = static_cast<int>(fi->fh);
  Journaled j;
  int err = 0;
  {
    std::shared_lock names(c.namespace_lock);
    std::lock_guard<std::mutex> guard(inode.lock);
    struct stat st;
    if ((err = check_inode_path(c, inode)) != 0) {
      // refused before allocating anything
    } else if (fallocate(fd, mode, offset, length) != 0) err = errno;
    else if (fstat(fd, &st) != 0) err = errno;
    else if (want_record(c, inode, st, &j)) {
      PayloadWriter w(tl_payload);
      w.u64(st.st_ino);
      w.u32(static_cast<uint32_t>(mode));
      w.u64(static_cast<uint64_t>(offset));
      w.u64(static_cast<uint64_t>(length));
      w.u64(static_cast<uint64_t>(st.st_size));
      w.i64(ns_of(st.st_mtim));
      w.bytes(tl_path);
      const uint64_t seq = enqueue(c, RecordKind::FALLOCATE);
      j.add(seq);
      touch(inode, seq);
    }
  }
  if (err == 0) err = j.settle(c);
  fuse_reply_err(req, err);
}

// The copied bytes are read back from the destination under its lock and journaled as
// WRITE records (docs/journal-format.md): the journal carries data by value.
int journal_copied(OpsContext& c, Inode& out, const struct stat& st, uint64_t offset,
                   size_t size, Journaled* j) {
  if (!want_record(c, out, st, j)) return 0;
  const int rfd = open(ProcPath(out.fd).c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return errno;
  if (tl_buf.size() < WRITE_DATA_BYTES_MAX) tl_buf.resize(WRITE_DATA_BYTES_MAX);
  int err = 0;
  for (size_t done = 0; done < size && err == 0 && !j->failed;) {
    const size_t want = std::min(size - done, WRITE_DATA_BYTES_MAX);
    const ssize_t n = pread(rfd, tl_buf.data(), want, static_cast<off_t>(offset + done));
    if (n <= 0) {
      err = n < 0 ? errno : EIO;  // the copied range cannot be shorter than copied
      break;
    }
    journal_write(c, out, st, offset + done, tl_buf.data(), static_cast<size_t>(n), j);
    done += static_cast<size_t>(n);
  }
  close(rfd);
  if (err != 0) {
    j->failed = true;  // applied but not journaled
    c.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
  }
  return 0;
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                        struct fuse_file_info* fi_in, fuse_ino_t ino_out, off_t off_out,
                        struct fuse_file_info* fi_out, size_t len, int flags) {
  count(req, Op::COPY_FILE_RANGE);
  OpsContext& c = ctx(req);
  Inode& out = c.table->get(ino_out);
  Journaled j;
  ssize_t copied;
  int err = 0;
  {
    std::shared_lock names(c.namespace_lock);
    std::lock_guard<std::mutex> guard(out.lock);
    loff_t in_at = off_in;
    loff_t out_at = off_out;
    err = check_inode_path(c, out);
    copied = err != 0 ? 0 : copy_file_range(static_cast<int>(fi_in->fh), &in_at, static_cast<int>(fi_out->fh),
                             &out_at, len, static_cast<unsigned int>(flags));
    struct stat st;
    if (err != 0) {
      // refused before copying anything
    } else if (copied < 0) err = errno;
    else if (fstat(static_cast<int>(fi_out->fh), &st) != 0) err = errno;
    else if (copied > 0) {
      err = journal_copied(c, out, st, static_cast<uint64_t>(off_out),
                           static_cast<size_t>(copied), &j);
    }
  }
  if (err == 0) err = j.settle(c);
  if (err != 0) return (void)fuse_reply_err(req, err);
  fuse_reply_write(req, static_cast<size_t>(copied));
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info* fi) {
  count(req, Op::LSEEK);
  const off_t at = lseek(static_cast<int>(fi->fh), off, whence);
  if (at < 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_lseek(req, at);
}

}  // namespace

// ---- sync mode: the acked watermark -------------------------------------------------------

void SyncGate::set_policy(const SyncPolicy& policy) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    policy_ = policy;
    if (policy.sync) degraded_ = false;
    sync_.store(policy.sync, std::memory_order_release);
  }
  cv_.notify_all();  // a switch to async releases the waiters; a new timeout applies anew
}

SyncPolicy SyncGate::policy() {
  std::lock_guard<std::mutex> guard(mutex_);
  return policy_;
}

void SyncGate::set_acked(uint64_t seq) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    acked_ = seq;
  }
  cv_.notify_all();
}

uint64_t SyncGate::acked() {
  std::lock_guard<std::mutex> guard(mutex_);
  return acked_;
}

bool SyncGate::degraded() {
  std::lock_guard<std::mutex> guard(mutex_);
  return degraded_;
}

void SyncGate::set_degraded_listener(std::function<void()> listener) {
  on_degraded_ = std::move(listener);
}

void SyncGate::close() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    closed_ = true;
  }
  cv_.notify_all();
}

int SyncGate::wait(uint64_t seq, OpCounters& counters) {
  if (seq == 0 || !sync_.load(std::memory_order_acquire)) return 0;  // async: never waits
  std::unique_lock<std::mutex> lock(mutex_);
  if (!policy_.sync || acked_ >= seq) return 0;  // nothing unacked: no wait
  if (closed_) return EIO;
  counters.sync_waits.fetch_add(1, std::memory_order_relaxed);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(policy_.timeout_ms);
  cv_.wait_until(lock, deadline, [&] { return acked_ >= seq || closed_ || !policy_.sync; });
  if (acked_ >= seq || !policy_.sync) return 0;
  if (closed_) return EIO;  // unmounting: not confirmed by the targets
  counters.sync_timeouts.fetch_add(1, std::memory_order_relaxed);
  if (!policy_.degrade) return EIO;
  // Degrade: the mount runs as async from now on; JS hears of it and logs it.
  policy_.sync = false;
  degraded_ = true;
  sync_.store(false, std::memory_order_release);
  lock.unlock();
  cv_.notify_all();
  if (on_degraded_) on_degraded_();
  return 0;
}

namespace {

struct fuse_lowlevel_ops make_ops() {
  struct fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  ops.create = op_create;
  ops.fallocate = op_fallocate;
  ops.copy_file_range = op_copy_file_range;
  ops.lseek = op_lseek;
  return ops;
}

}  // namespace

const char* op_name(Op op) {
  static constexpr const char* NAMES[OP_COUNT] = {
      "lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink",
      "rmdir", "symlink", "rename", "link", "open", "read", "write", "flush", "release",
      "fsync", "opendir", "readdir", "releasedir", "fsyncdir", "statfs", "setxattr",
      "getxattr", "listxattr", "removexattr", "create", "fallocate", "readdirplus",
      "copy_file_range", "lseek"};
  const auto i = static_cast<size_t>(op);
  US_ASSERT(i < OP_COUNT);
  return NAMES[i];
}

FdReserve::~FdReserve() {
  for (const int fd : fds_) close(fd);
}

void FdReserve::fill(size_t count) {
  std::lock_guard<std::mutex> guard(mutex_);
  while (fds_.size() < count) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    fds_.push_back(fd);
  }
}

bool FdReserve::release_one() {
  std::lock_guard<std::mutex> guard(mutex_);
  if (fds_.empty()) return false;
  close(fds_.back());
  fds_.pop_back();
  return true;
}

size_t FdReserve::size() {
  std::lock_guard<std::mutex> guard(mutex_);
  return fds_.size();
}

const struct fuse_lowlevel_ops& capture_ops() {
  static const struct fuse_lowlevel_ops ops = make_ops();
  return ops;
}

}  // namespace understudy
