// The inode table of the FUSE capture layer: fuse_ino_t -> Inode (an O_PATH fd on the
// backing object), lookup counts, per-inode locks and the names of each inode, from which
// the vault-relative path of a journal record is built. No Node-API here.
//
// Locking: the table's own mutex (`InodeTable::mutex_`) guards the map, every Inode's
// nlookup, child_names and names. It is a leaf lock: nothing else is taken while holding
// it. Names change only under the exclusive namespace lock of native/ops.cc, so a reader
// that holds the namespace lock shared sees names consistent with the backing tree.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

namespace understudy {

struct Inode;

/** One known name of an inode: an entry `name` in directory `parent`. */
struct InodeName {
  Inode* parent;
  std::string name;
};

struct Inode {
  int fd = -1;                       // O_PATH|O_NOFOLLOW on the backing object; owned
  dev_t dev = 0;                     // (dev, ino): the key that makes hard links one Inode
  ino_t ino = 0;
  mode_t type = 0;                   // S_IFMT bits, fixed for the inode's life
  uint64_t nlookup = 0;              // guarded by InodeTable::mutex_
  uint64_t child_names = 0;          // names of other inodes inside this dir; guarded by mutex_
  std::vector<InodeName> names;      // guarded by InodeTable::mutex_ (+ namespace lock)
  std::mutex lock;                   // data/attr mutations of this inode (ops.cc lock order)
  std::atomic<uint64_t> last_seq{0};  // newest journal seq that touched this inode
  std::atomic<bool> unnamed_logged{false};  // "no known name" logged once
  std::atomic<uint32_t> dio_align{0};  // O_DIRECT offset/size alignment; 0: not read yet
  uint64_t last_lookup = 0;          // InodeTable's tick at the newest lookup; guarded by mutex_
  uint64_t evict_asked = 0;          // the tick when the kernel was last asked to drop it; mutex_
  // Seen with more than one link: never evicted. Once the kernel forgets an inode the table
  // forgets its names; a hard link whose known name is then unlinked would leave changes
  // through its other name unjournaled (no known name). Guarded by mutex_.
  bool multi_link = false;
};

/** A cached kernel entry the table asks the kernel to drop (native/mount.cc's evictor). */
struct EvictionCandidate {
  fuse_ino_t parent;  // the kernel's number of the directory holding the entry
  std::string name;
};

/** Outcome of building a path for a record. */
enum class PathStatus { OK, UNNAMED, TOO_LONG };

class InodeTable {
 public:
  /** Takes ownership of `root_fd` (O_PATH, the backing dir opened before mounting). */
  InodeTable(int root_fd, dev_t dev, ino_t ino);
  ~InodeTable();
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  Inode& root() { return root_; }

  /** The Inode behind a kernel ino. An ino we never handed out is a bug (asserts). */
  Inode& get(fuse_ino_t ino);

  /** The kernel's number for `inode`: FUSE_ROOT_ID or the Inode's address. */
  fuse_ino_t ino_of(Inode& inode) const;

  /**
   * Finds or inserts the Inode for (dev, ino), adds one lookup and, if `parent` is given,
   * the name (parent, name). Takes ownership of `fd` (closed if the inode was known). A new
   * Inode starts with last_seq = initial_seq: records journaled before it was (re)created
   * may concern it, and fsync must cover them.
   */
  Inode& acquire(int fd, const struct stat& st, Inode* parent, std::string_view name,
                 uint64_t initial_seq);

  /** Adds one lookup and the name (parent, name) to a known inode (link). */
  void ref(Inode& inode, Inode& parent, std::string_view name);

  /** Drops `count` lookups; frees the inode (and parents it kept alive) at zero. */
  void forget(Inode& inode, uint64_t count);

  /** Adds the name (parent, name) to `inode` if absent. Caller holds the namespace lock. */
  void add_name(Inode& inode, Inode& parent, std::string_view name);
  /**
   * Removes the name (parent, name) from the known inode (dev, ino), if any (unlink, rmdir,
   * a rename's replaced target). Keyed, not by pointer: a concurrent forget may free it.
   */
  void remove_name(dev_t dev, ino_t ino, Inode& parent, std::string_view name);
  /** Renames (op, on) to (np, nn) on the known inode (dev, ino), if any. */
  void move_name(dev_t dev, ino_t ino, Inode& op, std::string_view on, Inode& np,
                 std::string_view nn);

  /**
   * Writes the vault-relative path of `inode` into `out` ("" for the root). The caller holds
   * the namespace lock (shared or exclusive) so the names are those of the backing tree.
   */
  PathStatus path_of(Inode& inode, std::string& out);
  /** The path of entry `name` in directory `parent`. */
  PathStatus path_in(Inode& parent, std::string_view name, std::string& out);

  size_t size();

  /**
   * The fd budget: above `high` inodes the kernel is asked to drop cached entries
   * (`wake` is called, from the thread that crossed it, outside the table's mutex), until
   * at most `low` remain. high == 0: no budget.
   */
  void set_budget(size_t high, size_t low, std::function<void()> wake);
  size_t budget_high() const { return budget_high_; }
  /** Wakes the evictor (an open met EMFILE). */
  void ask_eviction() {
    if (wake_) wake_();
  }
  /**
   * The least recently looked-up leaf entries (inodes the kernel holds, with a name, and no
   * known children), as many as it takes to come down to the low mark, at most `count_max`.
   * Dropping them is advisory: the kernel forgets what it does not use, and looks it up again
   * when needed.
   */
  std::vector<EvictionCandidate> eviction_candidates(size_t count_max);

 private:
  using Key = std::pair<dev_t, ino_t>;
  void release_locked(Inode* inode);
  void drop_name_locked(Inode* inode, size_t index);
  void add_name_locked(Inode& inode, Inode& parent, std::string_view name);
  Inode* find_locked(dev_t dev, ino_t ino);
  Inode& acquire_counted(int fd, const struct stat& st, Inode* parent, std::string_view name,
                        uint64_t initial_seq, bool* over_budget);
  PathStatus path_locked(Inode& inode, std::string& out);

  std::mutex mutex_;
  Inode root_;
  std::map<Key, Inode*> map_;           // guarded by mutex_; excludes the root
  uint64_t tick_ = 0;                   // guarded by mutex_: counts lookups
  size_t budget_high_ = 0;              // set before serving, then read-only
  size_t budget_low_ = 0;
  std::function<void()> wake_;
};

}  // namespace understudy
