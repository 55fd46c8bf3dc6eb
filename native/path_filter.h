// The vault's include/exclude globs: which vault-relative paths are mirrored (journaled and
// replayed on targets). Pure: no I/O, no locks; matching allocates nothing. Used by the
// capture layer (native/ops.cc) and, through native/addon_filter.cc, by the source scanner.
//
// Glob syntax, relative to the vault root, matched against whole paths byte by byte:
//   *      any run of bytes except '/'        ?      one byte except '/'
//   [abc] [a-z] [!a-z] [^a-z]  one byte of (or not of) a class; never '/'; ']' first is literal
//   \c     the byte c itself                  **     as a whole component: zero or more components
//   a trailing '/' makes the glob match directories only.
// A glob never has a leading '/', an empty, '.' or '..' component, or an unclosed '['.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace understudy {

/** Most globs in one list, and most bytes in one glob: limits on configuration input. */
inline constexpr size_t PATH_FILTER_GLOBS_MAX = 1024;
inline constexpr size_t PATH_FILTER_GLOB_BYTES_MAX = 4096;

/** True when `path` (no leading '/') matches `glob` (checked by PathFilter::create). */
bool glob_match(std::string_view glob, std::string_view path);

/** Why `glob` is not a valid glob, or empty when it is. */
std::string glob_problem(std::string_view glob);

/**
 * A vault's mirrored set. A directory is mirrored unless it or an ancestor matches an
 * exclude (so the parents of every included file exist on targets); any other object is
 * mirrored when it or an ancestor directory matches some include (include ["data"] means
 * the tree data/), and neither it nor an ancestor matches an exclude.
 * The vault root ("") is always mirrored. Immutable after create: safe from any thread.
 */
class PathFilter {
 public:
  /**
   * Checks and keeps the globs (an empty include list means ["**"]). False with `*why`
   * naming the glob and the problem when one is invalid.
   */
  bool init(const std::vector<std::string>& include, const std::vector<std::string>& exclude,
            std::string* why);

  /** Whether the object at `path` (vault-relative, "" = root) is mirrored. */
  bool mirrored(std::string_view path, bool is_dir) const;

  /** True when every path is mirrored (include ["**"], no exclude): callers skip checks. */
  bool everything() const { return everything_; }

  // True when moving a directory that is mirrored at both names cannot change whether
  // anything beneath it is mirrored (include ["**"], each exclude one component or
  // "**/<one component>"), so a rename need not walk the subtree.
  bool moves_keep_subtrees() const { return moves_keep_subtrees_; }

 private:
  struct Glob {
    std::string text;   // without a trailing '/'
    bool dir_only = false;
  };
  static bool any_match(const std::vector<Glob>& globs, std::string_view path, bool is_dir);
  static bool any_ancestor_match(const std::vector<Glob>& globs, std::string_view path);

  std::vector<Glob> include_;
  std::vector<Glob> exclude_;
  bool everything_ = true;
  bool moves_keep_subtrees_ = true;
};

}  // namespace understudy
