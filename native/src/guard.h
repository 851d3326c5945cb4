// The argument guard of the addon's build(), as a plain function: addon.cc calls it with what it
// reads from the JS arguments, native/fuzz/guard_fuzzer.cc fuzzes it. It must never trust its
// arguments (nativeBackend is exported, so any JS value can reach it) and it mirrors the checks of
// native/guard.ts word for word: same order, same error kinds, same messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "merkle.h"

namespace opg {

// The most leaves one build takes: 2^26, a node buffer of (2^27 - 1) * 32 bytes (just under 4 GiB).
constexpr uint64_t kMaxLeaves = uint64_t{1} << 26;
// The widest leaf of LeafMode::kEncoded: 32,768 bytes (1,024 ABI words).
constexpr uint64_t kMaxEncodedStride = 32768;

// A JS argument as the guard sees it: whether it is a number (typeof "number") and its value.
struct JsNumber {
  bool isNumber;
  double value;
};

enum class GuardError : uint8_t {
  kNone = 0,
  kType,   // TypeError: not a Uint8Array, not a number, or a number that is not an integer
  kRange,  // RangeError: an integer outside its range, or a length that does not match
};

// What build() may do once the guard has accepted its arguments. All sizes are exact and fit size_t.
struct BuildPlan {
  GuardError error = GuardError::kNone;
  std::string message;  // set when error != kNone; starts with "build: " and names the argument
  LeafMode mode = LeafMode::kHashed;
  size_t stride = 0;          // bytes per input leaf
  size_t count = 0;           // leaves, 1 .. kMaxLeaves
  size_t leafHashBytes = 0;   // count * 32
  size_t treeBytes = 0;       // (2 * count - 1) * 32
  size_t treeIndexBytes = 0;  // count * 4
};

// Checks build(input, mode, stride, count) in this order, stopping at the first failure:
//   input  a Uint8Array                                              (TypeError)
//   mode   a number, an integer, 0, 1 or 2                           (TypeError, TypeError, RangeError)
//   stride a number, an integer, 52 for mode 0, 32 for mode 2,
//          a multiple of 32 in [32, kMaxEncodedStride] for mode 1    (TypeError, TypeError, RangeError)
//   count  a number, an integer in [1, kMaxLeaves]                   (TypeError, TypeError, RangeError)
//   inputLength == count * stride                                    (RangeError)
// `inputLength` is only read when `inputIsUint8Array`.
BuildPlan PlanBuild(bool inputIsUint8Array, uint64_t inputLength, JsNumber mode, JsNumber stride, JsNumber count);

// a * b, or false when the product does not fit 64 bits.
inline bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  *out = a * b;
  return true;
}

}  // namespace opg
