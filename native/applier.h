// The confined, idempotent batch applier: replays framed journal records beneath a replica
// root (docs/applier.md, "Replay" in docs/journal-format.md). No Node-API here.
// Guarantees: invariant 5 (every path resolved beneath the root with openat2, never a
// symlink followed in the last component), invariant 3 (each record is harmless to re-apply,
// by the fid xattr), durable before apply() reports success. Record bytes are untrusted: no
// assert or abort on them, only per-record errors or a stop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace understudy {

/** Bookkeeping xattr on every object the applier creates: the source fid, u64 LE. */
inline constexpr char FID_XATTR_NAME[] = "trusted.understudy.fid";
/** Every xattr under this prefix is ours; records may never set or remove one. */
inline constexpr char OWN_XATTR_PREFIX[] = "trusted.understudy.";
/** Largest framed batch one apply() accepts. */
inline constexpr size_t APPLY_BATCH_BYTES_MAX = 64u << 20;

/** One record that could not be applied. */
struct ApplyError {
  uint64_t seq = 0;
  uint16_t kind = 0;
  std::string path;     // raw bytes of the record's path (the failing one for RENAME/LINK)
  std::string code;     // errno name ("ENOENT") or APPLY_* for what is not an errno
  std::string message;  // names the record and what to do
};

/** A SYNC_BEGIN or SYNC_END the batch carried (they change nothing; the caller tracks them). */
struct SyncMark {
  uint64_t seq = 0;
  uint16_t kind = 0;       // RecordKind::SYNC_BEGIN or SYNC_END
  uint64_t sync_id = 0;
  uint32_t flags = 0;      // SYNC_BEGIN: SYNC_FLAG_*
  std::string path;        // SYNC_BEGIN: the subtree ("" = the whole vault)
  uint64_t entries = 0;    // SYNC_END: entries emitted
  uint64_t data_bytes = 0; // SYNC_END: data bytes emitted
};

/** Outcome of one batch. */
struct ApplyResult {
  uint64_t applied = 0;
  uint64_t skipped = 0;   // already applied, or superseded by a later record
  uint64_t last_seq = 0;  // seq of the last record processed (applied, skipped or failed)
  std::vector<ApplyError> errors;
  bool stopped = false;   // a fatal record (corrupt, confinement): nothing after it applied
  uint64_t stopped_at = 0;
  // Why records were skipped: reason -> count ("already-applied", "superseded", ...).
  std::vector<std::pair<std::string, uint64_t>> skip_reasons;
  std::vector<SyncMark> sync_marks;  // in seq order; counted as applied
  // 1 when the batch was made durable path by path (fsync), 0 when by syncfs.
  uint64_t path_syncs = 0;
  // Microseconds spent applying the records, and making them durable (diagnostics).
  uint64_t apply_us = 0;
  uint64_t durable_us = 0;
};

/**
 * The paths a batch touched, for making just those durable (fsync of each object and its
 * parent) instead of the whole file system (syncfs). Past TOUCHED_PATHS_MAX, or when a
 * record was skipped by the high-water mark (it may have been applied by an earlier attempt
 * that never made it durable), the batch falls back to syncfs.
 */
struct Touched {
  static constexpr size_t TOUCHED_PATHS_MAX = 64;
  std::set<std::string> paths;
  bool whole_fs = false;

  void add(std::string_view path) {
    if (whole_fs) return;
    for (;;) {
      paths.emplace(path);
      if (path.empty()) break;
      const size_t slash = path.rfind('/');
      path = slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
    }
    if (paths.size() > TOUCHED_PATHS_MAX) whole_fs = true;
  }
};

/** Failure of a whole batch (not of one record): the caller must not checkpoint. */
struct BatchFailure {
  std::string code;  // APPLY_* or an errno name
  std::string message;
};

class Applier {
 public:
  /** Opens the replica root; returns nullptr and sets `*err` (errno) on failure. */
  static Applier* open(const char* root_path, int* err);
  ~Applier();
  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;

  /**
   * Applies `size` bytes of back-to-back framed records in seq order, then makes the
   * replica durable (syncfs) before returning true. Returns false with `*failure` when the
   * batch as a whole failed (too large, durability failed); `*result` still says what was
   * done. Not thread-safe: one apply at a time per Applier.
   */
  bool apply(const uint8_t* records, size_t size, ApplyResult* result, BatchFailure* failure);

  /**
   * Forgets the high-water mark on the root (trusted.understudy.applied), so that the next
   * batch re-applies every record by the fid rules; for a resync that restarts the journal.
   * Returns 0 or errno.
   */
  int forget_high_water();

 private:
  void run(const uint8_t* records, size_t size, ApplyResult* result, Touched* touched);
  Applier(int root_fd, std::string boot_id) : root_fd_(root_fd), boot_id_(std::move(boot_id)) {}
  int root_fd_;          // O_RDONLY|O_DIRECTORY: a dirfd for openat2, an fd for syncfs/futimens
  std::string boot_id_;  // the high-water mark is trusted only within the boot that wrote it
};

}  // namespace understudy
