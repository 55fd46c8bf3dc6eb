// Checks the journal writer: round trip, reopen, roll, torn tail, corruption, concurrency,
// sync_to and a full disk. Runs in its own directory under /tmp and removes it.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
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

struct Decoded {
  RecordHeader header;
  std::vector<uint8_t> payload;
  std::string segment;
};

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::vector<fs::path> segments_of(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Decodes every segment of `dir` independently of the writer; false on any damage.
bool decode_dir(const fs::path& dir, std::vector<Decoded>* out) {
  out->clear();
  for (const fs::path& path : segments_of(dir)) {
    const std::vector<uint8_t> bytes = read_bytes(path);
    uint64_t first_seq = 0;
    const char* why = "";
    if (!decode_segment_header(bytes.data(), bytes.size(), &first_seq, &why)) return false;
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.seg", static_cast<unsigned long long>(first_seq));
    if (path.filename() != name) return false;
    size_t at = SEGMENT_HEADER_BYTES;
    bool first = true;
    while (at < bytes.size()) {
      Decoded d{};
      const uint8_t* payload = nullptr;
      size_t n = 0;
      if (decode_record(bytes.data() + at, bytes.size() - at, &d.header, &payload, &n, &why) !=
          DecodeStatus::OK) {
        std::fprintf(stderr, "decode %s at %zu: %s\n", path.c_str(), at, why);
        return false;
      }
      if (first && d.header.seq != first_seq) return false;
      first = false;
      d.payload.assign(payload, payload + d.header.payload_bytes);
      d.segment = path.filename();
      out->push_back(std::move(d));
      at += n;
    }
  }
  return true;
}

bool seqs_contiguous(const std::vector<Decoded>& records, uint64_t first) {
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].header.seq != first + i) return false;
  }
  return true;
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/journal_writer_test.XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    if (made == nullptr) {
      std::perror("mkdtemp");
      std::exit(2);
    }
    path = made;
  }
  ~TempDir() { fs::remove_all(path); }
};

fs::path fresh(const TempDir& tmp, const char* name) {
  const fs::path dir = tmp.path / name;
  fs::create_directories(dir);
  return dir;
}

JournalOptions options_for(const fs::path& dir, uint64_t segment_bytes_max = 1 << 20) {
  JournalOptions o;
  o.dir = dir;
  o.segment_bytes_max = segment_bytes_max;
  auto counter = std::make_shared<std::atomic<int64_t>>(1000);
  o.clock_ns = [counter] { return counter->fetch_add(1); };
  return o;
}

std::unique_ptr<JournalWriter> open_ok(const JournalOptions& o) {
  std::unique_ptr<JournalWriter> w;
  std::string error;
  const int err = JournalWriter::open(o, &w, &error);
  if (err != 0) std::fprintf(stderr, "open %s: %d %s\n", o.dir.c_str(), err, error.c_str());
  CHECK(err == 0 && w != nullptr);
  return w;
}

uint64_t append_text(JournalWriter& w, const std::string& text,
                     RecordKind kind = RecordKind::WRITE) {
  int err = 0;
  const uint64_t seq =
      w.append(kind, reinterpret_cast<const uint8_t*>(text.data()), text.size(), &err);
  CHECK(seq != 0 && err == 0);
  return seq;
}

std::string text_of(const Decoded& d) { return std::string(d.payload.begin(), d.payload.end()); }

