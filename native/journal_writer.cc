// The journal writer: group commit, segment roll, recovery and fsync (docs/journal-writer.md).
//
// Locking: Impl::mu is the only lock and is never held across disk I/O. Two roles are taken
// under it and then exercised without it: the writer (`writing`, one thread at a time, owns
// `batch`, `segment_bytes` and the write position of the segment fd) and the syncer
// (`syncing`, one fdatasync at a time). Every other field is guarded by mu.
#include "journal_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "assert.h"

namespace understudy {
namespace {

// An open descriptor shared by the writer and a syncer, closed when the last user drops it,
// so that a roll never closes a segment under a concurrent fdatasync.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string segment_name(uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%016" PRIx64 ".seg", first_seq);
  return name;
}

bool parse_segment_name(const char* name, uint64_t* first_seq) {
  if (std::strlen(name) != 20 || std::strcmp(name + 16, ".seg") != 0) return false;
  uint64_t value = 0;
  for (int i = 0; i < 16; ++i) {
    const char c = name[i];
    uint64_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    value = (value << 4) | digit;
  }
  *first_seq = value;
  return true;
}

bool ends_with(const char* s, const char* suffix) {
  const size_t n = std::strlen(s);
  const size_t m = std::strlen(suffix);
  return n >= m && std::strcmp(s + n - m, suffix) == 0;
}

int write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;  // write(2) of n > 0 bytes returning 0 means no progress
    p += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

int fsync_fd(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

int fdatasync_fd(int fd) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

int64_t wall_clock_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string errno_text(int err) { return std::strerror(err); }

// Payloads at least this big have their CRC32C computed before the appender takes the mutex,
// so one large WRITE does not hold up every other appender for the length of a checksum.
constexpr size_t PAYLOAD_CRC_UNLOCKED_BYTES_MIN = 16u << 10;

uint32_t gf2_matrix_times(const uint32_t* matrix, uint32_t vector) {
  uint32_t sum = 0;
  for (; vector != 0; vector >>= 1, ++matrix) {
    if (vector & 1u) sum ^= *matrix;
  }
  return sum;
}

void gf2_matrix_square(uint32_t* square, const uint32_t* matrix) {
  for (int n = 0; n < 32; ++n) square[n] = gf2_matrix_times(matrix, matrix[n]);
}

// CRC32C of A||B from crc(A), crc(B) and the length of B (zlib's crc32_combine with the
// Castagnoli polynomial): O(log n) 32x32 bit-matrix steps, no pass over the bytes.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t bytes_b) {
  if (bytes_b == 0) return crc_a;
  uint32_t even[32];
  uint32_t odd[32];
  odd[0] = 0x82F63B78u;  // the reflected Castagnoli polynomial: one zero bit
  for (int n = 1; n < 32; ++n) odd[n] = 1u << (n - 1);
  gf2_matrix_square(even, odd);  // two zero bits
  gf2_matrix_square(odd, even);  // four zero bits
  do {
    gf2_matrix_square(even, odd);
    if (bytes_b & 1u) crc_a = gf2_matrix_times(even, crc_a);
    bytes_b >>= 1;
    if (bytes_b == 0) break;
    gf2_matrix_square(odd, even);
    if (bytes_b & 1u) crc_a = gf2_matrix_times(odd, crc_a);
    bytes_b >>= 1;
  } while (bytes_b != 0);
  return crc_a ^ crc_b;
}

// frame_record() (record_codec.cc) with the payload CRC computed beforehand; the layout must
// stay identical, which vectors_test and journal_writer_test check byte for byte.
void frame_record_with_payload_crc(std::vector<uint8_t>& out, const RecordHeader& header,
                                   const uint8_t* payload, uint32_t payload_crc) {
  const size_t at = out.size();
  out.resize(at + RECORD_HEADER_BYTES + header.payload_bytes);
  uint8_t* h = out.data() + at;
  put_u32(h + 0, RECORD_MAGIC);
  put_u64(h + 8, header.seq);
  put_u32(h + 16, header.epoch);
  put_u16(h + 20, header.kind);
  put_u16(h + 22, 0);
  put_u32(h + 24, header.payload_bytes);
  put_u32(h + 28, 0);
  put_u64(h + 32, static_cast<uint64_t>(header.time_ns));
  std::memcpy(h + RECORD_HEADER_BYTES, payload, header.payload_bytes);
  const uint32_t header_crc = crc32c(0, h + 8, RECORD_HEADER_BYTES - 8);
  put_u32(h + 4, crc32c_combine(header_crc, payload_crc, header.payload_bytes));
}

// Reads a whole file relative to dir_fd into `out` (reused across calls).
int read_file(int dir_fd, const std::string& name, std::vector<uint8_t>* out) {
  const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  Fd guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno;
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    const ssize_t r = ::pread(fd, out->data() + done, out->size() - done,
                              static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) break;  // the file shrank under us: use what is there
    done += static_cast<size_t>(r);
  }
  out->resize(done);
  return 0;
}

