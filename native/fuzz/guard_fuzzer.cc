// Fuzzing of native/src/guard.cc, the addon's argument check (the N-API layer itself cannot run
// under libFuzzer). Each input draws build()'s arguments as the addon reads them from JS (whether
// each is a number, and its double), including NaN payloads, infinities, fractions, 2^32, 2^62,
// and input lengths equal to count * stride modulo 2^64 (the old wrap-around). Checked:
//  - PlanBuild accepts exactly what an independent predicate (128-bit arithmetic) accepts, and
//    refuses with the same error kind, naming the same argument;
//  - an accepted plan's sizes are exact;
//  - an accepted plan, when small enough, is run as the addon runs it, on buffers of exactly the
//    planned sizes, so that ASan sees any access outside them.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../src/guard.h"
#include "../src/merkle.h"
#include "common.h"

namespace {

using u128 = unsigned __int128;

const double kInteresting[] = {
    0.0, -0.0, 1, 2, 3, 4, 31, 32, 33, 52, 64, 96, 32768, 32768 + 32, 32767,
    67108864.0, 67108865.0, 67108863.0, 2147483647.0, 2147483648.0, 4294967295.0, 4294967296.0,
    4294967298.0, 4294967328.0, 9007199254740991.0, 9007199254740992.0, 4611686018427387904.0,
    9223372036854775808.0, 18446744073709551616.0, 576460752303423488.0 /* 2^59 */, 1e21, -1, -32, -52,
    0.5, 1.5, 32.5, 2.0000000000000004, std::numeric_limits<double>::quiet_NaN(),
    std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
    std::numeric_limits<double>::max(), std::numeric_limits<double>::min(),
    std::numeric_limits<double>::denorm_min(), -std::numeric_limits<double>::max(),
};
constexpr size_t kInterestingCount = sizeof(kInteresting) / sizeof(kInteresting[0]);

opg::JsNumber DrawNumber(fuzz::Reader& in) {
  const uint8_t tag = in.Byte();
  switch (tag % 8) {
    case 0:
      return {false, 0};  // a string, a bigint, undefined, ...
    case 1:
      return {true, in.F64()};  // any bit pattern
    case 2:
      return {true, static_cast<double>(static_cast<int8_t>(in.Byte()))};
    case 3:
      return {true, kInteresting[in.Byte() % kInterestingCount]};
    case 4:
      return {true, 32.0 * static_cast<double>((in.Byte() << 8) | in.Byte())};
    case 5:
      return {true, static_cast<double>(in.U64() >> (in.Byte() % 64))};
    case 6:
      return {true, static_cast<double>(in.Byte() % 70) + in.Byte() / 256.0};
    default: {
      const double near = kInteresting[in.Byte() % kInterestingCount];
      return {true, std::nextafter(near, (in.Byte() & 1) ? HUGE_VAL : -HUGE_VAL)};
    }
  }
}

// The reference: finite, and equal to its own floor, written unlike guard.cc's.
bool Integral(const opg::JsNumber& v) { return v.isNumber && v.value - v.value == 0 && std::floor(v.value) == v.value; }

struct Expected {
  opg::GuardError error;
  const char* argument;  // the message's first word after "build: "
  u128 mode, stride, count;
};

Expected Predict(bool isUint8Array, uint64_t length, const opg::JsNumber& mode, const opg::JsNumber& stride,
                 const opg::JsNumber& count) {
  using opg::GuardError;
  if (!isUint8Array) return {GuardError::kType, "input", 0, 0, 0};
  if (!Integral(mode)) return {GuardError::kType, "mode", 0, 0, 0};
  if (!(mode.value == 0 || mode.value == 1 || mode.value == 2)) return {GuardError::kRange, "mode", 0, 0, 0};
  const u128 m = static_cast<u128>(mode.value);
  if (!Integral(stride)) return {GuardError::kType, "stride", 0, 0, 0};
  if (stride.value < 0 || stride.value > 1e30) return {GuardError::kRange, "stride", 0, 0, 0};
  const u128 s = static_cast<u128>(stride.value);
  const bool strideOk = m == 0 ? s == 52 : m == 2 ? s == 32 : (s >= 32 && s <= opg::kMaxEncodedStride && s % 32 == 0);
  if (!strideOk) return {GuardError::kRange, "stride", 0, 0, 0};
  if (!Integral(count)) return {GuardError::kType, "count", 0, 0, 0};
  if (count.value < 1 || count.value > 1e30) return {GuardError::kRange, "count", 0, 0, 0};
  const u128 c = static_cast<u128>(count.value);
  if (c > opg::kMaxLeaves) return {GuardError::kRange, "count", 0, 0, 0};
  if (c * s != length) return {GuardError::kRange, "input", 0, 0, 0};
  return {GuardError::kNone, nullptr, m, s, c};
}

// The input length: mostly count * stride (exact, off by a little, or modulo 2^64), else anything.
uint64_t DrawLength(fuzz::Reader& in, const opg::JsNumber& stride, const opg::JsNumber& count) {
  const uint8_t tag = in.Byte();
  const bool integral = Integral(stride) && Integral(count) && stride.value >= 0 && count.value >= 0 &&
                        stride.value < 1.8e19 && count.value < 1.8e19;
  if (tag % 4 != 3 && integral) {
    const u128 product = static_cast<u128>(stride.value) * static_cast<u128>(count.value);
    const uint64_t wrapped = static_cast<uint64_t>(product);  // modulo 2^64
    const int delta = tag % 4 == 0 ? 0 : static_cast<int>(in.Byte() % 3) - 1;
    return wrapped + static_cast<uint64_t>(static_cast<int64_t>(delta));
  }
  return tag % 8 == 3 ? in.U64() : in.Byte();
}

// Runs an accepted plan as addon.cc does, on buffers of exactly the planned sizes.
void Run(const opg::BuildPlan& plan, fuzz::Reader& in) {
  std::vector<uint8_t> input(plan.count * plan.stride);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<uint8_t>(in.Byte() + i);
  std::vector<uint8_t> tree(plan.treeBytes);
  std::vector<uint32_t> treeIndex(plan.treeIndexBytes / 4);
  std::vector<uint8_t> leafHashes(plan.leafHashBytes);
  if (treeIndex.size() * 4 != plan.treeIndexBytes) fuzz::Fail("treeIndexBytes is not a whole number of indices");
  opg::HashLeaves(plan.mode, input.data(), plan.stride, plan.count, leafHashes.data());
  opg::BuildTree(leafHashes.data(), plan.count, tree.data(), treeIndex.data());
  for (size_t v = 0; v < plan.count; ++v) {
    if (treeIndex[v] < plan.count - 1 || treeIndex[v] >= 2 * plan.count - 1) {
      fuzz::Fail("a leaf outside the leaf level");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader in(data, size);
  const bool isUint8Array = in.Byte() % 8 != 0;
  const opg::JsNumber mode = DrawNumber(in);
  const opg::JsNumber stride = DrawNumber(in);
  const opg::JsNumber count = DrawNumber(in);
  const uint64_t length = DrawLength(in, stride, count);

  const opg::BuildPlan plan = opg::PlanBuild(isUint8Array, length, mode, stride, count);
  const Expected want = Predict(isUint8Array, length, mode, stride, count);

  if (plan.error != want.error) {
    std::fprintf(stderr,
                 "u8=%d length=%llu mode=(%d,%.17g) stride=(%d,%.17g) count=(%d,%.17g): got %d '%s', want %d (%s)\n",
                 isUint8Array, static_cast<unsigned long long>(length), mode.isNumber, mode.value, stride.isNumber,
                 stride.value, count.isNumber, count.value, static_cast<int>(plan.error), plan.message.c_str(),
                 static_cast<int>(want.error), want.argument ? want.argument : "accept");
    fuzz::Fail("the guard's verdict");
  }
  if (plan.error != opg::GuardError::kNone) {
    if (plan.message.rfind(std::string("build: ") + want.argument + " ", 0) != 0) {
      std::fprintf(stderr, "message '%s', want it to name %s\n", plan.message.c_str(), want.argument);
      fuzz::Fail("the guard's message");
    }
    return 0;
  }
  if (static_cast<u128>(plan.mode) != want.mode || plan.stride != want.stride || plan.count != want.count ||
      plan.leafHashBytes != want.count * 32 || plan.treeBytes != (2 * want.count - 1) * 32 ||
      plan.treeIndexBytes != want.count * 4 || static_cast<u128>(plan.count) * plan.stride != length) {
    fuzz::Fail("the plan's sizes");
  }
  // Small plans only (a 4096-leaf build cost ~10 ms here): what this checks is the sizes, and from
  // 32 leaves the build is threaded in the fuzz build already.
  if (plan.count * plan.stride <= (64u << 10) && plan.count <= 512) Run(plan, in);
  return 0;
}
