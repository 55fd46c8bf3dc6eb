// The journal writer: ordered appends with group commit, segment roll, recovery, fsync.
// Format: docs/journal-format.md. Thread-safe: every public method may be called from any
// FUSE worker thread. No Node-API here.
//
// Ordering contract: the seq of a record is fixed when enqueue() returns, and records reach
// the segment file in seq order. The caller holds whatever locks make "apply to backing,
// then enqueue" atomic with respect to conflicting operations (native/ops.cc), and may drop
// them before wait_written(), which returns once the record is in the kernel (write(2) done,
// so a crash of the daemon loses nothing: invariant 2). sync_to() makes it durable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "record_codec.h"

namespace understudy {

struct JournalOptions {
  std::string dir;                 // must exist and be writable
  uint32_t epoch = 1;              // stamped on every record from now on
  uint64_t segment_bytes_max = SEGMENT_BYTES_MAX_DEFAULT;
  // Wall clock for record times; tests inject a fixed sequence to reproduce test vectors.
  std::function<int64_t()> clock_ns;
};

struct JournalStats {
  uint64_t last_seq;           // highest seq handed out
  uint64_t written_seq;        // every record <= this is in the kernel (write(2) returned)
  uint64_t durable_seq;        // every record <= this is fsynced
  uint64_t records;            // appended since open
  uint64_t bytes;              // framed bytes appended since open
  uint64_t group_writes;       // write(2) calls that carried one or more records
  uint64_t syncs;              // fdatasync calls
  int error;                   // first write/sync errno, 0 if none (the journal is then failed)
};

class JournalWriter {
 public:
  /**
   * Opens (creating if empty) the journal in options.dir. Recovery: validates the newest
   * segment, cuts a torn tail (the cut bytes are kept in `<segment>.torn-<offset>`), and
   * continues after the last good record. On failure returns an errno and sets *error to a
   * sentence naming the file and offset.
   */
  static int open(const JournalOptions& options, std::unique_ptr<JournalWriter>* out,
                  std::string* error);
  ~JournalWriter();

  /**
   * Frames one record with the next seq and queues it. Returns the seq, or 0 when the
   * journal has failed (then *err is the errno). Never blocks on disk I/O.
   */
  uint64_t enqueue(RecordKind kind, const uint8_t* payload, size_t payload_bytes, int* err);

  /** Blocks until `seq` is written to the segment file (group commit); 0 or an errno. */
  int wait_written(uint64_t seq);

  /** enqueue() then wait_written(); returns the seq, or 0 with *err set. */
  uint64_t append(RecordKind kind, const uint8_t* payload, size_t payload_bytes, int* err);

  /** Makes every record <= seq durable (fdatasync, shared by concurrent callers). */
  int sync_to(uint64_t seq);

  /** Called after each group write with the newest written seq (from a writer thread). */
  void set_listener(std::function<void(uint64_t written_seq)> listener);

  JournalStats stats() const;

  /** Writes and syncs everything queued, then closes the segment. Idempotent. */
  int close();

 private:
  JournalWriter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy
