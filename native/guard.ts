/**
 * The argument checks of the two backend functions, shared by both backends (the addon's wrapper
 * in native/index.ts and the fallback) and mirrored word for word by native/src/guard.cc, which the
 * raw binding runs again: every backend, and the raw binding, refuse the same arguments with the
 * same error class and message, in the same order.
 *
 * - `TypeError`: an argument of the wrong type — not a `Uint8Array` (exactly: not another typed
 *   array, a DataView or an array), not a number, or a number that is not an integer (NaN,
 *   ±Infinity, fractions).
 * - `RangeError`: an integer outside its range (negative, 2^32, 2^62, ...), a stride that does not
 *   fit the leaf mode, or an input whose length is not `count * stride`.
 * - `Error` "build: out of memory": the machine cannot allocate the result (the native backend
 *   allocates it with malloc, so this is an error rather than an abort; the fallback's typed arrays
 *   throw a RangeError that is reported the same way).
 */
import { types } from "node:util";

import { LeafMode } from "./backend.js";

/** The most leaves one build takes: 2^26, a node buffer of (2^27 - 1) * 32 bytes (just under 4 GiB). */
export const MAX_LEAVES = 2 ** 26;
/** The widest leaf of `LeafMode.Encoded`: 32,768 bytes (1,024 ABI words). */
export const MAX_ENCODED_STRIDE = 32_768;

/** keccak256(data): `data` is a Uint8Array (a Buffer is one). */
export function checkKeccakArgs(data: unknown): asserts data is Uint8Array {
  if (!types.isUint8Array(data)) throw new TypeError("keccak256: data must be a Uint8Array");
}

// %TypedArray%.prototype's getters, which a subclass cannot override: what the addon sees.
const TYPED_ARRAY_PROTOTYPE = Object.getPrototypeOf(Uint8Array.prototype) as object;
const intrinsic = <T>(view: Uint8Array, name: "buffer" | "byteOffset" | "byteLength"): T =>
  Reflect.get(TYPED_ARRAY_PROTOTYPE, name, view) as T;
const byteLength = (view: Uint8Array): number => intrinsic(view, "byteLength");

/**
 * A plain Uint8Array over the bytes of `view` (a Uint8Array, or a subclass such as Buffer whose
 * `length`, `subarray`, ... may say otherwise), as the addon reads them.
 */
export function plainView(view: Uint8Array): Uint8Array {
  return new Uint8Array(
    intrinsic<ArrayBufferLike>(view, "buffer"),
    intrinsic<number>(view, "byteOffset"),
    byteLength(view),
  );
}

function checkInteger(name: string, value: unknown): asserts value is number {
  if (typeof value !== "number") throw new TypeError(`build: ${name} must be a number`);
  if (!Number.isInteger(value)) throw new TypeError(`build: ${name} must be an integer`);
}

/** build(input, mode, stride, count): see the module comment and native/src/guard.h. */
export function checkBuildArgs(
  input: unknown,
  mode: unknown,
  stride: unknown,
  count: unknown,
): asserts input is Uint8Array {
  if (!types.isUint8Array(input)) throw new TypeError("build: input must be a Uint8Array");

  checkInteger("mode", mode);
  if (mode !== 0 && mode !== 1 && mode !== 2) {
    throw new RangeError("build: mode must be 0 (AddressUint256), 1 (Encoded) or 2 (Hashed)");
  }

  checkInteger("stride", stride);
  if (mode === LeafMode.AddressUint256 && stride !== 52) {
    throw new RangeError("build: stride must be 52 for mode 0 (AddressUint256)");
  }
  if (
    mode === LeafMode.Encoded &&
    !(stride >= 32 && stride <= MAX_ENCODED_STRIDE && stride % 32 === 0)
  ) {
    throw new RangeError(
      `build: stride must be a multiple of 32 from 32 to ${MAX_ENCODED_STRIDE} for mode 1 (Encoded)`,
    );
  }
  if (mode === LeafMode.Hashed && stride !== 32) {
    throw new RangeError("build: stride must be 32 for mode 2 (Hashed)");
  }

  checkInteger("count", count);
  if (!(count >= 1 && count <= MAX_LEAVES)) {
    throw new RangeError(`build: count must be from 1 to ${MAX_LEAVES}`);
  }

  // count <= 2^26 and stride <= 2^15: the product is exact in a double (the C++ guard checks its
  // 64-bit multiplication as well).
  const expected = count * stride;
  const length = byteLength(input);
  if (length !== expected) {
    throw new RangeError(
      `build: input has ${length} bytes, expected count * stride = ${count} * ${stride} = ${expected}`,
    );
  }
}

/** Runs `allocate`, reporting a failed typed-array allocation as the native backend does. */
export function allocateOrThrow<T>(allocate: () => T): T {
  try {
    return allocate();
  } catch (cause) {
    if (cause instanceof RangeError) throw new Error("build: out of memory", { cause });
    throw cause;
  }
}
