// Tests the batch applier: every kind, exactly-once on re-apply after a crash at any record,
// and confinement against hostile records. Needs root (trusted.* xattrs, chown, mknod).
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../applier.h"
#include "../record_codec.h"

using namespace understudy;

static int failures = 0;
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                          \
    }                                                                      \
  } while (0)

namespace {

constexpr int64_t T = 1700000000000000000;  // a base time in ns; every record adds to it

// ---- temp dirs ------------------------------------------------------------------------

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  return ::remove(path);
}

/** A directory under /tmp removed (with its content) when the test is done. */
struct TmpDir {
  std::string path;
  explicit TmpDir(const char* tag) {
    std::string pattern = std::string("/tmp/applier-test-") + tag + "-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    path = mkdtemp(buf.data()) != nullptr ? buf.data() : "";
    if (path.empty()) std::abort();  // the test cannot run without a temp dir
  }
  ~TmpDir() { nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }
  std::string operator/(const std::string& rel) const { return path + "/" + rel; }
};

// ---- record builder -------------------------------------------------------------------

/** Builds framed records; each is kept apart too, for prefix replays. */
struct Batch {
  std::vector<std::vector<uint8_t>> records;
  uint64_t seq = 1;
  uint32_t epoch = 1;
  std::vector<uint8_t> payload;

  PayloadWriter begin() { return PayloadWriter(payload); }
  void end(RecordKind kind) {
    std::vector<uint8_t> framed;
    frame_record(framed, {seq++, epoch, static_cast<uint16_t>(kind),
                          static_cast<uint32_t>(payload.size()), T},
                 payload.data());
    records.push_back(std::move(framed));
  }
  std::vector<uint8_t> bytes(size_t from = 0, size_t to = SIZE_MAX) const {
    std::vector<uint8_t> out;
    for (size_t i = from; i < records.size() && i < to; ++i) {
      out.insert(out.end(), records[i].begin(), records[i].end());
    }
    return out;
  }

  void create(uint64_t fid, uint32_t mode, const char* path, int64_t t, uint64_t rdev = 0,
              uint32_t uid = 0, uint32_t gid = 0) {
    auto w = begin();
    w.u64(fid); w.u32(mode); w.u32(uid); w.u32(gid); w.u64(rdev); w.i64(T + t);
    w.i64(T + t + 1); w.bytes(std::string_view(path));
    end(RecordKind::CREATE);
  }
  void mkdir(uint64_t fid, uint32_t mode, const char* path, int64_t t) {
    auto w = begin();
    w.u64(fid); w.u32(S_IFDIR | mode); w.u32(0); w.u32(0); w.i64(T + t); w.i64(T + t + 1);
    w.bytes(std::string_view(path));
    end(RecordKind::MKDIR);
  }
  void symlink(uint64_t fid, const char* path, const char* target, int64_t t) {
    auto w = begin();
    w.u64(fid); w.u32(1000); w.u32(1000); w.i64(T + t); w.i64(T + t + 1);
    w.bytes(std::string_view(path)); w.bytes(std::string_view(target));
    end(RecordKind::SYMLINK);
  }
  void link(uint64_t fid, const char* from, const char* to, int64_t t) {
    auto w = begin();
    w.u64(fid); w.i64(T + t); w.bytes(std::string_view(from)); w.bytes(std::string_view(to));
    end(RecordKind::LINK);
  }
  void remove(RecordKind kind, uint64_t fid, const char* path, int64_t t) {
    auto w = begin();
    w.u64(fid); w.i64(T + t); w.bytes(std::string_view(path));
    end(kind);
  }
  void rename(uint64_t moved, uint64_t replaced, uint32_t flags, const char* from,
              const char* to, int64_t t) {
    auto w = begin();
    w.u64(moved); w.u64(replaced); w.u32(flags); w.i64(T + t); w.i64(T + t + 1);
    w.bytes(std::string_view(from)); w.bytes(std::string_view(to));
    end(RecordKind::RENAME);
  }
  void write(uint64_t fid, uint64_t offset, const char* path, std::string_view data,
             int64_t t) {
    auto w = begin();
    w.u64(fid); w.u64(offset); w.i64(T + t); w.bytes(std::string_view(path));
    w.raw(data.data(), data.size());
    end(RecordKind::WRITE);
  }
  void truncate(uint64_t fid, uint64_t size, const char* path, int64_t t) {
    auto w = begin();
    w.u64(fid); w.u64(size); w.i64(T + t); w.bytes(std::string_view(path));
    end(RecordKind::TRUNCATE);
  }
  void chmod(uint64_t fid, uint32_t mode, const char* path) {
    auto w = begin();
    w.u64(fid); w.u32(mode); w.bytes(std::string_view(path));
    end(RecordKind::CHMOD);
  }
  void chown(uint64_t fid, uint32_t uid, uint32_t gid, uint32_t mode, const char* path) {
    auto w = begin();
    w.u64(fid); w.u32(uid); w.u32(gid); w.u32(mode); w.bytes(std::string_view(path));
    end(RecordKind::CHOWN);
  }
  void utimens(uint64_t fid, int64_t atime, int64_t mtime, const char* path) {
    auto w = begin();
    w.u64(fid); w.i64(T + atime); w.i64(T + mtime); w.bytes(std::string_view(path));
    end(RecordKind::UTIMENS);
  }
  void setxattr(uint64_t fid, const char* path, const char* name, const char* value) {
    auto w = begin();
    w.u64(fid); w.u32(0); w.bytes(std::string_view(path)); w.bytes(std::string_view(name));
    w.bytes(std::string_view(value));
    end(RecordKind::SETXATTR);
  }
  void removexattr(uint64_t fid, const char* path, const char* name) {
    auto w = begin();
    w.u64(fid); w.bytes(std::string_view(path)); w.bytes(std::string_view(name));
    end(RecordKind::REMOVEXATTR);
  }
  void fallocate(uint64_t fid, uint32_t mode, uint64_t off, uint64_t len, uint64_t size_after,
                 const char* path, int64_t t) {
    auto w = begin();
    w.u64(fid); w.u32(mode); w.u64(off); w.u64(len); w.u64(size_after); w.i64(T + t);
    w.bytes(std::string_view(path));
    end(RecordKind::FALLOCATE);
  }
  void adopt(uint64_t fid, uint32_t mode, uint64_t size, const char* path, int64_t t,
             uint32_t uid = 0, uint32_t gid = 0) {
    auto w = begin();
    w.u64(fid); w.u32(mode); w.u32(uid); w.u32(gid); w.u64(size); w.i64(T + t);
    w.bytes(std::string_view(path));
    end(RecordKind::ADOPT);
  }
  void sync_begin(uint64_t id, uint32_t flags, const char* path) {
    auto w = begin();
    w.u64(id); w.u32(flags); w.bytes(std::string_view(path));
    end(RecordKind::SYNC_BEGIN);
  }
  void sync_end(uint64_t id, uint64_t entries, uint64_t bytes) {
    auto w = begin();
    w.u64(id); w.u64(entries); w.u64(bytes);
    end(RecordKind::SYNC_END);
  }
};

