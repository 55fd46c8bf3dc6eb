// Checks CRC32C against its published check value and a frame/decode round trip.
#include <cstdio>
#include <cstdlib>

#include "../record_codec.h"

using namespace understudy;

static int failures = 0;
#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                      \
    }                                                                  \
  } while (0)

int main() {
  CHECK(crc32c(0, "123456789", 9) == 0xE3069283u);
  CHECK(crc32c(crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u);

  std::vector<uint8_t> payload;
  PayloadWriter w(payload);
  w.u64(42);
  w.bytes(std::string_view("a/b"));
  std::vector<uint8_t> out;
  frame_record(out, {7, 1, static_cast<uint16_t>(RecordKind::UNLINK),
                     static_cast<uint32_t>(payload.size()), 123},
               payload.data());
  RecordHeader h{};
  const uint8_t* p = nullptr;
  size_t n = 0;
  const char* why = nullptr;
  CHECK(decode_record(out.data(), out.size(), &h, &p, &n, &why) == DecodeStatus::OK);
  CHECK(h.seq == 7 && h.epoch == 1 && n == out.size());
  CHECK(decode_record(out.data(), out.size() - 1, &h, &p, &n, &why) == DecodeStatus::NEED_MORE);
  out[45] ^= 1;
  CHECK(decode_record(out.data(), out.size(), &h, &p, &n, &why) == DecodeStatus::CORRUPT);

  CHECK(path_is_valid("") && path_is_valid("a/b") && !path_is_valid("/a"));
  CHECK(!path_is_valid("a/../b") && !path_is_valid("a//b") && !path_is_valid("a/"));
  CHECK(!path_is_valid(std::string_view("a\0b", 3)));

  if (failures == 0) std::printf("record_codec_test: ok\n");
  return failures == 0 ? 0 : 1;
}
