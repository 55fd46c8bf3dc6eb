// Glob matching and the mirrored set (native/path_filter.*). Prints "ok" and exits 0 when
// every case holds; names each failing case otherwise.
#include <cstdio>
#include <string>
#include <vector>

#include "../path_filter.h"

using understudy::PathFilter;
using understudy::glob_match;
using understudy::glob_problem;

namespace {

int failures = 0;

void expect_match(const char* glob, const char* path, bool want) {
  if (glob_match(glob, path) == want) return;
  std::printf("FAIL glob_match(\"%s\", \"%s\") should be %s\n", glob, path,
              want ? "true" : "false");
  failures++;
}

void expect_valid(const char* glob, bool want) {
  const std::string problem = glob_problem(glob);
  if (problem.empty() == want) return;
  std::printf("FAIL glob \"%s\" should be %s (%s)\n", glob, want ? "valid" : "invalid",
              problem.c_str());
  failures++;
}

void expect_mirrored(const PathFilter& f, const char* path, bool is_dir, bool want,
                     const char* what) {
  if (f.mirrored(path, is_dir) == want) return;
  std::printf("FAIL %s: \"%s\" (%s) should %sbe mirrored\n", what, path, is_dir ? "dir" : "file",
              want ? "" : "not ");
  failures++;
}

PathFilter make(const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
  PathFilter f;
  std::string why;
  if (!f.init(include, exclude, &why)) {
    std::printf("FAIL init: %s\n", why.c_str());
    failures++;
  }
  return f;
}

void literal_and_single_wildcards() {
  expect_match("a", "a", true);
  expect_match("a", "b", false);
  expect_match("a", "a/b", false);
  expect_match("a/b", "a/b", true);
  expect_match("a/b", "a/bc", false);
  expect_match("*", "abc", true);
  expect_match("*", "", false);
  expect_match("*", "a/b", false);
  expect_match("*.tmp", "a.tmp", true);
  expect_match("*.tmp", ".tmp", true);
  expect_match("*.tmp", "a.tmpx", false);
  expect_match("*.tmp", "d/a.tmp", false);
  expect_match("a*b*c", "abc", true);
  expect_match("a*b*c", "aXbYbZc", true);
  expect_match("a*b*c", "aXbYbZ", false);
  expect_match("*a*a*a", "aaaaaaaaaaaaaaaaaaaa", true);
  expect_match("*a*a*b", "aaaaaaaaaaaaaaaaaaaa", false);
  expect_match("?", "x", true);
  expect_match("?", "xy", false);
  expect_match("a?c", "abc", true);
  expect_match("a?c", "a/c", false);
  expect_match("??", "ab", true);
  expect_match("*/b", "a/b", true);
  expect_match("*/b", "a/x/b", false);
  expect_match("a/*/c", "a/b/c", true);
  expect_match("a/*", "a", false);
}

void classes_and_escapes() {
  expect_match("[abc]", "b", true);
  expect_match("[abc]", "d", false);
  expect_match("[a-c]x", "bx", true);
  expect_match("[a-c]x", "dx", false);
  expect_match("[!a-c]x", "dx", true);
  expect_match("[!a-c]x", "ax", false);
  expect_match("[^a-c]x", "ax", false);
  expect_match("[]]", "]", true);
  expect_match("[!]]", "]", false);
  expect_match("[!]]", "a", true);
  expect_match("[a-]", "-", true);
  expect_match("[*?]", "*", true);
  expect_match("[*?]", "a", false);
  expect_match("x[0-9][0-9]", "x42", true);
  expect_match("x[0-9][0-9]", "x4a", false);
  expect_match("\\*", "*", true);
  expect_match("\\*", "a", false);
  expect_match("a\\?", "a?", true);
  expect_match("a\\?", "ab", false);
  expect_match("\\[a]", "[a]", true);
  expect_match("[\\]]", "]", true);
  // Bytes, not characters: UTF-8 and high bytes compare as bytes.
  expect_match("caf\xc3\xa9", "caf\xc3\xa9", true);
  expect_match("caf?", "caf\xc3\xa9", false);
  expect_match("caf??", "caf\xc3\xa9", true);
  expect_match("[\x80-\xff]", "\xe9", true);
}

void double_star() {
  expect_match("**", "a", true);
  expect_match("**", "a/b/c", true);
  expect_match("**/*.tmp", "a.tmp", true);
  expect_match("**/*.tmp", "x/y/a.tmp", true);
  expect_match("**/*.tmp", "x/y/a.tmpl", false);
  expect_match("**/*.tmp", "x.tmp/y", false);
  expect_match("cache/**", "cache", true);
  expect_match("cache/**", "cache/a", true);
  expect_match("cache/**", "cache/a/b", true);
  expect_match("cache/**", "cached/a", false);
  expect_match("cache/**", "x/cache/a", false);
  expect_match("cache/**/*", "cache", false);
  expect_match("cache/**/*", "cache/a", true);
  expect_match("a/**/b", "a/b", true);
  expect_match("a/**/b", "a/x/b", true);
  expect_match("a/**/b", "a/x/y/b", true);
  expect_match("a/**/b", "a/x/y/c", false);
  expect_match("a/**/b", "a/b/c/b", true);
  expect_match("a/**/b/**/c", "a/x/b/y/z/c", true);
  expect_match("a/**/b/**/c", "a/x/b/y/z/d", false);
  expect_match("**/b/**", "b", true);
  expect_match("**/b/**", "x/b/y", true);
  expect_match("**/b/**", "x/bb/y", false);
  expect_match("**/**", "a/b", true);
  expect_match("a**", "abc", true);      // '**' inside a component is '*'
  expect_match("a**", "ab/c", false);
}

void validation() {
  expect_valid("**", true);
  expect_valid("a/b/*.c", true);
  expect_valid("dir/", true);
  expect_valid("[]a]", true);
  expect_valid("\\*", true);
  expect_valid("", false);
  expect_valid("/etc", false);
  expect_valid("a//b", false);
  expect_valid("a/./b", false);
  expect_valid("../x", false);
  expect_valid("a/..", false);
  expect_valid("[abc", false);
  expect_valid("[]", false);
  expect_valid("a\\", false);
  expect_valid("a\\/b", false);
  expect_valid("/", false);
  PathFilter f;
  std::string why;
  if (f.init({"ok"}, {"[bad"}, &why) || why.find("[bad") == std::string::npos) {
    std::printf("FAIL init should refuse \"[bad\" and name it (%s)\n", why.c_str());
    failures++;
  }
}

void mirrored_set() {
  const PathFilter all = make({}, {});
  if (!all.everything()) {
    std::printf("FAIL an empty filter should mirror everything\n");
    failures++;
  }
  expect_mirrored(all, "any/thing", false, true, "default");

  const PathFilter f = make({"**"}, {"**/*.tmp", "cache/**", "build/"});
  if (f.everything()) {
    std::printf("FAIL a filter with excludes is not 'everything'\n");
    failures++;
  }
  expect_mirrored(f, "", true, true, "root");
  expect_mirrored(f, "a.db", false, true, "plain file");
  expect_mirrored(f, "a.tmp", false, false, "*.tmp at the top");
  expect_mirrored(f, "d/e/a.tmp", false, false, "*.tmp deep");
  expect_mirrored(f, "x.tmp", true, false, "a directory named *.tmp");
  expect_mirrored(f, "x.tmp/inner", false, false, "below an excluded directory");
  expect_mirrored(f, "cache", true, false, "cache itself (** matches zero components)");
  expect_mirrored(f, "cache/a/b", false, false, "inside cache");
  expect_mirrored(f, "cache/a", true, false, "a directory inside cache");
  expect_mirrored(f, "d/cache/a", false, true, "cache/** is anchored at the root");
  expect_mirrored(f, "build", true, false, "build/ excludes the directory");
  expect_mirrored(f, "build", false, true, "build/ leaves a file named build");
  expect_mirrored(f, "build/x", false, false, "below the build directory");

  const PathFilter inc = make({"*.db", "data", "logs/**/*.log", "etc/"}, {"data/tmp"});
  expect_mirrored(inc, "a.db", false, true, "include *.db");
  expect_mirrored(inc, "d/a.db", false, false, "*.db is top level only");
  expect_mirrored(inc, "d", true, true, "directories are mirrored unless excluded");
  expect_mirrored(inc, "notes.txt", false, false, "not included");
  expect_mirrored(inc, "data/x/y", false, true, "below an included directory");
  expect_mirrored(inc, "data", false, true, "a file named data matches");
  expect_mirrored(inc, "data/tmp", true, false, "excluded inside an included tree");
  expect_mirrored(inc, "data/tmp/z", false, false, "below the excluded one");
  expect_mirrored(inc, "logs/a/b/c.log", false, true, "** in the middle");
  expect_mirrored(inc, "logs/c.log", false, true, "** as zero components");
  expect_mirrored(inc, "logs/c.txt", false, false, "wrong suffix");
  expect_mirrored(inc, "etc/passwd", false, true, "below a dir-only include");
  expect_mirrored(inc, "etc", false, false, "etc/ matches directories only");
  expect_mirrored(inc, "x/etc/y", false, false, "etc/ is anchored");

  const struct {
    std::vector<std::string> include, exclude;
    bool keep;
  } moves[] = {
      {{}, {}, true},
      {{"**"}, {"**/*.tmp", "*.log", "**/node_modules/"}, true},
      {{"**"}, {"cache/**"}, false},
      {{"**"}, {"**/a/b"}, false},
      {{"data"}, {}, false},
  };
  for (const auto& m : moves) {
    if (make(m.include, m.exclude).moves_keep_subtrees() != m.keep) {
      std::printf("FAIL moves_keep_subtrees of a case should be %d\n", m.keep);
      failures++;
    }
  }
}

}  // namespace

int main() {
  literal_and_single_wildcards();
  classes_and_escapes();
  double_star();
  validation();
  mirrored_set();
  if (failures != 0) {
    std::printf("%d failures\n", failures);
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