// ---- applying -------------------------------------------------------------------------

struct Run {
  ApplyResult result;
  BatchFailure failure;
  bool ok = false;
};

Run apply_bytes(const std::string& root, const std::vector<uint8_t>& bytes) {
  Run run;
  int err = 0;
  std::unique_ptr<Applier> applier(Applier::open(root.c_str(), &err));
  if (!applier) {
    std::fprintf(stderr, "FAIL cannot open %s: %s\n", root.c_str(), std::strerror(err));
    ++failures;
    return run;
  }
  run.ok = applier->apply(bytes.data(), bytes.size(), &run.result, &run.failure);
  return run;
}

void print_errors(const Run& run) {
  for (const ApplyError& e : run.result.errors) {
    std::fprintf(stderr, "  error: %s %s\n", e.code.c_str(), e.message.c_str());
  }
}

// ---- tree snapshot: an independent walk, every attribute invariant 4 names -------------

std::string describe_xattrs(const std::string& path) {
  char names[4096];
  const ssize_t n = llistxattr(path.c_str(), names, sizeof names);
  std::map<std::string, std::string> all;
  for (ssize_t at = 0; at < n; at += static_cast<ssize_t>(std::strlen(names + at)) + 1) {
    const std::string name(names + at);
    if (name == "trusted.understudy.applied") continue;  // the root's mark, not content
    char value[1024];
    const ssize_t v = lgetxattr(path.c_str(), name.c_str(), value, sizeof value);
    all[name] = v >= 0 ? std::string(value, static_cast<size_t>(v)) : "?";
  }
  std::string out;
  for (const auto& [name, value] : all) out += " x:" + name + "=" + value;
  return out;
}

std::string describe(const std::string& path, const struct stat& st) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "type=%o mode=%o uid=%u gid=%u nlink=%lu mtime=%ld.%09ld",
                st.st_mode & S_IFMT, st.st_mode & 07777, st.st_uid, st.st_gid,
                static_cast<unsigned long>(st.st_nlink), static_cast<long>(st.st_mtim.tv_sec),
                st.st_mtim.tv_nsec);
  std::string out = buf;
  if (S_ISREG(st.st_mode)) {
    std::string content(static_cast<size_t>(st.st_size), '\0');
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW);
    if (fd >= 0 && pread(fd, content.data(), content.size(), 0) != st.st_size) content = "?";
    if (fd >= 0) ::close(fd);
    out += " size=" + std::to_string(st.st_size) + " content=" + content;
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    const ssize_t n = readlink(path.c_str(), target, sizeof target);
    out += " target=" + std::string(target, n > 0 ? static_cast<size_t>(n) : 0);
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    out += " rdev=" + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
  }
  return out + describe_xattrs(path);
}

