// US_ASSERT: checks our own invariants (bugs), never bytes from disk, wire or kernel.
#pragma once

#include <cstdio>
#include <cstdlib>

/** Logs file:line and the failed condition to stderr, then aborts: a bug, not a condition. */
#define US_ASSERT(cond)                                                                  \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "understudy: assertion failed at %s:%d: %s\n", __FILE__,     \
                   __LINE__, #cond);                                                     \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