// New segment: header into `<name>.tmp`, fsync, rename, fsync dir (docs/journal-format.md),
// so a segment on disk always has a valid header.
int create_segment(int dir_fd, uint64_t first_seq, int* fd_out) {
  const std::string name = segment_name(first_seq);
  const std::string tmp = name + ".tmp";
  const int fd = ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  uint8_t header[SEGMENT_HEADER_BYTES];
  encode_segment_header(header, first_seq);
  int err = write_all(fd, header, sizeof header);
  if (err == 0) err = fsync_fd(fd);
  if (err == 0 && ::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) err = errno;
  if (err == 0) err = fsync_fd(dir_fd);
  if (err != 0) {
    ::close(fd);
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return err;
  }
  *fd_out = fd;
  return 0;
}

// What recovery learned from one segment.
struct SegmentScan {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;     // 0 when the segment holds no record
  uint32_t last_epoch = 0;   // epoch of the last record, 0 when none
  size_t good_bytes = 0;     // end of the last good record
  bool torn = false;         // bytes after good_bytes are a torn tail
};

// True when a record that decodes cleanly, with a seq not below `seq_min`, starts after `from`:
// then the damage at `from` is not a torn tail but corruption in the middle.
bool valid_record_after(const std::vector<uint8_t>& bytes, size_t from, uint64_t seq_min) {
  for (size_t at = from; at + RECORD_HEADER_BYTES <= bytes.size(); ++at) {
    if (get_u32(bytes.data() + at) != RECORD_MAGIC) continue;
    RecordHeader h{};
    const uint8_t* payload = nullptr;
    size_t n = 0;
    const char* why = nullptr;
    if (decode_record(bytes.data() + at, bytes.size() - at, &h, &payload, &n, &why) ==
            DecodeStatus::OK &&
        h.seq >= seq_min) {
      return true;
    }
  }
  return false;
}

std::string corrupt_message(const std::string& path, size_t offset, const std::string& why) {
  return "journal segment " + path + " is corrupt at byte " + std::to_string(offset) + ": " +
         why + "; nothing was cut; inspect it with `understudy journal dump` and resync targets";
}

// Decodes every record of one segment. Only the newest segment may end in a torn tail.
int scan_segment(const std::vector<uint8_t>& bytes, const std::string& path, uint64_t name_seq,
                 bool newest, SegmentScan* scan, std::string* error) {
  const char* why = "";
  if (!decode_segment_header(bytes.data(), bytes.size(), &scan->first_seq, &why)) {
    *error = corrupt_message(path, 0, why);
    return EIO;
  }
  if (scan->first_seq != name_seq) {
    *error = corrupt_message(path, 16, "header first seq does not match the file name");
    return EIO;
  }
  uint64_t expect = scan->first_seq;
  size_t at = SEGMENT_HEADER_BYTES;
  while (at < bytes.size()) {
    RecordHeader h{};
    const uint8_t* payload = nullptr;
    size_t n = 0;
    const DecodeStatus st =
        decode_record(bytes.data() + at, bytes.size() - at, &h, &payload, &n, &why);
    if (st == DecodeStatus::OK) {
      if (h.seq != expect) {
        *error = corrupt_message(path, at, "seq " + std::to_string(h.seq) +
                                               " where " + std::to_string(expect) + " follows");
        return EIO;
      }
      if (h.epoch < scan->last_epoch) {
        *error = corrupt_message(path, at, "epoch goes down");
        return EIO;
      }
      scan->last_seq = h.seq;
      scan->last_epoch = h.epoch;
      ++expect;
      at += n;
      continue;
    }
    if (st == DecodeStatus::NEED_MORE) why = "record runs past the end of the segment";
    if (!newest || valid_record_after(bytes, at + 1, expect)) {
      *error = corrupt_message(path, at, why);
      return EIO;
    }
    scan->torn = true;
    break;
  }
  scan->good_bytes = at;
  return 0;
}

