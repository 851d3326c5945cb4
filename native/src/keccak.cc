#include "keccak.h"

#include <cstring>

namespace opg {
namespace {

constexpr size_t kRate = 136;  // 1600 - 2 * 256 bits, in bytes

constexpr uint64_t kRoundConstants[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

inline uint64_t rol(uint64_t x, unsigned n) { return n == 0 ? x : (x << n) | (x >> (64 - n)); }

inline uint64_t load64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

inline void store64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline void squeeze(const uint64_t s[25], uint8_t out[32]) {
  store64(out, s[0]);
  store64(out + 8, s[1]);
  store64(out + 16, s[2]);
  store64(out + 24, s[3]);
}

}  // namespace

// One round per iteration with every lane in a local variable: theta, rho and pi fused into one
// pass (B[y][2x+3y] = rol(A[x][y] ^ D[x], r[x][y])), then chi and iota. The compiler keeps the
// 25 lanes in registers where it can.
void keccakf1600(uint64_t s[25]) {
  uint64_t a00 = s[0], a01 = s[1], a02 = s[2], a03 = s[3], a04 = s[4];
  uint64_t a05 = s[5], a06 = s[6], a07 = s[7], a08 = s[8], a09 = s[9];
  uint64_t a10 = s[10], a11 = s[11], a12 = s[12], a13 = s[13], a14 = s[14];
  uint64_t a15 = s[15], a16 = s[16], a17 = s[17], a18 = s[18], a19 = s[19];
  uint64_t a20 = s[20], a21 = s[21], a22 = s[22], a23 = s[23], a24 = s[24];
  for (int round = 0; round < 24; ++round) {
    // theta
    const uint64_t c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20;
    const uint64_t c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21;
    const uint64_t c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22;
    const uint64_t c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23;
    const uint64_t c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24;
    const uint64_t d0 = c4 ^ rol(c1, 1);
    const uint64_t d1 = c0 ^ rol(c2, 1);
    const uint64_t d2 = c1 ^ rol(c3, 1);
    const uint64_t d3 = c2 ^ rol(c4, 1);
    const uint64_t d4 = c3 ^ rol(c0, 1);
    // rho + pi: lane (x, y) at index x + 5y moves to (y, 2x + 3y).
    const uint64_t b00 = a00 ^ d0;
    const uint64_t b10 = rol(a01 ^ d1, 1);
    const uint64_t b20 = rol(a02 ^ d2, 62);
    const uint64_t b05 = rol(a03 ^ d3, 28);
    const uint64_t b15 = rol(a04 ^ d4, 27);
    const uint64_t b16 = rol(a05 ^ d0, 36);
    const uint64_t b01 = rol(a06 ^ d1, 44);
    const uint64_t b11 = rol(a07 ^ d2, 6);
    const uint64_t b21 = rol(a08 ^ d3, 55);
    const uint64_t b06 = rol(a09 ^ d4, 20);
    const uint64_t b07 = rol(a10 ^ d0, 3);
    const uint64_t b17 = rol(a11 ^ d1, 10);
    const uint64_t b02 = rol(a12 ^ d2, 43);
    const uint64_t b12 = rol(a13 ^ d3, 25);
    const uint64_t b22 = rol(a14 ^ d4, 39);
    const uint64_t b23 = rol(a15 ^ d0, 41);
    const uint64_t b08 = rol(a16 ^ d1, 45);
    const uint64_t b18 = rol(a17 ^ d2, 15);
    const uint64_t b03 = rol(a18 ^ d3, 21);
    const uint64_t b13 = rol(a19 ^ d4, 8);
    const uint64_t b14 = rol(a20 ^ d0, 18);
    const uint64_t b24 = rol(a21 ^ d1, 2);
    const uint64_t b09 = rol(a22 ^ d2, 61);
    const uint64_t b19 = rol(a23 ^ d3, 56);
    const uint64_t b04 = rol(a24 ^ d4, 14);
    // chi (row by row) + iota
    a00 = b00 ^ (~b01 & b02) ^ kRoundConstants[round];
    a01 = b01 ^ (~b02 & b03);
    a02 = b02 ^ (~b03 & b04);
    a03 = b03 ^ (~b04 & b00);
    a04 = b04 ^ (~b00 & b01);
    a05 = b05 ^ (~b06 & b07);
    a06 = b06 ^ (~b07 & b08);
    a07 = b07 ^ (~b08 & b09);
    a08 = b08 ^ (~b09 & b05);
    a09 = b09 ^ (~b05 & b06);
    a10 = b10 ^ (~b11 & b12);
    a11 = b11 ^ (~b12 & b13);
    a12 = b12 ^ (~b13 & b14);
    a13 = b13 ^ (~b14 & b10);
    a14 = b14 ^ (~b10 & b11);
    a15 = b15 ^ (~b16 & b17);
    a16 = b16 ^ (~b17 & b18);
    a17 = b17 ^ (~b18 & b19);
    a18 = b18 ^ (~b19 & b15);
    a19 = b19 ^ (~b15 & b16);
    a20 = b20 ^ (~b21 & b22);
    a21 = b21 ^ (~b22 & b23);
    a22 = b22 ^ (~b23 & b24);
    a23 = b23 ^ (~b24 & b20);
    a24 = b24 ^ (~b20 & b21);
  }
  s[0] = a00; s[1] = a01; s[2] = a02; s[3] = a03; s[4] = a04;
  s[5] = a05; s[6] = a06; s[7] = a07; s[8] = a08; s[9] = a09;
  s[10] = a10; s[11] = a11; s[12] = a12; s[13] = a13; s[14] = a14;
  s[15] = a15; s[16] = a16; s[17] = a17; s[18] = a18; s[19] = a19;
  s[20] = a20; s[21] = a21; s[22] = a22; s[23] = a23; s[24] = a24;
}

void keccak256(const uint8_t* data, size_t len, uint8_t out[32]) {
  uint64_t s[25] = {0};
  // Absorb whole blocks.
  while (len >= kRate) {
    for (size_t i = 0; i < kRate / 8; ++i) s[i] ^= load64(data + 8 * i);
    keccakf1600(s);
    data += kRate;
    len -= kRate;
  }
  // Last (partial) block with Keccak's pad10*1 and domain byte 0x01.
  uint8_t block[kRate];
  std::memset(block, 0, kRate);
  if (len > 0) std::memcpy(block, data, len);
  block[len] ^= 0x01;
  block[kRate - 1] ^= 0x80;
  for (size_t i = 0; i < kRate / 8; ++i) s[i] ^= load64(block + 8 * i);
  keccakf1600(s);
  squeeze(s, out);
}

void keccak256_64(const uint8_t in[64], uint8_t out[32]) {
  uint64_t s[25] = {0};
  for (int i = 0; i < 8; ++i) s[i] = load64(in + 8 * i);
  s[8] = 0x01;                   // padding byte right after the 64 input bytes
  s[16] = 0x8000000000000000ULL;  // last byte of the rate
  keccakf1600(s);
  squeeze(s, out);
}

void keccak256_32(const uint8_t in[32], uint8_t out[32]) {
  uint64_t s[25] = {0};
  for (int i = 0; i < 4; ++i) s[i] = load64(in + 8 * i);
  s[4] = 0x01;
  s[16] = 0x8000000000000000ULL;
  keccakf1600(s);
  squeeze(s, out);
}

}  // namespace opg
