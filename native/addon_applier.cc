// Placeholder until the applier layer lands; registers nothing.
#include "addon.h"

namespace understudy {
void init_applier(Napi::Env, Napi::Object) {}
}  // namespace understudy
