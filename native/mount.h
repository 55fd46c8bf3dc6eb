// The lifecycle of one FUSE capture mount: checks, backing fd, journal, session, the
// fuse_session_loop_mt thread, and unmount. No Node-API here (native/addon_mount.cc).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "inode_table.h"
#include "journal_writer.h"
#include "ops.h"

namespace understudy {

struct MountOptions {
  std::string mountpoint;
  std::string backing;      // may equal mountpoint: "mount over"
  std::string journal_dir;
  uint32_t epoch = 1;
  bool writeback_cache = false;
  uint64_t segment_bytes_max = SEGMENT_BYTES_MAX_DEFAULT;
  SyncPolicy sync;                      // async unless set (changeable: set_sync_policy)
  std::function<void()> on_degraded;    // a sync-mode timeout degraded the mount to async
  // The vault's globs (native/path_filter.h): only mirrored paths are journaled. An empty
  // include means ["**"]; an invalid glob fails the mount with EINVAL.
  std::vector<std::string> include;
  std::vector<std::string> exclude;
};

/** A failure that crosses to JS as an error with `code` = errno name and `syscall`. */
struct MountFailure {
  int err = 0;
  std::string syscall;
  std::string message;
};

struct MountStatsSnapshot {
  JournalStats journal;
  uint64_t journal_errors;
  uint64_t unnamed_mutations;
  uint64_t path_too_long;
  uint64_t sync_waits;
  uint64_t sync_timeouts;
  uint64_t unmirrored;  // mutations outside the globs: applied, not journaled
  uint64_t entered;     // objects journaled whole as they entered the globs
  uint64_t left;        // objects journaled removed as they left the globs
  uint64_t inodes;           // held by the inode table (one fd each)
  uint64_t evictions;        // kernel entries asked to be dropped (fd budget)
  uint64_t fd_reserve_used;  // opens that met EMFILE and went on with a spare fd
  bool journal_down;         // the journal failed for good: changes are not journaled
  int journal_error;         // its errno, 0 if none
  uint64_t unjournaled;      // changes applied since, without records
  uint64_t acked_seq;
  bool sync_mode;  // fsync waits for acks now
  bool degraded;   // a timeout switched sync to async (cleared by a new sync policy)
  uint64_t ops[OP_COUNT];
};

class Mount {
 public:
  /**
   * Checks the environment, opens the backing dir (before mounting, so the mountpoint may
   * be the backing itself), opens the journal, mounts and starts serving. `on_written`
   * is called from a journal thread with the newest written seq.
   */
  static std::unique_ptr<Mount> open(const MountOptions& options,
                                     std::function<void(uint64_t)> on_written,
                                     MountFailure* failure);
  ~Mount();
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

  /** Makes the journal durable up to its last seq. 0 or an errno. */
  int flush();
  MountStatsSnapshot stats();

  /** Every in-sync target has the records <= seq durably (sync mode's watermark). */
  void set_acked_seq(uint64_t seq);
  /** Async or sync, with the timeout and what a timeout does; applies to waits from now. */
  void set_sync_policy(const SyncPolicy& policy);

  /** The ops' shared state (locks, journal, inode table), for native/sync_emit.cc. */
  OpsContext* context() { return ctx_.get(); }

  /**
   * Stops serving: wakes sync-mode waiters (they reply EIO), unmounts (lazily and aborting the connection if files are still open),
   * joins the loop, closes the journal. Idempotent; blocks; never from a FUSE thread.
   */
  int unmount(MountFailure* failure);

 private:
  Mount() = default;
  bool start(const MountOptions& options, MountFailure* failure);
  void abort_connection();
  void start_evictor();
  void stop_evictor();
  void evict_loop();

  std::string mountpoint_;
  std::unique_ptr<JournalWriter> journal_;
  std::unique_ptr<InodeTable> table_;
  std::unique_ptr<PathFilter> filter_;  // read by the ops through ctx_->filter
  std::unique_ptr<OpsContext> ctx_;
  struct fuse_session* session_ = nullptr;
  dev_t fuse_dev_ = 0;  // st_dev of the mounted root: names the connection in fusectl
  std::thread loop_;
  bool unmounted_ = false;
  // The evictor keeps the inode table (one O_PATH fd per inode) within RLIMIT_NOFILE by
  // asking the kernel to drop its least recently looked-up cached entries; the kernel then
  // forgets those inodes and the table closes their fds.
  std::thread evictor_;
  std::mutex evict_mutex_;
  std::condition_variable evict_wake_;
  bool evict_stop_ = false;  // guarded by evict_mutex_
  size_t fd_reserve_ = 0;    // spare fds held against EMFILE (set before serving)
};

/** Detaches a dead FUSE mount at `path` (stat fails with ENOTCONN). True if one was cleared. */
bool clear_stale_mount(const std::string& path, MountFailure* failure);

}  // namespace understudy
