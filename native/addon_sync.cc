// Node-API surface of sync emit (native/sync_emit.h): argument checks, and Promises whose
// work (taking the namespace lock, reading, journaling, waiting for the write) runs on a
// libuv worker thread, never the JS thread. src/mount wraps it (Mount.syncEmit and friends).
// The caller keeps the mount mounted until every returned Promise settled (src/sync stops
// before the daemon unmounts).
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "addon.h"
#include "mount.h"
#include "sync_emit.h"

namespace understudy {
namespace {

Napi::Error emit_error(Napi::Env env, int err, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  const char* name = strerrorname_np(err);
  error.Set("code", Napi::String::New(env, name != nullptr ? name : "EIO"));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, "syncEmit"));
  return error;
}

/** Runs `work` (returns 0 or errno, sets why) on a worker; resolves with `done(env)`. */
class EmitWorker : public Napi::AsyncWorker {
 public:
  EmitWorker(Napi::Env env, std::function<int(std::string*)> work,
             std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env, "understudy.syncEmit"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { err_ = work_(&why_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) return deferred_.Reject(emit_error(env, err_, why_).Value());
    deferred_.Resolve(done_(env));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<int(std::string*)> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  int err_ = 0;
  std::string why_;
};

Napi::Value start(Napi::Env env, std::function<int(std::string*)> work,
                  std::function<Napi::Value(Napi::Env)> done) {
  auto* worker = new EmitWorker(env, std::move(work), std::move(done));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

std::string buffer_arg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (info.Length() <= index || !info[index].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Buffer");
  }
  const auto buf = info[index].As<Napi::Buffer<char>>();
  if (buf.Length() > PATH_BYTES_MAX) throw Napi::RangeError::New(info.Env(), "path too long");
  return std::string(buf.Data(), buf.Length());
}

uint64_t u64_value(Napi::Env env, const Napi::Value& v, const char* what) {
  if (v.IsBigInt()) {
    bool lossless = false;
    const uint64_t out = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (lossless) return out;
  } else if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d >= 0 && d <= 9007199254740991.0 && d == static_cast<double>(static_cast<uint64_t>(d))) {
      return static_cast<uint64_t>(d);
    }
  }
  throw Napi::TypeError::New(env, std::string(what) + " must be a non-negative integer");
}

bool bool_field(const Napi::Object& o, const char* key, bool fallback) {
  const Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

void parse_ranges(Napi::Env env, const Napi::Value& v, SyncEmitRequest* req) {
  if (v.IsUndefined()) return;
  if (!v.IsArray()) throw Napi::TypeError::New(env, "request.ranges must be an array");
  const auto ranges = v.As<Napi::Array>();
  for (uint32_t i = 0; i < ranges.Length(); ++i) {
    const Napi::Value r = ranges.Get(i);
    if (!r.IsArray() || r.As<Napi::Array>().Length() != 2) {
      throw Napi::TypeError::New(env, "request.ranges: each range is [offset, length]");
    }
    const auto pair = r.As<Napi::Array>();
    req->ranges.push_back({u64_value(env, pair.Get(0u), "range offset"),
                           u64_value(env, pair.Get(1u), "range length")});
  }
}

void parse_xattrs(Napi::Env env, const Napi::Value& v, SyncEmitRequest* req) {
  if (v.IsUndefined() || v.IsNull()) return;
  if (!v.IsArray()) throw Napi::TypeError::New(env, "request.targetXattrs must be an array");
  req->target_xattrs_known = true;
  const auto list = v.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value x = list.Get(i);
    const Napi::Value name = x.IsArray() ? x.As<Napi::Array>().Get(0u) : Napi::Value();
    const Napi::Value value = x.IsArray() ? x.As<Napi::Array>().Get(1u) : Napi::Value();
    if (!name.IsBuffer() || !value.IsBuffer()) {
      throw Napi::TypeError::New(env, "request.targetXattrs: each is [name, value] Buffers");
    }
    const auto n = name.As<Napi::Buffer<char>>();
    const auto val = value.As<Napi::Buffer<char>>();
    req->target_xattrs.push_back({std::string(n.Data(), n.Length()),
                                  std::string(val.Data(), val.Length())});
  }
}

