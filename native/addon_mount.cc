// Node-API surface of the FUSE capture layer (native/mount.*, native/ops.*): argument
// checks, Promises for blocking work, errors with `code` = errno name and `syscall`, and the
// coalesced wake-up of JS. FUSE threads never call into JS except through the one
// ThreadSafeFunction of a mount, at most one call pending at a time.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "addon.h"
#include "mount.h"

namespace understudy {
namespace {

/**
 * Tells JS the newest written seq, and whether a sync-mode timeout degraded the mount since
 * the last call: fn(seq, degraded). Any number of events collapse into one pending call.
 */
struct Notifier {
  Napi::ThreadSafeFunction tsfn;
  std::atomic<uint64_t> newest{0};
  std::atomic<bool> degraded{false};
  std::atomic<bool> pending{false};

  // From a journal thread, after every group write.
  void written(uint64_t seq) {
    newest.store(seq, std::memory_order_release);
    schedule();
  }

  // From a FUSE thread whose fsync timed out under the degrade policy.
  void degrade() {
    degraded.store(true, std::memory_order_release);
    schedule();
  }

  void schedule() {
    if (pending.exchange(true, std::memory_order_acq_rel)) return;  // a call is queued
    const napi_status status = tsfn.NonBlockingCall([this](Napi::Env env, Napi::Function fn) {
      // Cleared before reading, so an event stored after the read schedules a call.
      pending.store(false, std::memory_order_release);
      const uint64_t seq_now = newest.load(std::memory_order_acquire);
      const bool degraded_now = degraded.exchange(false, std::memory_order_acq_rel);
      if (env != nullptr && fn != nullptr) {
        fn.Call({Napi::Number::New(env, static_cast<double>(seq_now)),
                 Napi::Boolean::New(env, degraded_now)});
      }
    });
    if (status != napi_ok) pending.store(false);
  }
};

struct MountHandle {
  std::unique_ptr<Mount> mount;
  std::shared_ptr<Notifier> notifier;  // null without onWritten
  std::atomic<bool> unmount_started{false};
  std::atomic<bool> unmounted{false};
  // unmount() ran to its end, even if it failed (e.g. the journal could not be closed): the
  // session is gone and nothing calls the notifier any more.
  std::atomic<bool> torn_down{false};
};

Napi::Error make_error(Napi::Env env, const MountFailure& f) {
  Napi::Error error = Napi::Error::New(env, f.message);
  const char* name = strerrorname_np(f.err);
  error.Set("code", Napi::String::New(env, name != nullptr ? name : "EIO"));
  error.Set("errno", Napi::Number::New(env, -f.err));
  error.Set("syscall", Napi::String::New(env, f.syscall));
  return error;
}

/** Runs `work` off the JS thread; resolves with `done(env)` or rejects with the failure. */
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void(MountFailure*)> work,
                std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env, "understudy.mount"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override { work_(&failure_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.err != 0) return deferred_.Reject(make_error(env, failure_).Value());
    deferred_.Resolve(done_(env));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void(MountFailure*)> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  MountFailure failure_;
};

std::string string_option(const Napi::Object& o, const char* key, bool required) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined() && !required) return "";
  if (!v.IsString()) {
    throw Napi::TypeError::New(o.Env(), std::string("mount options: ") + key +
                                            " must be a string");
  }
  return v.As<Napi::String>().Utf8Value();
}

double number_option(const Napi::Object& o, const char* key, double fallback, double max) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::TypeError::New(o.Env(), std::string("mount options: ") + key +
                                            " must be an integer in 1.." + std::to_string(max));
  }
  return d;
}

/** {mode: 'async'|'sync', timeoutMs?, onTimeout?: 'fail'|'degrade'} */
SyncPolicy parse_sync_policy(const Napi::Object& o) {
  SyncPolicy p;
  const std::string mode = string_option(o, "mode", true);
  if (mode != "async" && mode != "sync") {
    throw Napi::TypeError::New(o.Env(), "sync policy: mode must be 'async' or 'sync'");
  }
  p.sync = mode == "sync";
  p.timeout_ms = static_cast<uint32_t>(number_option(o, "timeoutMs", 5000, 3600000));
  const std::string on_timeout = string_option(o, "onTimeout", false);
  if (!on_timeout.empty() && on_timeout != "fail" && on_timeout != "degrade") {
    throw Napi::TypeError::New(o.Env(), "sync policy: onTimeout must be 'fail' or 'degrade'");
  }
  p.degrade = on_timeout == "degrade";
  return p;
}

/** An optional string[] option (the vault's globs; checked by PathFilter at mount). */
std::vector<std::string> glob_list(const Napi::Object& o, const char* key) {
  const Napi::Value v = o.Get(key);
  std::vector<std::string> out;
  if (v.IsUndefined()) return out;
  const auto fail = [&] {
    return Napi::TypeError::New(o.Env(), std::string("mount options: ") + key +
                                             " must be an array of at most 1024 strings");
  };
  if (!v.IsArray() || v.As<Napi::Array>().Length() > PATH_FILTER_GLOBS_MAX) throw fail();
  const Napi::Array array = v.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); i++) {
    const Napi::Value glob = array.Get(i);
    if (!glob.IsString()) throw fail();
    out.push_back(glob.As<Napi::String>().Utf8Value());
  }
  return out;
}

