// Module entry: every area of the addon registers itself here.
#include "addon.h"

namespace {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  understudy::init_mount(env, exports);
  understudy::init_applier(env, exports);
  understudy::init_codec(env, exports);
  understudy::init_sync(env, exports);
  understudy::init_xattr(env, exports);
  understudy::init_filter(env, exports);
  understudy::init_hash(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(understudy_native, init)
