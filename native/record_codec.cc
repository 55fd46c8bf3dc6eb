// Record framing and CRC32C (docs/journal-format.md). Hardware CRC when SSE4.2 is there.
#include "record_codec.h"

#include <array>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace understudy {
namespace {

constexpr uint32_t CRC32C_POLY_REFLECTED = 0x82F63B78u;

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? CRC32C_POLY_REFLECTED : 0u);
    table[i] = crc;
  }
  return table;
}

const std::array<uint32_t, 256> CRC_TABLE = make_crc_table();

uint32_t crc32c_table(uint32_t state, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) state = CRC_TABLE[(state ^ p[i]) & 0xFFu] ^ (state >> 8);
  return state;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t state, const uint8_t* p,
                                                        size_t n) {
  uint64_t s = state;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    s = _mm_crc32_u64(s, word);
    p += 8;
    n -= 8;
  }
  uint32_t s32 = static_cast<uint32_t>(s);
  while (n > 0) {
    s32 = _mm_crc32_u8(s32, *p++);
    --n;
  }
  return s32;
}

bool cpu_has_sse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
const bool HAS_SSE42 = cpu_has_sse42();
#endif

}  // namespace

uint32_t crc32c(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t state = ~crc;
#if defined(__x86_64__)
  if (HAS_SSE42) return ~crc32c_hw(state, p, size);
#endif
  return ~crc32c_table(state, p, size);
}

const char* record_kind_name(uint16_t kind) {
  static constexpr const char* NAMES[] = {
      "UNKNOWN",  "CREATE", "MKDIR",   "SYMLINK", "LINK",     "UNLINK",
      "RMDIR",    "RENAME", "WRITE",   "TRUNCATE", "CHMOD",   "CHOWN",
      "UTIMENS",  "SETXATTR", "REMOVEXATTR", "FALLOCATE", "SYNC_BEGIN", "ADOPT",
      "SYNC_END"};
  static_assert(sizeof NAMES / sizeof NAMES[0] == RECORD_KIND_MAX + 1);
  return kind <= RECORD_KIND_MAX ? NAMES[kind] : "UNKNOWN";
}

void frame_record(std::vector<uint8_t>& out, const RecordHeader& header, const uint8_t* payload) {
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
  if (header.payload_bytes > 0) std::memcpy(h + RECORD_HEADER_BYTES, payload, header.payload_bytes);
  put_u32(h + 4, crc32c(0, h + 8, RECORD_HEADER_BYTES - 8 + header.payload_bytes));
}

void encode_segment_header(uint8_t* out, uint64_t first_seq) {
  std::memcpy(out, SEGMENT_MAGIC, 8);
  put_u32(out + 8, JOURNAL_FORMAT_VERSION);
  put_u32(out + 12, static_cast<uint32_t>(SEGMENT_HEADER_BYTES));
  put_u64(out + 16, first_seq);
  put_u32(out + 24, 0);
  put_u32(out + 28, crc32c(0, out, 28));
}

DecodeStatus decode_record(const uint8_t* data, size_t size, RecordHeader* header,
                           const uint8_t** payload, size_t* record_bytes, const char** why) {
  if (size < RECORD_HEADER_BYTES) return DecodeStatus::NEED_MORE;
  if (get_u32(data) != RECORD_MAGIC) { *why = "bad record magic"; return DecodeStatus::CORRUPT; }
  const uint32_t payload_bytes = get_u32(data + 24);
  if (payload_bytes > RECORD_PAYLOAD_BYTES_MAX) {
    *why = "payload length over the limit";
    return DecodeStatus::CORRUPT;
  }
  if (size - RECORD_HEADER_BYTES < payload_bytes) return DecodeStatus::NEED_MORE;
  const uint32_t crc = crc32c(0, data + 8, RECORD_HEADER_BYTES - 8 + payload_bytes);
  if (crc != get_u32(data + 4)) { *why = "crc32c mismatch"; return DecodeStatus::CORRUPT; }
  if (get_u16(data + 22) != 0 || get_u32(data + 28) != 0) {
    *why = "non-zero reserved field";
    return DecodeStatus::CORRUPT;
  }
  header->seq = get_u64(data + 8);
  header->epoch = get_u32(data + 16);
  header->kind = get_u16(data + 20);
  header->payload_bytes = payload_bytes;
  header->time_ns = static_cast<int64_t>(get_u64(data + 32));
  if (header->seq == 0) { *why = "seq 0"; return DecodeStatus::CORRUPT; }
  if (header->epoch == 0) { *why = "epoch 0"; return DecodeStatus::CORRUPT; }
  if (header->kind == 0 || header->kind > RECORD_KIND_MAX) {
    *why = "unknown record kind";
    return DecodeStatus::CORRUPT;
  }
  *payload = data + RECORD_HEADER_BYTES;
  *record_bytes = RECORD_HEADER_BYTES + payload_bytes;
  return DecodeStatus::OK;
}

bool decode_segment_header(const uint8_t* data, size_t size, uint64_t* first_seq,
                           const char** why) {
  if (size < SEGMENT_HEADER_BYTES) { *why = "segment header truncated"; return false; }
  if (std::memcmp(data, SEGMENT_MAGIC, 8) != 0) { *why = "bad segment magic"; return false; }
  if (get_u32(data + 8) != JOURNAL_FORMAT_VERSION) {
    *why = "unsupported journal format version";
    return false;
  }
  if (get_u32(data + 12) != SEGMENT_HEADER_BYTES) { *why = "bad segment header size"; return false; }
  if (get_u32(data + 28) != crc32c(0, data, 28)) { *why = "segment header crc mismatch"; return false; }
  *first_seq = get_u64(data + 16);
  if (*first_seq == 0) { *why = "segment first seq 0"; return false; }
  return true;
}

bool path_is_valid(std::string_view path) {
  if (path.size() > PATH_BYTES_MAX) return false;
  if (path.empty()) return true;  // the vault root
  if (path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

}  // namespace understudy
