#include "reference.h"

#include <algorithm>
#include <cstring>
#include <numeric>

// The reference is not what is under test, and UBSan's checks on its shifts and lane indices made
// the tree fuzzer ~5x slower: they are left to native/src.
#define REF_FAST __attribute__((no_sanitize("undefined")))

namespace ref {
namespace {

REF_FAST uint64_t Rotl(uint64_t v, unsigned n) {
  n %= 64;
  return n == 0 ? v : (v << n) | (v >> (64 - n));
}

// FIPS 202 Algorithm 5, rc(t): the output bit of an 8-bit LFSR.
bool Rc(unsigned t) {
  if (t % 255 == 0) return true;
  unsigned r = 0x80;  // R = 10000000, bit 0 first (R[0] is the most significant bit here)
  for (unsigned i = 1; i <= t % 255; ++i) {
    // R = 0 || R; R[0] ^= R[8]; R[4] ^= R[8]; R[5] ^= R[8]; R[6] ^= R[8]; R = Trunc8(R).
    const unsigned r8 = r & 1;
    r >>= 1;
    if (r8) r ^= 0x80 | 0x08 | 0x04 | 0x02;
  }
  return (r & 0x80) != 0;
}

struct Tables {
  uint64_t roundConstant[24];
  unsigned rotation[25];  // by x + 5y
  Tables() {
    for (unsigned ir = 0; ir < 24; ++ir) {
      uint64_t rc = 0;
      for (unsigned j = 0; j <= 6; ++j) {
        if (Rc(j + 7 * ir)) rc |= uint64_t{1} << ((1u << j) - 1);
      }
      roundConstant[ir] = rc;
    }
    // FIPS 202 Algorithm 2 (rho): start at (1, 0), offsets (t + 1)(t + 2) / 2.
    rotation[0] = 0;
    unsigned x = 1, y = 0;
    for (unsigned t = 0; t < 24; ++t) {
      rotation[x + 5 * y] = ((t + 1) * (t + 2) / 2) % 64;
      const unsigned nx = y, ny = (2 * x + 3 * y) % 5;
      x = nx;
      y = ny;
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;
  return tables;
}

}  // namespace

REF_FAST void KeccakF1600(uint64_t a[25]) {
  const Tables& t = GetTables();
  for (int round = 0; round < 24; ++round) {
    // theta
    uint64_t c[5];
    for (int x = 0; x < 5; ++x) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (int x = 0; x < 5; ++x) {
      const uint64_t d = c[(x + 4) % 5] ^ Rotl(c[(x + 1) % 5], 1);
      for (int y = 0; y < 5; ++y) a[x + 5 * y] ^= d;
    }
    // rho and pi: B[y, 2x + 3y] = rot(A[x, y], r[x, y])
    uint64_t b[25];
    for (int x = 0; x < 5; ++x) {
      for (int y = 0; y < 5; ++y) b[y + 5 * ((2 * x + 3 * y) % 5)] = Rotl(a[x + 5 * y], t.rotation[x + 5 * y]);
    }
    // chi
    for (int x = 0; x < 5; ++x) {
      for (int y = 0; y < 5; ++y) a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
    }
    // iota
    a[0] ^= t.roundConstant[round];
  }
}

namespace {

// The state as 200 bytes, lane l = bytes 8l .. 8l + 7 little-endian (FIPS 202 section 3.1.2).
REF_FAST void Permute(uint8_t state[200]) {
  uint64_t lanes[25];
  for (int l = 0; l < 25; ++l) {
    lanes[l] = 0;
    for (int byte = 0; byte < 8; ++byte) lanes[l] |= uint64_t{state[8 * l + byte]} << (8 * byte);
  }
  KeccakF1600(lanes);
  for (int l = 0; l < 25; ++l) {
    for (int byte = 0; byte < 8; ++byte) state[8 * l + byte] = static_cast<uint8_t>(lanes[l] >> (8 * byte));
  }
}

}  // namespace

REF_FAST Hash Keccak256(const uint8_t* data, size_t len) {
  constexpr size_t kRate = 136;
  // The sponge, one byte at a time: absorb, pad10*1 with Keccak's 0x01 (0x01 and 0x80 share a byte
  // when one byte of the block is left), permute, squeeze 32 bytes.
  uint8_t state[200] = {0};
  size_t pos = 0;
  for (size_t i = 0; i < len; ++i) {
    state[pos++] ^= data[i];
    if (pos == kRate) {
      Permute(state);
      pos = 0;
    }
  }
  state[pos] ^= 0x01;
  state[kRate - 1] ^= 0x80;
  Permute(state);
  Hash out;
  std::memcpy(out.data(), state, 32);
  return out;
}

Hash StandardLeafHash(const uint8_t* encoding, size_t len) {
  const Hash inner = Keccak256(encoding, len);
  return Keccak256(inner.data(), inner.size());
}

void BuildStandardTree(const std::vector<Hash>& leafHashes, std::vector<Hash>* tree,
                       std::vector<uint32_t>* treeIndex) {
  const size_t n = leafHashes.size();
  // hashedValues.sort((a, b) => compare(a.hash, b.hash)), stable.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return std::memcmp(leafHashes[a].data(), leafHashes[b].data(), 32) < 0;
  });
  // makeMerkleTree: tree[tree.length - 1 - i] = leaves[i]; then the internal nodes, last first.
  tree->assign(2 * n - 1, Hash{});
  treeIndex->assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    (*tree)[tree->size() - 1 - i] = leafHashes[order[i]];
    (*treeIndex)[order[i]] = static_cast<uint32_t>(tree->size() - 1 - i);
  }
  for (size_t i = n - 1; i-- > 0;) {  // i = tree.length - 1 - leaves.length down to 0
    const Hash& left = (*tree)[2 * i + 1];
    const Hash& right = (*tree)[2 * i + 2];
    // hashPair(a, b) = keccak256(concat(sort([a, b], compare)))
    const bool leftFirst = std::memcmp(left.data(), right.data(), 32) <= 0;
    uint8_t pair[64];
    std::memcpy(pair, (leftFirst ? left : right).data(), 32);
    std::memcpy(pair + 32, (leftFirst ? right : left).data(), 32);
    (*tree)[i] = Keccak256(pair, 64);
  }
}

}  // namespace ref
