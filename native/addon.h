// Node-API surface of the addon. Each area registers its own functions on `exports`.
#pragma once
#include <napi.h>

namespace understudy {

// native/addon_mount.cc: mount, unmount, stats, flush, notifier (the FUSE capture layer).
void init_mount(Napi::Env env, Napi::Object exports);
// native/addon_applier.cc: the confined batch applier (target side).
void init_applier(Napi::Env env, Napi::Object exports);
// native/addon_codec.cc: crc32c and record framing helpers shared with the TS reader tests.
void init_codec(Napi::Env env, Napi::Object exports);
// native/addon_sync.cc: sync emit (records that bring a target's copy of an object up to date).
void init_sync(Napi::Env env, Napi::Object exports);
// native/addon_xattr.cc: listXattrs/getXattr without following symlinks (tree scans).
void init_xattr(Napi::Env env, Napi::Object exports);
// native/addon_hash.cc: hashBlocks (sync's block hashes, on a worker thread).
void init_hash(Napi::Env env, Napi::Object exports);
// native/addon_filter.cc: the vault's include/exclude globs (createPathFilter, pathFilterMatches).
void init_filter(Napi::Env env, Napi::Object exports);

class Mount;
/** The live Mount behind a JS mount handle (argument `index`); throws if unmounted. */
Mount* mount_from_handle(const Napi::CallbackInfo& info, size_t index);

}  // namespace understudy
