// Differential fuzzing of native/src/merkle.cc (HashLeaves + BuildTree) against the reference
// StandardMerkleTree: the whole node array and every leaf's tree index must be identical, for the
// three leaf modes, any leaf count and duplicate leaves (equal hashes keep their input order).
// run.sh builds merkle.cc with OPG_MERKLE_MIN_PER_THREAD=16, so that trees from 32 leaves are
// hashed on several threads, as 16,384-leaf ones are in production.
//
// Input: mode byte, stride byte, flags byte, then the leaves' bytes.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../src/merkle.h"
#include "common.h"
#include "reference.h"

namespace {

constexpr size_t kMaxCount = 2048;

ref::Hash ReferenceLeafHash(opg::LeafMode mode, const uint8_t* leaf, size_t stride) {
  switch (mode) {
    case opg::LeafMode::kAddressUint256: {
      uint8_t encoding[64] = {0};  // abi.encode(address, uint256): the address left-padded to 32
      std::memcpy(encoding + 12, leaf, 52);
      return ref::StandardLeafHash(encoding, 64);
    }
    case opg::LeafMode::kEncoded:
      return ref::StandardLeafHash(leaf, stride);
    case opg::LeafMode::kHashed:
      break;
  }
  ref::Hash hash;
  std::memcpy(hash.data(), leaf, 32);
  return hash;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader in(data, size);
  const auto mode = static_cast<opg::LeafMode>(in.Byte() % 3);
  const uint8_t strideByte = in.Byte();
  const uint8_t flags = in.Byte();
  size_t stride = 32;
  if (mode == opg::LeafMode::kAddressUint256) stride = 52;
  // Encoded: 1 to 8 words mostly (the 32- and 64-byte fast paths among them), else up to 125
  // words (multi-block keccak).
  if (mode == opg::LeafMode::kEncoded) {
    stride = 32 * (strideByte < 224 ? 1 + strideByte % 8 : 1 + (strideByte - 224) * 4);
  }

  size_t count = in.RestSize() / stride;
  if (count == 0) count = 1;
  if (count > kMaxCount) count = kMaxCount;

  // The packed input, exactly count * stride bytes on the heap (zeros past the fuzzer's bytes).
  std::vector<uint8_t> input(count * stride, 0);
  std::memcpy(input.data(), in.Rest(), std::min(input.size(), in.RestSize()));
  // Duplicates: with flags' low bits set, some leaves copy an earlier one (equal leaf hashes, so
  // the order of equal keys is tested).
  const unsigned duplicates = flags & 3;
  for (size_t i = 1; duplicates != 0 && i < count; ++i) {
    const uint8_t pick = input[i * stride];
    if (pick % 4 < duplicates) std::memmove(&input[i * stride], &input[(pick % i) * stride], stride);
  }

  std::vector<uint8_t> leafHashes(count * 32);
  std::vector<uint8_t> tree((2 * count - 1) * 32);
  std::vector<uint32_t> treeIndex(count);
  opg::HashLeaves(mode, input.data(), stride, count, leafHashes.data());
  opg::BuildTree(leafHashes.data(), count, tree.data(), treeIndex.data());

  std::vector<ref::Hash> refLeaves(count);
  for (size_t i = 0; i < count; ++i) refLeaves[i] = ReferenceLeafHash(mode, &input[i * stride], stride);
  std::vector<ref::Hash> refTree;
  std::vector<uint32_t> refTreeIndex;
  ref::BuildStandardTree(refLeaves, &refTree, &refTreeIndex);

  for (size_t i = 0; i < count; ++i) {
    if (std::memcmp(&leafHashes[i * 32], refLeaves[i].data(), 32) != 0) fuzz::Fail("leaf hash");
  }
  for (size_t i = 0; i < refTree.size(); ++i) {
    if (std::memcmp(&tree[i * 32], refTree[i].data(), 32) != 0) {
      std::fprintf(stderr, "mode %u, stride %zu, count %zu, node %zu\n", static_cast<unsigned>(mode), stride, count, i);
      fuzz::Fail("tree node");
    }
  }
  if (treeIndex != refTreeIndex) fuzz::Fail("tree index");
  return 0;
}
