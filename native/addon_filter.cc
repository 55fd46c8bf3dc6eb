// Node-API: the vault's include/exclude globs (native/path_filter.*) for JS, so the source
// scanner (verify, sync) mirrors exactly what the mount journals: one matcher, no drift.
// createPathFilter(include, exclude) -> handle; pathFilterMatches(handle, path, isDir).
#include <string>
#include <vector>

#include "addon.h"
#include "path_filter.h"

namespace understudy {
namespace {

/** A string[] argument; throws a TypeError otherwise. */
std::vector<std::string> string_list(const Napi::CallbackInfo& info, size_t index,
                                     const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() <= index || !info[index].IsArray()) {
    throw Napi::TypeError::New(env, std::string(what) + " must be an array of strings");
  }
  const Napi::Array array = info[index].As<Napi::Array>();
  if (array.Length() > PATH_FILTER_GLOBS_MAX) {
    throw Napi::TypeError::New(env, std::string(what) + " holds more than 1024 globs");
  }
  std::vector<std::string> out;
  for (uint32_t i = 0; i < array.Length(); i++) {
    const Napi::Value v = array.Get(i);
    if (!v.IsString()) {
      throw Napi::TypeError::New(env, std::string(what) + " must be an array of strings");
    }
    out.push_back(v.As<Napi::String>().Utf8Value());
  }
  return out;
}

// createPathFilter(include: string[], exclude: string[]) -> handle; an invalid glob throws an
// Error with code 'EINVAL' naming the glob and the problem.
Napi::Value js_create_path_filter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<std::string> include = string_list(info, 0, "createPathFilter: include");
  const std::vector<std::string> exclude = string_list(info, 1, "createPathFilter: exclude");
  auto* filter = new PathFilter();
  std::string why;
  if (!filter->init(include, exclude, &why)) {
    delete filter;
    Napi::Error error = Napi::Error::New(env, why);
    error.Set("code", Napi::String::New(env, "EINVAL"));
    throw error;
  }
  return Napi::External<PathFilter>::New(env, filter, [](Napi::Env, PathFilter* f) {
    delete f;
  });
}

// pathFilterMatches(handle, path: Buffer, isDir: boolean) -> boolean (path vault-relative).
Napi::Value js_path_filter_matches(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsExternal() || !info[1].IsBuffer() ||
      !info[2].IsBoolean()) {
    throw Napi::TypeError::New(env, "pathFilterMatches(handle, path: Buffer, isDir: boolean)");
  }
  const PathFilter* filter = info[0].As<Napi::External<PathFilter>>().Data();
  const auto path = info[1].As<Napi::Buffer<char>>();
  return Napi::Boolean::New(env, filter->mirrored(std::string_view(path.Data(), path.Length()),
                                                  info[2].As<Napi::Boolean>().Value()));
}

}  // namespace

void init_filter(Napi::Env env, Napi::Object exports) {
  exports.Set("createPathFilter", Napi::Function::New(env, js_create_path_filter,
                                                      "createPathFilter"));
  exports.Set("pathFilterMatches", Napi::Function::New(env, js_path_filter_matches,
                                                       "pathFilterMatches"));
}

}  // namespace understudy
