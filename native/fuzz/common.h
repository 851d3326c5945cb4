// Shared by the fuzz harnesses: reading values from libFuzzer's bytes, and failing loudly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fuzz {

// Reads the fuzzer's bytes front to back; past the end it reads zeros.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | Byte();
    return v;
  }
  double F64() {
    const uint64_t bits = U64();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  const uint8_t* Rest() const { return data_ + pos_; }
  size_t RestSize() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

inline void PrintHex(const char* label, const uint8_t* p, size_t n) {
  std::fprintf(stderr, "%s: ", label);
  for (size_t i = 0; i < n; ++i) std::fprintf(stderr, "%02x", p[i]);
  std::fprintf(stderr, "\n");
}

// A mismatch is a crash: libFuzzer saves the input and the run fails.
[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "MISMATCH: %s\n", what);
  std::abort();
}

}  // namespace fuzz