SyncEmitRequest parse_request_object(Napi::Env env, std::string path, const Napi::Object& o) {
  SyncEmitRequest req;
  req.path = std::move(path);
  req.adopt = bool_field(o, "adopt", true);
  req.full = bool_field(o, "full", false);
  req.xattrs = bool_field(o, "xattrs", true);
  req.times = bool_field(o, "times", true);
  parse_ranges(env, o.Get("ranges"), &req);
  parse_xattrs(env, o.Get("targetXattrs"), &req);
  const Napi::Value link = o.Get("linkFrom");
  if (link.IsBuffer()) {
    const auto b = link.As<Napi::Buffer<char>>();
    req.link_from.assign(b.Data(), b.Length());
  } else if (!link.IsUndefined()) {
    throw Napi::TypeError::New(env, "request.linkFrom must be a Buffer");
  }
  return req;
}

SyncEmitRequest parse_request(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = buffer_arg(info, 1, "path");
  if (info.Length() < 3 || !info[2].IsObject()) {
    throw Napi::TypeError::New(env, "mountSyncEmit(handle, path, request): request object");
  }
  return parse_request_object(env, std::move(path), info[2].As<Napi::Object>());
}

const char* type_name(const SyncEmitResult& r) {
  if (r.missing) return "missing";
  switch (r.type) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
  }
  return "unknown";
}

Napi::Object result_to_js(Napi::Env env, const SyncEmitResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", Napi::String::New(env, type_name(r)));
  out.Set("ino", Napi::BigInt::New(env, r.ino));
  out.Set("nlink", Napi::Number::New(env, static_cast<double>(r.nlink)));
  out.Set("size", Napi::Number::New(env, static_cast<double>(r.size)));
  out.Set("mtimeNs", Napi::BigInt::New(env, r.mtime_ns));
  out.Set("linked", Napi::Boolean::New(env, r.linked));
  out.Set("firstSeq", Napi::Number::New(env, static_cast<double>(r.first_seq)));
  out.Set("seq", Napi::Number::New(env, static_cast<double>(r.last_seq)));
  out.Set("records", Napi::Number::New(env, static_cast<double>(r.records)));
  out.Set("dataBytes", Napi::Number::New(env, static_cast<double>(r.data_bytes)));
  return out;
}

// mountSyncEmit(handle, path: Buffer, request) -> Promise<result>
Napi::Value js_sync_emit(const Napi::CallbackInfo& info) {
  Mount* mount = mount_from_handle(info, 0);
  auto req = std::make_shared<SyncEmitRequest>(parse_request(info));
  auto result = std::make_shared<SyncEmitResult>();
  OpsContext* ctx = mount->context();
  return start(
      info.Env(),
      [ctx, req, result](std::string* why) { return sync_emit(*ctx, *req, result.get(), why); },
      [result](Napi::Env env) -> Napi::Value { return result_to_js(env, *result); });
}

/** One step of mountSyncEmitMany: an emit, or (timesOnly) the times of a directory. */
struct ManyStep {
  bool times_only = false;
  SyncEmitRequest request;
};

/** Steps one mountSyncEmitMany call takes at most, and range bytes over all of them. */
constexpr uint32_t EMIT_MANY_STEPS_MAX = 4096;
constexpr uint64_t EMIT_MANY_BYTES_MAX = 8 * SYNC_EMIT_BYTES_MAX;

// mountSyncEmitMany(handle, steps: Array<{ path, timesOnly?, ...request }>) -> Promise<result[]>
// The steps run in order on one worker, each as mountSyncEmit (or mountSyncEmitTimes) would,
// the namespace lock taken per step; the first failure rejects (earlier steps are journaled).
Napi::Value js_sync_emit_many(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mount* mount = mount_from_handle(info, 0);
  if (info.Length() < 2 || !info[1].IsArray()) {
    throw Napi::TypeError::New(env, "mountSyncEmitMany(handle, steps): steps array");
  }
  const auto list = info[1].As<Napi::Array>();
  if (list.Length() > EMIT_MANY_STEPS_MAX) {
    throw Napi::RangeError::New(env, "mountSyncEmitMany: more than 4096 steps in one call");
  }
  auto steps = std::make_shared<std::vector<ManyStep>>();
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value v = list.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "mountSyncEmitMany: each step is an object");
    const auto o = v.As<Napi::Object>();
    const Napi::Value p = o.Get("path");
    if (!p.IsBuffer()) throw Napi::TypeError::New(env, "mountSyncEmitMany: step.path must be a Buffer");
    const auto pb = p.As<Napi::Buffer<char>>();
    if (pb.Length() > PATH_BYTES_MAX) throw Napi::RangeError::New(env, "path too long");
    ManyStep step;
    step.times_only = bool_field(o, "timesOnly", false);
    step.request = parse_request_object(env, std::string(pb.Data(), pb.Length()), o);
    for (const SyncRange& r : step.request.ranges) bytes += std::min(r.length, SYNC_EMIT_BYTES_MAX);
    steps->push_back(std::move(step));
  }
  if (bytes > EMIT_MANY_BYTES_MAX) {
    throw Napi::RangeError::New(env, "mountSyncEmitMany: more than 64 MiB of ranges in one call");
  }
  auto results = std::make_shared<std::vector<SyncEmitResult>>(steps->size());
  OpsContext* ctx = mount->context();
  return start(
      env, [ctx, steps, results](std::string* why) {
        for (size_t i = 0; i < steps->size(); ++i) {
          const ManyStep& step = (*steps)[i];
          SyncEmitResult* result = &(*results)[i];
          const int err = step.times_only
                              ? sync_emit_times(*ctx, step.request.path, result, why)
                              : sync_emit(*ctx, step.request, result, why);
          if (err != 0) return err;
        }
        return 0;
      },
      [results](Napi::Env e) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, results->size());
        for (uint32_t i = 0; i < results->size(); ++i) out.Set(i, result_to_js(e, (*results)[i]));
        return out;
      });
}

