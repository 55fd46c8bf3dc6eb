// Sync emit (native/sync_emit.h, docs/sync.md). Lock: OpsContext::namespace_lock, EXCLUSIVE,
// from the lstat of the object to the last enqueue; it is the first lock of the order in
// ops.cc, and nothing else is taken under it here except the journal's own queue lock.
// Confinement of the source side: the path is resolved beneath the backing root with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a path through a symlink is "missing".
#include "sync_emit.h"

// Same false positive as ops.cc (GCC bug 107852 family) in PayloadWriter's appends.
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "record_codec.h"

namespace understudy {
namespace {

constexpr char HIDDEN_XATTR_PREFIX[] = "trusted.understudy.";
constexpr size_t XATTR_LIST_BYTES_MAX = 65536;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

struct ProcPath {
  char text[40];
  explicit ProcPath(int fd) { std::snprintf(text, sizeof text, "/proc/self/fd/%d", fd); }
  const char* c_str() const { return text; }
};

int64_t ns_of(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/** Records of one emit call: enqueued in order, counted; the first failure sticks. */
struct Emitter {
  OpsContext& ctx;
  SyncEmitResult* result;
  std::vector<uint8_t> payload;
  int err = 0;

  PayloadWriter begin() { return PayloadWriter(payload); }
  void end(RecordKind kind) {
    if (err != 0) return;
    const uint64_t seq = ctx.journal->enqueue(kind, payload.data(), payload.size(), &err);
    if (seq == 0) {
      if (err == 0) err = EIO;
      ctx.counters.journal_errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    uint64_t cur = ctx.last_enqueued.load(std::memory_order_relaxed);
    while (seq > cur && !ctx.last_enqueued.compare_exchange_weak(cur, seq)) {
    }
    if (result->first_seq == 0) result->first_seq = seq;
    result->last_seq = seq;
    ++result->records;
  }
};

/**
 * Opens `path` beneath the backing root as O_PATH, never through a symlink (the last
 * component may be one: it is opened itself). ENOENT, ENOTDIR, ELOOP and EXDEV all mean the
 * path does not name an object of the vault now: the caller reports it missing.
 */
int open_beneath(OpsContext& ctx, const std::string& path, int* out) {
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const char* rel = path.empty() ? "." : path.c_str();
  for (int attempt = 0; attempt < 16; ++attempt) {
    const long fd = syscall(SYS_openat2, ctx.table->root().fd, rel, &how, sizeof how);
    if (fd >= 0) {
      *out = static_cast<int>(fd);
      return 0;
    }
    if (errno != EAGAIN && errno != EINTR) return errno;
  }
  return EAGAIN;
}

bool means_missing(int err) {
  return err == ENOENT || err == ENOTDIR || err == ELOOP || err == EXDEV;
}

/** The parent directory's mtime (records that create a name carry it). */
int parent_mtime(OpsContext& ctx, const std::string& path, int64_t* out) {
  const size_t slash = path.rfind('/');
  const std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
  int fd = -1;
  if (const int err = open_beneath(ctx, parent, &fd); err != 0) return err;
  const Fd guard(fd);
  struct stat st;
  if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return errno;
  *out = ns_of(st.st_mtim);
  return 0;
}

/** The object's xattrs, without our own bookkeeping; 0 or errno. */
int list_xattrs(int fd, std::map<std::string, std::string>* out) {
  std::vector<char> names(XATTR_LIST_BYTES_MAX);
  const ProcPath proc(fd);
  const ssize_t n = listxattr(proc.c_str(), names.data(), names.size());
  if (n < 0) return errno == ENOTSUP ? 0 : errno;
  std::vector<char> value(XATTR_VALUE_BYTES_MAX);
  for (size_t at = 0; at < static_cast<size_t>(n);) {
    const char* name = names.data() + at;
    const size_t len = strnlen(name, static_cast<size_t>(n) - at);
    at += len + 1;
    if (std::strncmp(name, HIDDEN_XATTR_PREFIX, sizeof HIDDEN_XATTR_PREFIX - 1) == 0) continue;
    if (len > XATTR_NAME_BYTES_MAX) continue;
    const ssize_t v = getxattr(proc.c_str(), name, value.data(), value.size());
    if (v < 0 && errno == ENODATA) continue;  // removed between list and get: impossible
    if (v < 0) return errno;                  // under the lock, but the kernel may say so
    (*out)[std::string(name, len)] = std::string(value.data(), static_cast<size_t>(v));
  }
  return 0;
}

/** SETXATTR for what the target lacks or has otherwise, REMOVEXATTR for what it has extra. */
void emit_xattrs(Emitter& e, int fd, const struct stat& st, const SyncEmitRequest& req) {
  std::map<std::string, std::string> mine;
  if (const int err = list_xattrs(fd, &mine); err != 0) {
    e.err = err;
    return;
  }
  std::map<std::string, std::string> theirs;
  for (const SyncXattr& x : req.target_xattrs) theirs[x.name] = x.value;
  for (const auto& [name, value] : mine) {
    const auto it = theirs.find(name);
    if (req.target_xattrs_known && it != theirs.end() && it->second == value) continue;
    auto w = e.begin();
    w.u64(st.st_ino); w.u32(0); w.bytes(req.path); w.bytes(name); w.bytes(value);
    e.end(RecordKind::SETXATTR);
  }
  if (!req.target_xattrs_known) return;
  for (const auto& [name, value] : theirs) {
    if (mine.count(name) != 0) continue;
    if (name.compare(0, sizeof HIDDEN_XATTR_PREFIX - 1, HIDDEN_XATTR_PREFIX) == 0) continue;
    auto w = e.begin();
    w.u64(st.st_ino); w.bytes(req.path); w.bytes(name);
    e.end(RecordKind::REMOVEXATTR);
  }
}

void emit_utimens(Emitter& e, const struct stat& st, const std::string& path) {
  auto w = e.begin();
  w.u64(st.st_ino); w.i64(ns_of(st.st_atim)); w.i64(ns_of(st.st_mtim)); w.bytes(path);
  e.end(RecordKind::UTIMENS);
}

void emit_adopt(Emitter& e, const struct stat& st, const std::string& path) {
  auto w = e.begin();
  w.u64(st.st_ino); w.u32(st.st_mode); w.u32(st.st_uid); w.u32(st.st_gid);
  w.u64(S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0);
  w.i64(ns_of(st.st_mtim)); w.bytes(path);
  e.end(RecordKind::ADOPT);
}

/** WRITE records (<= WRITE_DATA_BYTES_MAX each) for the ranges, read now with pread. */
void emit_ranges(Emitter& e, int opath, const struct stat& st, const SyncEmitRequest& req) {
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::vector<SyncRange> ranges = req.full ? std::vector<SyncRange>{{0, size}} : req.ranges;
  if (ranges.empty()) return;
  // No O_NOFOLLOW: the magic link is followed to the object, which fstat said is a file.
  const Fd fd(open(ProcPath(opath).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    e.err = errno;
    return;
  }
  std::vector<char> data(WRITE_DATA_BYTES_MAX);
  for (const SyncRange& r : ranges) {
    const uint64_t end = std::min(size, r.offset + std::min(r.length, size));
    for (uint64_t at = r.offset; at < end && e.err == 0;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(end - at, data.size()));
      const ssize_t n = pread(fd.get(), data.data(), want, static_cast<off_t>(at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        e.err = n < 0 ? errno : EIO;  // shorter than fstat said, under the lock: not ours
        return;
      }
      auto w = e.begin();
      w.u64(st.st_ino); w.u64(at); w.i64(ns_of(st.st_mtim)); w.bytes(req.path);
      w.raw(data.data(), static_cast<size_t>(n));
      e.end(RecordKind::WRITE);
      e.result->data_bytes += static_cast<uint64_t>(n);
      at += static_cast<uint64_t>(n);
    }
  }
}

/** LINK from `link_from` when it is the same inode; false when it is not (emit normally). */
bool emit_link(Emitter& e, OpsContext& ctx, const struct stat& st, const SyncEmitRequest& req) {
  int fd = -1;
  if (open_beneath(ctx, req.link_from, &fd) != 0) return false;
  const Fd guard(fd);
  struct stat from;
  if (fstatat(fd, "", &from, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return false;
  if (from.st_ino != st.st_ino || from.st_dev != st.st_dev) return false;
  int64_t parent_ns = 0;
  if (const int err = parent_mtime(ctx, req.path, &parent_ns); err != 0) {
    e.err = err;
    return true;
  }
  auto w = e.begin();
  w.u64(st.st_ino); w.i64(parent_ns); w.bytes(req.link_from); w.bytes(req.path);
  e.end(RecordKind::LINK);
  e.result->linked = true;
  return true;
}

void emit_symlink(Emitter& e, OpsContext& ctx, int fd, const struct stat& st,
                  const std::string& path) {
  std::vector<char> target(SYMLINK_TARGET_BYTES_MAX + 1);
  const ssize_t n = readlinkat(fd, "", target.data(), target.size());
  if (n <= 0 || static_cast<size_t>(n) > SYMLINK_TARGET_BYTES_MAX) {
    e.err = n < 0 ? errno : ENAMETOOLONG;
    return;
  }
  int64_t parent_ns = 0;
  if (const int err = parent_mtime(ctx, path, &parent_ns); err != 0) {
    e.err = err;
    return;
  }
  auto w = e.begin();
  w.u64(st.st_ino); w.u32(st.st_uid); w.u32(st.st_gid); w.i64(ns_of(st.st_mtim));
  w.i64(parent_ns); w.bytes(path); w.bytes(target.data(), static_cast<size_t>(n));
  e.end(RecordKind::SYMLINK);
}

void emit_node(Emitter& e, OpsContext& ctx, const struct stat& st, const std::string& path) {
  int64_t parent_ns = 0;
  if (const int err = parent_mtime(ctx, path, &parent_ns); err != 0) {
    e.err = err;
    return;
  }
  auto w = e.begin();
  w.u64(st.st_ino); w.u32(st.st_mode); w.u32(st.st_uid); w.u32(st.st_gid);
  w.u64(st.st_rdev); w.i64(ns_of(st.st_mtim)); w.i64(parent_ns); w.bytes(path);
  e.end(RecordKind::CREATE);
}

/** The vault root: owner and mode (CHOWN carries both) and xattrs; never ADOPT. */
void emit_root(Emitter& e, int fd, const struct stat& st, const SyncEmitRequest& req) {
  auto w = e.begin();
  w.u64(st.st_ino); w.u32(st.st_uid); w.u32(st.st_gid); w.u32(st.st_mode & 07777);
  w.bytes(req.path);
  e.end(RecordKind::CHOWN);
  if (req.xattrs) emit_xattrs(e, fd, st, req);
}

uint64_t range_bytes(const SyncEmitRequest& req) {
  uint64_t total = 0;
  for (const SyncRange& r : req.ranges) total += std::min(r.length, SYNC_EMIT_BYTES_MAX + 1);
  return total;
}

/** Emits by type; caller holds the namespace lock exclusive. */
void emit_object(Emitter& e, OpsContext& ctx, int fd, const struct stat& st,
                 const SyncEmitRequest& req) {
  if (req.path.empty()) return emit_root(e, fd, st, req);
  // Any non-directory can be hard-linked, symlinks and fifos too (link(2) does not follow).
  if (!S_ISDIR(st.st_mode) && !req.link_from.empty() && emit_link(e, ctx, st, req)) return;
  if (S_ISLNK(st.st_mode)) return emit_symlink(e, ctx, fd, st, req.path);
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return emit_node(e, ctx, st, req.path);
  if (req.adopt) emit_adopt(e, st, req.path);
  if (S_ISREG(st.st_mode)) emit_ranges(e, fd, st, req);
  if (req.xattrs) emit_xattrs(e, fd, st, req);
  if (S_ISREG(st.st_mode) && req.times) emit_utimens(e, st, req.path);
}

int settle(OpsContext& ctx, const Emitter& e, std::string* why, const std::string& path) {
  if (e.err != 0) {
    *why = "emitting sync records for '" + path + "': " + std::strerror(e.err);
    return e.err;
  }
  if (e.result->last_seq != 0 && ctx.journal->wait_written(e.result->last_seq) != 0) {
    *why = "the journal failed while writing sync records for '" + path + "'";
    return EIO;
  }
  return 0;
}

}  // namespace

int sync_emit(OpsContext& ctx, const SyncEmitRequest& req, SyncEmitResult* result,
              std::string* why) {
  if (!req.path.empty() && !path_is_valid(req.path)) {
    *why = "not a vault path: '" + req.path + "'";
    return EINVAL;
  }
  if (!req.link_from.empty() && !path_is_valid(req.link_from)) {
    *why = "linkFrom is not a vault path";
    return EINVAL;
  }
  if (!req.full && range_bytes(req) > SYNC_EMIT_BYTES_MAX) {
    *why = "ranges of more than SYNC_EMIT_BYTES_MAX bytes in one call: split them";
    return EFBIG;
  }
  Emitter e{ctx, result, {}};
  {
    // Invariant 1: no live mutation between the state read here and its records.
    std::unique_lock names(ctx.namespace_lock);
    int raw = -1;
    const int err = open_beneath(ctx, req.path, &raw);
    if (err != 0 && means_missing(err)) {
      result->missing = true;
      return 0;
    }
    if (err != 0) {
      *why = "opening '" + req.path + "' beneath the backing root: " + std::strerror(err);
      return err;
    }
    const Fd fd(raw);
    struct stat st;
    if (fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
      *why = "stat of '" + req.path + "': " + std::strerror(errno);
      return errno;
    }
    result->type = st.st_mode & S_IFMT;
    result->ino = st.st_ino;
    result->nlink = st.st_nlink;
    result->size = static_cast<uint64_t>(st.st_size);
    result->mtime_ns = ns_of(st.st_mtim);
    if (req.full && S_ISREG(st.st_mode) && result->size > SYNC_EMIT_BYTES_MAX) {
      *why = "a full emit of more than SYNC_EMIT_BYTES_MAX bytes in one call: use ranges";
      return EFBIG;
    }
    emit_object(e, ctx, fd.get(), st, req);
  }
  return settle(ctx, e, why, req.path);
}

int sync_emit_times(OpsContext& ctx, const std::string& path, SyncEmitResult* result,
                    std::string* why) {
  if (!path.empty() && !path_is_valid(path)) {
    *why = "not a vault path: '" + path + "'";
    return EINVAL;
  }
  Emitter e{ctx, result, {}};
  {
    std::unique_lock names(ctx.namespace_lock);
    int raw = -1;
    const int err = open_beneath(ctx, path, &raw);
    if (err != 0) {
      if (!means_missing(err)) *why = "opening '" + path + "': " + std::strerror(err);
      result->missing = means_missing(err);
      return result->missing ? 0 : err;
    }
    const Fd fd(raw);
    struct stat st;
    if (fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return errno;
    result->type = st.st_mode & S_IFMT;
    result->ino = st.st_ino;
    result->mtime_ns = ns_of(st.st_mtim);
    emit_utimens(e, st, path);
  }
  return settle(ctx, e, why, path);
}

int sync_emit_begin(OpsContext& ctx, uint64_t sync_id, uint32_t flags, const std::string& path,
                    uint64_t* seq, std::string* why) {
  if ((!path.empty() && !path_is_valid(path)) || flags > 3) {
    *why = "SYNC_BEGIN with a bad subtree path or flags";
    return EINVAL;
  }
  SyncEmitResult result;
  Emitter e{ctx, &result, {}};
  {
    std::unique_lock names(ctx.namespace_lock);
    auto w = e.begin();
    w.u64(sync_id); w.u32(flags); w.bytes(path);
    e.end(RecordKind::SYNC_BEGIN);
  }
  *seq = result.last_seq;
  return settle(ctx, e, why, path);
}

int sync_emit_end(OpsContext& ctx, uint64_t sync_id, uint64_t entries, uint64_t data_bytes,
                  uint64_t* seq, std::string* why) {
  SyncEmitResult result;
  Emitter e{ctx, &result, {}};
  {
    std::unique_lock names(ctx.namespace_lock);
    auto w = e.begin();
    w.u64(sync_id); w.u64(entries); w.u64(data_bytes);
    e.end(RecordKind::SYNC_END);
  }
  *seq = result.last_seq;
  return settle(ctx, e, why, "");
}

}  // namespace understudy