void test_round_trip_and_reopen(const TempDir& tmp) {
  const fs::path dir = fresh(tmp, "round_trip");
  JournalOptions o = options_for(dir);
  o.epoch = 3;
  {
    auto w = open_ok(o);
    if (!w) return;
    CHECK(append_text(*w, "alpha") == 1);
    CHECK(append_text(*w, "", RecordKind::UNLINK) == 2);
    CHECK(append_text(*w, std::string(5000, 'x'), RecordKind::SETXATTR) == 3);
    CHECK(w->close() == 0);
    CHECK(w->close() == 0);  // idempotent
  }
  std::vector<Decoded> records;
  CHECK(decode_dir(dir, &records));
  CHECK(records.size() == 3 && seqs_contiguous(records, 1));
  if (records.size() == 3) {
    CHECK(text_of(records[0]) == "alpha" && records[0].header.epoch == 3);
    CHECK(records[0].header.kind == static_cast<uint16_t>(RecordKind::WRITE));
    CHECK(records[1].payload.empty() && records[1].header.kind == 5);
    CHECK(text_of(records[2]) == std::string(5000, 'x') && records[2].header.kind == 13);
    CHECK(records[0].header.time_ns == 1000 && records[2].header.time_ns == 1002);
  }
  {
    auto w = open_ok(o);
    if (!w) return;
    CHECK(w->stats().last_seq == 3 && w->stats().durable_seq == 3);
    CHECK(append_text(*w, "beta") == 4);
  }  // the destructor closes
  CHECK(decode_dir(dir, &records));
  CHECK(records.size() == 4 && seqs_contiguous(records, 1));
  if (records.size() == 4) CHECK(text_of(records[3]) == "beta");

  o.epoch = 2;  // older than the journal's last record: a stale caller
  std::unique_ptr<JournalWriter> w;
  std::string error;
  CHECK(JournalWriter::open(o, &w, &error) == ESTALE && !w);
  CHECK(error.find("epoch 3") != std::string::npos);
}

// Big payloads are checksummed before the lock is taken; the bytes must be frame_record's.
void test_large_record_framing(const TempDir& tmp) {
  const fs::path dir = fresh(tmp, "large");
  std::vector<uint8_t> payload(RECORD_PAYLOAD_BYTES_MAX);
  uint32_t x = 12345;
  for (uint8_t& b : payload) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 24);
  }
  std::vector<uint8_t> expected(SEGMENT_HEADER_BYTES);
  encode_segment_header(expected.data(), 1);
  const size_t sizes[] = {16u << 10, (16u << 10) + 3, 777777, RECORD_PAYLOAD_BYTES_MAX};
  {
    auto w = open_ok(options_for(dir, 64ull << 20));
    if (!w) return;
    int64_t time_ns = 1000;
    uint64_t seq = 1;
    for (const size_t n : sizes) {
      int err = 0;
      CHECK(w->append(RecordKind::WRITE, payload.data(), n, &err) == seq);
      frame_record(expected, {seq++, 1, static_cast<uint16_t>(RecordKind::WRITE),
                              static_cast<uint32_t>(n), time_ns++}, payload.data());
    }
    int err = 0;
    CHECK(w->append(RecordKind::WRITE, payload.data(), payload.size() + 1, &err) == 0);
    CHECK(err == EINVAL && w->stats().error == 0);
  }
  CHECK(read_bytes(dir / "0000000000000001.seg") == expected);
}

void test_roll(const TempDir& tmp) {
  const fs::path dir = fresh(tmp, "roll");
  const uint64_t limit = 256;
  {
    auto w = open_ok(options_for(dir, limit));
    if (!w) return;
    for (int i = 0; i < 40; ++i) append_text(*w, std::string(50, static_cast<char>('a' + i % 26)));
    append_text(*w, std::string(1000, 'B'));  // bigger than the limit: alone in its segment
    append_text(*w, "after");
    CHECK(w->close() == 0);
  }
  std::vector<Decoded> records;
  CHECK(decode_dir(dir, &records));
  CHECK(records.size() == 42 && seqs_contiguous(records, 1));
  for (const fs::path& seg : segments_of(dir)) {
    const uint64_t size = fs::file_size(seg);
    CHECK(size <= limit || size == SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 1000);
  }
  CHECK(segments_of(dir).size() >= 20);
  if (records.size() == 42) {
    CHECK(records[40].segment != records[39].segment);
    CHECK(records[41].segment != records[40].segment);
    CHECK(text_of(records[41]) == "after");
  }
  auto w = open_ok(options_for(dir, limit));
  if (w) CHECK(append_text(*w, "again") == 43);
}

// Writes `n` records to a fresh journal and returns the path of its only segment.
fs::path write_records(const fs::path& dir, int n) {
  auto w = open_ok(options_for(dir));
  for (int i = 1; i <= n; ++i) append_text(*w, "record " + std::to_string(i));
  CHECK(w->close() == 0);
  return dir / "0000000000000001.seg";
}

