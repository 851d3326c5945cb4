// Thin Node-API layer. All input checking happens in native/index.ts; these functions only
// guard against what would otherwise read or write out of bounds.
#include <napi.h>

#include <cstring>
#include <vector>

#include "keccak.h"
#include "merkle.h"

namespace {

Napi::Value Fail(const Napi::Env& env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// keccak256(data: Uint8Array): Buffer(32)
Napi::Value Keccak256(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray()) return Fail(env, "keccak256(data: Uint8Array)");
  const Napi::Uint8Array data = info[0].As<Napi::Uint8Array>();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, 32);
  opg::keccak256(data.Data(), data.ByteLength(), out.Data());
  return out;
}

// build(input: Uint8Array, mode: number, stride: number, count: number)
//   -> { tree: Buffer((2 * count - 1) * 32), treeIndex: Uint32Array(count) }
Napi::Value Build(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() != 4 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsNumber()) {
    return Fail(env, "build(input: Uint8Array, mode: number, stride: number, count: number)");
  }
  const Napi::Uint8Array input = info[0].As<Napi::Uint8Array>();
  const uint32_t modeValue = info[1].As<Napi::Number>().Uint32Value();
  const int64_t stride = info[2].As<Napi::Number>().Int64Value();
  const int64_t count = info[3].As<Napi::Number>().Int64Value();
  if (modeValue > 2) return Fail(env, "unknown leaf mode");
  const auto mode = static_cast<opg::LeafMode>(modeValue);
  const int64_t expectedStride = mode == opg::LeafMode::kAddressUint256 ? 52
                                 : mode == opg::LeafMode::kHashed       ? 32
                                                                        : stride;
  if (stride <= 0 || stride != expectedStride || (mode == opg::LeafMode::kEncoded && stride % 32 != 0)) {
    return Fail(env, "bad stride for the leaf mode");
  }
  if (count < 1 || count > 0x7fffffff) return Fail(env, "count must be in [1, 2^31)");
  if (static_cast<uint64_t>(input.ByteLength()) != static_cast<uint64_t>(count) * static_cast<uint64_t>(stride)) {
    return Fail(env, "input length is not count * stride");
  }

  const size_t n = static_cast<size_t>(count);
  Napi::Buffer<uint8_t> tree = Napi::Buffer<uint8_t>::New(env, (2 * n - 1) * 32);
  Napi::Uint32Array treeIndex = Napi::Uint32Array::New(env, n);
  std::vector<uint8_t> leafHashes(n * 32);
  opg::HashLeaves(mode, input.Data(), static_cast<size_t>(stride), n, leafHashes.data());
  opg::BuildTree(leafHashes.data(), n, tree.Data(), treeIndex.Data());

  Napi::Object result = Napi::Object::New(env);
  result.Set("tree", tree);
  result.Set("treeIndex", treeIndex);
  return result;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("keccak256", Napi::Function::New(env, Keccak256, "keccak256"));
  exports.Set("build", Napi::Function::New(env, Build, "build"));
  return exports;
}

}  // namespace

NODE_API_MODULE(opg_merkle, Init)
