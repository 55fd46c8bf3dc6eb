// Node-API surface of the batch applier (native/applier.h): class Applier with
// open(root) as its constructor, apply(buffer) -> Promise (AsyncWorker, off the JS thread),
// forgetHighWater() and close(). src/replayer wraps it; nothing else imports it.
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "addon.h"
#include "applier.h"
#include "record_codec.h"

namespace understudy {
namespace {

/** A Node-style error: message, code (errno name or APPLY_*), optional syscall. */
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message,
                       const char* syscall_name = nullptr) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  if (syscall_name != nullptr) error.Set("syscall", Napi::String::New(env, syscall_name));
  return error;
}

Napi::Object result_to_js(Napi::Env env, const ApplyResult& r) {
  Napi::Object out = Napi::Object::New(env);
  // Seqs are below 2^53 in any journal we accept (src/core toSeq); doubles carry them.
  out.Set("applied", Napi::Number::New(env, static_cast<double>(r.applied)));
  out.Set("applyUs", Napi::Number::New(env, static_cast<double>(r.apply_us)));
  out.Set("durableUs", Napi::Number::New(env, static_cast<double>(r.durable_us)));
  out.Set("durability", Napi::String::New(env, r.path_syncs > 0 ? "paths" : "filesystem"));
  out.Set("skipped", Napi::Number::New(env, static_cast<double>(r.skipped)));
  out.Set("lastSeq", Napi::Number::New(env, static_cast<double>(r.last_seq)));
  Napi::Array errors = Napi::Array::New(env, r.errors.size());
  for (size_t i = 0; i < r.errors.size(); ++i) {
    const ApplyError& e = r.errors[i];
    Napi::Object js = Napi::Object::New(env);
    js.Set("seq", Napi::Number::New(env, static_cast<double>(e.seq)));
    js.Set("kind", Napi::String::New(env, record_kind_name(e.kind)));
    js.Set("path", Napi::Buffer<char>::Copy(env, e.path.data(), e.path.size()));
    js.Set("code", Napi::String::New(env, e.code));
    js.Set("message", Napi::String::New(env, e.message));
    errors.Set(static_cast<uint32_t>(i), js);
  }
  out.Set("errors", errors);
  if (r.stopped) out.Set("stoppedAt", Napi::Number::New(env, static_cast<double>(r.stopped_at)));
  Napi::Object reasons = Napi::Object::New(env);
  for (const auto& [reason, count] : r.skip_reasons) {
    reasons.Set(reason, Napi::Number::New(env, static_cast<double>(count)));
  }
  out.Set("skipReasons", reasons);
  Napi::Array marks = Napi::Array::New(env, r.sync_marks.size());
  for (size_t i = 0; i < r.sync_marks.size(); ++i) {
    const SyncMark& m = r.sync_marks[i];
    Napi::Object js = Napi::Object::New(env);
    js.Set("seq", Napi::Number::New(env, static_cast<double>(m.seq)));
    js.Set("kind", Napi::String::New(env, record_kind_name(m.kind)));
    js.Set("syncId", Napi::BigInt::New(env, m.sync_id));
    js.Set("flags", Napi::Number::New(env, m.flags));
    js.Set("path", Napi::Buffer<char>::Copy(env, m.path.data(), m.path.size()));
    js.Set("entries", Napi::Number::New(env, static_cast<double>(m.entries)));
    js.Set("dataBytes", Napi::Number::New(env, static_cast<double>(m.data_bytes)));
    marks.Set(static_cast<uint32_t>(i), js);
  }
  out.Set("syncMarks", marks);
  return out;
}

/** Runs one batch on a libuv worker thread; the JS thread only copies bytes in and out. */
class ApplyWorker : public Napi::AsyncWorker {
 public:
  ApplyWorker(Napi::Env env, std::shared_ptr<Applier> applier, std::vector<uint8_t> bytes,
              std::function<void()> done)
      : Napi::AsyncWorker(env, "understudy.apply"),
        deferred_(Napi::Promise::Deferred::New(env)),
        applier_(std::move(applier)),
        bytes_(std::move(bytes)),
        done_(std::move(done)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    ok_ = applier_->apply(bytes_.data(), bytes_.size(), &result_, &failure_);
  }

  void OnOK() override {
    Napi::Env env = Env();
    done_();
    if (ok_) {
      deferred_.Resolve(result_to_js(env, result_));
      return;
    }
    Napi::Error error = make_error(env, failure_.code, failure_.message);
    error.Set("result", result_to_js(env, result_));
    deferred_.Reject(error.Value());
  }

  void OnError(const Napi::Error& error) override {
    done_();
    deferred_.Reject(error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Applier> applier_;  // keeps the root fd open even if close() ran meanwhile
  std::vector<uint8_t> bytes_;        // our own copy: JS may reuse its buffer at once
  std::function<void()> done_;
  ApplyResult result_;
  BatchFailure failure_;
  bool ok_ = false;
};

class ApplierWrap : public Napi::ObjectWrap<ApplierWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Applier",
                       {InstanceMethod("apply", &ApplierWrap::apply),
                        InstanceMethod("forgetHighWater", &ApplierWrap::forget_high_water),
                        InstanceMethod("close", &ApplierWrap::close)});
  }

  explicit ApplierWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ApplierWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      throw Napi::TypeError::New(env, "new Applier(replicaRoot): replicaRoot must be a string");
    }
    const std::string root = info[0].As<Napi::String>().Utf8Value();
    int err = 0;
    Applier* applier = Applier::open(root.c_str(), &err);
    if (applier == nullptr) {
      throw make_error(env, strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN",
                       "cannot open replica root " + root + ": " + std::strerror(err), "open");
    }
    applier_.reset(applier);
    busy_ = std::make_shared<bool>(false);
  }

 private:
  Napi::Value apply(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      throw Napi::TypeError::New(env, "apply(records): records must be a Buffer");
    }
    if (!applier_) throw make_error(env, "APPLY_CLOSED", "the applier is closed");
    // One batch at a time, in call order: a second concurrent batch could overtake the first.
    if (*busy_) throw make_error(env, "APPLY_BUSY", "a batch is already being applied");
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    if (buf.Length() > APPLY_BATCH_BYTES_MAX) {
      throw make_error(env, "APPLY_BATCH_TOO_LARGE",
                       "batch of " + std::to_string(buf.Length()) + " bytes is over the limit");
    }
    std::vector<uint8_t> bytes(buf.Data(), buf.Data() + buf.Length());
    *busy_ = true;
    std::shared_ptr<bool> busy = busy_;
    auto* worker = new ApplyWorker(env, applier_, std::move(bytes), [busy] { *busy = false; });
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  }

  Napi::Value forget_high_water(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!applier_) throw make_error(env, "APPLY_CLOSED", "the applier is closed");
    if (*busy_) throw make_error(env, "APPLY_BUSY", "a batch is being applied");
    if (const int err = applier_->forget_high_water(); err != 0) {
      throw make_error(env, strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN",
                       std::string("cannot forget the high-water mark: ") + std::strerror(err),
                       "fremovexattr");
    }
    return env.Undefined();
  }

  Napi::Value close(const Napi::CallbackInfo& info) {
    applier_.reset();  // an in-flight batch holds its own reference and finishes first
    return info.Env().Undefined();
  }

  std::shared_ptr<Applier> applier_;
  std::shared_ptr<bool> busy_;  // touched on the JS thread only
};

}  // namespace

void init_applier(Napi::Env env, Napi::Object exports) {
  exports.Set("Applier", ApplierWrap::define(env));
}

}  // namespace understudy