void test_torn_tail(const TempDir& tmp) {
  const fs::path dir = fresh(tmp, "torn");
  const fs::path seg = write_records(dir, 10);
  std::vector<uint8_t> bytes = read_bytes(seg);
  const size_t record = RECORD_HEADER_BYTES + std::string("record 10").size();
  const size_t good = bytes.size() - record;  // record 10 starts here
  bytes.resize(bytes.size() - 4);             // a crash in the middle of record 10
  const std::vector<uint8_t> garbage = {0xde, 0xad, 0xbe, 0xef, 0x55, 0x53, 0x52, 0x31, 7};
  bytes.insert(bytes.end(), garbage.begin(), garbage.end());
  write_bytes(seg, bytes);
  write_bytes(dir / "0000000000000011.seg.tmp", {1, 2, 3});  // an interrupted roll

  auto w = open_ok(options_for(dir));
  if (!w) return;
  CHECK(w->stats().last_seq == 9);
  CHECK(fs::file_size(seg) == good);
  const fs::path kept = dir / ("0000000000000001.seg.torn-" + std::to_string(good));
  CHECK(fs::exists(kept));
  if (fs::exists(kept)) {
    CHECK(read_bytes(kept) == std::vector<uint8_t>(bytes.begin() + static_cast<long>(good),
                                                   bytes.end()));
  }
  CHECK(!fs::exists(dir / "0000000000000011.seg.tmp"));
  CHECK(append_text(*w, "record 10 again") == 10);
  CHECK(w->close() == 0);
  std::vector<Decoded> records;
  CHECK(decode_dir(dir, &records));
  CHECK(records.size() == 10 && seqs_contiguous(records, 1));
  if (records.size() == 10) CHECK(text_of(records[9]) == "record 10 again");

  // Zeros after the last record (a crash after the size grew) are a torn tail as well.
  bytes = read_bytes(seg);
  const size_t end = bytes.size();
  bytes.resize(end + 100, 0);
  write_bytes(seg, bytes);
  w = open_ok(options_for(dir));
  if (w) CHECK(w->stats().last_seq == 10 && fs::file_size(seg) == end);
}

// Opens and expects a refusal whose sentence names `file` and `offset`.
void expect_corrupt(const fs::path& dir, const fs::path& file, size_t offset) {
  std::unique_ptr<JournalWriter> w;
  std::string error;
  const int err = JournalWriter::open(options_for(dir), &w, &error);
  CHECK(err == EIO && !w);
  CHECK(error.find(file.string()) != std::string::npos);
  CHECK(error.find("at byte " + std::to_string(offset) + ":") != std::string::npos);
  if (err != EIO || error.find(file.string()) == std::string::npos) {
    std::fprintf(stderr, "got %d: %s\n", err, error.c_str());
  }
}

void test_corruption_refused(const TempDir& tmp) {
  const fs::path dir = fresh(tmp, "corrupt");
  const fs::path seg = write_records(dir, 10);
  std::vector<uint8_t> bytes = read_bytes(seg);
  const size_t record = RECORD_HEADER_BYTES + std::string("record 1").size();
  const size_t third = SEGMENT_HEADER_BYTES + 2 * record;  // records 1..9 have equal size
  bytes[third + RECORD_HEADER_BYTES + 2] ^= 0x40;  // one bit of record 3's payload
  write_bytes(seg, bytes);
  expect_corrupt(dir, seg, third);
  CHECK(read_bytes(seg) == bytes);  // nothing was cut
  for (const auto& e : fs::directory_iterator(dir)) {
    CHECK(e.path().string().find(".torn-") == std::string::npos);
  }

  const fs::path bad_header = fresh(tmp, "bad_header");
  const fs::path seg2 = write_records(bad_header, 3);
  bytes = read_bytes(seg2);
  bytes[3] = 'X';
  write_bytes(seg2, bytes);
  expect_corrupt(bad_header, seg2, 0);

  // A gap between segments: the newest starts at 20 while the one before ends at 3.
  const fs::path gap = fresh(tmp, "gap");
  write_records(gap, 3);
  std::vector<uint8_t> header(SEGMENT_HEADER_BYTES);
  encode_segment_header(header.data(), 20);
  write_bytes(gap / "0000000000000014.seg", header);
  expect_corrupt(gap, gap / "0000000000000014.seg", 16);
}

constexpr int THREADS = 4;
constexpr uint32_t APPENDS_PER_THREAD = 10000;

