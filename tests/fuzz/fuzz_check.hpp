#pragma once
// FUZZ_CHECK(c): a failed invariant stops the fuzzer with a crash it
// reports and minimises (a trap, not an assert: it holds in every build).
#define FUZZ_CHECK(c)     \
  do {                    \
    if (!(c)) {           \
      __builtin_trap();   \
    }                     \
  } while (0)