void walk(const std::string& root, const std::string& rel,
          std::map<std::string, std::string>* out) {
  const std::string path = rel.empty() ? root : root + "/" + rel;
  struct stat st;
  if (lstat(path.c_str(), &st) < 0) return;
  (*out)[rel] = describe(path, st);
  if (!S_ISDIR(st.st_mode)) return;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> names;
  while (const dirent* e = readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      names.push_back(e->d_name);
    }
  }
  closedir(dir);
  for (const std::string& name : names) walk(root, rel.empty() ? name : rel + "/" + name, out);
}

std::map<std::string, std::string> snapshot(const std::string& root) {
  std::map<std::string, std::string> tree;
  walk(root, "", &tree);
  return tree;
}

bool same_tree(const std::map<std::string, std::string>& a,
               const std::map<std::string, std::string>& b, const std::string& what) {
  bool same = true;
  for (const auto& [path, desc] : a) {
    const auto it = b.find(path);
    if (it == b.end()) {
      std::fprintf(stderr, "  %s: '%s' only in the reference\n", what.c_str(), path.c_str());
      same = false;
    } else if (it->second != desc) {
      std::fprintf(stderr, "  %s: '%s' differs:\n    ref %s\n    got %s\n", what.c_str(),
                   path.c_str(), desc.c_str(), it->second.c_str());
      same = false;
    }
  }
  for (const auto& [path, desc] : b) {
    if (a.find(path) == a.end()) {
      std::fprintf(stderr, "  %s: '%s' only in the replay\n", what.c_str(), path.c_str());
      same = false;
    }
  }
  return same;
}

}  // namespace

namespace {

/** Every kind, with renames over, an exchange, hard links and a directory move. */
Batch every_kind_batch() {
  Batch b;
  b.mkdir(10, 0755, "d", 1);
  b.create(11, S_IFREG | 0644, "d/f", 3, 0, 1000, 1000);
  b.write(11, 0, "d/f", "hello, world", 5);
  b.truncate(11, 5, "d/f", 6);
  b.fallocate(11, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1, 2, 5, "d/f", 7);
  b.write(11, 5, "d/f", "!", 8);
  b.chmod(11, 04755, "d/f");
  b.chown(11, 1001, 1002, 0755, "d/f");  // the chown cleared setuid on the source
  b.setxattr(11, "d/f", "user.a", "1");
  b.setxattr(11, "d/f", "user.b", "2");
  b.removexattr(11, "d/f", "user.a");
  b.utimens(11, 9, 10, "d/f");
  b.symlink(12, "d/l", "f", 11);
  b.link(11, "d/f", "d/h", 13);
  b.create(13, S_IFREG | 0600, "d/g", 14);
  b.write(13, 0, "d/g", "gggg", 16);
  b.rename(13, 0, 0, "d/g", "d/g2", 17);
  b.create(15, S_IFREG | 0640, "d/x", 19);
  b.write(15, 0, "d/x", "xx", 21);
  b.rename(15, 13, 0, "d/x", "d/g2", 22);
  b.rename(11, 12, RENAME_EXCHANGE, "d/h", "d/l", 24);
  b.remove(RecordKind::UNLINK, 11, "d/f", 26);
  b.mkdir(16, 0700, "e", 27);
  b.mkdir(17, 0700, "e/sub", 29);
  b.remove(RecordKind::RMDIR, 17, "e/sub", 31);
  b.rename(16, 0, RENAME_NOREPLACE, "e", "d/e", 32);
  b.create(18, S_IFIFO | 0600, "d/p", 34);
  b.create(19, S_IFCHR | 0666, "d/null", 36, makedev(1, 3));
  b.mkdir(20, 0755, "tmp", 38);  // the atomic-publish pattern: fill a directory, rename it
  b.create(21, S_IFREG | 0644, "tmp/a", 40);
  b.write(21, 0, "tmp/a", "published", 42);
  b.rename(20, 0, 0, "tmp", "pub", 43);
  b.create(22, S_IFREG | 0644, "lock", 45);  // a name used, dropped, then reused by a rename
  b.remove(RecordKind::UNLINK, 22, "lock", 47);
  b.rename(15, 0, 0, "d/g2", "lock", 48);
  b.chmod(0, 0751, "");
  b.setxattr(0, "", "user.root", "r");
  b.utimens(0, 50, 51, "");
  return b;
}

std::string xattr(const std::string& path, const char* name) {
  char value[256];
  const ssize_t n = lgetxattr(path.c_str(), name, value, sizeof value);
  return n >= 0 ? std::string(value, static_cast<size_t>(n)) : "<none>";
}

uint64_t fid_of(const std::string& path) {
  const std::string v = xattr(path, FID_XATTR_NAME);
  return v.size() == 8 ? get_u64(reinterpret_cast<const uint8_t*>(v.data())) : 0;
}

std::string read_file(const std::string& path) {
  char buf[256];
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW);
  const ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf, 0) : -1;
  if (fd >= 0) ::close(fd);
  return n >= 0 ? std::string(buf, static_cast<size_t>(n)) : "<unreadable>";
}

