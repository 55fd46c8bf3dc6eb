// Glob matching for the vault's include/exclude lists: see path_filter.h for the syntax.
// Two levels, each the classic iterative wildcard match with backtracking to the last star:
// components against a glob component ('*' within one component), and paths against a
// glob ('**' over whole components). One star kind per level makes backtracking to the
// last star enough, so matching is linear-ish and needs no allocation or recursion.
#include "path_filter.h"

#include <cstdint>

namespace understudy {
namespace {

// Matches the class starting at glob[at] == '[' against byte `c`; `*next` is the index just
// past the closing ']'. The glob was checked, so the class is closed.
bool class_match(std::string_view glob, size_t at, unsigned char c, size_t* next) {
  size_t i = at + 1;
  bool negate = false;
  if (i < glob.size() && (glob[i] == '!' || glob[i] == '^')) {
    negate = true;
    i++;
  }
  bool found = false;
  bool first = true;
  while (i < glob.size() && (glob[i] != ']' || first)) {
    first = false;
    unsigned char lo = static_cast<unsigned char>(glob[i]);
    if (lo == '\\' && i + 1 < glob.size()) lo = static_cast<unsigned char>(glob[++i]);
    i++;
    unsigned char hi = lo;
    if (i + 1 < glob.size() && glob[i] == '-' && glob[i + 1] != ']') {
      hi = static_cast<unsigned char>(glob[i + 1]);
      if (hi == '\\' && i + 2 < glob.size()) hi = static_cast<unsigned char>(glob[++i + 1]);
      i += 2;
    }
    if (c >= lo && c <= hi) found = true;
  }
  *next = i + 1;  // past ']'
  return found != negate && c != '/';
}

// Matches one token of `glob` at `g` (not '*') against byte `c`; `*next` is past the token.
bool token_match(std::string_view glob, size_t g, unsigned char c, size_t* next) {
  const char t = glob[g];
  if (t == '?') {
    *next = g + 1;
    return c != '/';
  }
  if (t == '[') return class_match(glob, g, c, next);
  if (t == '\\' && g + 1 < glob.size()) {
    *next = g + 2;
    return static_cast<unsigned char>(glob[g + 1]) == c;
  }
  *next = g + 1;
  return static_cast<unsigned char>(t) == c;
}

// One glob component (no '/') against one path component (no '/').
bool component_match(std::string_view glob, std::string_view name) {
  size_t g = 0, n = 0;
  size_t star_g = SIZE_MAX, star_n = 0;
  while (n < name.size()) {
    size_t next = 0;
    if (g < glob.size() && glob[g] == '*') {
      star_g = ++g;
      star_n = n;
    } else if (g < glob.size() && token_match(glob, g, static_cast<unsigned char>(name[n]),
                                              &next)) {
      g = next;
      n++;
    } else if (star_g != SIZE_MAX) {
      g = star_g;  // let the last '*' take one more byte
      n = ++star_n;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') g++;
  return g == glob.size();
}

// The component of `s` starting at `at` (up to '/' or the end).
std::string_view component_at(std::string_view s, size_t at) {
  const size_t slash = s.find('/', at);
  return s.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
}

// Position of the component after the one at `at` of length `len` (s.size() + 1 at the end).
size_t after(std::string_view s, size_t at, size_t len) { return at + len + 1; }

}  // namespace

bool glob_match(std::string_view glob, std::string_view path) {
  // Positions index the start of a component; size + 1 means "past the last component".
  const size_t g_end = glob.size() + 1, p_end = path.empty() ? 0 : path.size() + 1;
  size_t g = 0, p = 0;
  size_t star_g = SIZE_MAX, star_p = 0;
  while (p < p_end) {
    if (g < g_end) {
      const std::string_view gc = component_at(glob, g);
      if (gc == "**") {
        star_g = g = after(glob, g, 2);
        star_p = p;
        continue;
      }
      const std::string_view pc = component_at(path, p);
      if (component_match(gc, pc)) {
        g = after(glob, g, gc.size());
        p = after(path, p, pc.size());
        continue;
      }
    }
    if (star_g == SIZE_MAX) return false;
    // Let the last '**' take one more component.
    g = star_g;
    star_p = after(path, star_p, component_at(path, star_p).size());
    p = star_p;
  }
  while (g < g_end && component_at(glob, g) == "**") g = after(glob, g, 2);
  return g >= g_end;
}

std::string glob_problem(std::string_view glob) {
  if (glob.empty()) return "is empty";
  if (glob.size() > PATH_FILTER_GLOB_BYTES_MAX) return "is longer than 4096 bytes";
  if (glob.find('\0') != std::string_view::npos) return "holds a NUL byte";
  if (glob.front() == '/') return "starts with '/': globs are relative to the vault root";
  std::string_view body = glob;
  if (body.size() > 1 && body.back() == '/') body.remove_suffix(1);
  for (size_t at = 0; at <= body.size();) {
    const std::string_view c = component_at(body, at);
    if (c.empty()) return "has an empty component ('//' or a trailing '/' alone)";
    if (c == "." || c == "..") return "has a '.' or '..' component";
    for (size_t i = 0; i < c.size(); i++) {
      if (c[i] == '\\') {
        if (++i == c.size()) return "has a lone '\\' before '/' or at the end";
      } else if (c[i] == '[') {
        size_t j = i + 1;
        if (j < c.size() && (c[j] == '!' || c[j] == '^')) j++;
        if (j < c.size() && c[j] == ']') j++;  // ']' first is literal
        while (j < c.size() && c[j] != ']') j += c[j] == '\\' ? 2 : 1;
        if (j >= c.size()) return "has an unclosed '['";
        i = j;
      }
    }
    at = after(body, at, c.size());
  }
  return "";
}

bool PathFilter::init(const std::vector<std::string>& include,
                      const std::vector<std::string>& exclude, std::string* why) {
  include_.clear();
  exclude_.clear();
  if (include.size() > PATH_FILTER_GLOBS_MAX || exclude.size() > PATH_FILTER_GLOBS_MAX) {
    *why = "more than 1024 globs in one list";
    return false;
  }
  const std::vector<std::string> all = {"**"};
  const std::pair<const std::vector<std::string>*, std::vector<Glob>*> lists[] = {
      {include.empty() ? &all : &include, &include_}, {&exclude, &exclude_}};
  for (const auto& [in, out] : lists) {
    for (const std::string& text : *in) {
      if (const std::string problem = glob_problem(text); !problem.empty()) {
        *why = "glob \"" + text + "\" " + problem;
        return false;
      }
      Glob glob{text, false};
      if (glob.text.size() > 1 && glob.text.back() == '/') {
        glob.text.pop_back();
        glob.dir_only = true;
      }
      out->push_back(std::move(glob));
    }
  }
  bool all_included = false;
  for (const Glob& g : include_) all_included |= g.text == "**" && !g.dir_only;
  everything_ = all_included && exclude_.empty();
  // A child of a moved directory keeps its components below the directory; globs that look
  // at one component only ("x", which matches depth 1 only, or "**/x") see the same there.
  moves_keep_subtrees_ = all_included;
  for (const Glob& g : exclude_) {
    const std::string_view rest = std::string_view(g.text).substr(
        g.text.compare(0, 3, "**/") == 0 ? 3 : 0);
    if (rest.find('/') != std::string_view::npos) moves_keep_subtrees_ = false;
  }
  return true;
}

bool PathFilter::any_match(const std::vector<Glob>& globs, std::string_view path,
                           bool is_dir) {
  for (const Glob& g : globs) {
    if ((is_dir || !g.dir_only) && glob_match(g.text, path)) return true;
  }
  return false;
}

bool PathFilter::any_ancestor_match(const std::vector<Glob>& globs, std::string_view path) {
  // Every proper ancestor is a directory.
  for (size_t slash = path.find('/'); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    if (any_match(globs, path.substr(0, slash), true)) return true;
  }
  return false;
}

bool PathFilter::mirrored(std::string_view path, bool is_dir) const {
  if (path.empty() || everything_) return true;
  if (any_match(exclude_, path, is_dir) || any_ancestor_match(exclude_, path)) return false;
  if (is_dir) return true;
  return any_match(include_, path, false) || any_ancestor_match(include_, path);
}

}  // namespace understudy
