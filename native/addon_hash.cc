// Node-API: block hashes of a file for sync and verify (src/sync/block-hashes.ts defines them:
// SHA-256 of each block, truncated). The work runs on a libuv worker, so several files hash
// at once and the JS thread never reads file data. SHA-256 comes from the OpenSSL that Node
// itself carries (its symbols are exported to addons; the headers ship with Node's), which
// uses the CPU's SHA extensions where present. Opens with O_NOFOLLOW: a path that became a
// symlink fails with ELOOP, like the TS implementation.
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"

namespace understudy {
namespace {

constexpr size_t READ_BYTES = 1 << 20;
constexpr uint32_t BLOCK_BYTES_MIN = 4096;
constexpr uint32_t BLOCK_BYTES_MAX = 64u << 20;
constexpr uint32_t SHA256_BYTES = 32;

class HashWorker : public Napi::AsyncWorker {
 public:
  HashWorker(Napi::Env env, std::string path, uint32_t block_size, uint32_t hash_bytes)
      : Napi::AsyncWorker(env, "understudy.hashBlocks"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        block_size_(block_size),
        hash_bytes_(hash_bytes) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      err_ = errno;
      return;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) {
      ::close(fd);
      err_ = ENOMEM;
      return;
    }
    err_ = hash_fd(fd, ctx);
    EVP_MD_CTX_free(ctx);
    ::close(fd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      const char* name = strerrorname_np(err_);
      Napi::Error error = Napi::Error::New(env, std::string("hashing ") + path_ + ": " +
                                                    std::strerror(err_));
      error.Set("code", Napi::String::New(env, name != nullptr ? name : "EIO"));
      error.Set("errno", Napi::Number::New(env, -err_));
      error.Set("syscall", Napi::String::New(env, "read"));
      return deferred_.Reject(error.Value());
    }
    deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size()));
  }

 private:
  /** Hashes up to the end of the file as read now; 0 or errno. */
  int hash_fd(int fd, EVP_MD_CTX* ctx) {
    std::vector<uint8_t> buf(READ_BYTES);
    uint64_t in_block = 0;
    uint64_t offset = 0;
    const EVP_MD* md = EVP_sha256();
    if (EVP_DigestInit_ex(ctx, md, nullptr) != 1) return EIO;
    for (;;) {
      const ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      if (n == 0) break;
      offset += static_cast<uint64_t>(n);
      size_t at = 0;
      while (at < static_cast<size_t>(n)) {
        const size_t take = std::min<size_t>(block_size_ - in_block, static_cast<size_t>(n) - at);
        if (EVP_DigestUpdate(ctx, buf.data() + at, take) != 1) return EIO;
        at += take;
        in_block += take;
        if (in_block == block_size_) {
          if (!finish_block(ctx, md)) return EIO;
          in_block = 0;
        }
      }
    }
    if (in_block > 0 && !finish_block(ctx, md)) return EIO;
    return 0;
  }

  bool finish_block(EVP_MD_CTX* ctx, const EVP_MD* md) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, digest, &len) != 1 || len < hash_bytes_) return false;
    out_.insert(out_.end(), digest, digest + hash_bytes_);
    return EVP_DigestInit_ex(ctx, md, nullptr) == 1;
  }

  Napi::Promise::Deferred deferred_;
  std::string path_;
  uint32_t block_size_;
  uint32_t hash_bytes_;
  std::vector<uint8_t> out_;
  int err_ = 0;
};

/**
 * hashBlocks(path, blockSize, hashBytes): Promise<Buffer>, the first `hashBytes` bytes of the
 * SHA-256 of every `blockSize` block of the file (the last may be short), concatenated.
 */
Napi::Value js_hash_blocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (info.Length() > 0 && info[0].IsBuffer()) {
    auto buf = info[0].As<Napi::Buffer<char>>();
    path.assign(buf.Data(), buf.Length());
  } else if (info.Length() > 0 && info[0].IsString()) {
    path = info[0].As<Napi::String>().Utf8Value();
  } else {
    throw Napi::TypeError::New(env, "hashBlocks(path, blockSize, hashBytes): path must be a "
                                    "Buffer or a string");
  }
  if (path.empty() || path.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, "hashBlocks: path is empty or holds a NUL byte");
  }
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "hashBlocks(path, blockSize, hashBytes): numbers expected");
  }
  const uint32_t block_size = info[1].As<Napi::Number>().Uint32Value();
  const uint32_t hash_bytes = info[2].As<Napi::Number>().Uint32Value();
  if (block_size < BLOCK_BYTES_MIN || block_size > BLOCK_BYTES_MAX ||
      (block_size & (block_size - 1)) != 0) {
    throw Napi::RangeError::New(env, "hashBlocks: blockSize must be a power of two from 4 KiB "
                                     "to 64 MiB");
  }
  if (hash_bytes == 0 || hash_bytes > SHA256_BYTES) {
    throw Napi::RangeError::New(env, "hashBlocks: hashBytes must be 1 to 32");
  }
  auto* worker = new HashWorker(env, std::move(path), block_size, hash_bytes);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void init_hash(Napi::Env env, Napi::Object exports) {
  exports.Set("hashBlocks", Napi::Function::New(env, js_hash_blocks, "hashBlocks"));
}

}  // namespace understudy
