#pragma once
// A hash set of pointers looked up by a string key stored inside the pointed-to
// object: `keyed_set<local_channel, &channel_name>` finds a channel by name.
//
// Why not unordered_flat_map<std::string_view, T*>: the map's slot holds the
// view and the pointer (24 bytes) although the object already holds the key;
// this set's slot is the pointer alone (8 bytes). With open addressing at
// ~0.6 average load that is ~25 bytes less per entry, and a gateway keeps an
// entry per channel per shard and per user (bench/RESULTS.md, "Idle memory").
// Lookups by string_view work through transparent hashing; the cost is one
// extra dereference on a probe hit, which reads the object a lookup is about
// to use anyway.
//
// Threading: as boost::unordered_flat_set (owner thread only).

#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include <cstddef>
#include <string_view>

namespace sb {

template <typename T, std::string_view (*Key)(const T&)>
struct key_of {
  using is_transparent = void;
  static std::string_view key(std::string_view s) noexcept { return s; }
  static std::string_view key(const T* p) noexcept { return Key(*p); }

  template <typename A>
  std::size_t operator()(const A& a) const noexcept {
    return boost::hash<std::string_view>{}(key(a));
  }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    return key(a) == key(b);
  }
};

/// Keys must not change while the object is in the set.
template <typename T, std::string_view (*Key)(const T&)>
using keyed_set = boost::unordered_flat_set<T*, key_of<T, Key>, key_of<T, Key>>;

}  // namespace sb
