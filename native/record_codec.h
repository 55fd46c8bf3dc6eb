// Record layout and CRC32C: the journal format in C++ (docs/journal-format.md).
// Mirrored in src/record; both are checked against test/vectors. No Node-API here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace understudy {

inline constexpr char SEGMENT_MAGIC[8] = {'U', 'S', 'J', 'R', 'N', 'L', '0', '1'};
inline constexpr uint32_t JOURNAL_FORMAT_VERSION = 1;
inline constexpr size_t SEGMENT_HEADER_BYTES = 32;
inline constexpr uint32_t RECORD_MAGIC = 0x31525355;  // "USR1" as little-endian bytes
inline constexpr size_t RECORD_HEADER_BYTES = 40;
inline constexpr uint32_t RECORD_PAYLOAD_BYTES_MAX = 2u << 20;
inline constexpr size_t WRITE_DATA_BYTES_MAX = 1u << 20;
inline constexpr size_t PATH_BYTES_MAX = 4096;
inline constexpr size_t XATTR_NAME_BYTES_MAX = 255;
inline constexpr size_t XATTR_VALUE_BYTES_MAX = 65536;
inline constexpr size_t SYMLINK_TARGET_BYTES_MAX = 4095;
inline constexpr uint64_t SEGMENT_BYTES_MAX_DEFAULT = 64ull << 20;

enum class RecordKind : uint16_t {
  CREATE = 1,
  MKDIR = 2,
  SYMLINK = 3,
  LINK = 4,
  UNLINK = 5,
  RMDIR = 6,
  RENAME = 7,
  WRITE = 8,
  TRUNCATE = 9,
  CHMOD = 10,
  CHOWN = 11,
  UTIMENS = 12,
  SETXATTR = 13,
  REMOVEXATTR = 14,
  FALLOCATE = 15,
  // Synchronisation (docs/journal-format.md, "Synchronisation kinds").
  SYNC_BEGIN = 16,
  ADOPT = 17,
  SYNC_END = 18,
};
inline constexpr uint16_t RECORD_KIND_MAX = 18;

/** SYNC_BEGIN flags. */
inline constexpr uint32_t SYNC_FLAG_CHECKSUM = 1;
inline constexpr uint32_t SYNC_FLAG_DELETE = 2;

/** Name of a kind for messages ("WRITE"); "UNKNOWN" for anything else. */
const char* record_kind_name(uint16_t kind);

/** CRC32C (Castagnoli), continuing from `crc` (pass 0 to start). */
uint32_t crc32c(uint32_t crc, const void* data, size_t size);

inline void put_u16(uint8_t* at, uint16_t v) { std::memcpy(at, &v, 2); }  // little-endian host
inline void put_u32(uint8_t* at, uint32_t v) { std::memcpy(at, &v, 4); }
inline void put_u64(uint8_t* at, uint64_t v) { std::memcpy(at, &v, 8); }
inline uint16_t get_u16(const uint8_t* at) { uint16_t v; std::memcpy(&v, at, 2); return v; }
inline uint32_t get_u32(const uint8_t* at) { uint32_t v; std::memcpy(&v, at, 4); return v; }
inline uint64_t get_u64(const uint8_t* at) { uint64_t v; std::memcpy(&v, at, 8); return v; }

/** Appends payload fields, little-endian, to a caller-owned buffer (reused across ops). */
class PayloadWriter {
 public:
  explicit PayloadWriter(std::vector<uint8_t>& out) : out_(out) { out_.clear(); }
  void u32(uint32_t v) { append(&v, 4); }
  void u64(uint64_t v) { append(&v, 8); }
  void i64(int64_t v) { append(&v, 8); }
  /** `bytes` field: u32 length, then the bytes. */
  void bytes(const void* data, size_t size) {
    u32(static_cast<uint32_t>(size));
    append(data, size);
  }
  void bytes(std::string_view s) { bytes(s.data(), s.size()); }
  /** Raw bytes with no length (the data of a WRITE, which runs to the end). */
  void raw(const void* data, size_t size) { append(data, size); }
  size_t size() const { return out_.size(); }

 private:
  void append(const void* data, size_t size) {
    if (size == 0) return;
    // resize + memcpy: GCC 12 at -O3 reports a false -Warray-bounds for vector::insert here.
    const size_t at = out_.size();
    out_.resize(at + size);
    std::memcpy(out_.data() + at, data, size);
  }
  std::vector<uint8_t>& out_;
};

/** Reads payload fields with bounds checks; any overrun sets `ok()` false and yields zeros. */
class PayloadReader {
 public:
  PayloadReader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  uint32_t u32() { uint32_t v = 0; take(&v, 4); return v; }
  uint64_t u64() { uint64_t v = 0; take(&v, 8); return v; }
  int64_t i64() { int64_t v = 0; take(&v, 8); return v; }
  /** A `bytes` field of at most `max` bytes; returns a view into the payload. */
  std::string_view bytes(size_t max) {
    const uint32_t n = u32();
    if (!ok_ || n > max || static_cast<size_t>(end_ - p_) < n) { ok_ = false; return {}; }
    std::string_view v(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return v;
  }
  /** Everything left (the data of a WRITE). */
  std::string_view rest() {
    std::string_view v(reinterpret_cast<const char*>(p_), static_cast<size_t>(end_ - p_));
    p_ = end_;
    return v;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return p_ == end_; }

 private:
  void take(void* out, size_t n) {
    if (!ok_ || static_cast<size_t>(end_ - p_) < n) { ok_ = false; return; }
    std::memcpy(out, p_, n);
    p_ += n;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

struct RecordHeader {
  uint64_t seq;
  uint32_t epoch;
  uint16_t kind;
  uint32_t payload_bytes;
  int64_t time_ns;
};

/** Appends one framed record (header + payload, CRC filled in) to `out`. */
void frame_record(std::vector<uint8_t>& out, const RecordHeader& header, const uint8_t* payload);

/** Writes a segment header for `first_seq` into `out` (SEGMENT_HEADER_BYTES bytes). */
void encode_segment_header(uint8_t* out, uint64_t first_seq);

enum class DecodeStatus { OK, NEED_MORE, CORRUPT };

/**
 * Decodes the record at `data` (with `size` bytes available). NEED_MORE: the header or
 * payload runs past `size`. CORRUPT: `why` says what is wrong. On OK, `*payload` points
 * into `data` and `*record_bytes` is the framed length.
 */
DecodeStatus decode_record(const uint8_t* data, size_t size, RecordHeader* header,
                           const uint8_t** payload, size_t* record_bytes, const char** why);

/** Checks a segment header; returns false with `why` set when it is not valid. */
bool decode_segment_header(const uint8_t* data, size_t size, uint64_t* first_seq,
                           const char** why);

/** True when `path` obeys the path rules of docs/journal-format.md (relative, no ./.., no NUL). */
bool path_is_valid(std::string_view path);

}  // namespace understudy
