// Differential fuzzing of native/src/keccak.cc against the reference sponge: keccak256 on any
// input, the fixed-size keccak256_32 / keccak256_64, and the bare keccak-f[1600] permutation.
#include <cstring>

#include "../src/keccak.h"
#include "common.h"
#include "reference.h"

namespace {

// Known answers, checked at start-up so that the reference itself is right (ethers' keccak256).
struct Vector {
  const char* message;
  size_t repeat;  // the message is `message` repeated this many times
  const char* hex;
};
const Vector kVectors[] = {
    {"", 1, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"},
    {"abc", 1, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
    {"a", 135, "34367dc248bbd832f4e3e69dfaac2f92638bd0bbd18f2912ba4ef454919cf446"},
    {"a", 136, "a6c4d403279fe3e0af03729caada8374b5ca54d8065329a3ebcaeb4b60aa386e"},
    {"a", 200, "96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d"},
};

void CheckVectors() {
  for (const Vector& v : kVectors) {
    std::vector<uint8_t> message;
    for (size_t i = 0; i < v.repeat; ++i) message.insert(message.end(), v.message, v.message + std::strlen(v.message));
    const ref::Hash got = ref::Keccak256(message.data(), message.size());
    char hex[65];
    for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", got[i]);
    if (std::strcmp(hex, v.hex) != 0) fuzz::Fail("the reference keccak256 misses a known answer");
  }
  // Keccak-f[1600] of the all-zero state (the Keccak team's KeccakF-1600-IntermediateValues.txt).
  uint64_t state[25] = {0};
  ref::KeccakF1600(state);
  if (state[0] != 0xF1258F7940E1DDE7ULL || state[1] != 0x84D5CCF933C0478AULL) {
    fuzz::Fail("the reference keccak-f[1600] misses its known answer");
  }
}

void Expect(const uint8_t* got, const ref::Hash& want, const char* what, const uint8_t* data, size_t size) {
  if (std::memcmp(got, want.data(), 32) == 0) return;
  fuzz::PrintHex("input", data, size);
  fuzz::PrintHex("native", got, 32);
  fuzz::PrintHex("reference", want.data(), 32);
  fuzz::Fail(what);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  CheckVectors();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exactly `size` bytes on the heap, so that ASan sees any read past the end.
  std::vector<uint8_t> input(data, data + size);
  uint8_t out[32];
  opg::keccak256(input.data(), input.size(), out);
  Expect(out, ref::Keccak256(input.data(), input.size()), "keccak256", data, size);

  if (size >= 32) {
    opg::keccak256_32(input.data(), out);
    Expect(out, ref::Keccak256(input.data(), 32), "keccak256_32", data, 32);
  }
  if (size >= 64) {
    opg::keccak256_64(input.data(), out);
    Expect(out, ref::Keccak256(input.data(), 64), "keccak256_64", data, 64);
  }
  if (size >= 200) {
    uint64_t a[25];
    uint64_t b[25];
    std::memcpy(a, input.data(), 200);
    std::memcpy(b, input.data(), 200);
    opg::keccakf1600(a);
    ref::KeccakF1600(b);
    if (std::memcmp(a, b, 200) != 0) fuzz::Fail("keccakf1600");
  }
  return 0;
}