MountOptions parse_options(const Napi::Object& o) {
  MountOptions m;
  m.mountpoint = string_option(o, "mountpoint", true);
  m.backing = string_option(o, "backing", false);
  if (m.backing.empty()) m.backing = m.mountpoint;
  m.journal_dir = string_option(o, "journalDir", true);
  m.epoch = static_cast<uint32_t>(number_option(o, "epoch", 1, 4294967295.0));
  const Napi::Value wb = o.Get("writebackCache");
  m.writeback_cache = wb.IsBoolean() && wb.As<Napi::Boolean>().Value();
  m.segment_bytes_max = static_cast<uint64_t>(
      number_option(o, "segmentBytesMax", SEGMENT_BYTES_MAX_DEFAULT, 9007199254740991.0));
  m.include = glob_list(o, "include");
  m.exclude = glob_list(o, "exclude");
  const Napi::Value sync = o.Get("sync");
  if (sync.IsObject()) m.sync = parse_sync_policy(sync.As<Napi::Object>());
  else if (!sync.IsUndefined()) throw Napi::TypeError::New(o.Env(), "mount options: sync");
  return m;
}

void finalize_handle(Napi::Env, MountHandle* handle) {
  if (handle->unmounted.load()) {
    delete handle;
    return;
  }
  if (handle->torn_down.load()) {  // an unmount that failed (its promise rejected)
    if (handle->notifier) handle->notifier->tsfn.Release();
    delete handle;
    return;
  }
  // Collected while mounted: unmounting here would block the JS thread on the kernel.
  // The mount keeps serving until the process exits; leaking it is the safe choice.
  std::fprintf(stderr, "understudy: a mount handle was collected without unmount()\n");
}

MountHandle& handle_arg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "expected a mount handle");
  }
  return *info[0].As<Napi::External<MountHandle>>().Data();
}

}  // namespace

Mount* mount_from_handle(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "expected a mount handle");
  }
  MountHandle* handle = info[index].As<Napi::External<MountHandle>>().Data();
  if (handle->unmount_started.load() || !handle->mount) {
    throw Napi::Error::New(info.Env(), "the mount is unmounted");
  }
  return handle->mount.get();
}

namespace {

// mount(options, onWritten?) -> Promise<handle>
Napi::Value js_mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    throw Napi::TypeError::New(env, "mount(options, onWritten?): options must be an object");
  }
  const MountOptions options = parse_options(info[0].As<Napi::Object>());
  auto handle = std::make_shared<std::unique_ptr<MountHandle>>(std::make_unique<MountHandle>());
  if (info.Length() > 1 && info[1].IsFunction()) {
    auto notifier = std::make_shared<Notifier>();
    notifier->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(),
                                                   "understudy.onWritten", 0, 1);
    notifier->tsfn.Unref(env);  // a mount does not by itself keep the event loop alive
    (*handle)->notifier = notifier;
  }
  auto* worker = new PromiseWorker(
      env,
      [handle, options](MountFailure* failure) {
        MountOptions opened = options;
        std::function<void(uint64_t)> listener;
        if (auto n = (*handle)->notifier) {
          Notifier* raw = n.get();  // outlives the journal and the FUSE threads
          listener = [raw](uint64_t seq) { raw->written(seq); };
          opened.on_degraded = [raw] { raw->degrade(); };
        }
        (*handle)->mount = Mount::open(opened, std::move(listener), failure);
        // Not mounted: nothing will ever call the notifier (Release works from any thread).
        if (!(*handle)->mount && (*handle)->notifier) (*handle)->notifier->tsfn.Release();
      },
      [handle](Napi::Env env) -> Napi::Value {
        MountHandle* raw = handle->release();
        return Napi::External<MountHandle>::New(env, raw, finalize_handle);
      });
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// mountBackingFd(handle) -> number: the O_PATH fd of the backing root (this process only;
// /proc/self/fd/<fd>/... reaches the backing tree under the mount, for sync and verify scans).
Napi::Value js_mount_backing_fd(const Napi::CallbackInfo& info) {
  Mount* mount = mount_from_handle(info, 0);
  return Napi::Number::New(info.Env(), mount->context()->table->root().fd);
}