void test_every_kind() {
  TmpDir root("kinds");
  const Batch b = every_kind_batch();
  const Run run = apply_bytes(root.path, b.bytes());
  CHECK(run.ok);
  CHECK(run.result.errors.empty());
  print_errors(run);
  CHECK(run.result.applied == b.records.size() && run.result.skipped == 0);
  CHECK(run.result.last_seq == b.records.size() && !run.result.stopped);

  struct stat st{};
  CHECK(lstat((root / "d/l").c_str(), &st) == 0 && S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0755 && st.st_uid == 1001 && st.st_gid == 1002);
  CHECK(st.st_nlink == 1 && st.st_size == 6 && st.st_mtim.tv_nsec == (T + 10) % 1000000000);
  CHECK(read_file(root / "d/l") == std::string("h\0\0lo!", 6));
  CHECK(xattr(root / "d/l", "user.b") == "2" && xattr(root / "d/l", "user.a") == "<none>");
  CHECK(fid_of(root / "d/l") == 11);
  char target[16] = {};
  CHECK(readlink((root / "d/h").c_str(), target, sizeof target) == 1 && target[0] == 'f');
  CHECK(fid_of(root / "d/h") == 12);
  CHECK(lstat((root / "d/f").c_str(), &st) < 0 && lstat((root / "d/g2").c_str(), &st) < 0);
  CHECK(lstat((root / "lock").c_str(), &st) == 0 && st.st_size == 2 && fid_of(root / "lock") == 15);
  CHECK(lstat((root / "d/e").c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK(fid_of(root / "d/e") == 16);
  CHECK(lstat((root / "d/e/sub").c_str(), &st) < 0 && lstat((root / "e").c_str(), &st) < 0);
  CHECK(lstat((root / "d/p").c_str(), &st) == 0 && S_ISFIFO(st.st_mode));
  CHECK(lstat((root / "d/null").c_str(), &st) == 0 && S_ISCHR(st.st_mode) &&
        st.st_rdev == makedev(1, 3));
  CHECK(lstat((root / "pub/a").c_str(), &st) == 0 && st.st_size == 9);
  CHECK(lstat((root / "tmp").c_str(), &st) < 0);
  CHECK(lstat(root.path.c_str(), &st) == 0 && (st.st_mode & 07777) == 0751);
  CHECK(st.st_mtim.tv_nsec == (T + 51) % 1000000000);
  CHECK(xattr(root.path, "user.root") == "r");
  CHECK(lstat((root / "d").c_str(), &st) == 0 && st.st_mtim.tv_nsec == 48);
}

}  // namespace

namespace {

/** Removes the root's high-water mark: what a power cut that lost it would leave. */
void forget_mark(const std::string& root) {
  int err = 0;
  std::unique_ptr<Applier> applier(Applier::open(root.c_str(), &err));
  CHECK(applier && applier->forget_high_water() == 0);
}

void test_apply_twice() {
  TmpDir once("once"), twice("twice");
  const Batch b = every_kind_batch();
  apply_bytes(once.path, b.bytes());
  apply_bytes(twice.path, b.bytes());
  const Run again = apply_bytes(twice.path, b.bytes());
  CHECK(again.ok && again.result.errors.empty() && again.result.applied == 0);
  CHECK(again.result.skipped == b.records.size());
  CHECK(same_tree(snapshot(once.path), snapshot(twice.path), "twice"));
  forget_mark(twice.path);  // by the fid rules alone
  const Run by_fid = apply_bytes(twice.path, b.bytes());
  print_errors(by_fid);
  CHECK(by_fid.ok && by_fid.result.errors.empty());
  CHECK(same_tree(snapshot(once.path), snapshot(twice.path), "twice by fid"));
}

/**
 * A crash after any record: `base` was checkpointed, then a prefix of `b` was applied, then
 * all of `b` is re-sent. With the mark (a killed process) and without it (fid rules only).
 */
void check_every_prefix(const Batch& base, const Batch& b, bool keep_mark, const char* what) {
  TmpDir ref("ref");
  apply_bytes(ref.path, base.bytes());
  apply_bytes(ref.path, b.bytes());
  const auto expected = snapshot(ref.path);
  for (size_t prefix = 0; prefix <= b.records.size(); ++prefix) {
    TmpDir root("prefix");
    apply_bytes(root.path, base.bytes());
    apply_bytes(root.path, b.bytes(0, prefix));
    if (!keep_mark) forget_mark(root.path);
    const Run run = apply_bytes(root.path, b.bytes());
    const std::string label = std::string(what) + " after prefix " + std::to_string(prefix);
    if (!run.ok || !run.result.errors.empty()) {
      std::fprintf(stderr, "FAIL %s: errors\n", label.c_str());
      print_errors(run);
      ++failures;
    }
    if (!same_tree(expected, snapshot(root.path), label)) {
      std::fprintf(stderr, "FAIL %s: trees differ\n", label.c_str());
      ++failures;
    }
  }
}

/** Objects older than the checkpoint, moved and replaced in the replayed batch. */
void history_batches(Batch* base, Batch* b) {
  base->mkdir(30, 0755, "data", 1);
  base->create(31, S_IFREG | 0644, "data/db", 2);
  base->write(31, 0, "data/db", "old database", 4);
  base->create(32, S_IFREG | 0644, "data/log", 5);
  base->write(32, 0, "data/log", "log 1", 6);
  base->mkdir(33, 0755, "old", 7);
  b->seq = base->seq;
  b->create(34, S_IFREG | 0644, "data/db.new", 10);
  b->write(34, 0, "data/db.new", "new database", 11);
  b->rename(34, 31, 0, "data/db.new", "data/db", 12);  // editor save: write then replace
  b->rename(32, 0, 0, "data/log", "data/log.1", 14);     // log rotation
  b->create(35, S_IFREG | 0644, "data/log", 16);
  b->write(35, 0, "data/log", "log 2", 17);
  b->write(32, 5, "data/log.1", " tail", 18);
  b->rename(33, 0, 0, "old", "data/old", 19);
  b->link(35, "data/log", "data/log.link", 21);
}

void test_crash_after_any_record() {
  const Batch empty;
  check_every_prefix(empty, every_kind_batch(), true, "every kind, mark kept");
  check_every_prefix(empty, every_kind_batch(), false, "every kind, fid rules");
  Batch base, b;
  history_batches(&base, &b);
  check_every_prefix(base, b, true, "history, mark kept");
  check_every_prefix(base, b, false, "history, fid rules");
}

/** The record in flight at a kill left an object without its fid: re-applying replaces it. */
void test_half_made_object() {
  TmpDir ref("half-ref"), root("half");
  Batch b;
  b.create(40, S_IFREG | 0600, "f", 1);
  b.write(40, 0, "f", "data", 2);
  apply_bytes(ref.path, b.bytes());
  const int fd = ::open((root / "f").c_str(), O_CREAT | O_WRONLY, 0644);
  CHECK(fd >= 0 && ::write(fd, "junk!", 5) == 5);
  ::close(fd);
  const Run run = apply_bytes(root.path, b.bytes());
  CHECK(run.ok && run.result.errors.empty() && run.result.applied == 2);
  CHECK(same_tree(snapshot(ref.path), snapshot(root.path), "half-made"));
}

}  // namespace

namespace {

bool has_error(const Run& run, uint64_t seq, const char* code) {
  for (const ApplyError& e : run.result.errors) {
    if (e.seq == seq && e.code == code) return true;
  }
  std::fprintf(stderr, "  expected %s at seq %llu; got:\n", code,
               static_cast<unsigned long long>(seq));
  print_errors(run);
  return false;
}

/** A fatal record stops the batch: the CREATE after it must not happen. */
void check_stops(const std::string& root, Batch b, const char* code) {
  const uint64_t bad = b.seq - 1;
  b.create(99, S_IFREG | 0644, "after-the-stop", 90);
  const Run run = apply_bytes(root, b.bytes());
  CHECK(run.result.stopped && run.result.stopped_at == bad);
  CHECK(has_error(run, bad, code));
  struct stat st;
  CHECK(lstat((root + "/after-the-stop").c_str(), &st) < 0);
}

void test_hostile_records() {
  TmpDir outside("outside"), root("hostile");
  CHECK(::mkdir((outside / "dir").c_str(), 0755) == 0);
  const int fd = ::open((outside / "dir/victim").c_str(), O_CREAT | O_WRONLY, 0644);
  CHECK(fd >= 0 && ::write(fd, "precious", 8) == 8);
  ::close(fd);
  const auto outside_before = snapshot(outside.path);
  CHECK(::symlink((outside / "dir").c_str(), (root / "evil").c_str()) == 0);
  CHECK(::symlink("../../../../../..", (root / "dots").c_str()) == 0);

  Batch b;
  b.write(1, 0, "../x", "x", 1);
  b.create(2, S_IFREG | 0644, (outside / "dir/new").c_str(), 2);
  b.mkdir(3, 0755, "a/../../x", 3);
  b.write(4, 0, "evil", "through the link", 4);  // the link itself: no fid, never followed
  b.symlink(5, "ours", (outside / "dir/victim").c_str(), 5);
  b.write(5, 0, "ours", "through our link", 6);
  b.truncate(5, 0, "ours", 7);
  b.chmod(5, 0777, "ours");
  b.create(6, S_IFREG | 0644, "f", 8);
  b.setxattr(6, "f", "trusted.understudy.fid", "\x01\0\0\0\0\0\0\0");
  b.removexattr(6, "f", "trusted.understudy.fid");
  b.setxattr(0, "", "trusted.understudy.applied", "");
  const Run run = apply_bytes(root.path, b.bytes());
  CHECK(run.ok && !run.result.stopped && run.result.last_seq == 12);
  CHECK(has_error(run, 1, "APPLY_PATH_INVALID") && has_error(run, 2, "APPLY_PATH_INVALID"));
  CHECK(has_error(run, 3, "APPLY_PATH_INVALID") && has_error(run, 4, "APPLY_FID_MISSING"));
  CHECK(has_error(run, 6, "ELOOP") && has_error(run, 7, "ELOOP"));
  CHECK(has_error(run, 8, "EOPNOTSUPP") && has_error(run, 10, "APPLY_XATTR_RESERVED"));
  CHECK(has_error(run, 11, "APPLY_XATTR_RESERVED") && has_error(run, 12, "APPLY_XATTR_RESERVED"));
  CHECK(fid_of(root / "f") == 6);

  Batch escape;  // through a symlink in the replica that points outside
  escape.seq = 20;
  escape.create(7, S_IFREG | 0644, "evil/new", 20);
  check_stops(root.path, escape, "EXDEV");
  Batch link_in;  // hard-linking an outside file into the replica
  link_in.seq = 30;
  link_in.link(8, "evil/victim", "stolen", 30);
  check_stops(root.path, link_in, "EXDEV");
  Batch dots;
  dots.seq = 40;
  dots.write(9, 0, "dots/tmp/x", "x", 40);
  check_stops(root.path, dots, "EXDEV");
  Batch rename_out;
  rename_out.seq = 50;
  rename_out.rename(6, 0, 0, "f", "evil/f", 50);
  check_stops(root.path, rename_out, "EXDEV");
  CHECK(same_tree(outside_before, snapshot(outside.path), "outside the root"));
  CHECK(read_file(outside / "dir/victim") == "precious");
}

void test_corrupt_batches() {
  TmpDir root("corrupt");
  Batch b;
  b.create(1, S_IFREG | 0644, "one", 1);
  b.create(2, S_IFREG | 0644, "two", 2);
  b.create(3, S_IFREG | 0644, "three", 3);
  std::vector<uint8_t> bytes = b.bytes();
  bytes[b.records[0].size() + 50] ^= 1;  // in the payload of seq 2
  Run run = apply_bytes(root.path, bytes);
  CHECK(run.ok && run.result.stopped && run.result.stopped_at == 2 && run.result.applied == 1);
  CHECK(has_error(run, 2, "APPLY_RECORD_CORRUPT"));
  struct stat st;
  CHECK(lstat((root / "three").c_str(), &st) < 0);

  bytes = b.bytes();
  bytes.resize(bytes.size() - 3);  // torn last record
  run = apply_bytes(root.path, bytes);
  CHECK(run.result.stopped && run.result.stopped_at == 3 && run.result.last_seq == 2);

  Batch backwards;
  backwards.seq = 10;
  backwards.create(4, S_IFREG | 0644, "four", 4);
  backwards.seq = 9;
  backwards.create(5, S_IFREG | 0644, "five", 5);
  run = apply_bytes(root.path, backwards.bytes());
  CHECK(run.result.stopped && run.result.stopped_at == 11);
  CHECK(has_error(run, 11, "APPLY_RECORD_CORRUPT"));

  Batch short_payload;
  short_payload.seq = 20;
  auto w = short_payload.begin();
  w.u64(7);
  short_payload.end(RecordKind::CREATE);
  check_stops(root.path, short_payload, "APPLY_RECORD_CORRUPT");

  std::vector<uint8_t> huge(APPLY_BATCH_BYTES_MAX + 1);
  run = apply_bytes(root.path, huge);
  CHECK(!run.ok && run.failure.code == "APPLY_BATCH_TOO_LARGE" && run.result.last_seq == 0);
}

/** On a file system that refuses a fallocate mode (tmpfs: zero range), the effect is emulated. */
void test_fallocate_fallback() {
  TmpDir mnt("tmpfs"), ref("falloc-ref");
  if (::system(("mount -t tmpfs -o size=8m none " + mnt.path + " 2>/dev/null").c_str()) != 0) {
    std::printf("applier_test: skip fallocate fallback (cannot mount tmpfs)\n");
    return;
  }
  Batch b;
  b.create(1, S_IFREG | 0644, "f", 1);
  b.write(1, 0, "f", "abcdefghij", 2);
  b.fallocate(1, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 2, 3, 10, "f", 3);
  b.fallocate(1, FALLOC_FL_ZERO_RANGE, 8, 8, 16, "f", 4);
  const Run run = apply_bytes(mnt.path, b.bytes());
  print_errors(run);
  CHECK(run.ok && run.result.errors.empty());
  CHECK(read_file(mnt / "f") == std::string("ab\0\0\0fgh\0\0\0\0\0\0\0\0", 16));
  apply_bytes(ref.path, b.bytes());
  CHECK(read_file(ref / "f") == read_file(mnt / "f"));
  ::system(("umount " + mnt.path).c_str());
}

/** A mark written in another boot is not trusted: the records are judged by fid again. */
void test_mark_from_another_boot_is_ignored() {
  TmpDir root("boot");
  Batch b;
  b.create(70, S_IFREG | 0644, "f", 1);
  b.write(70, 0, "f", "data", 2);
  apply_bytes(root.path, b.bytes());
  char mark[52];
  CHECK(getxattr(root.path.c_str(), "trusted.understudy.applied", mark, sizeof mark) == 52);
  mark[20] ^= 1;  // another boot id
  CHECK(setxattr(root.path.c_str(), "trusted.understudy.applied", mark, sizeof mark, 0) == 0);
  CHECK(truncate((root / "f").c_str(), 0) == 0);  // as if a power cut lost the data
  const Run run = apply_bytes(root.path, b.bytes());
  CHECK(run.ok && run.result.errors.empty() && run.result.applied == 1);
  CHECK(read_file(root / "f") == "data");
}

/** Without the mark, a replay that would lose an object reports it instead of deleting. */
void test_replay_conflict_is_reported() {
  TmpDir root("conflict");
  Batch base, b;
  base.create(60, S_IFREG | 0644, "y", 1);
  base.write(60, 0, "y", "keep me", 2);
  apply_bytes(root.path, base.bytes());
  b.seq = base.seq;
  b.mkdir(61, 0755, "tmp", 3);
  b.rename(60, 0, 0, "y", "tmp/y", 5);
  b.rename(61, 0, 0, "tmp", "pub", 7);
  b.rename(60, 0, 0, "pub/y", "y", 9);
  apply_bytes(root.path, b.bytes());
  forget_mark(root.path);
  const Run run = apply_bytes(root.path, b.bytes());
  CHECK(has_error(run, b.seq - 2, "APPLY_REPLAY_CONFLICT"));
  CHECK(read_file(root / "tmp/y") == "keep me" || read_file(root / "y") == "keep me");
}

}  // namespace

namespace {

void put_file(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  CHECK(fd >= 0 && write(fd, content.data(), content.size()) ==
                       static_cast<ssize_t>(content.size()));
  if (fd >= 0) ::close(fd);
}

/** A stale target: what an earlier era, a restore or an operator left in the replica. */
void make_stale_tree(const TmpDir& root) {
  put_file(root / "stale", "hello, world");  // no fid xattr: never made by the applier
  CHECK(::mkdir((root / "was-dir").c_str(), 0755) == 0);
  put_file(root / "was-file", "old");
  CHECK(::mkdir((root / "full-dir").c_str(), 0755) == 0);
  put_file(root / "full-dir/keep", "keep me");
  put_file(root / "h1", "linked");
  CHECK(link((root / "h1").c_str(), (root / "h2").c_str()) == 0);
}

Batch adopt_batch() {
  Batch b;
  b.sync_begin(7, SYNC_FLAG_CHECKSUM, "");
  b.adopt(30, S_IFREG | 0640, 5, "stale", 1, 1000, 1001);    // content kept, cut to 5
  b.adopt(31, S_IFDIR | 0750, 0, "new-dir", 2);               // missing: created
  b.adopt(32, S_IFREG | 0600, 3, "new-dir/new", 3);           // missing: created, extended
  b.adopt(33, S_IFREG | 0644, 0, "was-dir", 4);               // an empty dir: replaced
  b.adopt(34, S_IFDIR | 0700, 0, "was-file", 5);              // a file: replaced
  b.adopt(35, S_IFREG | 0644, 0, "full-dir", 6);              // refused, nothing deleted
  b.adopt(36, S_IFREG | 0644, 6, "h1", 7);                    // own inode: h2 untouched
  b.write(36, 0, "h1", "LINKED", 8);
  b.utimens(31, 9, 9, "new-dir");  // directory times last: their entries changed above
  b.utimens(0, 10, 10, "");
  b.sync_end(7, 7, 6);
  return b;
}

void check_adopted(const TmpDir& root, const Run& run) {
  struct stat st{};
  CHECK(read_file(root / "stale") == "hello" && fid_of(root / "stale") == 30);
  CHECK(lstat((root / "stale").c_str(), &st) == 0 && (st.st_mode & 07777) == 0640);
  CHECK(st.st_uid == 1000 && st.st_gid == 1001 && st.st_mtim.tv_nsec == (T + 1) % 1000000000);
  CHECK(lstat((root / "new-dir").c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0750 && fid_of(root / "new-dir") == 31);
  CHECK(read_file(root / "new-dir/new") == std::string(3, '\0'));
  CHECK(lstat((root / "was-dir").c_str(), &st) == 0 && S_ISREG(st.st_mode));
  CHECK(lstat((root / "was-file").c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK(fid_of(root / "was-file") == 34);
  CHECK(read_file(root / "full-dir/keep") == "keep me");
  CHECK(has_error(run, 7, "ENOTEMPTY"));
  CHECK(read_file(root / "h1") == "LINKED" && read_file(root / "h2") == "linked");
  CHECK(lstat((root / "h2").c_str(), &st) == 0 && st.st_nlink == 1);
}

void test_adopt() {
  TmpDir root("adopt");
  make_stale_tree(root);
  const Batch b = adopt_batch();
  const Run run = apply_bytes(root.path, b.bytes());
  CHECK(run.ok && run.result.errors.size() == 1);
  check_adopted(root, run);
  CHECK(run.result.sync_marks.size() == 2);
  if (run.result.sync_marks.size() == 2) {
    const SyncMark& begin = run.result.sync_marks[0];
    const SyncMark& end = run.result.sync_marks[1];
    CHECK(begin.seq == 1 && begin.sync_id == 7 && begin.flags == SYNC_FLAG_CHECKSUM);
    CHECK(end.seq == b.records.size() && end.entries == 7 && end.data_bytes == 6);
  }
  // Re-applying (a restart without the high-water mark) changes nothing.
  const auto before = snapshot(root.path);
  forget_mark(root.path);
  const Run again = apply_bytes(root.path, b.bytes());
  CHECK(again.ok);
  check_adopted(root, again);
  CHECK(same_tree(before, snapshot(root.path), "adopt re-applied"));
  CHECK(again.result.skipped >= 4);
}

/**
 * Two names holding the same fid on two inodes (a source inode number reused across a crash
 * window leaves this in a replica): a LINK between them makes them one inode again, not
 * "already applied".
 */
void test_link_over_same_fid_relinks() {
  TmpDir root("relink");
  Batch base;
  base.create(50, S_IFREG | 0644, "a", 1);
  base.write(50, 0, "a", "new", 2);
  base.create(50, S_IFREG | 0644, "b", 3);
  base.write(50, 0, "b", "old", 4);
  apply_bytes(root.path, base.bytes());
  Batch b;
  b.seq = base.seq;
  b.sync_begin(9, SYNC_FLAG_CHECKSUM, "");
  b.adopt(50, S_IFREG | 0644, 3, "a", 5);
  b.link(50, "a", "b", 6);
  b.sync_end(9, 2, 0);
  const Run run = apply_bytes(root.path, b.bytes());
  CHECK(run.ok && run.result.errors.empty());
  struct stat sa{}, sb{};
  CHECK(lstat((root / "a").c_str(), &sa) == 0 && lstat((root / "b").c_str(), &sb) == 0);
  CHECK(sa.st_ino == sb.st_ino && sa.st_nlink == 2);
  CHECK(read_file(root / "b") == "new");
  // Applied again (no mark): nothing changes.
  forget_mark(root.path);
  const Run again = apply_bytes(root.path, b.bytes());
  CHECK(again.ok && again.result.errors.empty());
  CHECK(lstat((root / "a").c_str(), &sa) == 0 && lstat((root / "b").c_str(), &sb) == 0);
  CHECK(sa.st_ino == sb.st_ino && read_file(root / "b") == "new");
}

void test_adopt_is_confined() {
  TmpDir root("adopt-confined"), outside("adopt-outside");
  put_file(outside / "victim", "untouched");
  CHECK(symlink(outside.path.c_str(), (root / "out").c_str()) == 0);
  Batch b;
  b.adopt(41, S_IFREG | 0644, 0, "../victim", 1);
  b.adopt(42, S_IFLNK | 0777, 0, "l", 2);
  b.adopt(43, S_IFREG | 0644, 0, "", 3);
  const Run run = apply_bytes(root.path, b.bytes());
  CHECK(has_error(run, 1, "APPLY_PATH_INVALID") && has_error(run, 2, "APPLY_RECORD_INVALID"));
  CHECK(has_error(run, 3, "APPLY_PATH_INVALID"));
  b.adopt(40, S_IFREG | 0644, 0, "out/victim", 4);  // through a symlink out of the root
  check_stops(root.path, b, "EXDEV");
  CHECK(read_file(outside / "victim") == "untouched");
}

}  // namespace

int main() {
  if (geteuid() != 0) {
    const char* ci = std::getenv("CI");
    const bool must = ci != nullptr && std::strcmp(ci, "true") == 0;
    std::printf("applier_test: %s (needs root for trusted.* xattrs, chown, mknod)\n",
                must ? "FAIL" : "ok, skipped");
    return must ? 1 : 0;
  }
  test_replay_conflict_is_reported();
  test_mark_from_another_boot_is_ignored();
  test_every_kind();
  test_apply_twice();
  test_crash_after_any_record();
  test_half_made_object();
  test_hostile_records();
  test_corrupt_batches();
  test_fallocate_fallback();
  test_adopt();
  test_link_over_same_fid_relinks();
  test_adopt_is_confined();
  if (failures == 0) std::printf("applier_test: ok\n");
  return failures == 0 ? 0 : 1;
}
