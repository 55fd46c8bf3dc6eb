// The FUSE low-level operations of the capture layer: passthrough to the backing directory,
// one journal record per mutation, reply after the record is written (native/ops.cc).
// No Node-API here.
#pragma once

#include <atomic>
#include <cstdint>
#include <shared_mutex>

#include "inode_table.h"
#include "journal_writer.h"

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

/** Counters a mount exposes; all relaxed atomics, read by stats() from the JS thread. */
struct OpCounters {
  std::atomic<uint64_t> ops[OP_COUNT] = {};
  std::atomic<uint64_t> journal_errors{0};     // applied to the backing, not journaled: EIO
  std::atomic<uint64_t> unnamed_mutations{0};  // inode with links but no known name
};

/** Everything the ops share for one mount; the session's userdata. Owned by Mount. */
struct OpsContext {
  InodeTable* table = nullptr;
  JournalWriter* journal = nullptr;
  bool writeback_cache = false;  // FUSE_CAP_WRITEBACK_CACHE requested
  // Lock order (see the top of ops.cc): namespace_lock, then Inode::lock, then the
  // inode table's own mutex. Exclusive for name changes, shared for data/attr mutations.
  std::shared_mutex namespace_lock;
  std::atomic<uint64_t> last_enqueued{0};  // newest seq enqueued by these ops
  // FUSE_HANDLE_KILLPRIV_V2 (set up by mount.cc's device I/O): the kernel skips its
  // security.capability check before every write and leaves killing setuid/setgid to us.
  std::atomic<uint64_t> init_unique{0};           // the INIT request, until replied
  std::atomic<bool> kernel_offers_killpriv_v2{false};
  std::atomic<bool> killpriv_v2{false};           // negotiated: ops kill setuid/setgid
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
