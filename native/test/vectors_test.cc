// Checks the C++ codec and writer against the shared journal vectors (test/vectors/journal-v1,
// relative to the working directory, which is the repo root under test/native.test.ts):
// every vector record decodes as records.txt says, and writing the same records with a
// JournalWriter (epoch from the file, segment_bytes_max 4096) gives byte-identical segments.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../journal_writer.h"

using namespace understudy;
namespace fs = std::filesystem;

static int failures = 0;
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                          \
    }                                                                      \
  } while (0)

namespace {

const char* const VECTORS_DIR = "test/vectors/journal-v1";
constexpr uint64_t VECTOR_SEGMENT_BYTES_MAX = 4096;

struct VectorRecord {
  uint64_t seq = 0;
  uint32_t epoch = 0;
  uint16_t kind = 0;
  int64_t time_ns = 0;
  std::vector<uint8_t> payload;
};

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

bool parse_hex(const std::string& hex, std::vector<uint8_t>* out) {
  out->clear();
  if (hex == "-") return true;  // an explicit empty payload
  if (hex.size() % 2 != 0) return false;
  for (size_t i = 0; i < hex.size(); i += 2) {
    char* end = nullptr;
    const std::string byte = hex.substr(i, 2);
    const unsigned long v = std::strtoul(byte.c_str(), &end, 16);
    if (end != byte.c_str() + 2) return false;
    out->push_back(static_cast<uint8_t>(v));
  }
  return true;
}

// Parses records.txt: `<seq> <epoch> <kind> <time_ns> <payload_hex>`, `#` starts a comment.
bool parse_records(const fs::path& path, std::vector<VectorRecord>* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    VectorRecord r;
    unsigned long long seq = 0, epoch = 0, kind = 0;
    long long time_ns = 0;
    std::string hex;
    if (!(fields >> seq >> epoch >> kind >> time_ns)) {
      std::fprintf(stderr, "FAIL %s:%d: cannot parse the record fields\n", path.c_str(), line_no);
      return false;
    }
    fields >> hex;  // absent when the payload is empty
    if (!parse_hex(hex, &r.payload)) {
      std::fprintf(stderr, "FAIL %s:%d: bad payload hex\n", path.c_str(), line_no);
      return false;
    }
    r.seq = seq;
    r.epoch = static_cast<uint32_t>(epoch);
    r.kind = static_cast<uint16_t>(kind);
    r.time_ns = time_ns;
    out->push_back(std::move(r));
  }
  return true;
}

std::vector<fs::path> segments_of(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".seg") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Decodes every vector segment and compares each record with records.txt, in order.
void check_decode(const std::vector<VectorRecord>& expected) {
  size_t next = 0;
  for (const fs::path& path : segments_of(VECTORS_DIR)) {
    const std::vector<uint8_t> bytes = read_bytes(path);
    uint64_t first_seq = 0;
    const char* why = "";
    if (!decode_segment_header(bytes.data(), bytes.size(), &first_seq, &why)) {
      std::fprintf(stderr, "FAIL %s: segment header: %s\n", path.c_str(), why);
      ++failures;
      continue;
    }
    size_t at = SEGMENT_HEADER_BYTES;
    while (at < bytes.size()) {
      RecordHeader h{};
      const uint8_t* payload = nullptr;
      size_t n = 0;
      if (decode_record(bytes.data() + at, bytes.size() - at, &h, &payload, &n, &why) !=
          DecodeStatus::OK) {
        // Later comparisons would all be misaligned: one sentence is the useful one.
        std::fprintf(stderr, "FAIL %s at byte %zu: %s\n", path.c_str(), at, why);
        ++failures;
        return;
      }
      CHECK(next < expected.size());
      if (next < expected.size()) {
        const VectorRecord& r = expected[next];
        const bool same = h.seq == r.seq && h.epoch == r.epoch && h.kind == r.kind &&
                          h.time_ns == r.time_ns &&
                          std::vector<uint8_t>(payload, payload + n - RECORD_HEADER_BYTES) ==
                              r.payload;
        if (!same) std::fprintf(stderr, "FAIL %s at byte %zu: record differs from records.txt "
                                "line for seq %llu\n", path.c_str(), at,
                                static_cast<unsigned long long>(r.seq));
        failures += same ? 0 : 1;
      }
      ++next;
      at += n;
    }
  }
  CHECK(next == expected.size());
}

bool open_writer(const fs::path& dir, uint32_t epoch, const std::vector<VectorRecord>& records,
                 const size_t* cursor, std::unique_ptr<JournalWriter>* out) {
  JournalOptions o;
  o.dir = dir;
  o.epoch = epoch;
  o.segment_bytes_max = VECTOR_SEGMENT_BYTES_MAX;
  // The writer stamps the vector's times, in the order it frames the records.
  o.clock_ns = [&records, cursor] { return records[*cursor].time_ns; };
  std::string error;
  if (const int err = JournalWriter::open(o, out, &error); err != 0) {
    std::fprintf(stderr, "FAIL open %s: %s\n", dir.c_str(), error.c_str());
    ++failures;
    return false;
  }
  return true;
}

