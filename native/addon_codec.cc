// Node-API: crc32c over a Buffer, for tests that cross-check the C++ and TS codecs.
#include "addon.h"
#include "record_codec.h"

namespace understudy {
namespace {

Napi::Value js_crc32c(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    throw Napi::TypeError::New(env, "crc32c(buffer): buffer must be a Buffer");
  }
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  return Napi::Number::New(env, crc32c(0, buf.Data(), buf.Length()));
}

}  // namespace

void init_codec(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, js_crc32c, "crc32c"));
}

}  // namespace understudy