// Keeps the torn bytes in `<segment>.torn-<offset>` (never overwriting an older copy: nothing
// is silently discarded, invariant 6), then cuts the segment at the last good record.
int cut_torn_tail(int dir_fd, const std::string& dir, const std::string& name,
                  const std::vector<uint8_t>& bytes, size_t good, std::string* error) {
  const std::string base = name + ".torn-" + std::to_string(good);
  std::string kept = base;
  int fd = -1;
  for (int i = 1; i <= 1000; ++i) {
    fd = ::openat(dir_fd, kept.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST) break;
    kept = base + "." + std::to_string(i);
  }
  int err = fd < 0 ? errno : 0;
  if (err == 0) {
    Fd guard(fd);
    err = write_all(fd, bytes.data() + good, bytes.size() - good);
    if (err == 0) err = fsync_fd(fd);
  }
  if (err == 0) {
    const int seg = ::openat(dir_fd, name.c_str(), O_WRONLY | O_CLOEXEC);
    if (seg < 0) {
      err = errno;
    } else {
      Fd guard(seg);
      if (::ftruncate(seg, static_cast<off_t>(good)) != 0) err = errno;
      if (err == 0) err = fsync_fd(seg);
    }
  }
  if (err == 0) err = fsync_fd(dir_fd);
  if (err != 0) {
    *error = "cannot cut the torn tail of journal segment " + dir + "/" + name + " at byte " +
             std::to_string(good) + ": " + errno_text(err);
    return err;
  }
  std::fprintf(stderr,
               "understudy: journal segment %s/%s: torn tail of %zu bytes at byte %zu cut, "
               "kept in %s\n",
               dir.c_str(), name.c_str(), bytes.size() - good, good, kept.c_str());
  return 0;
}

// Lists segment first seqs in order and deletes `*.tmp` leftovers of an interrupted roll.
int list_segments(int dir_fd, const std::string& dir, std::vector<uint64_t>* seqs,
                  std::string* error) {
  const int dup_fd = ::dup(dir_fd);
  DIR* d = dup_fd < 0 ? nullptr : ::fdopendir(dup_fd);
  if (d == nullptr) {
    const int err = errno;
    if (dup_fd >= 0) ::close(dup_fd);
    *error = "cannot list journal directory " + dir + ": " + errno_text(err);
    return err;
  }
  int err = 0;
  while (const dirent* e = ::readdir(d)) {
    uint64_t first_seq = 0;
    if (parse_segment_name(e->d_name, &first_seq)) {
      seqs->push_back(first_seq);
    } else if (ends_with(e->d_name, ".tmp") && ::unlinkat(dir_fd, e->d_name, 0) != 0) {
      err = errno;
      *error = "cannot remove " + dir + "/" + e->d_name + ": " + errno_text(err);
      break;
    }
  }
  ::closedir(d);
  std::sort(seqs->begin(), seqs->end());
  return err;
}

// Checks the header of a segment that is neither the newest nor the one before it.
int check_segment_header(int dir_fd, const std::string& dir, uint64_t first_seq,
                         std::string* error) {
  const std::string name = segment_name(first_seq);
  const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC);
  uint8_t header[SEGMENT_HEADER_BYTES] = {};
  ssize_t got = -1;
  if (fd >= 0) {
    Fd guard(fd);
    got = ::pread(fd, header, sizeof header, 0);
  }
  if (got < 0) {
    const int err = errno;
    *error = "cannot read journal segment " + dir + "/" + name + ": " + errno_text(err);
    return err;
  }
  uint64_t header_seq = 0;
  const char* why = "";
  if (!decode_segment_header(header, static_cast<size_t>(got), &header_seq, &why)) {
    *error = corrupt_message(dir + "/" + name, 0, why);
    return EIO;
  }
  if (header_seq != first_seq) {
    *error = corrupt_message(dir + "/" + name, 16, "header first seq does not match the name");
    return EIO;
  }
  return 0;
}

}  // namespace

struct JournalWriter::Impl {
  JournalOptions options;
  int dir_fd = -1;

  // Owned by the thread that set `writing`.
  std::vector<uint8_t> batch;
  uint64_t segment_bytes = 0;  // size of the newest segment file
  uint64_t batch_writes = 0;   // write(2) calls of the current batch

