// Keccak-256 as Ethereum uses it: Keccak-f[1600], rate 136 bytes, original 0x01 padding (not SHA3's 0x06).
#pragma once

#include <cstddef>
#include <cstdint>

namespace opg {

// The Keccak-f[1600] permutation on 25 little-endian lanes.
void keccakf1600(uint64_t state[25]);

// keccak256(data[0..len)) -> out[0..32).
void keccak256(const uint8_t* data, size_t len, uint8_t out[32]);

// keccak256 of exactly 64 bytes (one block, no absorb loop): the Merkle node hash and the
// (address, uint256) leaf encoding.
void keccak256_64(const uint8_t in[64], uint8_t out[32]);

// keccak256 of exactly 32 bytes: the outer hash of an OpenZeppelin standard leaf.
void keccak256_32(const uint8_t in[32], uint8_t out[32]);

}  // namespace opg
