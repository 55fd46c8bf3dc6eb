// Placeholder until the mount layer lands; registers nothing.
#include "addon.h"

namespace understudy {
void init_mount(Napi::Env, Napi::Object) {}
}  // namespace understudy