  mutable std::mutex mu;
  std::condition_variable written_cv;     // written_seq, writing or error changed
  std::condition_variable durable_cv;     // durable_seq, syncing or error changed
  std::vector<uint8_t> pending;           // guarded by mu: framed records after written_seq
  std::shared_ptr<Fd> segment;            // guarded by mu (the writer may read it without)
  std::shared_ptr<const std::function<void(uint64_t)>> listener;  // guarded by mu
  JournalStats stats{};                   // guarded by mu
  bool writing = false;                   // guarded by mu
  bool syncing = false;                   // guarded by mu
  bool closed = false;                    // guarded by mu
  std::mutex close_mu;                    // serialises close() callers; taken before mu

  ~Impl() {
    if (dir_fd >= 0) ::close(dir_fd);
  }

  int start_empty(std::string* error);
  int recover(const std::vector<uint64_t>& seqs, std::string* error);
  void fail_locked(int err);
  void lead_write(std::unique_lock<std::mutex>& lk);
  int write_batch();
  int write_chunk(const uint8_t* p, size_t n);
  int roll(uint64_t first_seq);
};

int JournalWriter::Impl::start_empty(std::string* error) {
  int fd = -1;
  if (const int err = create_segment(dir_fd, 1, &fd); err != 0) {
    *error = "cannot create journal segment " + options.dir + "/" + segment_name(1) + ": " +
             errno_text(err);
    return err;
  }
  segment = std::make_shared<Fd>(fd);
  segment_bytes = SEGMENT_HEADER_BYTES;
  return 0;
}

