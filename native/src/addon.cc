// Thin Node-API layer. native/index.ts checks every argument before it calls in here, but this
// binding is reachable on its own (nativeBackend is exported, and the .node file can be required),
// so it trusts nothing: guard.cc repeats the wrapper's checks (same order, errors and messages as
// native/guard.ts), and memory is allocated here, without aborting, before any of it is written.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "guard.h"
#include "keccak.h"
#include "merkle.h"

namespace {

Napi::Value Throw(const Napi::Env& env, opg::GuardError kind, const std::string& message) {
  if (kind == opg::GuardError::kType) {
    Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  } else if (kind == opg::GuardError::kRange) {
    Napi::RangeError::New(env, message).ThrowAsJavaScriptException();
  } else {
    Napi::Error::New(env, message).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value OutOfMemory(const Napi::Env& env, const char* function) {
  return Throw(env, opg::GuardError::kNone, std::string(function) + ": out of memory");
}

// Exactly a Uint8Array (a Buffer is one), as util.types.isUint8Array: not another typed array, not
// a DataView, not a Uint8ClampedArray.
bool IsUint8Array(const Napi::Value& value) {
  return value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

opg::JsNumber ReadNumber(const Napi::Value& value) {
  if (!value.IsNumber()) return {false, 0};
  return {true, value.As<Napi::Number>().DoubleValue()};
}

// Memory for the results, from malloc: a failed allocation is a null pointer here (then a JS
// Error), where Node's own buffer allocation would abort the process.
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using Block = std::unique_ptr<uint8_t, FreeDeleter>;

Block Allocate(size_t bytes) { return Block(static_cast<uint8_t*>(std::malloc(bytes))); }

// Finalizer of an adopted block; `hint` carries its size for V8's external-memory accounting.
void FreeAdopted(napi_env env, void* data, void* hint) {
  std::free(data);
  int64_t total = 0;
  napi_adjust_external_memory(env, -static_cast<int64_t>(reinterpret_cast<uintptr_t>(hint)), &total);
}

// After a failed napi_create_*: keeps the pending exception (or throws one) and returns an empty value.
Napi::Value ResultFailed(const Napi::Env& env) {
  if (!env.IsExceptionPending()) {
    Napi::Error::New(env, "build: cannot create the result buffer").ThrowAsJavaScriptException();
  }
  return Napi::Value();
}

// Hands `block` to JS as a Buffer (external when the runtime allows it, else copied). On success JS
// owns the memory; on failure `block` still does and a JS exception is pending.
Napi::Value AdoptAsBuffer(const Napi::Env& env, Block& block, size_t bytes) {
  napi_value result = nullptr;
  void* hint = reinterpret_cast<void*>(static_cast<uintptr_t>(bytes));
  napi_status status = napi_create_external_buffer(env, bytes, block.get(), FreeAdopted, hint, &result);
  if (status == napi_ok) {
    block.release();
    int64_t total = 0;
    napi_adjust_external_memory(env, static_cast<int64_t>(bytes), &total);
    return Napi::Value(env, result);
  }
  if (status == napi_no_external_buffers_allowed) {
    status = napi_create_buffer_copy(env, bytes, block.get(), nullptr, &result);
    if (status == napi_ok) return Napi::Value(env, result);
  }
  return ResultFailed(env);
}

// The same for a Uint32Array of `count` elements over `block`.
Napi::Value AdoptAsUint32Array(const Napi::Env& env, Block& block, size_t count) {
  const size_t bytes = count * 4;
  napi_value buffer = nullptr;
  void* hint = reinterpret_cast<void*>(static_cast<uintptr_t>(bytes));
  napi_status status = napi_create_external_arraybuffer(env, block.get(), bytes, FreeAdopted, hint, &buffer);
  if (status == napi_ok) {
    block.release();
    int64_t total = 0;
    napi_adjust_external_memory(env, static_cast<int64_t>(bytes), &total);
  } else if (status == napi_no_external_buffers_allowed) {
    void* data = nullptr;
    status = napi_create_arraybuffer(env, bytes, &data, &buffer);
    if (status == napi_ok) std::memcpy(data, block.get(), bytes);
  }
  napi_value array = nullptr;
  if (status == napi_ok) status = napi_create_typedarray(env, napi_uint32_array, count, buffer, 0, &array);
  if (status == napi_ok) return Napi::Value(env, array);
  return ResultFailed(env);
}

// keccak256(data: Uint8Array): Buffer(32)
Napi::Value Keccak256(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!IsUint8Array(info[0])) return Throw(env, opg::GuardError::kType, "keccak256: data must be a Uint8Array");
  const Napi::Uint8Array data = info[0].As<Napi::Uint8Array>();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, 32);
  if (env.IsExceptionPending()) return env.Undefined();
  opg::keccak256(data.Data(), data.ByteLength(), out.Data());
  return out;
}

// build(input: Uint8Array, mode: number, stride: number, count: number)
//   -> { tree: Buffer((2 * count - 1) * 32), treeIndex: Uint32Array(count) }
// Missing arguments are undefined (and refused as such); extra ones are ignored, as in JS.
Napi::Value Build(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  try {
    const bool isUint8Array = IsUint8Array(info[0]);
    const size_t inputLength = isUint8Array ? info[0].As<Napi::Uint8Array>().ByteLength() : 0;
    const opg::BuildPlan plan =
        opg::PlanBuild(isUint8Array, inputLength, ReadNumber(info[1]), ReadNumber(info[2]), ReadNumber(info[3]));
    if (plan.error != opg::GuardError::kNone) return Throw(env, plan.error, plan.message);
    const uint8_t* input = info[0].As<Napi::Uint8Array>().Data();

    // The results are allocated before anything is computed, so that a request too big for this
    // machine fails at once and as a JS error. The only later allocation is BuildTree's sort keys
    // (40 bytes a leaf), whose std::bad_alloc is caught below.
    Block tree = Allocate(plan.treeBytes);
    Block treeIndex = Allocate(plan.treeIndexBytes);
    Block leafHashes = Allocate(plan.leafHashBytes);
    if (!tree || !treeIndex || !leafHashes) return OutOfMemory(env, "build");

    opg::HashLeaves(plan.mode, input, plan.stride, plan.count, leafHashes.get());
    opg::BuildTree(leafHashes.get(), plan.count, tree.get(), reinterpret_cast<uint32_t*>(treeIndex.get()));
    leafHashes.reset();

    const Napi::Value treeValue = AdoptAsBuffer(env, tree, plan.treeBytes);
    if (treeValue.IsEmpty()) return env.Undefined();
    const Napi::Value treeIndexValue = AdoptAsUint32Array(env, treeIndex, plan.count);
    if (treeIndexValue.IsEmpty()) return env.Undefined();
    Napi::Object result = Napi::Object::New(env);
    result.Set("tree", treeValue);
    result.Set("treeIndex", treeIndexValue);
    return result;
  } catch (const std::bad_alloc&) {  // BuildTree's sort keys, or a message string
    return OutOfMemory(env, "build");
  } catch (const std::exception& e) {  // nothing else is thrown today; never let one reach Node
    return Throw(env, opg::GuardError::kNone, std::string("build: ") + e.what());
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("keccak256", Napi::Function::New(env, Keccak256, "keccak256"));
  exports.Set("build", Napi::Function::New(env, Build, "build"));
  return exports;
}

}  // namespace

NODE_API_MODULE(opg_merkle, Init)
