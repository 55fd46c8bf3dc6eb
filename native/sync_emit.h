// Sync emit: reads one object of a mounted vault's backing tree and journals the records that
// make a target's copy of it equal (docs/sync.md, "Synchronisation kinds" in
// docs/journal-format.md). No Node-API here (native/addon_sync.cc).
//
// Ordering (invariant 1): everything is read and enqueued under OpsContext::namespace_lock
// held EXCLUSIVE, so no live mutation of the vault (all of which hold it shared or
// exclusive from "apply to the backing" to "enqueue") can fall between the object's state
// as read and its records. The lock is held for at most SYNC_EMIT_BYTES_MAX of data reads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ops.h"

namespace understudy {

/** Largest total of range bytes one emit call reads and journals (JS splits bigger work). */
inline constexpr uint64_t SYNC_EMIT_BYTES_MAX = 8ull << 20;

struct SyncRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct SyncXattr {
  std::string name;
  std::string value;
};

/** What to emit for one path. */
struct SyncEmitRequest {
  std::string path;                 // vault-relative ("" = the vault root); checked
  bool adopt = true;                // files and dirs: ADOPT first (false: a continuation)
  bool full = false;                // files: all content (ranges ignored)
  std::vector<SyncRange> ranges;    // files: the byte ranges that differ (clamped to size)
  bool xattrs = true;               // emit xattr records for the object
  bool target_xattrs_known = false; // target_xattrs is the target's full set (else: set all)
  std::vector<SyncXattr> target_xattrs;
  bool times = true;                // files: UTIMENS with the final times
  std::string link_from;            // files: if non-empty and the same inode, emit LINK only
};

/** What was found and emitted. */
struct SyncEmitResult {
  bool missing = false;  // no object at the path (removed meanwhile; its UNLINK is journaled)
  mode_t type = 0;       // S_IFMT bits
  uint64_t ino = 0;      // the fid
  uint64_t nlink = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool linked = false;   // a LINK was emitted (link_from named the same inode)
  uint64_t first_seq = 0, last_seq = 0;  // 0 when nothing was emitted
  uint64_t records = 0;
  uint64_t data_bytes = 0;
};

/**
 * Emits the records for `request.path` and waits until they are written to the journal.
 * Returns 0 or an errno with `*why` naming what failed (EFBIG: ranges over
 * SYNC_EMIT_BYTES_MAX; EINVAL: a bad path; EIO: the journal failed).
 */
int sync_emit(OpsContext& ctx, const SyncEmitRequest& request, SyncEmitResult* result,
              std::string* why);

/** Emits UTIMENS with the current times of the object at `path` (directory times, last). */
int sync_emit_times(OpsContext& ctx, const std::string& path, SyncEmitResult* result,
                    std::string* why);

/** Emits SYNC_BEGIN (flags SYNC_FLAG_*, subtree `path`); `*seq` is its seq. */
int sync_emit_begin(OpsContext& ctx, uint64_t sync_id, uint32_t flags, const std::string& path,
                    uint64_t* seq, std::string* why);

/** Emits SYNC_END with the totals of the sync; `*seq` is its seq. */
int sync_emit_end(OpsContext& ctx, uint64_t sync_id, uint64_t entries, uint64_t data_bytes,
                  uint64_t* seq, std::string* why);

}  // namespace understudy