Napi::Value js_mount_stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MountHandle& h = handle_arg(info);
  const MountStatsSnapshot s = h.mount->stats();
  Napi::Object out = Napi::Object::New(env);
  auto num = [&](const char* key, uint64_t v) {
    out.Set(key, Napi::Number::New(env, static_cast<double>(v)));
  };
  num("lastSeq", s.journal.last_seq);
  num("writtenSeq", s.journal.written_seq);
  num("durableSeq", s.journal.durable_seq);
  num("records", s.journal.records);
  num("journalBytes", s.journal.bytes);
  num("groupWrites", s.journal.group_writes);
  num("syncs", s.journal.syncs);
  num("journalErrors", s.journal_errors);
  num("unnamedMutations", s.unnamed_mutations);
  num("pathTooLong", s.path_too_long);
  num("syncWaits", s.sync_waits);
  num("syncTimeouts", s.sync_timeouts);
  num("unmirrored", s.unmirrored);
  num("entered", s.entered);
  num("left", s.left);
  num("inodes", s.inodes);
  num("evictions", s.evictions);
  num("fdReserveUsed", s.fd_reserve_used);
  num("unjournaled", s.unjournaled);
  out.Set("journalDown", Napi::Boolean::New(env, s.journal_down));
  out.Set("journalError", s.journal_error == 0 ? env.Null()
                                               : Napi::String::New(env, strerrorname_np(s.journal_error) != nullptr ? strerrorname_np(s.journal_error) : "EUNKNOWN"));
  num("ackedSeq", s.acked_seq);
  out.Set("syncMode", Napi::String::New(env, s.sync_mode ? "sync" : "async"));
  out.Set("degraded", Napi::Boolean::New(env, s.degraded));
  Napi::Object ops = Napi::Object::New(env);
  for (size_t i = 0; i < OP_COUNT; i++) {
    ops.Set(op_name(static_cast<Op>(i)), Napi::Number::New(env, static_cast<double>(s.ops[i])));
  }
  out.Set("ops", ops);
  return out;
}

Napi::Value js_mount_flush(const Napi::CallbackInfo& info) {
  MountHandle* h = &handle_arg(info);
  if (h->unmount_started.load()) {
    throw Napi::Error::New(info.Env(), "flush() after unmount()");
  }
  auto* worker = new PromiseWorker(
      info.Env(),
      [h](MountFailure* failure) {
        if (const int err = h->mount->flush(); err != 0) {
          failure->err = err;
          failure->syscall = "fdatasync";
          failure->message = std::string("journal flush failed: ") + std::strerror(err);
        }
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value js_mount_unmount(const Napi::CallbackInfo& info) {
  MountHandle* h = &handle_arg(info);
  const bool first = !h->unmount_started.exchange(true);
  auto* worker = new PromiseWorker(
      info.Env(),
      [h, first](MountFailure* failure) {
        if (first) {
          h->mount->unmount(failure);
          h->torn_down.store(true);
        }
      },
      [h, first](Napi::Env env) -> Napi::Value {
        if (first) {
          // The journal is closed: no listener call can follow, the TSFN may go.
          if (h->notifier) h->notifier->tsfn.Release();
          h->unmounted.store(true);
        }
        return env.Undefined();
      });
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// mountSetAckedSeq(handle, seq): cheap, on the JS thread (a lock and a notify).
Napi::Value js_mount_set_acked_seq(const Napi::CallbackInfo& info) {
  MountHandle& h = handle_arg(info);
  const double seq = info.Length() > 1 && info[1].IsNumber()
                         ? info[1].As<Napi::Number>().DoubleValue() : -1;
  if (!(seq >= 0 && seq <= 9007199254740991.0) || seq != static_cast<double>(
          static_cast<uint64_t>(seq))) {
    throw Napi::TypeError::New(info.Env(), "mountSetAckedSeq(handle, seq): seq must be a "
                                           "safe non-negative integer");
  }
  h.mount->set_acked_seq(static_cast<uint64_t>(seq));
  return info.Env().Undefined();
}

// mountSetSyncPolicy(handle, {mode, timeoutMs?, onTimeout?})
Napi::Value js_mount_set_sync_policy(const Napi::CallbackInfo& info) {
  MountHandle& h = handle_arg(info);
  if (info.Length() < 2 || !info[1].IsObject()) {
    throw Napi::TypeError::New(info.Env(), "mountSetSyncPolicy(handle, policy): policy object");
  }
  h.mount->set_sync_policy(parse_sync_policy(info[1].As<Napi::Object>()));
  return info.Env().Undefined();
}

// clearStaleMount(path) -> boolean
Napi::Value js_clear_stale_mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "clearStaleMount(path): path must be a string");
  }
  MountFailure failure;
  const bool cleared = clear_stale_mount(info[0].As<Napi::String>().Utf8Value(), &failure);
  if (failure.err != 0) throw make_error(env, failure);
  return Napi::Boolean::New(env, cleared);
}

}  // namespace

void init_mount(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, js_mount, "mount"));
  exports.Set("mountStats", Napi::Function::New(env, js_mount_stats, "mountStats"));
  exports.Set("mountBackingFd", Napi::Function::New(env, js_mount_backing_fd, "mountBackingFd"));
  exports.Set("mountFlush", Napi::Function::New(env, js_mount_flush, "mountFlush"));
  exports.Set("mountSetAckedSeq", Napi::Function::New(env, js_mount_set_acked_seq,
                                                       "mountSetAckedSeq"));
  exports.Set("mountSetSyncPolicy", Napi::Function::New(env, js_mount_set_sync_policy,
                                                         "mountSetSyncPolicy"));
  exports.Set("mountUnmount", Napi::Function::New(env, js_mount_unmount, "mountUnmount"));
  exports.Set("clearStaleMount", Napi::Function::New(env, js_clear_stale_mount,
                                                      "clearStaleMount"));
}

}  // namespace understudy
