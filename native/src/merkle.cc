#include "merkle.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include "keccak.h"

namespace opg {
namespace {

inline uint64_t loadBE64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// A sort key: the leaf hash as four big-endian words (so integer order = byte order) and the
// input position, which breaks ties and makes the sort stable like OZ's Array.prototype.sort.
struct SortKey {
  uint64_t w[4];
  uint32_t index;
};

inline bool KeyLess(const SortKey& a, const SortKey& b) {
  if (a.w[0] != b.w[0]) return a.w[0] < b.w[0];
  if (a.w[1] != b.w[1]) return a.w[1] < b.w[1];
  if (a.w[2] != b.w[2]) return a.w[2] < b.w[2];
  if (a.w[3] != b.w[3]) return a.w[3] < b.w[3];
  return a.index < b.index;
}

// Runs fn(lo, hi) over [begin, end) split across the machine's cores. Small ranges (and
// single-core machines) run on the calling thread: a thread costs more than ~10k hashes. A thread
// that cannot be started is no error: its chunk runs on the calling thread. `fn` must not throw.
// The fuzz build (native/fuzz) lowers this so that small trees take the threaded path too.
#ifndef OPG_MERKLE_MIN_PER_THREAD
#define OPG_MERKLE_MIN_PER_THREAD 8192
#endif

template <typename Fn>
void ParallelFor(size_t begin, size_t end, Fn fn) {
  constexpr size_t kMinPerThread = OPG_MERKLE_MIN_PER_THREAD;
  const size_t total = end - begin;
  size_t threads = std::thread::hardware_concurrency();
  if (threads > 8) threads = 8;
  if (threads > total / kMinPerThread) threads = total / kMinPerThread;
  if (threads <= 1) {
    fn(begin, end);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  const size_t chunk = (total + threads - 1) / threads;
  for (size_t t = 1; t < threads; ++t) {
    const size_t lo = begin + t * chunk;
    const size_t hi = lo + chunk < end ? lo + chunk : end;
    if (lo >= hi) continue;
    try {
      pool.emplace_back(fn, lo, hi);
    } catch (const std::exception&) {
      fn(lo, hi);  // no thread to be had (std::system_error, e.g. EAGAIN): this chunk runs here
    }
  }
  fn(begin, begin + chunk < end ? begin + chunk : end);
  for (auto& th : pool) th.join();
}

}  // namespace

void HashPair(const uint8_t* a, const uint8_t* b, uint8_t* out) {
  uint8_t buf[64];
  if (std::memcmp(a, b, 32) <= 0) {
    std::memcpy(buf, a, 32);
    std::memcpy(buf + 32, b, 32);
  } else {
    std::memcpy(buf, b, 32);
    std::memcpy(buf + 32, a, 32);
  }
  keccak256_64(buf, out);
}

void HashLeaves(LeafMode mode, const uint8_t* input, size_t stride, size_t count, uint8_t* leafHashes) {
  if (mode == LeafMode::kHashed) {
    std::memcpy(leafHashes, input, count * 32);
    return;
  }
  ParallelFor(0, count, [=](size_t lo, size_t hi) {
    uint8_t inner[32];
    uint8_t encoded[64];
    std::memset(encoded, 0, 12);  // the address, left-padded to 32 bytes
    for (size_t i = lo; i < hi; ++i) {
      const uint8_t* leaf = input + i * stride;
      if (mode == LeafMode::kAddressUint256) {
        std::memcpy(encoded + 12, leaf, 52);
        keccak256_64(encoded, inner);
      } else if (stride == 64) {
        keccak256_64(leaf, inner);
      } else if (stride == 32) {
        keccak256_32(leaf, inner);
      } else {
        keccak256(leaf, stride, inner);
      }
      keccak256_32(inner, leafHashes + i * 32);
    }
  });
}

void BuildTree(const uint8_t* leafHashes, size_t count, uint8_t* tree, uint32_t* treeIndex) {
  std::vector<SortKey> keys(count);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* h = leafHashes + i * 32;
    keys[i] = SortKey{{loadBE64(h), loadBE64(h + 8), loadBE64(h + 16), loadBE64(h + 24)},
                      static_cast<uint32_t>(i)};
  }
  std::sort(keys.begin(), keys.end(), KeyLess);

  const size_t nodes = 2 * count - 1;
  // Sorted leaf k sits at tree index nodes - 1 - k (OZ's makeMerkleTree).
  for (size_t k = 0; k < count; ++k) {
    const size_t at = nodes - 1 - k;
    const uint32_t v = keys[k].index;
    std::memcpy(tree + at * 32, leafHashes + static_cast<size_t>(v) * 32, 32);
    treeIndex[v] = static_cast<uint32_t>(at);
  }
  // Internal nodes are 0 .. count - 2. Node i's children (2i+1, 2i+2) lie one depth further down,
  // so the nodes of one depth are independent: hash depth by depth, deepest first, each depth
  // split across threads.
  const size_t internal = count - 1;
  size_t depthStart = 0;
  std::vector<std::pair<size_t, size_t>> depths;  // [first, last) internal index per depth
  while (depthStart < internal) {
    const size_t depthEnd = 2 * depthStart + 1 < internal ? 2 * depthStart + 1 : internal;
    depths.emplace_back(depthStart, depthEnd);
    depthStart = 2 * depthStart + 1;
  }
  for (size_t d = depths.size(); d-- > 0;) {
    ParallelFor(depths[d].first, depths[d].second, [=](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i) HashPair(tree + (2 * i + 1) * 32, tree + (2 * i + 2) * 32, tree + i * 32);
    });
  }
}

}  // namespace opg