// Payload that says who wrote it and when: thread, counter, then counter % 23 filler bytes.
void make_payload(std::vector<uint8_t>& out, uint32_t thread, uint32_t counter) {
  // Plain resize + put_u32: GCC 12 misreads vector::insert of 4 bytes here (-Warray-bounds).
  out.resize(8 + counter % 23);
  put_u32(out.data(), thread);
  put_u32(out.data() + 4, counter);
  for (uint32_t i = 0; i < counter % 23; ++i) {
    out[8 + i] = static_cast<uint8_t>(thread * 31 + counter + i);
  }
}

void append_from_thread(JournalWriter* w, uint32_t thread, std::atomic<int>* errors) {
  std::vector<uint8_t> payload;
  for (uint32_t counter = 0; counter < APPENDS_PER_THREAD; ++counter) {
    make_payload(payload, thread, counter);
    int err = 0;
    const uint64_t seq = w->enqueue(RecordKind::WRITE, payload.data(), payload.size(), &err);
    if (seq == 0 || w->wait_written(seq) != 0) ++*errors;
    if (thread == 0 && counter % 1000 == 999 && w->sync_to(seq) != 0) ++*errors;
  }
}

void test_concurrent_appends(const TempDir& tmp) {
  const fs::path dir = fresh(tmp, "concurrent");
  auto w = open_ok(options_for(dir, 64 << 10));
  if (!w) return;
  std::atomic<uint64_t> heard{0};
  std::atomic<int> listener_faults{0};
  JournalWriter* raw = w.get();
  w->set_listener([&heard, &listener_faults, raw](uint64_t written_seq) {
    // stats() takes the writer's mutex: this would hang if the listener ran under it.
    if (written_seq <= heard.load() || raw->stats().written_seq < written_seq) ++listener_faults;
    heard.store(written_seq);
  });
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < THREADS; ++t) {
    threads.emplace_back(append_from_thread, raw, static_cast<uint32_t>(t), &errors);
  }
  for (std::thread& t : threads) t.join();
  const uint64_t total = uint64_t{THREADS} * APPENDS_PER_THREAD;
  CHECK(errors.load() == 0 && listener_faults.load() == 0);
  CHECK(heard.load() == total);
  CHECK(w->close() == 0);
  const JournalStats s = w->stats();
  CHECK(s.last_seq == total && s.written_seq == total && s.durable_seq == total);
  CHECK(s.records == total && s.group_writes >= 1 && s.syncs >= 1 && s.error == 0);
  std::printf("concurrent: %llu records in %llu group writes, %llu syncs\n",
              static_cast<unsigned long long>(s.records),
              static_cast<unsigned long long>(s.group_writes),
              static_cast<unsigned long long>(s.syncs));

  std::vector<Decoded> records;
  CHECK(decode_dir(dir, &records));
  CHECK(records.size() == total && seqs_contiguous(records, 1));
  uint32_t next[THREADS] = {};
  std::vector<uint8_t> expected;
  int bad = 0;
  for (const Decoded& d : records) {
    PayloadReader p(d.payload.data(), d.payload.size());
    const uint32_t thread = p.u32();
    const uint32_t counter = p.u32();
    // Each thread appends in order, so its counters must appear in order, each once.
    if (!p.ok() || thread >= THREADS || counter != next[thread]) {
      ++bad;
      continue;
    }
    ++next[thread];
    make_payload(expected, thread, counter);
    if (expected != d.payload) ++bad;
  }
  CHECK(bad == 0);
  for (uint32_t n : next) CHECK(n == APPENDS_PER_THREAD);
}

void test_sync_to(const TempDir& tmp) {
  const fs::path dir = fresh(tmp, "sync");
  auto w = open_ok(options_for(dir));
  if (!w) return;
  int err = 0;
  for (int i = 0; i < 5; ++i) CHECK(w->enqueue(RecordKind::CHMOD, nullptr, 0, &err) != 0);
  JournalStats s = w->stats();
  CHECK(s.last_seq == 5 && s.written_seq == 0 && s.durable_seq == 0 && s.syncs == 0);
  CHECK(w->sync_to(3) == 0);
  s = w->stats();
  CHECK(s.written_seq >= 3 && s.durable_seq >= 3 && s.syncs == 1);
  const uint64_t syncs = s.syncs;
  CHECK(w->sync_to(2) == 0 && w->stats().syncs == syncs);  // already durable: no fdatasync
  CHECK(w->sync_to(UINT64_MAX) == 0);
  s = w->stats();
  CHECK(s.durable_seq == 5 && s.written_seq == 5);
  CHECK(w->enqueue(static_cast<RecordKind>(99), nullptr, 0, &err) == 0 && err == EINVAL);
  CHECK(w->stats().error == 0);  // a bad argument does not fail the journal
  CHECK(w->close() == 0);
  CHECK(w->enqueue(RecordKind::CHMOD, nullptr, 0, &err) == 0 && err == EBADF);
}

