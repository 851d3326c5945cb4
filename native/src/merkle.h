// OpenZeppelin StandardMerkleTree-compatible tree building.
#pragma once

#include <cstddef>
#include <cstdint>

namespace opg {

// How the input bytes of one leaf become its 32-byte leaf hash.
enum class LeafMode : uint32_t {
  // 52 bytes: address (20) then uint256 big-endian (32); hashed as OZ's standard leaf of
  // abi.encode(address, uint256), i.e. keccak256(keccak256(64-byte encoding)).
  kAddressUint256 = 0,
  // `stride` bytes of a static ABI encoding (a multiple of 32): keccak256(keccak256(bytes)).
  kEncoded = 1,
  // 32 bytes: the leaf hash itself (computed by the caller).
  kHashed = 2,
};

// Hashes `count` leaves of `stride` bytes each from `input` into `leafHashes` (count * 32 bytes).
void HashLeaves(LeafMode mode, const uint8_t* input, size_t stride, size_t count, uint8_t* leafHashes);

// Builds OZ's array layout from `count` leaf hashes: leaves sorted by hash (stable, so equal hashes
// keep their input order) and stored from the end of the array; node i = hashPair(2i+1, 2i+2).
// `tree` receives (2 * count - 1) * 32 bytes; `treeIndex[v]` the tree index of input leaf v.
void BuildTree(const uint8_t* leafHashes, size_t count, uint8_t* tree, uint32_t* treeIndex);

// keccak256 of the two 32-byte nodes in ascending byte order (OZ's commutative hashPair).
void HashPair(const uint8_t* a, const uint8_t* b, uint8_t* out);

}  // namespace opg
