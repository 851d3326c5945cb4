// Reference implementations the fuzzers compare native/src against. Written for plainness, not
// speed, and independently of native/src: Keccak from the FIPS 202 description (round constants
// from the LFSR, rotation offsets from the (x, y) walk, a byte-wise sponge), and the Merkle tree
// as @openzeppelin/merkle-tree's StandardMerkleTree builds it (core.ts makeMerkleTree).
#pragma once

#include <cstddef>
#include <array>
#include <cstdint>
#include <vector>

namespace ref {

using Hash = std::array<uint8_t, 32>;

// Keccak-f[1600] on lanes A[x + 5y], as FIPS 202 section 3 writes it.
void KeccakF1600(uint64_t a[25]);

// Keccak-256 with Ethereum's (pre-SHA-3) padding 0x01 ... 0x80.
Hash Keccak256(const uint8_t* data, size_t len);

// OpenZeppelin StandardMerkleTree over already-made leaf hashes: leaves sorted by hash (a stable
// sort: equal hashes keep their input order, like Array.prototype.sort), sorted leaf k at index
// 2n - 2 - k, node i = keccak256(sort(node 2i+1, node 2i+2)). `tree` gets the 2n - 1 nodes,
// `treeIndex[v]` the index of input leaf v.
void BuildStandardTree(const std::vector<Hash>& leafHashes, std::vector<Hash>* tree,
                       std::vector<uint32_t>* treeIndex);

// OpenZeppelin's standard leaf hash of an ABI encoding: keccak256(keccak256(encoding)).
Hash StandardLeafHash(const uint8_t* encoding, size_t len);

}  // namespace ref