int JournalWriter::Impl::recover(const std::vector<uint64_t>& seqs, std::string* error) {
  const std::string& dir = options.dir;
  for (size_t i = 0; i + 2 < seqs.size(); ++i) {
    if (const int err = check_segment_header(dir_fd, dir, seqs[i], error); err != 0) return err;
  }
  std::vector<uint8_t> bytes;
  SegmentScan prev{};
  const bool has_prev = seqs.size() >= 2;
  if (has_prev) {
    const std::string name = segment_name(seqs[seqs.size() - 2]);
    if (const int err = read_file(dir_fd, name, &bytes); err != 0) {
      *error = "cannot read journal segment " + dir + "/" + name + ": " + errno_text(err);
      return err;
    }
    const int err = scan_segment(bytes, dir + "/" + name, seqs[seqs.size() - 2], false, &prev,
                                 error);
    if (err != 0) return err;
  }
  const uint64_t newest_seq = seqs.back();
  const std::string name = segment_name(newest_seq);
  if (const int err = read_file(dir_fd, name, &bytes); err != 0) {
    *error = "cannot read journal segment " + dir + "/" + name + ": " + errno_text(err);
    return err;
  }
  SegmentScan last{};
  last.last_epoch = prev.last_epoch;  // the epoch may not go down across the segment boundary
  if (const int err = scan_segment(bytes, dir + "/" + name, newest_seq, true, &last, error)) {
    return err;
  }
  if (has_prev && (prev.last_seq == 0 || prev.last_seq + 1 != newest_seq)) {
    *error = corrupt_message(dir + "/" + name, 16,
                             "first seq does not follow the last record of the segment before");
    return EIO;
  }
  if (last.torn) {
    const int err = cut_torn_tail(dir_fd, dir, name, bytes, last.good_bytes, error);
    if (err != 0) return err;
  }
  const uint32_t last_epoch = last.last_epoch;
  if (last_epoch > options.epoch) {
    *error = "journal " + dir + " holds records of epoch " + std::to_string(last_epoch) +
             ", newer than this node's epoch " + std::to_string(options.epoch) +
             "; this node must be resynchronised as a target before it writes as source";
    return ESTALE;
  }
  const int fd = ::openat(dir_fd, name.c_str(), O_WRONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (err == 0) segment = std::make_shared<Fd>(fd);
  if (err == 0 && ::lseek(fd, static_cast<off_t>(last.good_bytes), SEEK_SET) < 0) err = errno;
  // Records a crashed daemon left in the page cache become durable before we build on them.
  if (err == 0) err = fdatasync_fd(fd);
  if (err != 0) {
    *error = "cannot open journal segment " + dir + "/" + name + ": " + errno_text(err);
    return err;
  }
  segment_bytes = last.good_bytes;
  const uint64_t last_seq = last.last_seq != 0 ? last.last_seq : newest_seq - 1;
  stats.last_seq = stats.written_seq = stats.durable_seq = last_seq;
  return 0;
}

void JournalWriter::Impl::fail_locked(int err) {
  if (stats.error == 0) {
    stats.error = err;
    std::fprintf(stderr, "understudy: journal %s failed: %s; no record is accepted any more\n",
                 options.dir.c_str(), errno_text(err).c_str());
  }
  written_cv.notify_all();
  durable_cv.notify_all();
}

int JournalWriter::Impl::write_chunk(const uint8_t* p, size_t n) {
  if (n == 0) return 0;
  const int fd = segment->get();
  const int err = write_all(fd, p, n);
  ++batch_writes;
  if (err != 0) {
    // Leave no partial record behind, so the file stays clean for recovery when it can.
    if (::ftruncate(fd, static_cast<off_t>(segment_bytes)) == 0) {
      ::lseek(fd, static_cast<off_t>(segment_bytes), SEEK_SET);
    }
    return err;
  }
  segment_bytes += n;
  return 0;
}

int JournalWriter::Impl::roll(uint64_t first_seq) {
  // The segment we leave is synced now, so a syncer only ever needs the newest one.
  if (const int err = fdatasync_fd(segment->get()); err != 0) return err;
  int fd = -1;
  if (const int err = create_segment(dir_fd, first_seq, &fd); err != 0) return err;
  auto next = std::make_shared<Fd>(fd);
  {
    std::lock_guard<std::mutex> lk(mu);
    segment = std::move(next);
    stats.written_seq = std::max(stats.written_seq, first_seq - 1);
    stats.durable_seq = std::max(stats.durable_seq, first_seq - 1);
    ++stats.syncs;
  }
  written_cv.notify_all();
  durable_cv.notify_all();
  segment_bytes = SEGMENT_HEADER_BYTES;
  return 0;
}

// Writes `batch` in order, rolling between records when the segment would grow past its limit.
int JournalWriter::Impl::write_batch() {
  const uint8_t* b = batch.data();
  size_t chunk = 0;
  size_t at = 0;
  while (at < batch.size()) {
    const size_t record = RECORD_HEADER_BYTES + get_u32(b + at + 24);  // framed by us
    const uint64_t filled = segment_bytes + (at - chunk);
    if (filled > SEGMENT_HEADER_BYTES && filled + record > options.segment_bytes_max) {
      if (const int err = write_chunk(b + chunk, at - chunk); err != 0) return err;
      if (const int err = roll(get_u64(b + at + 8)); err != 0) return err;
      chunk = at;
    }
    at += record;
  }
  US_ASSERT(at == batch.size());
  return write_chunk(b + chunk, at - chunk);
}

// noexcept: a listener that throws would leave `writing` set and every appender waiting
// forever; terminating says loudly that the listener broke its contract.
static void notify_listener(const std::function<void(uint64_t)>& listener, uint64_t seq) noexcept {
  listener(seq);
}

// The leader of a group commit: takes every pending record and writes it without the lock.
void JournalWriter::Impl::lead_write(std::unique_lock<std::mutex>& lk) {
  US_ASSERT(!writing && !pending.empty() && batch.empty());
  writing = true;
  batch.swap(pending);  // the double buffer: appenders keep going into the other one
  const uint64_t last = stats.last_seq;
  batch_writes = 0;
  lk.unlock();
  const int err = write_batch();
  batch.clear();
  lk.lock();
  stats.group_writes += batch_writes;
  if (err != 0) {
    fail_locked(err);
    writing = false;
    written_cv.notify_all();
    return;
  }
  stats.written_seq = last;
  written_cv.notify_all();
  auto call = listener;
  lk.unlock();
  // Still the writer here, so listener calls never overlap and see written_seq grow.
  if (call && *call) notify_listener(*call, last);
  lk.lock();
  writing = false;
  written_cv.notify_all();
}

int JournalWriter::open(const JournalOptions& options, std::unique_ptr<JournalWriter>* out,
                        std::string* error) {
  if (options.epoch == 0 || options.segment_bytes_max <= SEGMENT_HEADER_BYTES) {
    *error = "journal options for " + options.dir +
             " are invalid: epoch must be >= 1 and segment_bytes_max above 32";
    return EINVAL;
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (!impl->options.clock_ns) impl->options.clock_ns = wall_clock_ns;
  impl->dir_fd = ::open(options.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl->dir_fd < 0) {
    const int err = errno;
    *error = "cannot open journal directory " + options.dir + ": " + errno_text(err);
    return err;
  }
  std::vector<uint64_t> seqs;
  if (const int err = list_segments(impl->dir_fd, options.dir, &seqs, error); err != 0) {
    return err;
  }
  const int err = seqs.empty() ? impl->start_empty(error) : impl->recover(seqs, error);
  if (err != 0) return err;
  out->reset(new JournalWriter());
  (*out)->impl_ = std::move(impl);
  return 0;
}

JournalWriter::~JournalWriter() {
  if (impl_) close();
}

uint64_t JournalWriter::enqueue(RecordKind kind, const uint8_t* payload, size_t payload_bytes,
                                int* err) {
  Impl& m = *impl_;
  US_ASSERT(payload != nullptr || payload_bytes == 0);
  const auto code = static_cast<uint16_t>(kind);
  int fail = 0;
  if (code == 0 || code > RECORD_KIND_MAX || payload_bytes > RECORD_PAYLOAD_BYTES_MAX) {
    fail = EINVAL;  // the caller's argument, not the journal's health
  }
  const bool crc_unlocked = fail == 0 && payload_bytes >= PAYLOAD_CRC_UNLOCKED_BYTES_MIN;
  const uint32_t payload_crc = crc_unlocked ? crc32c(0, payload, payload_bytes) : 0;
  std::lock_guard<std::mutex> lk(m.mu);
  if (fail == 0 && m.stats.error != 0) fail = m.stats.error;
  if (fail == 0 && m.closed) fail = EBADF;
  if (fail != 0) {
    if (err != nullptr) *err = fail;
    return 0;
  }
  const uint64_t seq = ++m.stats.last_seq;
  const RecordHeader header{seq, m.options.epoch, code, static_cast<uint32_t>(payload_bytes),
                            m.options.clock_ns()};
  if (crc_unlocked) {
    frame_record_with_payload_crc(m.pending, header, payload, payload_crc);
  } else {
    frame_record(m.pending, header, payload);
  }
  ++m.stats.records;
  m.stats.bytes += RECORD_HEADER_BYTES + payload_bytes;
  return seq;
}

int JournalWriter::wait_written(uint64_t seq) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lk(m.mu);
  US_ASSERT(seq <= m.stats.last_seq);  // a seq nobody was handed is the caller's bug
  while (m.stats.written_seq < seq) {
    if (m.stats.error != 0) return m.stats.error;
    if (m.writing) {
      m.written_cv.wait(lk);
    } else {
      m.lead_write(lk);
    }
  }
  return 0;
}

uint64_t JournalWriter::append(RecordKind kind, const uint8_t* payload, size_t payload_bytes,
                               int* err) {
  const uint64_t seq = enqueue(kind, payload, payload_bytes, err);
  if (seq == 0) return 0;
  if (const int e = wait_written(seq); e != 0) {
    if (err != nullptr) *err = e;
    return 0;
  }
  return seq;
}

int JournalWriter::sync_to(uint64_t seq) {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    seq = std::min(seq, m.stats.last_seq);  // "everything so far" may be asked as UINT64_MAX
    if (m.stats.durable_seq >= seq) return 0;
  }
  if (const int err = wait_written(seq); err != 0) return err;
  std::unique_lock<std::mutex> lk(m.mu);
  while (m.stats.durable_seq < seq) {
    if (m.stats.error != 0) return m.stats.error;
    if (m.syncing) {
      m.durable_cv.wait(lk);
      continue;
    }
    // Every record <= written_seq is in this segment or in one synced when it was left.
    m.syncing = true;
    const uint64_t target = m.stats.written_seq;
    const std::shared_ptr<Fd> segment = m.segment;
    lk.unlock();
    const int err = fdatasync_fd(segment->get());
    lk.lock();
    m.syncing = false;
    if (err != 0) {
      m.fail_locked(err);
    } else {
      m.stats.durable_seq = std::max(m.stats.durable_seq, target);
      ++m.stats.syncs;
    }
    m.durable_cv.notify_all();
  }
  return 0;
}

void JournalWriter::set_listener(std::function<void(uint64_t written_seq)> listener) {
  auto shared = std::make_shared<const std::function<void(uint64_t)>>(std::move(listener));
  std::lock_guard<std::mutex> lk(impl_->mu);
  impl_->listener = std::move(shared);
}

JournalStats JournalWriter::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->stats;
}

int JournalWriter::close() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> closing(m.close_mu);
  uint64_t last = 0;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    if (m.closed) return m.stats.error;
    last = m.stats.last_seq;
  }
  const int err = sync_to(last);
  std::lock_guard<std::mutex> lk(m.mu);
  m.closed = true;
  m.segment.reset();  // a syncer still holding it closes it when done
  return err != 0 ? err : m.stats.error;
}

}  // namespace understudy
