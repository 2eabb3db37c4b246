#pragma once
// The item type of the cross-shard mesh: a move-only `void()` callable with
// 56 bytes of inline captures (pool/inplace_function.hpp), so that ordinary
// messages never allocate and one message fills one cache line.

#include "pool/inplace_function.hpp"

namespace sb {

/// A mesh message; see inplace_function for the threading rules.
using task = inplace_function<void(), 56>;

static_assert(sizeof(task) == 64, "a mesh message fills one cache line");

}  // namespace sb