// Mounts a 256 KiB tmpfs for the full-disk test and always unmounts it.
struct TinyDisk {
  fs::path path;
  bool mounted = false;
  explicit TinyDisk(const fs::path& p) : path(p) {
    fs::create_directories(path);
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=256k") == 0;
    if (!mounted) std::perror("mount tmpfs");
  }
  ~TinyDisk() {
    if (mounted && ::umount2(path.c_str(), MNT_DETACH) != 0) std::perror("umount tmpfs");
  }
};

void test_disk_full(const TempDir& tmp) {
  TinyDisk disk(tmp.path / "tiny");
  CHECK(disk.mounted);
  if (!disk.mounted) return;
  const JournalOptions o = options_for(disk.path, 32 << 10);
  auto w = open_ok(o);
  if (!w) return;
  const std::vector<uint8_t> payload(4000, 0x5a);
  int err = 0;
  uint64_t appended = 0;
  for (int i = 0; i < 200 && err == 0; ++i) {
    if (w->append(RecordKind::WRITE, payload.data(), payload.size(), &err) != 0) ++appended;
  }
  CHECK(err == ENOSPC);
  const JournalStats s = w->stats();
  CHECK(s.error == ENOSPC && s.written_seq == appended && appended > 10);
  CHECK(w->enqueue(RecordKind::WRITE, payload.data(), 1, &err) == 0 && err == ENOSPC);
  CHECK(w->close() == ENOSPC);
  w.reset();
  // The failed write left no partial record: the journal reopens at the last written seq.
  w = open_ok(o);
  if (w) CHECK(w->stats().last_seq == appended);
  w.reset();
  std::vector<Decoded> records;
  CHECK(decode_dir(disk.path, &records));
  CHECK(records.size() == appended && seqs_contiguous(records, 1));
}

// Invariant 2: a record wait_written() reported is in the journal even if the process dies
// right after. A child appends and reports each written seq; we SIGKILL it mid-stream.
void test_killed_writer_loses_nothing(const TempDir& tmp) {
  const fs::path dir = fresh(tmp, "killed");
  int reports[2];
  CHECK(::pipe(reports) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(reports[0]);
    std::unique_ptr<JournalWriter> w;
    std::string error;
    if (JournalWriter::open(options_for(dir, 4096), &w, &error) != 0) ::_exit(3);
    const std::string payload(100, 'k');
    for (;;) {
      int err = 0;
      const uint64_t seq = w->append(RecordKind::WRITE,
                                     reinterpret_cast<const uint8_t*>(payload.data()),
                                     payload.size(), &err);
      if (seq == 0 || ::write(reports[1], &seq, sizeof seq) != sizeof seq) ::_exit(4);
    }
  }
  ::close(reports[1]);
  uint64_t reported = 0;
  for (int i = 0; i < 3000; ++i) {
    uint64_t seq = 0;
    if (::read(reports[0], &seq, sizeof seq) != sizeof seq) break;
    reported = seq;
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(reports[0]);
  CHECK(WIFSIGNALED(status) && reported == 3000);
  auto w = open_ok(options_for(dir, 4096));
  if (!w) return;
  CHECK(w->stats().last_seq >= reported);
  w.reset();
  std::vector<Decoded> records;
  CHECK(decode_dir(dir, &records));
  CHECK(records.size() >= reported && seqs_contiguous(records, 1));
}

}  // namespace

int main() {
  TempDir tmp;
  test_round_trip_and_reopen(tmp);
  test_large_record_framing(tmp);
  test_roll(tmp);
  test_torn_tail(tmp);
  test_corruption_refused(tmp);
  test_concurrent_appends(tmp);
  test_sync_to(tmp);
  test_disk_full(tmp);
  test_killed_writer_loses_nothing(tmp);
  if (failures == 0) std::printf("journal_writer_test: ok\n");
  return failures == 0 ? 0 : 1;
}
