// The FUSE low-level operations of the capture layer: passthrough to the backing directory,
// one journal record per mutation, reply after the record is written (native/ops.cc).
// No Node-API here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "inode_table.h"
#include "journal_writer.h"
#include "path_filter.h"

namespace understudy {

/** Operations counted in MountStats.ops; the names are op_name(). */
enum class Op : uint8_t {
  LOOKUP, FORGET, GETATTR, SETATTR, READLINK, MKNOD, MKDIR, UNLINK, RMDIR, SYMLINK, RENAME,
  LINK, OPEN, READ, WRITE, FLUSH, RELEASE, FSYNC, OPENDIR, READDIR, RELEASEDIR, FSYNCDIR,
  STATFS, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, CREATE, FALLOCATE, READDIRPLUS,
  COPY_FILE_RANGE, LSEEK,
  COUNT_  // not an op
};
inline constexpr size_t OP_COUNT = static_cast<size_t>(Op::COUNT_);

/** The lower-case name of an op for stats ("write"). */
const char* op_name(Op op);

/**
 * Spare fds held against EMFILE (docs/native-mount.md, "The fd budget"): an open that fails
 * with EMFILE closes one and tries again, so a burst of lookups that outruns the evictor
 * still succeeds; the evictor fills the reserve again once the table is within budget.
 */
class FdReserve {
 public:
  ~FdReserve();
  /** Opens spare fds (/dev/null) until `count` are held or the process has no more. */
  void fill(size_t count);
  /** Closes one spare fd; false if none is left. */
  bool release_one();
  size_t size();

 private:
  std::mutex mutex_;
  std::vector<int> fds_;  // guarded by mutex_
};

/** Counters a mount exposes; all relaxed atomics, read by stats() from the JS thread. */
struct OpCounters {
  std::atomic<uint64_t> ops[OP_COUNT] = {};
  std::atomic<uint64_t> fd_reserve_used{0};    // EMFILE met, a spare fd given back, retried
  std::atomic<uint64_t> evictions{0};          // cached kernel entries asked to be dropped
  std::atomic<uint64_t> unjournaled{0};        // applied after the journal failed: no record
  std::atomic<uint64_t> journal_errors{0};     // applied to the backing, not journaled: EIO
  std::atomic<uint64_t> unnamed_mutations{0};  // inode with links but no known name
  std::atomic<uint64_t> path_too_long{0};      // refused before applying: ENAMETOOLONG
  std::atomic<uint64_t> sync_waits{0};         // sync mode: fsyncs that waited for an ack
  std::atomic<uint64_t> sync_timeouts{0};      // sync mode: waits that ran out of time
  std::atomic<uint64_t> unmirrored{0};  // mutations of paths outside the vault's globs
  std::atomic<uint64_t> entered{0};     // objects journaled whole: they entered the globs
  std::atomic<uint64_t> left{0};        // objects journaled removed: they left the globs
};

/** How fsync and O_SYNC/O_DSYNC writes wait for targets (invariant 2, sync mode). */
struct SyncPolicy {
  bool sync = false;          // false: async, nothing ever waits for targets
  uint32_t timeout_ms = 5000;
  bool degrade = false;       // on timeout: true switches to async and succeeds, false: EIO
};

/**
 * The acked watermark of a mount and the waits on it. JS sets the watermark (every in-sync
 * target has the records <= it durably); FUSE threads wait on it after the local journal
 * sync, never the JS thread. Thread-safe.
 */
class SyncGate {
 public:
  /** Replaces the policy; a sync policy clears `degraded`. Wakes waiters to re-check. */
  void set_policy(const SyncPolicy& policy);
  SyncPolicy policy();
  /** The watermark as JS computed it (it may go down: a target's own word wins). */
  void set_acked(uint64_t seq);
  uint64_t acked();
  /**
   * Sync mode: waits until acked >= seq, up to the timeout. 0 when acked (or async, or
   * degraded by this timeout); EIO on a timeout with the fail policy or after close().
   */
  int wait(uint64_t seq, OpCounters& counters);
  /** Unmount: wakes every waiter (they reply EIO when still unacked); later waits too. */
  void close();
  bool degraded();
  /** Called (outside the gate's lock, on a FUSE thread) when a timeout degrades the mount. */
  void set_degraded_listener(std::function<void()> listener);

 private:
  std::atomic<bool> sync_{false};  // fast path of wait(): async never takes the mutex
  std::mutex mutex_;
  std::condition_variable cv_;
  SyncPolicy policy_;              // guarded by mutex_
  uint64_t acked_ = 0;             // guarded by mutex_
  bool closed_ = false;            // guarded by mutex_
  bool degraded_ = false;          // guarded by mutex_
  std::function<void()> on_degraded_;  // set before mounting
};

/** Everything the ops share for one mount; the session's userdata. Owned by Mount. */
struct OpsContext {
  InodeTable* table = nullptr;
  JournalWriter* journal = nullptr;
  bool writeback_cache = false;  // FUSE_CAP_WRITEBACK_CACHE requested
  // The vault's include/exclude globs; null: every path is mirrored. Owned by Mount, fixed
  // for the mount's life. Non-mirrored paths are changed on the backing but not journaled.
  const PathFilter* filter = nullptr;
  // Lock order (see the top of ops.cc): namespace_lock, then Inode::lock, then the
  // inode table's own mutex. Exclusive for name changes, shared for data/attr mutations.
  std::shared_mutex namespace_lock;
  std::atomic<uint64_t> last_enqueued{0};  // newest seq enqueued by these ops
  std::atomic<bool> journal_down{false};   // the journal failed for good: ops.cc, note_journal_failure
  // FUSE_HANDLE_KILLPRIV_V2 (set up by mount.cc's device I/O): the kernel skips its
  // security.capability check before every write and leaves killing setuid/setgid to us.
  std::atomic<uint64_t> init_unique{0};           // the INIT request, until replied
  std::atomic<bool> kernel_offers_killpriv_v2{false};
  std::atomic<bool> killpriv_v2{false};           // negotiated: ops kill setuid/setgid
  SyncGate sync;  // sync mode: fsync waits for the targets' acks after the journal's sync
  FdReserve fd_reserve;
  OpCounters counters;
};

/**
 * Set by mount.cc's read of each request on the worker thread that then handles it: the
 * kernel asks that setuid/setgid be cleared (write, truncate or open(O_TRUNC) by a caller
 * without CAP_FSETID; FUSE_*_KILL_SUIDGID).
 */
inline thread_local bool t_request_kills_suidgid = false;

/** The operation table handed to fuse_session_new(); userdata must be an OpsContext. */
const struct fuse_lowlevel_ops& capture_ops();

}  // namespace understudy
