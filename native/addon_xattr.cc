// Node-API: read extended attributes without following symlinks, for tree scans
// (src/sync/scan-tree.ts). Paths and names are Buffers: both may hold any bytes but NUL.
// Synchronous on purpose: one llistxattr/lgetxattr is a metadata call like lstat, and the
// scan already does one lstat per entry on the JS thread.
#include <sys/types.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"

namespace understudy {
namespace {

/** Largest list or value we read: the kernel's own XATTR_LIST_MAX and XATTR_SIZE_MAX. */
constexpr size_t XATTR_BYTES_MAX = 65536;

Napi::Error xattr_error(Napi::Env env, int err, const char* syscall, const std::string& path) {
  const char* name = strerrorname_np(err);
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + " " + path + ": " +
                                               std::strerror(err));
  error.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

/** A Buffer or string argument as a NUL-free std::string; throws a TypeError otherwise. */
std::string bytes_arg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  Napi::Env env = info.Env();
  std::string out;
  if (info.Length() > index && info[index].IsBuffer()) {
    auto buf = info[index].As<Napi::Buffer<char>>();
    out.assign(buf.Data(), buf.Length());
  } else if (info.Length() > index && info[index].IsString()) {
    out = info[index].As<Napi::String>().Utf8Value();
  } else {
    throw Napi::TypeError::New(env, std::string(what) + " must be a Buffer or a string");
  }
  if (out.empty() || out.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, std::string(what) + " is empty or holds a NUL byte");
  }
  return out;
}

/** listXattrs(path): the names of every xattr of path itself (never a symlink's target). */
Napi::Value js_list_xattrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = bytes_arg(info, 0, "listXattrs(path): path");
  std::vector<char> buf(XATTR_BYTES_MAX);
  ssize_t n = llistxattr(path.c_str(), buf.data(), buf.size());
  if (n < 0) throw xattr_error(env, errno, "llistxattr", path);
  Napi::Array names = Napi::Array::New(env);
  uint32_t count = 0;
  for (ssize_t at = 0; at < n;) {
    size_t len = strnlen(buf.data() + at, static_cast<size_t>(n - at));
    if (len > 0) names.Set(count++, Napi::Buffer<char>::Copy(env, buf.data() + at, len));
    at += static_cast<ssize_t>(len) + 1;
  }
  return names;
}

/** getXattr(path, name): the value, or null when the attribute went away meanwhile. */
Napi::Value js_get_xattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = bytes_arg(info, 0, "getXattr(path, name): path");
  std::string name = bytes_arg(info, 1, "getXattr(path, name): name");
  std::vector<char> buf(XATTR_BYTES_MAX);
  ssize_t n = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
  if (n < 0 && errno == ENODATA) return env.Null();
  if (n < 0) throw xattr_error(env, errno, "lgetxattr", path);
  return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(n));
}

}  // namespace

void init_xattr(Napi::Env env, Napi::Object exports) {
  exports.Set("listXattrs", Napi::Function::New(env, js_list_xattrs, "listXattrs"));
  exports.Set("getXattr", Napi::Function::New(env, js_get_xattr, "getXattr"));
}

}  // namespace understudy
