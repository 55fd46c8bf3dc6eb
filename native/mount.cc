// Mount lifecycle: see mount.h. The FUSE threads are libfuse's (fuse_session_loop_mt); this
// file only starts and stops them.
#include "mount.h"

#include <sys/resource.h>

#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/uio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "assert.h"

namespace understudy {
namespace {

constexpr long FUSE_SUPER_MAGIC_ = 0x65735546;
constexpr char FUSECTL_DIR[] = "/sys/fs/fuse/connections";
// Threads: up to 64 requests served at once; 16 kept idle so bursts do not pay thread
// creation (and their thread_local buffers stay warm).
constexpr unsigned LOOP_THREADS_MAX = 64;
constexpr unsigned LOOP_IDLE_THREADS = 16;
// The inode table's fd budget, as fractions of RLIMIT_NOFILE: above half of it the evictor
// asks the kernel to drop cached entries until 3/8 remain. The rest is for open files
// (one backing fd per open handle), the journal, sockets and the daemon's own.
constexpr size_t BUDGET_HIGH_NUM = 3, BUDGET_LOW_NUM = 2, BUDGET_DEN = 8;
// Spare fds against EMFILE (FdReserve in ops.h), at most an eighth of the limit.
constexpr size_t FD_RESERVE_MAX = 256;
constexpr size_t BUDGET_HIGH_MIN = 64;
// One round invalidates at most this many entries, then waits for the kernel's forgets.
constexpr size_t EVICT_ROUND_MAX = 4096;
constexpr auto EVICT_PAUSE = std::chrono::milliseconds(2);
constexpr auto EVICT_IDLE_CHECK = std::chrono::seconds(1);

bool fail(MountFailure* failure, int err, const char* syscall, const std::string& message) {
  if (failure != nullptr) {
    failure->err = err;
    failure->syscall = syscall;
    failure->message = message;
  }
  return false;
}

std::string with_errno(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

// The mountpoint must be an existing directory with no live FUSE mount on it already.
bool check_mountpoint(const std::string& path, MountFailure* failure) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return fail(failure, err, "stat", with_errno("mountpoint " + path, err));
  }
  if (!S_ISDIR(st.st_mode)) {
    return fail(failure, ENOTDIR, "stat", "mountpoint " + path + " is not a directory");
  }
  struct statfs sfs;
  struct stat up;
  if (statfs(path.c_str(), &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC_ &&
      stat((path + "/..").c_str(), &up) == 0 && up.st_dev != st.st_dev) {
    return fail(failure, EBUSY, "mount", "mountpoint " + path + " already has a FUSE mount");
  }
  return true;
}

bool check_environment(const MountOptions& o, MountFailure* failure) {
  if (geteuid() != 0) {
    return fail(failure, EPERM, "geteuid", "mounting a vault needs root");
  }
  if (access("/dev/fuse", R_OK | W_OK) != 0) {
    return fail(failure, ENODEV, "open", with_errno("/dev/fuse is not usable", errno));
  }
  if (access(o.journal_dir.c_str(), W_OK | X_OK) != 0) {
    const int err = errno;
    return fail(failure, err, "access", with_errno("journal dir " + o.journal_dir, err));
  }
  if (!clear_stale_mount(o.mountpoint, failure)) {
    if (failure != nullptr && failure->err != 0) return false;
  }
  return check_mountpoint(o.mountpoint, failure);
}

void serve(struct fuse_session* session) {
  struct fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(config, 1);  // one /dev/fuse fd per thread: less contention
  fuse_loop_cfg_set_max_threads(config, LOOP_THREADS_MAX);
  fuse_loop_cfg_set_idle_threads(config, LOOP_IDLE_THREADS);
  const int rc = fuse_session_loop_mt(session, config);
  if (rc != 0) std::fprintf(stderr, "understudy: FUSE loop ended with %d\n", rc);
  fuse_loop_cfg_destroy(config);
}

// ---- /dev/fuse I/O of our own (fuse_session_custom_io) --------------------------------------
// libfuse 3.14 cannot request FUSE_HANDLE_KILLPRIV_V2. Without it the kernel sends GETXATTR
// security.capability before every write(2) (a second round trip per write). So the session
// reads and writes the device itself: it notes what the kernel offers in INIT and the kill
// flags of each request, and adds FUSE_HANDLE_KILLPRIV_V2 to the INIT reply. The ops then
// clear setuid/setgid when a request carries a kill flag (ops.cc, kill_suidgid).

template <typename T>
const T* request_arg(const void* buf, ssize_t n) {
  if (n < static_cast<ssize_t>(sizeof(fuse_in_header) + sizeof(T))) return nullptr;
  return reinterpret_cast<const T*>(static_cast<const char*>(buf) + sizeof(fuse_in_header));
}

ssize_t device_read(int fd, void* buf, size_t size, void* userdata) {
  const ssize_t n = ::read(fd, buf, size);
  t_request_kills_suidgid = false;
  if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) return n;
  auto& c = *static_cast<OpsContext*>(userdata);
  const auto* in = static_cast<const fuse_in_header*>(buf);
  switch (in->opcode) {
    case FUSE_INIT:
      // Only the fields up to `flags` are needed: present since protocol 7.6.
      if (n >= static_cast<ssize_t>(sizeof(fuse_in_header) + 16)) {
        const auto* init = static_cast<const uint8_t*>(buf) + sizeof(fuse_in_header);
        uint32_t flags;
        std::memcpy(&flags, init + 12, 4);
        c.kernel_offers_killpriv_v2.store((flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
        c.init_unique.store(in->unique);
      }
      break;
    case FUSE_WRITE:
      if (const auto* w = request_arg<fuse_write_in>(buf, n)) {
        t_request_kills_suidgid = (w->write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
      }
      break;
    case FUSE_SETATTR:
      if (const auto* a = request_arg<fuse_setattr_in>(buf, n)) {
        t_request_kills_suidgid = (a->valid & FATTR_KILL_SUIDGID) != 0;
      }
      break;
    case FUSE_OPEN:
      if (const auto* o = request_arg<fuse_open_in>(buf, n)) {
        t_request_kills_suidgid = (o->open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
      }
      break;
    default:
      break;
  }
  return n;
}

ssize_t device_writev(int fd, struct iovec* iov, int count, void* userdata) {
  auto& c = *static_cast<OpsContext*>(userdata);
  const uint64_t init_unique = c.init_unique.load(std::memory_order_relaxed);
  if (init_unique != 0 && count >= 2 && iov[0].iov_len >= sizeof(fuse_out_header) &&
      iov[1].iov_len >= 16) {
    const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
    if (out->unique == init_unique) {
      c.init_unique.store(0);
      if (out->error == 0 && c.kernel_offers_killpriv_v2.load()) {
        // fuse_init_out: major, minor, max_readahead, flags (u32 at byte 12).
        auto* init = static_cast<uint8_t*>(iov[1].iov_base);
        uint32_t flags;
        std::memcpy(&flags, init + 12, 4);
        flags |= FUSE_HANDLE_KILLPRIV_V2;
        std::memcpy(init + 12, &flags, 4);
        c.killpriv_v2.store(true);
      }
    }
  }
  return ::writev(fd, iov, count);
}

ssize_t device_splice_send(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                           unsigned int flags, void* userdata) {
  return splice(fdin, offin, fdout, offout, len, flags);  // keeps read replies zero-copy
}

// Mounts like fuse_session_mount() would for root, but keeps the device fd for custom I/O.
bool mount_device(struct fuse_session* session, OpsContext* ctx, const std::string& mountpoint,
                  MountFailure* failure) {
  const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(failure, errno, "open", with_errno("/dev/fuse", errno));
  char data[160];
  std::snprintf(data, sizeof data,
                "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", fd);
  // No MS_NOSUID/MS_NODEV: setuid programs and device nodes work as on the backing.
  if (mount("understudy", mountpoint.c_str(), "fuse.understudy", 0, data) != 0) {
    const int err = errno;
    close(fd);
    return fail(failure, err, "mount", with_errno("mounting " + mountpoint, err));
  }
  struct fuse_custom_io io;
  std::memset(&io, 0, sizeof io);
  io.read = device_read;
  io.writev = device_writev;
  io.splice_send = device_splice_send;
  if (const int rc = fuse_session_custom_io(session, &io, fd); rc != 0) {
    umount2(mountpoint.c_str(), MNT_DETACH);
    close(fd);
    return fail(failure, -rc, "fuse_session_custom_io", "cannot attach the FUSE device");
  }
  return true;
}

}  // namespace

bool clear_stale_mount(const std::string& path, MountFailure* failure) {
  if (failure != nullptr) failure->err = 0;
  // FORCE_SYNC: with our long attribute timeouts the kernel would answer a plain stat of a
  // dead mount's root from its cache; a forced round trip reports ENOTCONN.
  struct statx stx;
  if (statx(AT_FDCWD, path.c_str(), AT_STATX_FORCE_SYNC, STATX_TYPE, &stx) == 0 ||
      errno != ENOTCONN) {
    return false;
  }
  // A FUSE mount whose daemon died: detach it so the path is usable again.
  if (umount2(path.c_str(), MNT_DETACH) != 0) {
    const int err = errno;
    return fail(failure, err, "umount2", with_errno("cannot clear stale mount " + path, err));
  }
  return true;
}

std::unique_ptr<Mount> Mount::open(const MountOptions& options,
                                   std::function<void(uint64_t)> on_written,
                                   MountFailure* failure) {
  auto filter = std::make_unique<PathFilter>();
  if (std::string why; !filter->init(options.include, options.exclude, &why)) {
    fail(failure, EINVAL, "glob", why);
    return nullptr;
  }
  if (!check_environment(options, failure)) return nullptr;
  std::unique_ptr<Mount> mount(new Mount());
  mount->filter_ = std::move(filter);
  mount->mountpoint_ = options.mountpoint;
  // Opened before mounting: afterwards the path may lead into the mount itself.
  const int root_fd = ::open(options.backing.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    const int err = errno;
    fail(failure, err, "open", with_errno("backing dir " + options.backing, err));
    return nullptr;
  }
  struct stat st;
  if (fstat(root_fd, &st) != 0) {
    const int err = errno;
    close(root_fd);
    fail(failure, err, "fstat", with_errno("backing dir " + options.backing, err));
    return nullptr;
  }
  mount->table_ = std::make_unique<InodeTable>(root_fd, st.st_dev, st.st_ino);

  JournalOptions jo;
  jo.dir = options.journal_dir;
  jo.epoch = options.epoch;
  jo.segment_bytes_max = options.segment_bytes_max;
  std::string why;
  if (const int err = JournalWriter::open(jo, &mount->journal_, &why); err != 0) {
    fail(failure, err, "open", "journal " + options.journal_dir + ": " + why);
    return nullptr;
  }
  if (on_written) mount->journal_->set_listener(std::move(on_written));
  mount->unmounted_ = true;  // nothing to stop until start() succeeds
  if (!mount->start(options, failure)) {
    mount->journal_->close();
    return nullptr;
  }
  mount->unmounted_ = false;
  return mount;
}

// The inode table holds one O_PATH fd per inode the kernel remembers, so a vault with many
// live files needs many fds: raise the soft limit to the hard one, and the hard one towards
// fs.nr_open where the process may (root with CAP_SYS_RESOURCE). Best effort, never fatal.
void raise_fd_limit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  constexpr rlim_t WANTED = 1u << 20;
  if (limit.rlim_max < WANTED) {
    struct rlimit raised = {WANTED, WANTED};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

bool Mount::start(const MountOptions& options, MountFailure* failure) {
  raise_fd_limit();
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const size_t nofile = static_cast<size_t>(limit.rlim_cur);
    const size_t high = std::max(BUDGET_HIGH_MIN, nofile * BUDGET_HIGH_NUM / BUDGET_DEN);
    table_->set_budget(high, high * BUDGET_LOW_NUM / BUDGET_HIGH_NUM,
                       [this] { evict_wake_.notify_one(); });
    fd_reserve_ = std::min(FD_RESERVE_MAX, nofile / BUDGET_DEN);
  }
  ctx_ = std::make_unique<OpsContext>();
  ctx_->table = table_.get();
  ctx_->journal = journal_.get();
  ctx_->writeback_cache = options.writeback_cache;
  if (!filter_->everything()) ctx_->filter = filter_.get();
  ctx_->sync.set_policy(options.sync);
  if (options.on_degraded) ctx_->sync.set_degraded_listener(options.on_degraded);
  // Behave like the backing for every user: the kernel checks permissions (with the
  // caller's groups), suid/dev work as on the backing, fstype shows as fuse.understudy.
  // (The mount itself is made by mount_device(); these options only inform libfuse.)
  const char* argv[] = {"understudy", "-o", "allow_other,default_permissions"};
  struct fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  session_ = fuse_session_new(&args, &capture_ops(), sizeof(struct fuse_lowlevel_ops),
                              ctx_.get());
  fuse_opt_free_args(&args);
  if (session_ == nullptr) return fail(failure, EINVAL, "fuse_session_new", "bad FUSE options");
  if (!mount_device(session_, ctx_.get(), options.mountpoint, failure)) {
    fuse_session_destroy(session_);
    session_ = nullptr;
    return false;
  }
  struct fuse_session* session = session_;
  loop_ = std::thread([session] { serve(session); });
  start_evictor();
  struct stat st;
  if (stat(options.mountpoint.c_str(), &st) == 0) fuse_dev_ = st.st_dev;
  return true;
}

void Mount::abort_connection() {
  if (fuse_dev_ == 0) return;
  char path[96];
  const unsigned long id = (static_cast<unsigned long>(major(fuse_dev_)) << 20) |
                           static_cast<unsigned long>(minor(fuse_dev_));
  std::snprintf(path, sizeof path, "%s/%lu/abort", FUSECTL_DIR, id);
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    mount("fusectl", FUSECTL_DIR, "fusectl", 0, nullptr);  // not mounted yet on this host
    fd = ::open(path, O_WRONLY | O_CLOEXEC);
  }
  if (fd < 0) {
    std::fprintf(stderr, "understudy: cannot abort FUSE connection %s: %s\n", path,
                 std::strerror(errno));
    return;
  }
  if (write(fd, "1", 1) != 1) {
    std::fprintf(stderr, "understudy: aborting FUSE connection failed: %s\n",
                 std::strerror(errno));
  }
  close(fd);
}

int Mount::unmount(MountFailure* failure) {
  if (unmounted_) return 0;
  unmounted_ = true;
  // FUSE threads waiting for acks must end before the loop can be joined.
  ctx_->sync.close();
  // Its notifications need a live connection: stopped while the loop still serves.
  stop_evictor();
  // Only unmount what is ours: after an outside umount the path may show the backing fs.
  // Asked while the loop still serves (after fuse_session_exit it may drop requests).
  struct stat st;
  const bool ours = stat(mountpoint_.c_str(), &st) == 0 && st.st_dev == fuse_dev_;
  if (ours && umount2(mountpoint_.c_str(), 0) == 0) {
    // A clean unmount ends the connection: the loop's reads fail with ENODEV.
  } else {
    // Busy (open files, a cwd) or already gone: detach it, and cut the connection so the
    // loop ends now; processes still using it get ENOTCONN, never a hang.
    if (ours) umount2(mountpoint_.c_str(), MNT_DETACH);
    abort_connection();
  }
  fuse_session_exit(session_);
  loop_.join();
  fuse_session_destroy(session_);  // closes the device fd; the mount is gone already
  session_ = nullptr;
  const int err = journal_->close();
  if (err != 0) {
    fail(failure, err, "close", with_errno("closing the journal", err));
    return err;
  }
  return 0;
}

void Mount::start_evictor() {
  if (table_->budget_high() == 0) return;
  ctx_->fd_reserve.fill(fd_reserve_);
  evictor_ = std::thread([this] { evict_loop(); });
}

void Mount::stop_evictor() {
  {
    std::lock_guard<std::mutex> guard(evict_mutex_);
    evict_stop_ = true;
  }
  evict_wake_.notify_one();
  if (evictor_.joinable()) evictor_.join();
}

void Mount::evict_loop() {
  std::unique_lock<std::mutex> lock(evict_mutex_);
  while (!evict_stop_) {
    // Woken by an acquire past the high mark; the periodic check catches a lost wake-up.
    evict_wake_.wait_for(lock, EVICT_IDLE_CHECK);
    if (evict_stop_) break;
    if (table_->size() <= table_->budget_high()) {
      if (ctx_->fd_reserve.size() < fd_reserve_) ctx_->fd_reserve.fill(fd_reserve_);
      continue;
    }
    lock.unlock();
    // Holds none of our locks: the kernel takes the directory's lock to drop an entry,
    // which may wait for a request in that directory, served by the loop's threads.
    size_t asked = 0;
    for (const EvictionCandidate& c : table_->eviction_candidates(EVICT_ROUND_MAX)) {
      // ENOENT: the kernel no longer has it. Advisory either way.
      fuse_lowlevel_notify_inval_entry(session_, c.parent, c.name.data(), c.name.size());
      asked++;
    }
    ctx_->counters.evictions.fetch_add(asked, std::memory_order_relaxed);
    // Spare fds given back on EMFILE are taken again once the table is within budget.
    if (table_->size() <= table_->budget_high()) ctx_->fd_reserve.fill(fd_reserve_);
    lock.lock();
    // Let the kernel's forgets arrive before judging again; no busy loop when nothing
    // can be dropped (every cached inode is open).
    evict_wake_.wait_for(lock, EVICT_PAUSE, [this] { return evict_stop_; });
  }
}

Mount::~Mount() {
  unmount(nullptr);
}

void Mount::set_acked_seq(uint64_t seq) {
  ctx_->sync.set_acked(seq);
}

void Mount::set_sync_policy(const SyncPolicy& policy) {
  ctx_->sync.set_policy(policy);
}

int Mount::flush() {
  const uint64_t last = journal_->stats().last_seq;
  return last == 0 ? 0 : journal_->sync_to(last);
}

MountStatsSnapshot Mount::stats() {
  MountStatsSnapshot s;
  s.journal = journal_->stats();
  s.journal_errors = ctx_->counters.journal_errors.load(std::memory_order_relaxed);
  s.unnamed_mutations = ctx_->counters.unnamed_mutations.load(std::memory_order_relaxed);
  s.path_too_long = ctx_->counters.path_too_long.load(std::memory_order_relaxed);
  s.sync_waits = ctx_->counters.sync_waits.load(std::memory_order_relaxed);
  s.sync_timeouts = ctx_->counters.sync_timeouts.load(std::memory_order_relaxed);
  s.unmirrored = ctx_->counters.unmirrored.load(std::memory_order_relaxed);
  s.entered = ctx_->counters.entered.load(std::memory_order_relaxed);
  s.left = ctx_->counters.left.load(std::memory_order_relaxed);
  s.inodes = table_->size();
  s.evictions = ctx_->counters.evictions.load(std::memory_order_relaxed);
  s.fd_reserve_used = ctx_->counters.fd_reserve_used.load(std::memory_order_relaxed);
  s.journal_down = ctx_->journal_down.load(std::memory_order_relaxed);
  s.journal_error = s.journal.error;
  s.unjournaled = ctx_->counters.unjournaled.load(std::memory_order_relaxed);
  s.acked_seq = ctx_->sync.acked();
  s.sync_mode = ctx_->sync.policy().sync;
  s.degraded = ctx_->sync.degraded();
  for (size_t i = 0; i < OP_COUNT; i++) {
    s.ops[i] = ctx_->counters.ops[i].load(std::memory_order_relaxed);
  }
  return s;
}

}  // namespace understudy