// mountSyncEmitTimes(handle, path: Buffer) -> Promise<result>
Napi::Value js_sync_emit_times(const Napi::CallbackInfo& info) {
  Mount* mount = mount_from_handle(info, 0);
  const std::string path = buffer_arg(info, 1, "path");
  auto result = std::make_shared<SyncEmitResult>();
  OpsContext* ctx = mount->context();
  return start(
      info.Env(), [ctx, path, result](std::string* why) {
        return sync_emit_times(*ctx, path, result.get(), why);
      },
      [result](Napi::Env env) -> Napi::Value { return result_to_js(env, *result); });
}

// mountSyncBegin(handle, syncId: bigint, flags: number, path: Buffer) -> Promise<seq>
Napi::Value js_sync_begin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mount* mount = mount_from_handle(info, 0);
  if (info.Length() < 4) throw Napi::TypeError::New(env, "mountSyncBegin(handle, id, flags, path)");
  const uint64_t id = u64_value(env, info[1], "syncId");
  const uint64_t flags = u64_value(env, info[2], "flags");
  const std::string path = buffer_arg(info, 3, "path");
  auto seq = std::make_shared<uint64_t>(0);
  OpsContext* ctx = mount->context();
  return start(
      env, [ctx, id, flags, path, seq](std::string* why) {
        return sync_emit_begin(*ctx, id, static_cast<uint32_t>(flags), path, seq.get(), why);
      },
      [seq](Napi::Env e) -> Napi::Value {
        return Napi::Number::New(e, static_cast<double>(*seq));
      });
}

// mountSyncEnd(handle, syncId: bigint, entries: number, dataBytes: number) -> Promise<seq>
Napi::Value js_sync_end(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mount* mount = mount_from_handle(info, 0);
  if (info.Length() < 4) throw Napi::TypeError::New(env, "mountSyncEnd(handle, id, n, bytes)");
  const uint64_t id = u64_value(env, info[1], "syncId");
  const uint64_t entries = u64_value(env, info[2], "entries");
  const uint64_t bytes = u64_value(env, info[3], "dataBytes");
  auto seq = std::make_shared<uint64_t>(0);
  OpsContext* ctx = mount->context();
  return start(
      env, [ctx, id, entries, bytes, seq](std::string* why) {
        return sync_emit_end(*ctx, id, entries, bytes, seq.get(), why);
      },
      [seq](Napi::Env e) -> Napi::Value {
        return Napi::Number::New(e, static_cast<double>(*seq));
      });
}

}  // namespace

void init_sync(Napi::Env env, Napi::Object exports) {
  exports.Set("mountSyncEmit", Napi::Function::New(env, js_sync_emit, "mountSyncEmit"));
  exports.Set("mountSyncEmitMany", Napi::Function::New(env, js_sync_emit_many, "mountSyncEmitMany"));
  exports.Set("mountSyncEmitTimes",
              Napi::Function::New(env, js_sync_emit_times, "mountSyncEmitTimes"));
  exports.Set("mountSyncBegin", Napi::Function::New(env, js_sync_begin, "mountSyncBegin"));
  exports.Set("mountSyncEnd", Napi::Function::New(env, js_sync_end, "mountSyncEnd"));
  exports.Set("SYNC_EMIT_BYTES_MAX",
              Napi::Number::New(env, static_cast<double>(SYNC_EMIT_BYTES_MAX)));
}

}  // namespace understudy
