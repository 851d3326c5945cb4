#include "guard.h"

#include <cmath>
#include <utility>

namespace opg {
namespace {

BuildPlan Refuse(GuardError error, std::string message) {
  BuildPlan plan;
  plan.error = error;
  plan.message = std::move(message);
  return plan;
}

// Number.isInteger: finite and without a fractional part (so NaN and the infinities are not).
bool IsInteger(double v) { return std::isfinite(v) && std::trunc(v) == v; }

// The type half of an integer argument's check; empty when `arg` is an integer.
const char* TypeProblem(const JsNumber& arg) {
  if (!arg.isNumber) return "must be a number";
  if (!IsInteger(arg.value)) return "must be an integer";
  return nullptr;
}

}  // namespace

BuildPlan PlanBuild(bool inputIsUint8Array, uint64_t inputLength, JsNumber mode, JsNumber stride, JsNumber count) {
  if (!inputIsUint8Array) return Refuse(GuardError::kType, "build: input must be a Uint8Array");

  // Every comparison below is made on the double before any conversion: a double outside an
  // integer type's range must never be cast to it (undefined behaviour, and the old wrap-around).
  if (const char* problem = TypeProblem(mode)) {
    return Refuse(GuardError::kType, std::string("build: mode ") + problem);
  }
  if (mode.value != 0 && mode.value != 1 && mode.value != 2) {
    return Refuse(GuardError::kRange, "build: mode must be 0 (AddressUint256), 1 (Encoded) or 2 (Hashed)");
  }
  const auto leafMode = static_cast<LeafMode>(static_cast<uint32_t>(mode.value));

  if (const char* problem = TypeProblem(stride)) {
    return Refuse(GuardError::kType, std::string("build: stride ") + problem);
  }
  switch (leafMode) {
    case LeafMode::kAddressUint256:
      if (stride.value != 52) return Refuse(GuardError::kRange, "build: stride must be 52 for mode 0 (AddressUint256)");
      break;
    case LeafMode::kEncoded:
      if (!(stride.value >= 32 && stride.value <= static_cast<double>(kMaxEncodedStride) &&
            std::fmod(stride.value, 32) == 0)) {
        return Refuse(GuardError::kRange,
                      "build: stride must be a multiple of 32 from 32 to " + std::to_string(kMaxEncodedStride) +
                          " for mode 1 (Encoded)");
      }
      break;
    case LeafMode::kHashed:
      if (stride.value != 32) return Refuse(GuardError::kRange, "build: stride must be 32 for mode 2 (Hashed)");
      break;
  }
  const auto strideBytes = static_cast<uint64_t>(stride.value);  // in [32, kMaxEncodedStride]

  if (const char* problem = TypeProblem(count)) {
    return Refuse(GuardError::kType, std::string("build: count ") + problem);
  }
  if (!(count.value >= 1 && count.value <= static_cast<double>(kMaxLeaves))) {
    return Refuse(GuardError::kRange, "build: count must be from 1 to " + std::to_string(kMaxLeaves));
  }
  const auto leaves = static_cast<uint64_t>(count.value);  // in [1, kMaxLeaves]

  // With both bounds every product below is at most 2^41; they are checked all the same, since
  // this is the comparison that once wrapped (2^62 * 4 == 0 in 64 bits) and let any input through.
  uint64_t expected = 0;
  uint64_t leafHashBytes = 0;
  uint64_t treeBytes = 0;
  uint64_t treeIndexBytes = 0;
  if (!CheckedMul(leaves, strideBytes, &expected) || !CheckedMul(leaves, 32, &leafHashBytes) ||
      !CheckedMul(2 * leaves - 1, 32, &treeBytes) || !CheckedMul(leaves, 4, &treeIndexBytes) ||
      treeBytes > SIZE_MAX) {
    return Refuse(GuardError::kRange, "build: count * stride is too large for this platform");  // unreachable
  }
  if (inputLength != expected) {
    return Refuse(GuardError::kRange, "build: input has " + std::to_string(inputLength) +
                                          " bytes, expected count * stride = " + std::to_string(leaves) + " * " +
                                          std::to_string(strideBytes) + " = " + std::to_string(expected));
  }

  BuildPlan plan;
  plan.mode = leafMode;
  plan.stride = static_cast<size_t>(strideBytes);
  plan.count = static_cast<size_t>(leaves);
  plan.leafHashBytes = static_cast<size_t>(leafHashBytes);
  plan.treeBytes = static_cast<size_t>(treeBytes);
  plan.treeIndexBytes = static_cast<size_t>(treeIndexBytes);
  return plan;
}

}  // namespace opg