// Writes the records with a JournalWriter and compares the segment files byte for byte.
void check_writer(const std::vector<VectorRecord>& records, const fs::path& dir) {
  if (records.empty()) return;
  if (records.front().seq != 1) {
    // A journal whose older segments were retired: an empty segment fixes the first seq.
    std::vector<uint8_t> header(SEGMENT_HEADER_BYTES);
    encode_segment_header(header.data(), records.front().seq);
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.seg",
                  static_cast<unsigned long long>(records.front().seq));
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(header.data()), SEGMENT_HEADER_BYTES);
  }
  size_t cursor = 0;
  std::unique_ptr<JournalWriter> w;
  for (; cursor < records.size(); ++cursor) {
    const VectorRecord& r = records[cursor];
    // A new epoch in the vectors is a new writer, as after a failover.
    if (!w || r.epoch != records[cursor - 1].epoch) {
      if (w) CHECK(w->close() == 0);
      w.reset();
      if (!open_writer(dir, r.epoch, records, &cursor, &w)) return;
    }
    int err = 0;
    const uint64_t seq = w->append(static_cast<RecordKind>(r.kind), r.payload.data(),
                                   r.payload.size(), &err);
    if (seq != r.seq) std::fprintf(stderr, "FAIL append seq %llu: got %llu, errno %d\n",
                                   static_cast<unsigned long long>(r.seq),
                                   static_cast<unsigned long long>(seq), err);
    failures += seq == r.seq ? 0 : 1;
  }
  CHECK(w->close() == 0);
  const std::vector<fs::path> ours = segments_of(dir);
  const std::vector<fs::path> theirs = segments_of(VECTORS_DIR);
  CHECK(ours.size() == theirs.size());
  for (size_t i = 0; i < ours.size() && i < theirs.size(); ++i) {
    const bool same_name = ours[i].filename() == theirs[i].filename();
    const bool same_bytes = read_bytes(ours[i]) == read_bytes(theirs[i]);
    if (!same_name || !same_bytes) {
      std::fprintf(stderr, "FAIL writer output %s differs from vector %s\n", ours[i].c_str(),
                   theirs[i].c_str());
      ++failures;
    }
  }
}

// The value after `"key":` in a small flat JSON file, without quotes; empty when absent.
std::string json_value(const std::string& json, const std::string& key) {
  const size_t k = json.find("\"" + key + "\"");
  if (k == std::string::npos) return "";
  size_t at = json.find(':', k);
  if (at == std::string::npos) return "";
  at = json.find_first_not_of(" \t\n\"", at + 1);
  const size_t end = json.find_first_of(",}\n\"", at);
  return at == std::string::npos ? "" : json.substr(at, end - at);
}

// Opens a copy of one damaged journal and checks what recovery does with it: a torn tail is
// cut and kept aside, anything else is refused with a sentence naming segment and offset.
void check_corrupt_case(const fs::path& vector, const fs::path& work) {
  fs::copy(vector, work);
  std::ifstream in(vector / "expect.json");
  const std::string json((std::istreambuf_iterator<char>(in)), {});
  const std::string segment = json_value(json, "segment");
  const std::string offset = json_value(json, "offset");
  const bool torn = json.find("\"tornAt\"") != std::string::npos;
  const std::vector<fs::path> segs = segments_of(work);
  // The writer validates the two newest segments only; older ones are the reader's job.
  const bool newest_two = segs.size() <= 2 || segment >= segs[segs.size() - 2].filename().string();
  if (!newest_two) {
    std::printf("vectors_test: %s: damage in an older segment, left to the reader\n",
                vector.filename().c_str());
    return;
  }
  JournalOptions o;
  o.dir = work;
  o.epoch = 1000;  // newer than any vector: only the damage may refuse the open
  std::unique_ptr<JournalWriter> w;
  std::string error;
  const int err = JournalWriter::open(o, &w, &error);
  bool ok = false;
  if (torn) {
    ok = err == 0 && std::to_string(fs::file_size(work / segment)) == offset &&
         fs::exists(work / (segment + ".torn-" + offset));
  } else {
    ok = err == EIO && error.find(segment) != std::string::npos &&
         error.find("at byte " + offset + ":") != std::string::npos;
  }
  if (!ok) {
    std::fprintf(stderr, "FAIL corrupt vector %s: open returned %d: %s\n",
                 vector.filename().c_str(), err, error.c_str());
    ++failures;
  }
}

void check_corrupt_vectors(const fs::path& tmp) {
  const fs::path corrupt = "test/vectors/corrupt";
  if (!fs::is_directory(corrupt)) return;
  for (const auto& e : fs::directory_iterator(corrupt)) {
    if (e.is_directory() && fs::exists(e.path() / "expect.json")) {
      check_corrupt_case(e.path(), tmp / e.path().filename());
    }
  }
}

}  // namespace

int main() {
  const fs::path vectors = VECTORS_DIR;
  if (!fs::is_directory(vectors) || !fs::exists(vectors / "records.txt")) {
    std::fprintf(stderr,
                 "FAIL vectors_test: %s/records.txt not found from %s; run from the repo root "
                 "and generate the journal vectors first\n",
                 VECTORS_DIR, fs::current_path().c_str());
    return 1;
  }
  std::vector<VectorRecord> records;
  if (!parse_records(vectors / "records.txt", &records)) return 1;
  CHECK(!records.empty());
  CHECK(!segments_of(vectors).empty());
  check_decode(records);

  char tmpl[] = "/tmp/vectors_test.XXXXXX";
  const char* made = ::mkdtemp(tmpl);
  if (made == nullptr) {
    std::perror("FAIL mkdtemp");
    return 1;
  }
  fs::create_directory(fs::path(made) / "writer");
  check_writer(records, fs::path(made) / "writer");
  check_corrupt_vectors(made);
  fs::remove_all(made);
  if (failures == 0) {
    std::printf("vectors_test: ok (%zu records, %zu segments)\n", records.size(),
                segments_of(vectors).size());
  }
  return failures == 0 ? 0 : 1;
}
