// The confined, idempotent batch applier (docs/applier.md).
// Confinement (invariant 5): a record's path is split into parent and last component; the
// parent is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) from the root fd,
// and the last component is only ever touched with *at() calls that do not follow it
// (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW, unlinkat, renameat2, linkat without AT_SYMLINK_FOLLOW).
// Idempotency (invariant 3): every object we create carries trusted.understudy.fid, and the
// root carries trusted.understudy.applied, the (epoch, seq) of the last record processed.
#include "applier.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string_view>

#include "record_codec.h"

// Syscalls newer than bookworm's headers; the numbers are the same on every architecture.
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif

namespace understudy {
namespace {

/** struct xattr_args of the *xattrat syscalls (Linux 6.13), version 0. */
struct XattrArgs {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};

/** Root xattr: {u64 seq, u32 epoch, u32 0, 36-byte boot id} of the last record processed. */
constexpr char APPLIED_XATTR_NAME[] = "trusted.understudy.applied";
constexpr size_t BOOT_ID_BYTES = 36;
constexpr size_t APPLIED_XATTR_BYTES = 16 + BOOT_ID_BYTES;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd_ = o.fd_;
    o.fd_ = -1;
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

const char* errno_name(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

// ---- *at xattr helpers: the xattrat syscalls, else /proc/self/fd/<dir>/<name> ----------
// The /proc fallback stays confined: <dir> was resolved beneath the root, <name> is one
// component (no '/', never ".."), and the l*xattr calls do not follow it.

std::atomic<bool> xattrat_missing{false};

std::string proc_path(int dir, const std::string& name) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "/proc/self/fd/%d/", dir);
  return std::string(buf) + name;
}

ssize_t get_xattr_at(int dir, const std::string& name, const char* key, void* buf, size_t n) {
  if (!xattrat_missing.load(std::memory_order_relaxed)) {
    XattrArgs args{reinterpret_cast<uint64_t>(buf), static_cast<uint32_t>(n), 0};
    const long rc = syscall(SYS_getxattrat, dir, name.c_str(), AT_SYMLINK_NOFOLLOW, key, &args,
                            sizeof args);
    if (rc >= 0 || errno != ENOSYS) return rc;
    xattrat_missing.store(true, std::memory_order_relaxed);
  }
  return lgetxattr(proc_path(dir, name).c_str(), key, buf, n);
}

int set_xattr_at(int dir, const std::string& name, const char* key, const void* value,
                 size_t n) {
  if (!xattrat_missing.load(std::memory_order_relaxed)) {
    XattrArgs args{reinterpret_cast<uint64_t>(value), static_cast<uint32_t>(n), 0};
    const long rc = syscall(SYS_setxattrat, dir, name.c_str(), AT_SYMLINK_NOFOLLOW, key, &args,
                            sizeof args);
    if (rc >= 0 || errno != ENOSYS) return rc < 0 ? errno : 0;
    xattrat_missing.store(true, std::memory_order_relaxed);
  }
  return lsetxattr(proc_path(dir, name).c_str(), key, value, n, 0) < 0 ? errno : 0;
}

int remove_xattr_at(int dir, const std::string& name, const char* key) {
  if (!xattrat_missing.load(std::memory_order_relaxed)) {
    const long rc = syscall(SYS_removexattrat, dir, name.c_str(), AT_SYMLINK_NOFOLLOW, key);
    if (rc >= 0 || errno != ENOSYS) return rc < 0 ? errno : 0;
    xattrat_missing.store(true, std::memory_order_relaxed);
  }
  return lremovexattr(proc_path(dir, name).c_str(), key) < 0 ? errno : 0;
}

/** chmod without following a symlink in the last component (fchmodat2, Linux 6.6). */
int chmod_at(int dir, const std::string& name, mode_t mode) {
  const long rc = syscall(SYS_fchmodat2, dir, name.c_str(), mode, AT_SYMLINK_NOFOLLOW);
  if (rc == 0) return 0;
  if (errno != ENOSYS) return errno;
  // Older kernels: callers checked that the object is not a symlink, and we are the only
  // writer of the replica, so following it cannot happen.
  return fchmodat(dir, name.c_str(), mode, 0) < 0 ? errno : 0;
}

/** ns since the epoch to a timespec, flooring so that tv_nsec is never negative. */
timespec ns_to_timespec(int64_t ns) {
  int64_t sec = ns / 1000000000;
  int64_t nsec = ns % 1000000000;
  if (nsec < 0) {
    nsec += 1000000000;
    sec -= 1;
  }
  return timespec{static_cast<time_t>(sec), static_cast<long>(nsec)};
}

int set_mtime_at(int dir, const std::string& name, int64_t mtime_ns) {
  const timespec times[2] = {{0, UTIME_OMIT}, ns_to_timespec(mtime_ns)};
  return utimensat(dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
}

int set_mtime_fd(int fd, int64_t mtime_ns) {
  const timespec times[2] = {{0, UTIME_OMIT}, ns_to_timespec(mtime_ns)};
  return futimens(fd, times) < 0 ? errno : 0;
}

/** Printable form of raw path bytes for messages: control bytes become \xNN. */
std::string printable(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// ---- per-record context ---------------------------------------------------------------

enum class Outcome { APPLIED, SKIPPED, FAILED, FATAL, CONTINUE };

/** One record being applied: where errors and skips go. */
struct Ctx {
  int root_fd;
  RecordHeader header;
  ApplyResult* result;
  std::map<std::string, uint64_t>* skips;
  Touched* touched;

  Outcome report(std::string_view path, std::string code, const std::string& what,
                 Outcome outcome) {
    ApplyError e;
    e.seq = header.seq;
    e.kind = header.kind;
    e.path.assign(path.data(), path.size());
    e.code = std::move(code);
    e.message = "seq " + std::to_string(header.seq) + " " + record_kind_name(header.kind) +
                " '" + printable(path) + "': " + what;
    result->errors.push_back(std::move(e));
    return outcome;
  }
  Outcome fail(std::string_view path, int err, const std::string& what) {
    // The replica's file system cannot take anything now (full, over quota, read-only, I/O
    // errors): going on would checkpoint past a record that is not there, and the replica
    // would silently miss it. Stop here instead; the source keeps the record and sends it
    // again from this seq once the link is back, until the disk can take it (invariant 6).
    if (err == ENOSPC || err == EDQUOT || err == EROFS || err == EIO) {
      return report(path, errno_name(err),
                    what + " (" + std::strerror(err) + "); the batch stopped here and is " +
                        "retried from this record: make room on (or repair) the replica's " +
                        "file system",
                    Outcome::FATAL);
    }
    return report(path, errno_name(err), what + " (" + std::strerror(err) + ")",
                  Outcome::FAILED);
  }
  Outcome fail_code(std::string_view path, const char* code, const std::string& what) {
    return report(path, code, what, Outcome::FAILED);
  }
  Outcome corrupt(const std::string& what) {
    return report("", "APPLY_RECORD_CORRUPT",
                  what + "; the batch stopped here: re-fetch it from the source",
                  Outcome::FATAL);
  }
  Outcome skip(const char* reason) {
    ++(*skips)[reason];
    return Outcome::SKIPPED;
  }
};

// ---- path resolution ------------------------------------------------------------------

/** A record's path split into its parent (opened beneath the root) and last component. */
struct Place {
  Fd dir;            // O_RDONLY|O_DIRECTORY, resolved beneath the root
  std::string name;  // the last component; empty for the vault root itself
  bool root = false;
};

/** Opens `rel` (a directory, "" = root) beneath the root; 0 or errno. */
int open_beneath(int root_fd, std::string_view rel, Fd* out) {
  const std::string path = rel.empty() ? std::string(".") : std::string(rel);
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  // EAGAIN: a concurrent rename raced a ".." inside a symlink target; retrying is the
  // documented answer. The bound keeps a hostile tree from spinning us forever.
  for (int attempt = 0; attempt < 16; ++attempt) {
    const long fd = syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how);
    if (fd >= 0) {
      *out = Fd(static_cast<int>(fd));
      return 0;
    }
    if (errno != EAGAIN && errno != EINTR) return errno;
  }
  return EAGAIN;
}

/**
 * Resolves a record path. CONTINUE on success; otherwise the outcome to return:
 * an invalid path fails the record, an escape from the root (EXDEV) stops the batch.
 * A missing parent is reported through `*parent_missing` (callers decide: for a removal it
 * means done, for a content change superseded).
 */
Outcome resolve(Ctx& c, std::string_view path, bool root_allowed, Place* out,
                bool* parent_missing) {
  *parent_missing = false;
  if (!path_is_valid(path) || (path.empty() && !root_allowed)) {
    return c.fail_code(path, "APPLY_PATH_INVALID",
                       "path is not a valid vault path (absolute, empty, '.', '..' or too "
                       "long); record refused");
  }
  c.touched->add(path);
  if (path.empty()) {
    out->root = true;
    return Outcome::CONTINUE;
  }
  const size_t slash = path.rfind('/');
  const std::string_view parent = slash == std::string_view::npos ? "" : path.substr(0, slash);
  out->name.assign(slash == std::string_view::npos ? path : path.substr(slash + 1));
  const int err = open_beneath(c.root_fd, parent, &out->dir);
  if (err == 0) return Outcome::CONTINUE;
  if (err == EXDEV) {
    // Invariant 5: a symlink or mount in the replica leads outside the root.
    return c.report(path, "EXDEV",
                    "path escapes the replica root (a symlink in the replica points outside); "
                    "nothing was written; the batch stopped: inspect the replica and run "
                    "`understudy verify`",
                    Outcome::FATAL);
  }
  if (err == ENOENT) {
    *parent_missing = true;
    return Outcome::CONTINUE;
  }
  return c.fail(path, err, "cannot open the parent directory beneath the replica root");
}

// ---- fid lookups ----------------------------------------------------------------------

enum class Holds { MISSING, MATCH, OTHER, NO_FID };

/** What the last component holds relative to `fid`; 0 or errno (other than ENOENT). */
int lookup(const Place& p, uint64_t fid, Holds* holds, struct stat* st, uint64_t* found) {
  *found = 0;
  if (fstatat(p.dir.get(), p.name.c_str(), st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT) return errno;
    *holds = Holds::MISSING;
    return 0;
  }
  uint8_t buf[8];
  const ssize_t n = get_xattr_at(p.dir.get(), p.name, FID_XATTR_NAME, buf, sizeof buf);
  if (n < 0 && errno != ENODATA && errno != ERANGE && errno != EOPNOTSUPP) return errno;
  if (n != 8) {
    *holds = Holds::NO_FID;
    return 0;
  }
  *found = get_u64(buf);
  *holds = *found == fid ? Holds::MATCH : Holds::OTHER;
  return 0;
}

int set_fid(const Place& p, uint64_t fid) {
  uint8_t buf[8];
  put_u64(buf, fid);
  return set_xattr_at(p.dir.get(), p.name, FID_XATTR_NAME, buf, sizeof buf);
}

/** Removes the object in the way of a creation; a non-empty directory is an error. */
int displace(const Place& p, const struct stat& st) {
  const int flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
  return unlinkat(p.dir.get(), p.name.c_str(), flags) < 0 ? errno : 0;
}

/** Sets a parent directory's mtime when the parent exists (times converge, invariant 4). */
int set_parent_mtime(const Place& p, int64_t mtime_ns) {
  if (p.dir.get() < 0) return 0;
  return set_mtime_fd(p.dir.get(), mtime_ns);
}

/**
 * The subject of a content or attribute change: CONTINUE when the path holds `fid` (or is
 * the root), with `*st` filled; else skipped (missing, another fid) or failed (no fid).
 */
Outcome check_subject(Ctx& c, std::string_view path, const Place& p, bool parent_missing,
                      uint64_t fid, struct stat* st) {
  if (p.root) {
    if (fstat(c.root_fd, st) < 0) return c.fail(path, errno, "cannot stat the replica root");
    return Outcome::CONTINUE;
  }
  if (parent_missing) return c.skip("superseded: parent missing");
  Holds holds;
  uint64_t found;
  if (const int err = lookup(p, fid, &holds, st, &found); err != 0) {
    return c.fail(path, err, "cannot look up the object");
  }
  switch (holds) {
    case Holds::MATCH: return Outcome::CONTINUE;
    case Holds::MISSING: return c.skip("superseded: path missing");
    case Holds::OTHER: return c.skip("superseded: path holds another fid");
    case Holds::NO_FID: break;
  }
  return c.fail_code(path, "APPLY_FID_MISSING",
                     "the object at this path was not created by the applier (no " +
                         std::string(FID_XATTR_NAME) +
                         "); the replica diverged: run `understudy verify` and resync");
}


// ---- CREATE, MKDIR, SYMLINK -----------------------------------------------------------

/** A creation record, decoded. */
struct Creation {
  uint64_t fid = 0;
  mode_t type = 0;  // S_IFREG, S_IFDIR, S_IFLNK, ...
  mode_t perm = 0;  // 07777 bits
  uint32_t uid = 0, gid = 0;
  uint64_t rdev = 0;
  int64_t mtime_ns = 0, parent_mtime_ns = 0;
  std::string_view path, target;
};

int make_object(const Place& p, const Creation& k) {
  int rc;
  if (k.type == S_IFDIR) {
    rc = mkdirat(p.dir.get(), p.name.c_str(), k.perm);
  } else if (k.type == S_IFLNK) {
    rc = symlinkat(std::string(k.target).c_str(), p.dir.get(), p.name.c_str());
  } else {
    rc = mknodat(p.dir.get(), p.name.c_str(), k.type | k.perm, static_cast<dev_t>(k.rdev));
  }
  return rc < 0 ? errno : 0;
}

/** Owner, then mode (a chown clears setuid), then mtime; symlinks have no mode of their own. */
Outcome set_created_attrs(Ctx& c, const Place& p, const Creation& k) {
  if (fchownat(p.dir.get(), p.name.c_str(), k.uid, k.gid, AT_SYMLINK_NOFOLLOW) < 0) {
    return c.fail(k.path, errno, "cannot set the owner");
  }
  if (k.type != S_IFLNK) {
    if (const int err = chmod_at(p.dir.get(), p.name, k.perm); err != 0) {
      return c.fail(k.path, err, "cannot set the mode");
    }
  }
  if (const int err = set_mtime_at(p.dir.get(), p.name, k.mtime_ns); err != 0) {
    return c.fail(k.path, err, "cannot set the mtime");
  }
  if (const int err = set_parent_mtime(p, k.parent_mtime_ns); err != 0) {
    return c.fail(k.path, err, "cannot set the parent directory's mtime");
  }
  return Outcome::CONTINUE;
}

/** Same fid and type at the path: attributes only. Anything else there: replaced. */
Outcome apply_creation(Ctx& c, const Creation& k) {
  Place p;
  bool parent_missing;
  if (const Outcome o = resolve(c, k.path, false, &p, &parent_missing); o != Outcome::CONTINUE) {
    return o;
  }
  if (parent_missing) return c.fail(k.path, ENOENT, "the parent directory is missing");
  Holds holds;
  struct stat st;
  uint64_t found;
  if (const int err = lookup(p, k.fid, &holds, &st, &found); err != 0) {
    return c.fail(k.path, err, "cannot look up the path");
  }
  const bool same = holds == Holds::MATCH && (st.st_mode & S_IFMT) == k.type;
  if (!same) {
    // The journal says the path was free when the source created this object: whatever is
    // here now is an object the source no longer has there (or our own half-made one).
    if (holds != Holds::MISSING) {
      if (const int err = displace(p, st); err != 0) {
        return c.fail(k.path, err, "cannot remove the object in the way (a directory that "
                                   "still has entries?)");
      }
    }
    if (const int err = make_object(p, k); err != 0) {
      return c.fail(k.path, err, "cannot create the object");
    }
    if (const int err = set_fid(p, k.fid); err != 0) {
      return c.fail(k.path, err, "cannot set the fid xattr (does the replica file system "
                                 "support trusted.* xattrs?)");
    }
  }
  if (const Outcome o = set_created_attrs(c, p, k); o != Outcome::CONTINUE) return o;
  return same ? c.skip("already applied") : Outcome::APPLIED;
}

Outcome apply_create(Ctx& c, PayloadReader& r) {
  Creation k;
  k.fid = r.u64();
  const uint32_t mode = r.u32();
  k.uid = r.u32();
  k.gid = r.u32();
  k.rdev = r.u64();
  k.mtime_ns = r.i64();
  k.parent_mtime_ns = r.i64();
  k.path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("CREATE payload does not parse");
  k.type = mode & S_IFMT;
  if (k.type == 0) k.type = S_IFREG;  // mknod(2) treats a zero type as a regular file
  k.perm = mode & 07777;
  if (k.type != S_IFREG && k.type != S_IFIFO && k.type != S_IFSOCK && k.type != S_IFCHR &&
      k.type != S_IFBLK) {
    return c.fail_code(k.path, "APPLY_RECORD_INVALID", "CREATE with a file type it cannot "
                                                       "carry (directory or symlink)");
  }
  return apply_creation(c, k);
}

Outcome apply_mkdir(Ctx& c, PayloadReader& r) {
  Creation k;
  k.fid = r.u64();
  const uint32_t mode = r.u32();
  k.uid = r.u32();
  k.gid = r.u32();
  k.mtime_ns = r.i64();
  k.parent_mtime_ns = r.i64();
  k.path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("MKDIR payload does not parse");
  k.type = S_IFDIR;
  k.perm = mode & 07777;
  return apply_creation(c, k);
}

Outcome apply_symlink(Ctx& c, PayloadReader& r) {
  Creation k;
  k.fid = r.u64();
  k.uid = r.u32();
  k.gid = r.u32();
  k.mtime_ns = r.i64();
  k.parent_mtime_ns = r.i64();
  k.path = r.bytes(PATH_BYTES_MAX);
  k.target = r.bytes(SYMLINK_TARGET_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("SYMLINK payload does not parse");
  k.type = S_IFLNK;
  if (k.target.empty() || k.target.find('\0') != std::string_view::npos) {
    return c.fail_code(k.path, "APPLY_RECORD_INVALID", "symlink target is empty or holds NUL");
  }
  return apply_creation(c, k);
}


// ---- ADOPT, SYNC_BEGIN, SYNC_END ------------------------------------------------------
// ADOPT makes whatever is at a path the source's object without discarding content that may
// already be right (docs/journal-format.md, "Synchronisation kinds"): sync then sends only
// the blocks that differ.

/** A decoded ADOPT. */
struct Adoption {
  uint64_t fid = 0;
  mode_t type = 0, perm = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string_view path;
};

int write_all(int fd, const char* data, size_t size, uint64_t offset);

/** Copies all of `from` into `to` (both open); 0 or errno. */
int copy_content(int from, int to) {
  char buf[64 * 1024];
  uint64_t at = 0;
  for (;;) {
    const ssize_t n = pread(from, buf, sizeof buf, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    if (const int err = write_all(to, buf, static_cast<size_t>(n), at); err != 0) return err;
    at += static_cast<uint64_t>(n);
  }
}

/**
 * Gives the regular file at `p` an inode of its own with the same content, so that adopting
 * it cannot change the other names of a hard link the source does not have. The copy is
 * made unnamed (O_TMPFILE), named beside the file and renamed over it. 0 or errno.
 */
int unshare_file(const Place& p, uint64_t fid) {
  const Fd from(openat(p.dir.get(), p.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                                                       O_CLOEXEC));
  if (from.get() < 0) return errno;
  struct stat st;
  if (fstat(from.get(), &st) < 0) return errno;
  if (!S_ISREG(st.st_mode)) return EINVAL;
  const Fd to(openat(p.dir.get(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, st.st_mode & 07777));
  if (to.get() < 0) return errno;
  if (const int err = copy_content(from.get(), to.get()); err != 0) return err;
  char tmp[64];
  std::snprintf(tmp, sizeof tmp, ".understudy-adopt-%016llx",
                static_cast<unsigned long long>(fid));
  unlinkat(p.dir.get(), tmp, 0);  // a leftover of a crash here; it is ours
  if (linkat(to.get(), "", p.dir.get(), tmp, AT_EMPTY_PATH) < 0) return errno;
  if (renameat(p.dir.get(), tmp, p.dir.get(), p.name.c_str()) < 0) {
    const int err = errno;
    unlinkat(p.dir.get(), tmp, 0);
    return err;
  }
  return 0;
}

/** Creates an empty file or directory for `k` at `p`; 0 or errno. */
int make_adopted(const Place& p, const Adoption& k) {
  if (k.type == S_IFDIR) return mkdirat(p.dir.get(), p.name.c_str(), k.perm) < 0 ? errno : 0;
  const int fd = openat(p.dir.get(), p.name.c_str(),
                        O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, k.perm);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

/** Size (files) and mtime: through an fd checked to be the inode looked up. */
Outcome set_adopted_size_and_mtime(Ctx& c, const Place& p, const Adoption& k) {
  if (k.type == S_IFDIR) {
    if (const int err = set_mtime_at(p.dir.get(), p.name, k.mtime_ns); err != 0) {
      return c.fail(k.path, err, "cannot set the mtime");
    }
    return Outcome::CONTINUE;
  }
  const Fd fd(openat(p.dir.get(), p.name.c_str(),
                     O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) return c.fail(k.path, errno, "cannot open the file");
  struct stat st;
  if (fstat(fd.get(), &st) < 0) return c.fail(k.path, errno, "cannot stat the opened file");
  if (!S_ISREG(st.st_mode)) return c.fail(k.path, EAGAIN, "the file changed while adopting it");
  if (static_cast<uint64_t>(st.st_size) != k.size &&
      ftruncate(fd.get(), static_cast<off_t>(k.size)) < 0) {
    return c.fail(k.path, errno, "cannot set the size");
  }
  if (const int err = set_mtime_fd(fd.get(), k.mtime_ns); err != 0) {
    return c.fail(k.path, err, "cannot set the mtime");
  }
  return Outcome::CONTINUE;
}

/** Missing: created. Another type: replaced. Then fid, owner, mode, size, mtime. */
Outcome adopt(Ctx& c, const Adoption& k) {
  Place p;
  bool parent_missing;
  if (const Outcome o = resolve(c, k.path, false, &p, &parent_missing); o != Outcome::CONTINUE) {
    return o;
  }
  if (parent_missing) {
    return c.fail(k.path, ENOENT, "the parent directory is missing (sync adopts parents "
                                  "first: was the parent's ADOPT refused?)");
  }
  Holds holds;
  struct stat st;
  uint64_t found;
  if (const int err = lookup(p, k.fid, &holds, &st, &found); err != 0) {
    return c.fail(k.path, err, "cannot look up the path");
  }
  const bool untouched = holds == Holds::MATCH && (st.st_mode & S_IFMT) == k.type &&
                         (st.st_mode & 07777) == k.perm && st.st_uid == k.uid &&
                         st.st_gid == k.gid &&
                         (k.type == S_IFDIR || static_cast<uint64_t>(st.st_size) == k.size);
  if (holds != Holds::MISSING && (st.st_mode & S_IFMT) != k.type) {
    // Never a recursive delete: sync sets aside what is in the way before its records.
    if (const int err = displace(p, st); err != 0) {
      return c.fail(k.path, err, "cannot replace the object of another type in the way (a "
                                 "directory that still has entries is never removed "
                                 "recursively: move it away, then sync again)");
    }
    holds = Holds::MISSING;
  }
  if (holds == Holds::MISSING) {
    if (const int err = make_adopted(p, k); err != 0) {
      return c.fail(k.path, err, "cannot create the object");
    }
  } else if (k.type == S_IFREG && holds != Holds::MATCH && st.st_nlink > 1) {
    if (const int err = unshare_file(p, k.fid); err != 0) {
      return c.fail(k.path, err, "cannot give the file an inode of its own (hard link)");
    }
  }
  if (holds != Holds::MATCH) {
    if (const int err = set_fid(p, k.fid); err != 0) {
      return c.fail(k.path, err, "cannot set the fid xattr");
    }
  }
  if (fchownat(p.dir.get(), p.name.c_str(), k.uid, k.gid, AT_SYMLINK_NOFOLLOW) < 0) {
    return c.fail(k.path, errno, "cannot set the owner");
  }
  if (const int err = chmod_at(p.dir.get(), p.name, k.perm); err != 0) {
    return c.fail(k.path, err, "cannot set the mode");
  }
  if (const Outcome o = set_adopted_size_and_mtime(c, p, k); o != Outcome::CONTINUE) return o;
  return untouched ? c.skip("already applied") : Outcome::APPLIED;
}

Outcome apply_adopt(Ctx& c, PayloadReader& r) {
  Adoption k;
  k.fid = r.u64();
  const uint32_t mode = r.u32();
  k.uid = r.u32();
  k.gid = r.u32();
  k.size = r.u64();
  k.mtime_ns = r.i64();
  k.path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("ADOPT payload does not parse");
  k.type = mode & S_IFMT;
  k.perm = mode & 07777;
  if (k.type != S_IFREG && k.type != S_IFDIR) {
    return c.fail_code(k.path, "APPLY_RECORD_INVALID", "ADOPT of a type other than a regular "
                                                       "file or a directory");
  }
  if (k.size > static_cast<uint64_t>(LLONG_MAX)) return c.fail(k.path, EFBIG, "size out of range");
  return adopt(c, k);
}

/** SYNC_BEGIN and SYNC_END change nothing in the replica; the caller tracks the span. */
Outcome apply_sync_mark(Ctx& c, PayloadReader& r) {
  SyncMark m;
  m.seq = c.header.seq;
  m.kind = c.header.kind;
  m.sync_id = r.u64();
  if (c.header.kind == static_cast<uint16_t>(RecordKind::SYNC_BEGIN)) {
    m.flags = r.u32();
    const std::string_view path = r.bytes(PATH_BYTES_MAX);
    m.path.assign(path.data(), path.size());
    if (r.ok() && !path_is_valid(path)) {
      return c.fail_code(path, "APPLY_PATH_INVALID", "SYNC_BEGIN subtree is not a vault path");
    }
  } else {
    m.entries = r.u64();
    m.data_bytes = r.u64();
  }
  if (!r.ok() || !r.at_end()) return c.corrupt("SYNC_BEGIN/SYNC_END payload does not parse");
  c.result->sync_marks.push_back(std::move(m));
  return Outcome::APPLIED;
}

// ---- LINK, UNLINK, RMDIR, RENAME ------------------------------------------------------

/** What a path holds; a missing parent counts as a missing path. */
struct Seen {
  Holds holds = Holds::MISSING;
  struct stat st {};
  uint64_t found = 0;  // the fid at the path, 0 when none
};

Outcome look(Ctx& c, std::string_view path, const Place& p, bool parent_missing, uint64_t fid,
             Seen* seen) {
  if (parent_missing) return Outcome::CONTINUE;
  if (const int err = lookup(p, fid, &seen->holds, &seen->st, &seen->found); err != 0) {
    return c.fail(path, err, "cannot look up the path");
  }
  return Outcome::CONTINUE;
}

Outcome fid_missing(Ctx& c, std::string_view path) {
  return c.fail_code(path, "APPLY_FID_MISSING",
                     "the object at this path was not created by the applier; the replica "
                     "diverged: run `understudy verify` and resync");
}

Outcome apply_link(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  const int64_t new_parent_mtime_ns = r.i64();
  const std::string_view old_path = r.bytes(PATH_BYTES_MAX);
  const std::string_view new_path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("LINK payload does not parse");
  Place po, pn;
  bool old_gone, new_gone;
  Outcome o = resolve(c, old_path, false, &po, &old_gone);
  if (o == Outcome::CONTINUE) o = resolve(c, new_path, false, &pn, &new_gone);
  if (o != Outcome::CONTINUE) return o;
  if (new_gone) return c.fail(new_path, ENOENT, "the new name's parent directory is missing");
  Seen so, sn;
  if ((o = look(c, new_path, pn, false, fid, &sn)) != Outcome::CONTINUE) return o;
  // The new name may hold the fid on an inode of its own: an ADOPT copies a replica file
  // that was hard-linked, leaving the other name with the old inode and the same fid. The
  // record says both names are one inode, so that copy is replaced by the link.
  bool relink = false;
  if (sn.holds == Holds::MATCH && !old_gone) {
    if ((o = look(c, old_path, po, false, fid, &so)) != Outcome::CONTINUE) return o;
    relink = so.holds == Holds::MATCH &&
             (so.st.st_ino != sn.st.st_ino || so.st.st_dev != sn.st.st_dev);
  }
  if (sn.holds != Holds::MATCH || relink) {
    if (!relink && (o = look(c, old_path, po, old_gone, fid, &so)) != Outcome::CONTINUE) {
      return o;
    }
    if (so.holds == Holds::NO_FID) return fid_missing(c, old_path);
    if (so.holds != Holds::MATCH) return c.skip("superseded: link source gone");
    if (sn.holds != Holds::MISSING) {
      if (const int err = displace(pn, sn.st); err != 0) {
        return c.fail(new_path, err, "cannot remove the object in the way of the new name");
      }
    }
    if (linkat(po.dir.get(), po.name.c_str(), pn.dir.get(), pn.name.c_str(), 0) < 0) {
      return c.fail(new_path, errno, "cannot link");
    }
  }
  if (const int err = set_parent_mtime(pn, new_parent_mtime_ns); err != 0) {
    return c.fail(new_path, err, "cannot set the parent directory's mtime");
  }
  return sn.holds == Holds::MATCH && !relink ? c.skip("already applied") : Outcome::APPLIED;
}

/** UNLINK and RMDIR: only when the path holds the fid; a missing path is already done. */
Outcome apply_removal(Ctx& c, PayloadReader& r, bool dir) {
  const uint64_t fid = r.u64();
  const int64_t parent_mtime_ns = r.i64();
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("UNLINK/RMDIR payload does not parse");
  Place p;
  bool parent_missing;
  Outcome o = resolve(c, path, false, &p, &parent_missing);
  if (o != Outcome::CONTINUE) return o;
  if (parent_missing) return c.skip("already applied");
  Seen seen;
  if ((o = look(c, path, p, false, fid, &seen)) != Outcome::CONTINUE) return o;
  if (seen.holds == Holds::NO_FID) return fid_missing(c, path);
  if (seen.holds == Holds::OTHER) return c.skip("superseded: path holds another fid");
  if (seen.holds == Holds::MATCH &&
      unlinkat(p.dir.get(), p.name.c_str(), dir ? AT_REMOVEDIR : 0) < 0) {
    return c.fail(path, errno, dir ? "cannot remove the directory" : "cannot unlink");
  }
  if (const int err = set_parent_mtime(p, parent_mtime_ns); err != 0) {
    return c.fail(path, err, "cannot set the parent directory's mtime");
  }
  return seen.holds == Holds::MATCH ? Outcome::APPLIED : c.skip("already applied");
}

/** A RENAME record, decoded and resolved. */
struct Move {
  uint64_t fid_moved = 0, fid_replaced = 0;
  uint32_t flags = 0;
  int64_t old_parent_mtime_ns = 0, new_parent_mtime_ns = 0;
  std::string_view old_path, new_path;
  Place po, pn;
  Seen so, sn;
};

/** Decides what a RENAME must do now: rename with `*flags`, or the outcome to return. */
Outcome plan_move(Ctx& c, const Move& m, unsigned* flags) {
  if (m.flags == RENAME_EXCHANGE) {
    const bool here = m.so.holds == Holds::MATCH && m.sn.found == m.fid_replaced &&
                      m.sn.holds != Holds::MISSING;
    if (here) {
      *flags = RENAME_EXCHANGE;
      return Outcome::CONTINUE;
    }
    const bool done = m.sn.holds == Holds::MATCH && m.so.found == m.fid_replaced &&
                      m.so.holds != Holds::MISSING;
    return c.skip(done ? "already applied" : "superseded: exchange partners moved on");
  }
  if (m.sn.holds == Holds::MATCH) return c.skip("already applied");
  if (m.so.holds == Holds::MATCH) {
    // RENAME_NOREPLACE succeeded on the source, so the new name was free then: whatever is
    // there now the source no longer has there, and a plain rename replaces it.
    *flags = 0;
    return Outcome::CONTINUE;
  }
  if (m.so.holds == Holds::NO_FID) return fid_missing(c, m.old_path);
  return c.skip("superseded: rename source gone");
}

/** Depth beyond which a replay duplicate is not walked (and so not removed). */
constexpr int DUPLICATE_DEPTH_MAX = 64;

/** Opens entry `name` of `dir` as a directory, never following a symlink. */
Fd open_subdir(int dir, const char* name) {
  return Fd(openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

/** Names in a directory (without . and ..); false when it cannot be read. */
bool list_dir(int dir, std::vector<std::string>* names) {
  const int fd = fcntl(dir, F_DUPFD_CLOEXEC, 0);
  DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
  if (d == nullptr) {
    if (fd >= 0) ::close(fd);
    return false;
  }
  while (const dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      names->emplace_back(e->d_name);
    }
  }
  closedir(d);
  return true;
}

/** True when every entry under `dup` is also under `real`: same name, type and fid. */
bool covered(int dup, int real, int depth) {
  std::vector<std::string> names;
  if (depth > DUPLICATE_DEPTH_MAX || !list_dir(dup, &names)) return false;
  for (const std::string& name : names) {
    struct stat a, b;
    uint8_t fa[8], fb[8];
    if (fstatat(dup, name.c_str(), &a, AT_SYMLINK_NOFOLLOW) < 0 ||
        fstatat(real, name.c_str(), &b, AT_SYMLINK_NOFOLLOW) < 0 ||
        (a.st_mode & S_IFMT) != (b.st_mode & S_IFMT) ||
        get_xattr_at(dup, name, FID_XATTR_NAME, fa, 8) != 8 ||
        get_xattr_at(real, name, FID_XATTR_NAME, fb, 8) != 8 || std::memcmp(fa, fb, 8) != 0) {
      return false;
    }
    if (S_ISDIR(a.st_mode)) {
      const Fd sub_dup = open_subdir(dup, name.c_str());
      const Fd sub_real = open_subdir(real, name.c_str());
      if (sub_dup.get() < 0 || sub_real.get() < 0) return false;
      if (!covered(sub_dup.get(), sub_real.get(), depth + 1)) return false;
    }
  }
  return true;
}

/** Removes `name` in `dir` and everything beneath it, never following a symlink; errno. */
int remove_tree(int dir, const char* name, int depth) {
  if (unlinkat(dir, name, 0) == 0) return 0;
  if (errno != EISDIR && errno != EPERM) return errno;
  if (depth > DUPLICATE_DEPTH_MAX) return ELOOP;
  const Fd sub = open_subdir(dir, name);
  std::vector<std::string> names;
  if (sub.get() < 0 || !list_dir(sub.get(), &names)) return errno != 0 ? errno : EIO;
  for (const std::string& entry : names) {
    if (const int err = remove_tree(sub.get(), entry.c_str(), depth + 1); err != 0) return err;
  }
  return unlinkat(dir, name, AT_REMOVEDIR) < 0 ? errno : 0;
}

/**
 * The rename already happened, yet the old name holds another object with the moved fid:
 * a replay re-created it (its creation record was re-applied after the object had moved
 * on). The object at the new name is the one later records know; the duplicate goes, but
 * a directory only when all it holds is also in the real one, so nothing is lost.
 */
Outcome drop_duplicate(Ctx& c, const Move& m) {
  if (!S_ISDIR(m.so.st.st_mode)) {
    if (unlinkat(m.po.dir.get(), m.po.name.c_str(), 0) < 0) {
      return c.fail(m.old_path, errno, "cannot remove a replay duplicate");
    }
    return Outcome::CONTINUE;
  }
  const Fd dup = open_subdir(m.po.dir.get(), m.po.name.c_str());
  const Fd real = open_subdir(m.pn.dir.get(), m.pn.name.c_str());
  if (dup.get() < 0 || real.get() < 0 || !covered(dup.get(), real.get(), 0)) {
    return c.fail_code(m.old_path, "APPLY_REPLAY_CONFLICT",
                       "a replay re-created this directory after it had been renamed to '" +
                           printable(m.new_path) + "', and it holds entries the renamed one "
                           "does not; both kept: run `understudy verify` and resync");
  }
  if (const int err = remove_tree(m.po.dir.get(), m.po.name.c_str(), 0); err != 0) {
    return c.fail(m.old_path, err, "cannot remove a replay duplicate directory");
  }
  return Outcome::CONTINUE;
}

Outcome apply_rename(Ctx& c, PayloadReader& r) {
  Move m;
  m.fid_moved = r.u64();
  m.fid_replaced = r.u64();
  m.flags = r.u32();
  m.old_parent_mtime_ns = r.i64();
  m.new_parent_mtime_ns = r.i64();
  m.old_path = r.bytes(PATH_BYTES_MAX);
  m.new_path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("RENAME payload does not parse");
  if (m.flags != 0 && m.flags != RENAME_NOREPLACE && m.flags != RENAME_EXCHANGE) {
    return c.fail_code(m.old_path, "APPLY_RECORD_INVALID", "RENAME with unknown flags");
  }
  bool old_gone, new_gone;
  Outcome o = resolve(c, m.old_path, false, &m.po, &old_gone);
  if (o == Outcome::CONTINUE) o = resolve(c, m.new_path, false, &m.pn, &new_gone);
  if (o == Outcome::CONTINUE) o = look(c, m.old_path, m.po, old_gone, m.fid_moved, &m.so);
  if (o == Outcome::CONTINUE) o = look(c, m.new_path, m.pn, new_gone, m.fid_moved, &m.sn);
  if (o != Outcome::CONTINUE) return o;
  unsigned flags = 0;
  o = plan_move(c, m, &flags);
  if (o == Outcome::FAILED || (o == Outcome::SKIPPED && m.sn.holds != Holds::MATCH)) return o;
  const bool duplicate = m.flags != RENAME_EXCHANGE && m.so.holds == Holds::MATCH &&
                         m.sn.holds == Holds::MATCH &&
                         (m.so.st.st_ino != m.sn.st.st_ino || m.so.st.st_dev != m.sn.st.st_dev);
  if (duplicate) {
    if (const Outcome d = drop_duplicate(c, m); d != Outcome::CONTINUE) return d;
  }
  if (o == Outcome::CONTINUE) {
    if (new_gone) return c.fail(m.new_path, ENOENT, "the new name's parent directory is missing");
    if (renameat2(m.po.dir.get(), m.po.name.c_str(), m.pn.dir.get(), m.pn.name.c_str(), flags) <
        0) {
      return c.fail(m.old_path, errno, "cannot rename to '" + printable(m.new_path) + "'");
    }
  }
  // Applied now or before: the times it carries are the ones the source ended with.
  int err = old_gone ? 0 : set_parent_mtime(m.po, m.old_parent_mtime_ns);
  if (err == 0) err = set_parent_mtime(m.pn, m.new_parent_mtime_ns);
  if (err != 0) return c.fail(m.new_path, err, "cannot set the parent directories' mtimes");
  return o == Outcome::CONTINUE ? Outcome::APPLIED : o;
}


// ---- WRITE, TRUNCATE, FALLOCATE -------------------------------------------------------

/**
 * Opens the regular file at `path` for writing if it holds `fid`. Never through a symlink:
 * the type is checked before opening (opening a device could have side effects) and the
 * open uses O_NOFOLLOW, then the opened inode is compared with the one looked up.
 */
Outcome open_content(Ctx& c, std::string_view path, uint64_t fid, Fd* fd) {
  Place p;
  bool parent_missing;
  Outcome o = resolve(c, path, true, &p, &parent_missing);
  if (o != Outcome::CONTINUE) return o;
  if (p.root) return c.fail(path, EISDIR, "the vault root is a directory, not a file");
  struct stat st;
  if ((o = check_subject(c, path, p, parent_missing, fid, &st)) != Outcome::CONTINUE) return o;
  if (S_ISLNK(st.st_mode)) {
    return c.fail(path, ELOOP, "the path is a symlink; refusing to write through it");
  }
  if (!S_ISREG(st.st_mode)) return c.fail(path, EINVAL, "the path is not a regular file");
  const int flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  *fd = Fd(openat(p.dir.get(), p.name.c_str(), flags));
  if (fd->get() < 0) return c.fail(path, errno, "cannot open the file");
  struct stat opened;
  if (fstat(fd->get(), &opened) < 0) return c.fail(path, errno, "cannot stat the opened file");
  if (opened.st_ino != st.st_ino || opened.st_dev != st.st_dev) {
    return c.fail(path, EAGAIN, "the file changed while it was being opened; retry the batch");
  }
  return Outcome::CONTINUE;
}

int write_all(int fd, const char* data, size_t size, uint64_t offset) {
  while (size > 0) {
    const ssize_t n = pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

Outcome apply_write(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  const uint64_t offset = r.u64();
  const int64_t mtime_ns = r.i64();
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  const std::string_view data = r.rest();
  if (!r.ok()) return c.corrupt("WRITE payload does not parse");
  if (data.size() > WRITE_DATA_BYTES_MAX) return c.corrupt("WRITE data over the limit");
  if (offset > static_cast<uint64_t>(LLONG_MAX) - data.size()) {
    return c.fail(path, EFBIG, "WRITE offset out of range");
  }
  Fd fd;
  if (const Outcome o = open_content(c, path, fid, &fd); o != Outcome::CONTINUE) return o;
  if (const int err = write_all(fd.get(), data.data(), data.size(), offset); err != 0) {
    return c.fail(path, err, "cannot write");
  }
  if (const int err = set_mtime_fd(fd.get(), mtime_ns); err != 0) {
    return c.fail(path, err, "cannot set the mtime");
  }
  return Outcome::APPLIED;
}

Outcome apply_truncate(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  const uint64_t size = r.u64();
  const int64_t mtime_ns = r.i64();
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("TRUNCATE payload does not parse");
  if (size > static_cast<uint64_t>(LLONG_MAX)) return c.fail(path, EFBIG, "size out of range");
  Fd fd;
  if (const Outcome o = open_content(c, path, fid, &fd); o != Outcome::CONTINUE) return o;
  if (ftruncate(fd.get(), static_cast<off_t>(size)) < 0) {
    return c.fail(path, errno, "cannot truncate");
  }
  if (const int err = set_mtime_fd(fd.get(), mtime_ns); err != 0) {
    return c.fail(path, err, "cannot set the mtime");
  }
  return Outcome::APPLIED;
}

/** Writes zeros over [from, to). */
int write_zeros(int fd, uint64_t from, uint64_t to) {
  static const char ZEROS[64 * 1024] = {};
  while (from < to) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof ZEROS, to - from));
    if (const int err = write_all(fd, ZEROS, n, from); err != 0) return err;
    from += n;
  }
  return 0;
}

/**
 * The effect of fallocate on content and size when the replica file system refuses the
 * mode: punching a hole or zeroing a range reads back as zeros; preallocation changes
 * nothing a reader can see (the size is set by the caller from `size after`).
 */
int emulate_fallocate(int fd, uint32_t mode, uint64_t offset, uint64_t length) {
  if (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)) return EOPNOTSUPP;
  if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) == 0) return 0;
  struct stat st;
  if (fstat(fd, &st) < 0) return errno;
  // Only bytes below the current size are visible; growth is zeros already.
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t end = std::min(size, offset + length);
  return offset < end ? write_zeros(fd, offset, end) : 0;
}

Outcome apply_fallocate(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  const uint32_t mode = r.u32();
  const uint64_t offset = r.u64();
  const uint64_t length = r.u64();
  const uint64_t size_after = r.u64();
  const int64_t mtime_ns = r.i64();
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("FALLOCATE payload does not parse");
  const uint64_t max = static_cast<uint64_t>(LLONG_MAX);
  if (offset > max || length > max - offset || size_after > max) {
    return c.fail(path, EFBIG, "FALLOCATE range out of range");
  }
  Fd fd;
  if (const Outcome o = open_content(c, path, fid, &fd); o != Outcome::CONTINUE) return o;
  if (fallocate(fd.get(), static_cast<int>(mode), static_cast<off_t>(offset),
                static_cast<off_t>(length)) < 0) {
    const int err = errno == EOPNOTSUPP ? emulate_fallocate(fd.get(), mode, offset, length)
                                        : errno;
    if (err != 0) return c.fail(path, err, "cannot fallocate (nor emulate it)");
  }
  struct stat st;
  if (fstat(fd.get(), &st) < 0) return c.fail(path, errno, "cannot stat");
  if (static_cast<uint64_t>(st.st_size) != size_after &&
      ftruncate(fd.get(), static_cast<off_t>(size_after)) < 0) {
    return c.fail(path, errno, "cannot set the size after fallocate");
  }
  if (const int err = set_mtime_fd(fd.get(), mtime_ns); err != 0) {
    return c.fail(path, err, "cannot set the mtime");
  }
  return Outcome::APPLIED;
}


// ---- CHMOD, CHOWN, UTIMENS, SETXATTR, REMOVEXATTR -------------------------------------
// The vault root ("") is the root itself, without a fid check: we never created it.

Outcome attr_subject(Ctx& c, std::string_view path, uint64_t fid, Place* p, struct stat* st) {
  bool parent_missing;
  const Outcome o = resolve(c, path, true, p, &parent_missing);
  if (o != Outcome::CONTINUE) return o;
  return check_subject(c, path, *p, parent_missing, fid, st);
}

int chmod_place(const Ctx& c, const Place& p, mode_t perm) {
  if (p.root) return fchmod(c.root_fd, perm) < 0 ? errno : 0;
  return chmod_at(p.dir.get(), p.name, perm);
}

Outcome apply_chmod(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  const uint32_t mode = r.u32();
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("CHMOD payload does not parse");
  Place p;
  struct stat st;
  if (const Outcome o = attr_subject(c, path, fid, &p, &st); o != Outcome::CONTINUE) return o;
  if (const int err = chmod_place(c, p, mode & 07777); err != 0) {
    return c.fail(path, err, "cannot set the mode");
  }
  return Outcome::APPLIED;
}

Outcome apply_chown(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  const uint32_t uid = r.u32();
  const uint32_t gid = r.u32();
  const uint32_t mode_after = r.u32();
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("CHOWN payload does not parse");
  Place p;
  struct stat st;
  if (const Outcome o = attr_subject(c, path, fid, &p, &st); o != Outcome::CONTINUE) return o;
  const int rc = p.root ? fchown(c.root_fd, uid, gid)
                        : fchownat(p.dir.get(), p.name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
  if (rc < 0) return c.fail(path, errno, "cannot set the owner");
  // A chown clears setuid/setgid; the record carries the mode the source ended with.
  if (!S_ISLNK(st.st_mode)) {
    if (const int err = chmod_place(c, p, mode_after & 07777); err != 0) {
      return c.fail(path, err, "cannot restore the mode after chown");
    }
  }
  return Outcome::APPLIED;
}

Outcome apply_utimens(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  const int64_t atime_ns = r.i64();
  const int64_t mtime_ns = r.i64();
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("UTIMENS payload does not parse");
  Place p;
  struct stat st;
  if (const Outcome o = attr_subject(c, path, fid, &p, &st); o != Outcome::CONTINUE) return o;
  const timespec times[2] = {ns_to_timespec(atime_ns), ns_to_timespec(mtime_ns)};
  const int rc = p.root ? futimens(c.root_fd, times)
                        : utimensat(p.dir.get(), p.name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  if (rc < 0) return c.fail(path, errno, "cannot set the times");
  return Outcome::APPLIED;
}

/** Names under trusted.understudy are our bookkeeping; a record may never touch them. */
Outcome check_xattr_name(Ctx& c, std::string_view path, std::string_view name) {
  if (name.empty() || name.find('\0') != std::string_view::npos) {
    return c.fail_code(path, "APPLY_RECORD_INVALID", "xattr name is empty or holds NUL");
  }
  const std::string_view own(OWN_XATTR_PREFIX, sizeof OWN_XATTR_PREFIX - 2);  // no final '.'
  if (name.substr(0, own.size()) == own) {
    return c.fail_code(path, "APPLY_XATTR_RESERVED",
                       "xattr '" + printable(name) + "' is understudy's own bookkeeping; a "
                       "record may not set or remove it (hostile or corrupt source?)");
  }
  return Outcome::CONTINUE;
}

Outcome apply_setxattr(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  r.u32();  // XATTR_CREATE/REPLACE held on the source; a re-apply must not fail on them.
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  const std::string_view name = r.bytes(XATTR_NAME_BYTES_MAX);
  const std::string_view value = r.bytes(XATTR_VALUE_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("SETXATTR payload does not parse");
  if (const Outcome o = check_xattr_name(c, path, name); o != Outcome::CONTINUE) return o;
  Place p;
  struct stat st;
  if (const Outcome o = attr_subject(c, path, fid, &p, &st); o != Outcome::CONTINUE) return o;
  const std::string key(name);
  const int err = p.root ? (fsetxattr(c.root_fd, key.c_str(), value.data(), value.size(), 0) < 0
                                ? errno : 0)
                         : set_xattr_at(p.dir.get(), p.name, key.c_str(), value.data(),
                                        value.size());
  if (err != 0) return c.fail(path, err, "cannot set xattr '" + printable(name) + "'");
  return Outcome::APPLIED;
}

Outcome apply_removexattr(Ctx& c, PayloadReader& r) {
  const uint64_t fid = r.u64();
  const std::string_view path = r.bytes(PATH_BYTES_MAX);
  const std::string_view name = r.bytes(XATTR_NAME_BYTES_MAX);
  if (!r.ok() || !r.at_end()) return c.corrupt("REMOVEXATTR payload does not parse");
  if (const Outcome o = check_xattr_name(c, path, name); o != Outcome::CONTINUE) return o;
  Place p;
  struct stat st;
  if (const Outcome o = attr_subject(c, path, fid, &p, &st); o != Outcome::CONTINUE) return o;
  const std::string key(name);
  const int err = p.root ? (fremovexattr(c.root_fd, key.c_str()) < 0 ? errno : 0)
                         : remove_xattr_at(p.dir.get(), p.name, key.c_str());
  if (err == ENODATA) return c.skip("already applied");
  if (err != 0) return c.fail(path, err, "cannot remove xattr '" + printable(name) + "'");
  return Outcome::APPLIED;
}

Outcome apply_record(Ctx& c, const uint8_t* payload) {
  PayloadReader r(payload, c.header.payload_bytes);
  switch (static_cast<RecordKind>(c.header.kind)) {
    case RecordKind::CREATE: return apply_create(c, r);
    case RecordKind::MKDIR: return apply_mkdir(c, r);
    case RecordKind::SYMLINK: return apply_symlink(c, r);
    case RecordKind::LINK: return apply_link(c, r);
    case RecordKind::UNLINK: return apply_removal(c, r, false);
    case RecordKind::RMDIR: return apply_removal(c, r, true);
    case RecordKind::RENAME: return apply_rename(c, r);
    case RecordKind::WRITE: return apply_write(c, r);
    case RecordKind::TRUNCATE: return apply_truncate(c, r);
    case RecordKind::CHMOD: return apply_chmod(c, r);
    case RecordKind::CHOWN: return apply_chown(c, r);
    case RecordKind::UTIMENS: return apply_utimens(c, r);
    case RecordKind::SETXATTR: return apply_setxattr(c, r);
    case RecordKind::REMOVEXATTR: return apply_removexattr(c, r);
    case RecordKind::FALLOCATE: return apply_fallocate(c, r);
    case RecordKind::ADOPT: return apply_adopt(c, r);
    case RecordKind::SYNC_BEGIN:
    case RecordKind::SYNC_END: return apply_sync_mark(c, r);
  }
  return c.corrupt("unknown record kind");
}

// ---- high-water mark ------------------------------------------------------------------
// After each record the root's trusted.understudy.applied says (epoch, seq) of the last
// record fully processed. A restart that re-sends records up to it skips them outright, so
// only the one record in flight at a kill is re-applied, where the fid rules are exact.
// The mark is trusted only within the boot that wrote it: after a power cut it may have
// reached the disk while file data of the same records did not (the mark is metadata, and
// ext4 orders only metadata), so after any reboot the fid rules alone decide.

struct HighWater {
  uint64_t seq = 0;
  uint32_t epoch = 0;
};

/** This boot's id (/proc/sys/kernel/random/boot_id); empty when unknown. */
std::string boot_id() {
  char buf[BOOT_ID_BYTES] = {};
  const int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  const ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
  if (fd >= 0) ::close(fd);
  return n == static_cast<ssize_t>(BOOT_ID_BYTES) ? std::string(buf, BOOT_ID_BYTES) : "";
}

HighWater read_high_water(int root_fd, const std::string& boot) {
  uint8_t buf[APPLIED_XATTR_BYTES];
  HighWater hw;
  const bool whole = fgetxattr(root_fd, APPLIED_XATTR_NAME, buf, sizeof buf) ==
                     static_cast<ssize_t>(sizeof buf);
  if (whole && !boot.empty() && std::memcmp(buf + 16, boot.data(), BOOT_ID_BYTES) == 0) {
    hw.seq = get_u64(buf);
    hw.epoch = get_u32(buf + 8);
  }
  return hw;  // absent, malformed or from another boot: nothing is known to be applied
}

int write_high_water(int root_fd, const HighWater& hw, const std::string& boot) {
  uint8_t buf[APPLIED_XATTR_BYTES] = {};
  put_u64(buf, hw.seq);
  put_u32(buf + 8, hw.epoch);
  std::memcpy(buf + 16, boot.data(), std::min(boot.size(), BOOT_ID_BYTES));
  return fsetxattr(root_fd, APPLIED_XATTR_NAME, buf, sizeof buf, 0) < 0 ? errno : 0;
}

/** Earlier in the journal than the mark: seq not above it, epoch not above it. */
bool below_high_water(const HighWater& hw, const RecordHeader& h) {
  return h.seq <= hw.seq && h.epoch <= hw.epoch;
}

}  // namespace
}  // namespace understudy

namespace understudy {
namespace {

/** Stops the batch at undecodable bytes: a corrupt batch is never applied past. */
void stop_corrupt(ApplyResult* result, uint64_t seq, size_t at, const std::string& why) {
  ApplyError e;
  e.seq = seq;
  e.code = "APPLY_RECORD_CORRUPT";
  e.message = "record at byte " + std::to_string(at) + " of the batch (seq " +
              std::to_string(seq) + " expected): " + why +
              "; nothing after it was applied: re-fetch the batch from the source";
  result->errors.push_back(std::move(e));
  result->stopped = true;
  result->stopped_at = seq;
}

/** Checks framing and order of the record at `at`; false (and stopped) when it is bad. */
bool next_record(const uint8_t* records, size_t size, size_t at, const ApplyResult& so_far,
                 uint32_t prev_epoch, ApplyResult* result, RecordHeader* h,
                 const uint8_t** payload, size_t* n) {
  const char* why = "";
  const uint64_t expected = so_far.last_seq + 1;
  const DecodeStatus st = decode_record(records + at, size - at, h, payload, n, &why);
  if (st == DecodeStatus::NEED_MORE) why = "record truncated at the end of the batch";
  if (st != DecodeStatus::OK) {
    stop_corrupt(result, expected, at, why);
    return false;
  }
  if (h->seq <= so_far.last_seq) {
    stop_corrupt(result, expected, at, "seq " + std::to_string(h->seq) + " is not above the "
                                       "previous record's");
    return false;
  }
  if (h->epoch < prev_epoch) {
    stop_corrupt(result, h->seq, at, "epoch went down within the batch");
    return false;
  }
  return true;
}

}  // namespace

Applier* Applier::open(const char* root_path, int* err) {
  // The root path itself is the operator's configuration and may hold symlinks; everything
  // beneath the opened directory is confined.
  const int fd = ::open(root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return nullptr;
  }
  return new Applier(fd, boot_id());
}

Applier::~Applier() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

int Applier::forget_high_water() {
  if (fremovexattr(root_fd_, APPLIED_XATTR_NAME) < 0 && errno != ENODATA) return errno;
  return fsync(root_fd_) < 0 ? errno : 0;
}

/**
 * fsyncs each path (a regular file or a directory; deepest first, the root last). A path gone
 * meanwhile (renamed or removed later in the batch) needs nothing: its parent is in the set.
 * Returns 0, an fsync errno, or ENOTSUP when some object cannot be fsynced on its own (a
 * symlink, a device, anything unexpected): the caller then syncs the whole file system.
 */
int sync_paths(int root_fd, const std::set<std::string>& paths) {
  for (auto it = paths.rbegin(); it != paths.rend(); ++it) {
    const std::string rel = it->empty() ? std::string(".") : *it;
    struct stat st;
    if (fstatat(root_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      return ENOTSUP;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return ENOTSUP;
    open_how how{};
    how.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long fd = syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      return ENOTSUP;
    }
    const Fd guard(static_cast<int>(fd));
    struct stat now;
    if (fstat(guard.get(), &now) < 0 || now.st_ino != st.st_ino ||
        (!S_ISREG(now.st_mode) && !S_ISDIR(now.st_mode))) {
      return ENOTSUP;
    }
    if (fsync(guard.get()) < 0) return errno;
  }
  return 0;
}

void Applier::run(const uint8_t* records, size_t size, ApplyResult* result, Touched* touched) {
  std::map<std::string, uint64_t> skips;
  HighWater hw = read_high_water(root_fd_, boot_id_);
  bool marking = true;  // the mark only moves while every record so far succeeded
  uint32_t prev_epoch = 0;
  size_t at = 0;
  while (at < size) {
    RecordHeader h{};
    const uint8_t* payload = nullptr;
    size_t n = 0;
    if (!next_record(records, size, at, *result, prev_epoch, result, &h, &payload, &n)) break;
    Ctx c{root_fd_, h, result, &skips, touched};
    const bool below = below_high_water(hw, h);
    if (below) touched->whole_fs = true;
    const Outcome o = below ? c.skip("already applied (high-water mark)")
                            : apply_record(c, payload);
    if (o == Outcome::FATAL) {
      result->stopped = true;
      result->stopped_at = h.seq;
      break;
    }
    if (o == Outcome::APPLIED) ++result->applied;
    if (o == Outcome::SKIPPED) ++result->skipped;
    if (o == Outcome::FAILED) marking = false;  // a retry must re-apply it, not skip it
    if (marking && !below) {
      hw = HighWater{h.seq, h.epoch};
      if (const int err = write_high_water(root_fd_, hw, boot_id_); err != 0) {
        marking = false;
        c.fail("", err, "applied, but cannot record the high-water mark on the root; a "
                        "restart re-applies by fid");
      }
    }
    result->last_seq = h.seq;
    prev_epoch = h.epoch;
    at += n;
  }
  for (const auto& [reason, count] : skips) result->skip_reasons.emplace_back(reason, count);
}

bool Applier::apply(const uint8_t* records, size_t size, ApplyResult* result,
                    BatchFailure* failure) {
  if (size > APPLY_BATCH_BYTES_MAX) {
    failure->code = "APPLY_BATCH_TOO_LARGE";
    failure->message = "batch of " + std::to_string(size) + " bytes is over the limit of " +
                       std::to_string(APPLY_BATCH_BYTES_MAX) + "; split it into smaller batches";
    return false;
  }
  Touched touched;
  touched.add("");  // the root: its high-water mark moves with every record
  const auto started = std::chrono::steady_clock::now();
  run(records, size, result, &touched);
  const auto applied = std::chrono::steady_clock::now();
  result->apply_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(applied - started).count());
  struct DurableClock {
    ApplyResult* r;
    std::chrono::steady_clock::time_point from;
    ~DurableClock() {
      r->durable_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - from).count());
    }
  } durable_clock{result, applied};
  // Invariant 3: the caller persists its checkpoint after we return, so everything this
  // batch did must be durable first: each object it touched and every directory above it,
  // or (many paths, or a replay whose earlier attempt may not have been made durable) the
  // whole file system. syncfs reports writeback errors since Linux 5.8.
  if (size == 0) return true;
  if (!touched.whole_fs) {
    const int err = sync_paths(root_fd_, touched.paths);
    if (err == 0) {
      ++result->path_syncs;
      return true;
    }
    if (err != ENOTSUP) {
      failure->code = errno_name(err);
      failure->message = std::string("fsync of the replica failed (") + std::strerror(err) +
                         "): the batch is applied but not durable; do not checkpoint, retry it";
      return false;
    }
  }
  if (syncfs(root_fd_) < 0) {
    failure->code = errno_name(errno);
    failure->message = std::string("syncfs of the replica failed (") + std::strerror(errno) +
                       "): the batch is applied but not durable; do not checkpoint, retry it";
    return false;
  }
  return true;
}

}  // namespace understudy
