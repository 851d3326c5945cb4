/**
 * Canonical tensors: input validation against a manifest, output quantisation, the byte-exact
 * encoding that inputHash and outputHash are taken over (docs/inference-tee.md, "Canonical
 * encoding"), and the tolerance comparison an enclave uses to judge a re-execution.
 */
import { keccak256 as keccakBytes } from "../../native/index.js";

import {
  InferenceInputError,
  InferenceInputTooLargeError,
  InferenceOutputError,
} from "./errors.js";
import {
  DTYPE_BYTES,
  boundOf,
  isFloatDtype,
  scaleOf,
  type InputDtype,
  type ModelManifest,
  type OutputTolerance,
  type TensorSpec,
  type ToleranceMode,
} from "./manifest.js";

/** float16 travels as its IEEE 754 half bits (Uint16Array), bool as 0/1 bytes (Uint8Array). */
export type TensorData =
  Float32Array | Int32Array | BigInt64Array | Uint16Array | Uint8Array | Int8Array;

/** A validated input tensor, ready for ONNX Runtime and for hashing. */
export interface InputTensor {
  name: string;
  dtype: InputDtype;
  dims: number[];
  data: TensorData;
}

/**
 * A canonical output tensor: for a float output values = round(x * scale) as int64; for an
 * integer or bool output (scale 0, `dtype` set) the values themselves, widened to int64.
 */
export interface QuantisedTensor {
  name: string;
  /** Set for an exact (integer or bool) output; absent for a quantised float output. */
  dtype?: InputDtype;
  scale: number;
  dims: number[];
  values: BigInt64Array;
}

/** What callers send (JSON): data as a flat row-major list; int64 values may be decimal strings. */
export interface TensorJson {
  dims: number[];
  data: Array<number | string | boolean>;
}

export const ENCODING_MAGIC = Buffer.from("OPGT", "ascii");
export const ENCODING_VERSION = 1;
export const KIND_INPUT = 0x01;
export const KIND_OUTPUT = 0x02;
/**
 * Element type codes of the encoding. float32, int32, int64 and fixed64 are the original four
 * (their encodings, and so every existing hash, are unchanged); the rest were added after.
 */
export const DTYPE_CODES = {
  float32: 0x01,
  int32: 0x02,
  int64: 0x03,
  float16: 0x04,
  int8: 0x05,
  uint8: 0x06,
  bool: 0x07,
  fixed64: 0x10,
} as const;

// ---------------------------------------------------------------- float16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bits nearest to `x` (ties to even); Infinity when |x| is beyond float16's range. */
export function toHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rest > mid || (rest === mid && (half & 1) === 1) ? half + 1 : half);
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  e = half >>> 10;
  return sign | (e >= 0x1f ? 0x7c00 : half);
}

/** The value of float16 bits `h`. */
export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// ---------------------------------------------------------------- input validation

/**
 * Checks `inputs` against the manifest and converts them to typed arrays. Every problem names
 * the tensor and what is wrong: unknown or missing names, rank, dimension sizes (symbolic dims
 * must agree across tensors and stay within maxBatch), element count, NaN/Inf, integer range.
 */
export function validateInputs(
  manifest: ModelManifest,
  inputs: Record<string, TensorJson | undefined>,
): InputTensor[] {
  if (typeof inputs !== "object" || inputs === null || Array.isArray(inputs)) {
    throw new InferenceInputError("inputs must be an object of named tensors", {
      details: { model: manifest.name, expected: manifest.inputs.map((i) => i.name) },
    });
  }
  const expected = new Set(manifest.inputs.map((i) => i.name));
  const unknown = Object.keys(inputs).filter((k) => !expected.has(k));
  if (unknown.length > 0) {
    throw new InferenceInputError(`unknown input tensor "${unknown[0]}"`, {
      details: { model: manifest.name, unknown, expected: [...expected] },
    });
  }
  if (manifest.maxInputBytes !== undefined) {
    // Before any value is looked at: the caller's data counts alone say it is too much.
    const bytes = manifest.inputs.reduce((n, spec) => {
      const data = (inputs[spec.name] as Partial<TensorJson> | null | undefined)?.data;
      return n + (Array.isArray(data) ? data.length * DTYPE_BYTES[spec.dtype] : 0);
    }, 0);
    if (bytes > manifest.maxInputBytes) {
      throw new InferenceInputTooLargeError(
        `inputs are ${bytes} bytes, over the model's maxInputBytes ${manifest.maxInputBytes}`,
        { details: { model: manifest.name, bytes, maxInputBytes: manifest.maxInputBytes } },
      );
    }
  }
  const bound = new Map<string, { size: number; by: string }>();
  return manifest.inputs.map((spec) => {
    const given = inputs[spec.name];
    if (given === undefined) {
      throw new InferenceInputError(`missing input tensor "${spec.name}"`, {
        details: { model: manifest.name, expected: [...expected] },
      });
    }
    return validateTensor(manifest, spec, given, bound);
  });
}

function validateTensor(
  manifest: ModelManifest,
  spec: TensorSpec,
  given: TensorJson,
  bound: Map<string, { size: number; by: string }>,
): InputTensor {
  const fail = (message: string, details: Record<string, unknown>): never => {
    throw new InferenceInputError(`input "${spec.name}": ${message}`, {
      details: { model: manifest.name, tensor: spec.name, ...details },
    });
  };
  if (
    typeof given !== "object" ||
    given === null ||
    !Array.isArray(given.dims) ||
    !Array.isArray(given.data)
  ) {
    fail("must be { dims: number[], data: number[] }", {});
  }
  const { dims, data } = given;
  if (dims.length !== spec.shape.length) {
    fail(`rank ${dims.length}, expected ${spec.shape.length}`, { dims, shape: spec.shape });
  }
  dims.forEach((d, axis) => {
    if (!Number.isSafeInteger(d) || d < 1)
      fail(`dimension ${axis} is ${String(d)}, expected a positive integer`, { dims });
    const want = spec.shape[axis];
    if (typeof want === "number") {
      if (d !== want)
        fail(`dimension ${axis} is ${d}, expected ${want}`, { dims, shape: spec.shape });
    } else if (want !== undefined) {
      const max = boundOf(manifest, want);
      if (d > max) {
        fail(`dimension ${axis} ("${want}") is ${d}, above its bound ${max}`, { dims });
      }
      const prior = bound.get(want);
      if (prior !== undefined && prior.size !== d) {
        fail(`dimension "${want}" is ${d} here but ${prior.size} in "${prior.by}"`, { dims });
      }
      bound.set(want, { size: d, by: spec.name });
    }
  });
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    fail(`${data.length} values, expected ${count} for dims [${dims.join(", ")}]`, { dims });
  }
  return {
    name: spec.name,
    dtype: spec.dtype,
    dims: [...dims],
    data: toTyped(spec.dtype, data, fail),
  };
}

function toTyped(
  dtype: InputDtype,
  data: Array<number | string | boolean>,
  fail: (message: string, details: Record<string, unknown>) => never,
): TensorData {
  if (dtype === "float16") {
    const out = new Uint16Array(data.length);
    data.forEach((v, i) => {
      if (typeof v !== "number") fail(`value ${i} is ${typeof v}, expected a number`, { index: i });
      if (!Number.isFinite(v))
        fail(`value ${i} is ${String(v)}; NaN and Infinity are not allowed`, { index: i });
      const h = toHalf(v);
      if ((h & 0x7c00) === 0x7c00) fail(`value ${i} (${v}) overflows float16`, { index: i });
      out[i] = h === 0x8000 ? 0 : h; // -0 -> +0
    });
    return out;
  }
  if (dtype === "bool") {
    const out = new Uint8Array(data.length);
    data.forEach((v, i) => {
      if (v === true || v === 1) out[i] = 1;
      else if (v !== false && v !== 0)
        fail(`value ${i} (${String(v)}) is not a bool (true, false, 1 or 0)`, { index: i });
    });
    return out;
  }
  if (dtype === "int8" || dtype === "uint8") {
    const [lo, hi] = dtype === "int8" ? [-128, 127] : [0, 255];
    const out = dtype === "int8" ? new Int8Array(data.length) : new Uint8Array(data.length);
    data.forEach((v, i) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
        fail(`value ${i} (${String(v)}) is not a ${dtype}`, { index: i });
      }
      out[i] = v;
    });
    return out;
  }
  if (dtype === "float32") {
    const out = new Float32Array(data.length);
    data.forEach((v, i) => {
      if (typeof v !== "number") fail(`value ${i} is ${typeof v}, expected a number`, { index: i });
      if (!Number.isFinite(v))
        fail(`value ${i} is ${String(v)}; NaN and Infinity are not allowed`, { index: i });
      const f = Math.fround(v);
      if (!Number.isFinite(f)) fail(`value ${i} (${v}) overflows float32`, { index: i });
      out[i] = f === 0 ? 0 : f; // -0 -> +0: one encoding per value
    });
    return out;
  }
  if (dtype === "int32") {
    const out = new Int32Array(data.length);
    data.forEach((v, i) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < -(2 ** 31) || v > 2 ** 31 - 1) {
        fail(`value ${i} (${String(v)}) is not an int32`, { index: i });
      }
      out[i] = v;
    });
    return out;
  }
  const out = new BigInt64Array(data.length);
  data.forEach((v, i) => {
    let b: bigint | undefined;
    if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
    else if (typeof v === "string" && /^-?[0-9]{1,20}$/.test(v)) b = BigInt(v);
    if (b === undefined || b < INT64_MIN || b > INT64_MAX) {
      fail(`value ${i} (${String(v)}) is not an int64 (a safe integer or a decimal string)`, {
        index: i,
      });
    }
    out[i] = b;
  });
  return out;
}

/** The sizes the inputs bound each symbolic dimension to (validateInputs checked they agree). */
export function bindInputDims(
  manifest: ModelManifest,
  tensors: readonly InputTensor[],
): Map<string, number> {
  const bound = new Map<string, number>();
  for (const t of tensors) {
    const spec = manifest.inputs.find((i) => i.name === t.name);
    spec?.shape.forEach((d, axis) => {
      if (typeof d === "string") bound.set(d, t.dims[axis] as number);
    });
  }
  return bound;
}

/**
 * Checks an output's dims against its manifest shape: the rank, each fixed size, and each
 * symbolic dimension the same size it has in the inputs (or in an earlier output, when the inputs
 * do not have it) and within its bound. Adds the dimensions it binds to `bound`. A model that
 * returns another shape than its manifest says is an InferenceOutputError.
 */
export function checkOutputDims(
  manifest: ModelManifest,
  spec: ModelManifest["outputs"][number],
  dims: readonly number[],
  bound: Map<string, number>,
): void {
  const fail = (message: string): never => {
    throw new InferenceOutputError(
      `output "${spec.name}": dims [${dims.join(", ")}] ${message} (shape [${spec.shape.join(", ")}])`,
      { details: { model: manifest.name, tensor: spec.name, dims: [...dims], shape: spec.shape } },
    );
  };
  if (dims.length !== spec.shape.length)
    fail(`have rank ${dims.length}, expected ${spec.shape.length}`);
  spec.shape.forEach((want, axis) => {
    const d = dims[axis] as number;
    if (typeof want === "number") {
      if (d !== want) fail(`dimension ${axis} is ${d}, expected ${want}`);
      return;
    }
    const prior = bound.get(want);
    if (prior !== undefined) {
      if (prior !== d) fail(`dimension ${axis} ("${want}") is ${d}, but ${prior} in the inputs`);
      return;
    }
    const max = boundOf(manifest, want);
    if (d > max) fail(`dimension ${axis} ("${want}") is ${d}, above its bound ${max}`);
    bound.set(want, d);
  });
}

// ---------------------------------------------------------------- output quantisation

/**
 * round(x * scale) with ties away from zero, computed in float64 from the float32 output.
 * Throws InferenceOutputError for NaN/Inf or when |q| > 2^53 (not exactly representable).
 */
export function quantise(
  name: string,
  values: ArrayLike<number>,
  dims: readonly number[],
  scale: number,
): QuantisedTensor {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number;
    if (!Number.isFinite(x)) {
      throw new InferenceOutputError(`output "${name}" value ${i} is ${x}`, {
        details: { tensor: name, index: i },
      });
    }
    const scaled = x * scale;
    const q = Math.sign(scaled) * Math.round(Math.abs(scaled));
    if (!Number.isSafeInteger(q)) {
      throw new InferenceOutputError(
        `output "${name}" value ${i} (${x}) is out of fixed-point range at scale ${scale}`,
        {
          details: { tensor: name, index: i, value: x, scale },
        },
      );
    }
    out[i] = BigInt(q === 0 ? 0 : q);
  }
  return { name, scale, dims: [...dims], values: out };
}

/**
 * An integer or bool output as it is (no quantisation): values widened to int64, scale 0, and
 * its dtype kept so the encoding names it. Compared exactly.
 */
export function exactOutput(
  name: string,
  dtype: InputDtype,
  values: ArrayLike<number | bigint | boolean>,
  dims: readonly number[],
): QuantisedTensor {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number | bigint | boolean;
    out[i] = typeof v === "bigint" ? v : BigInt(v === true ? 1 : v === false ? 0 : v);
  }
  return { name, dtype, scale: 0, dims: [...dims], values: out };
}

/** The float32 values of a float16 output's bits. */
export function halfToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromHalf(bits[i] as number);
  return out;
}

// ---------------------------------------------------------------- canonical encoding

function header(kind: number, count: number): Buffer {
  const h = Buffer.alloc(8);
  ENCODING_MAGIC.copy(h, 0);
  h.writeUInt8(ENCODING_VERSION, 4);
  h.writeUInt8(kind, 5);
  h.writeUInt16BE(count, 6);
  return h;
}

function tensorHeader(
  name: string,
  dtypeCode: number,
  scale: number,
  dims: readonly number[],
): Buffer {
  const nameBytes = Buffer.from(name, "utf8");
  const h = Buffer.alloc(2 + nameBytes.length + 1 + 4 + 1 + 4 * dims.length);
  let o = h.writeUInt16BE(nameBytes.length, 0);
  o += nameBytes.copy(h, o);
  o = h.writeUInt8(dtypeCode, o);
  o = h.writeUInt32BE(scale, o);
  o = h.writeUInt8(dims.length, o);
  for (const d of dims) o = h.writeUInt32BE(d, o);
  return h;
}

function byName<T extends { name: string }>(tensors: readonly T[]): T[] {
  return [...tensors].sort((a, b) =>
    Buffer.compare(Buffer.from(a.name, "utf8"), Buffer.from(b.name, "utf8")),
  );
}

/** Whether this host stores typed arrays little-endian, as the encoding does (x86, arm64). */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Writes `data` little-endian at `offset` of `out` and returns the offset after it. On a
 * little-endian host the typed array's bytes already are the encoding, so this is one copy;
 * float32 -0 (the only value with two encodings the validator lets through) is then rewritten as
 * +0 from a scan of its bit patterns. Elsewhere it falls back to writing element by element.
 * NaN never reaches here: inputs refuse it and outputs are int64.
 */
function writeData(out: Buffer, offset: number, data: TensorData): number {
  if (!HOST_LITTLE_ENDIAN) {
    const bytes = dataBytesElementwise(data);
    bytes.copy(out, offset);
    return offset + bytes.length;
  }
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
  if (data instanceof Float32Array) {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < bits.length; i++) {
      if (bits[i] === 0x80000000) out.writeUInt32LE(0, offset + 4 * i);
    }
  } else if (data instanceof Uint16Array) {
    for (let i = 0; i < data.length; i++) {
      if (data[i] === 0x8000) out.writeUInt16LE(0, offset + 2 * i);
    }
  }
  return offset + data.byteLength;
}

/** One encoding pass: sizes every part first, then writes them into a single buffer. */
function encode(
  kind: number,
  tensors: ReadonlyArray<{
    name: string;
    code: number;
    scale: number;
    dims: readonly number[];
    data: TensorData;
  }>,
): Buffer {
  const head = header(kind, tensors.length);
  const sorted = byName(tensors);
  const heads = sorted.map((t) => tensorHeader(t.name, t.code, t.scale, t.dims));
  let size = head.length;
  sorted.forEach((t, i) => (size += (heads[i] as Buffer).length + t.data.byteLength));
  const out = Buffer.allocUnsafe(size);
  let o = head.copy(out, 0);
  sorted.forEach((t, i) => {
    o += (heads[i] as Buffer).copy(out, o);
    o = writeData(out, o, t.data);
  });
  return out;
}

/** The canonical byte encoding of a set of input tensors (inputHash = keccak-256 of it). */
export function encodeInputs(tensors: readonly InputTensor[]): Buffer {
  return encode(
    KIND_INPUT,
    tensors.map((t) => ({ ...t, code: DTYPE_CODES[t.dtype], scale: 0 })),
  );
}

/** fixed64 for a quantised float output; an exact output's own dtype code (values still int64). */
function outputCode(t: QuantisedTensor): number {
  return t.dtype === undefined || isFloatDtype(t.dtype)
    ? DTYPE_CODES.fixed64
    : DTYPE_CODES[t.dtype];
}

/** The canonical byte encoding of quantised output tensors (outputHash = keccak-256 of it). */
export function encodeOutputs(tensors: readonly QuantisedTensor[]): Buffer {
  return encode(
    KIND_OUTPUT,
    tensors.map((t) => ({ ...t, code: outputCode(t), data: t.values })),
  );
}

// ---------------------------------------------------------------- binary requests

const DTYPE_OF_CODE = new Map<number, InputDtype>([
  [DTYPE_CODES.float32, "float32"],
  [DTYPE_CODES.int32, "int32"],
  [DTYPE_CODES.int64, "int64"],
  [DTYPE_CODES.float16, "float16"],
  [DTYPE_CODES.int8, "int8"],
  [DTYPE_CODES.uint8, "uint8"],
  [DTYPE_CODES.bool, "bool"],
]);

/** An empty typed array of `n` values of `dtype`. */
export function typedArrayOf(dtype: InputDtype, n: number): TensorData {
  switch (dtype) {
    case "float32":
      return new Float32Array(n);
    case "float16":
      return new Uint16Array(n);
    case "int64":
      return new BigInt64Array(n);
    case "int32":
      return new Int32Array(n);
    case "int8":
      return new Int8Array(n);
    case "uint8":
    case "bool":
      return new Uint8Array(n);
  }
}

/**
 * Reads a binary request body: exactly the canonical encoding of the inputs (encodeInputs), so
 * its keccak-256 is the request's inputHash. Strict: one encoding per set of tensors (names
 * strictly ascending, scale 0, no trailing bytes); every problem is an InferenceInputError naming
 * the offset. Values are not judged here: validateInputs does that against the manifest.
 */
export function decodeInputs(bytes: Uint8Array): InputTensor[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (message: string, offset: number): never => {
    throw new InferenceInputError(`binary inputs: ${message} (at byte ${offset})`, {
      details: { offset, length: b.length },
    });
  };
  const need = (o: number, n: number, what: string): void => {
    if (o + n > b.length) fail(`ends inside ${what}`, o);
  };
  need(0, 8, "the header");
  if (!b.subarray(0, 4).equals(ENCODING_MAGIC)) fail('does not start with "OPGT"', 0);
  if (b.readUInt8(4) !== ENCODING_VERSION) fail(`version ${b.readUInt8(4)}, expected 1`, 4);
  if (b.readUInt8(5) !== KIND_INPUT) fail(`kind ${b.readUInt8(5)}, expected 1 (inputs)`, 5);
  const count = b.readUInt16BE(6);
  let o = 8;
  let previous: Buffer | null = null;
  const out: InputTensor[] = [];
  for (let t = 0; t < count; t++) {
    need(o, 2, "a tensor name length");
    const n = b.readUInt16BE(o);
    need(o + 2, n, "a tensor name");
    const nameBytes = b.subarray(o + 2, o + 2 + n);
    const name = nameBytes.toString("utf8");
    if (n === 0 || !Buffer.from(name, "utf8").equals(nameBytes))
      fail("a tensor name is not UTF-8", o);
    if (previous !== null && Buffer.compare(previous, nameBytes) >= 0)
      fail(`tensor "${name}" is out of name order or repeated`, o);
    previous = nameBytes;
    o += 2 + n;
    need(o, 6, `the header of "${name}"`);
    const dtype = DTYPE_OF_CODE.get(b.readUInt8(o));
    if (dtype === undefined) return fail(`"${name}" has dtype code ${b.readUInt8(o)}`, o);
    if (b.readUInt32BE(o + 1) !== 0) fail(`"${name}" has a scale; inputs have none`, o + 1);
    const rank = b.readUInt8(o + 5);
    if (rank > 8) fail(`"${name}" has rank ${rank}, expected 0..8`, o + 5);
    o += 6;
    need(o, 4 * rank, `the dims of "${name}"`);
    const dims: number[] = [];
    for (let i = 0; i < rank; i++, o += 4) {
      const d = b.readUInt32BE(o);
      if (d < 1) fail(`"${name}" dimension ${i} is 0`, o);
      dims.push(d);
    }
    const values = dims.reduce((a, d) => a * d, 1);
    const size = DTYPE_BYTES[dtype];
    if (values * size > b.length - o) fail(`"${name}" needs ${values * size} data bytes`, o);
    const data = typedArrayOf(dtype, values);
    if (HOST_LITTLE_ENDIAN || size === 1) {
      new Uint8Array(data.buffer).set(b.subarray(o, o + values * size));
    } else {
      for (let i = 0; i < values; i++) {
        if (data instanceof Float32Array) data[i] = b.readFloatLE(o + 4 * i);
        else if (data instanceof Int32Array) data[i] = b.readInt32LE(o + 4 * i);
        else if (data instanceof Uint16Array) data[i] = b.readUInt16LE(o + 2 * i);
        else if (data instanceof BigInt64Array) data[i] = b.readBigInt64LE(o + 8 * i);
      }
    }
    o += values * size;
    out.push({ name, dtype, dims, data });
  }
  if (o !== b.length) fail(`${b.length - o} bytes after the last tensor`, o);
  return out;
}

/**
 * Decoded tensors in the JSON form requests take everywhere else (int64 as decimal strings),
 * after checking each one's dtype against the manifest's when there is one; validateInputs judges
 * the rest.
 */
export function inputsToJson(
  tensors: readonly InputTensor[],
  manifest?: ModelManifest,
): Record<string, TensorJson> {
  const out: Record<string, TensorJson> = {};
  for (const t of tensors) {
    const spec = manifest?.inputs.find((i) => i.name === t.name);
    if (manifest !== undefined && spec !== undefined && spec.dtype !== t.dtype) {
      throw new InferenceInputError(`input "${t.name}": dtype ${t.dtype}, expected ${spec.dtype}`, {
        details: { model: manifest.name, tensor: t.name },
      });
    }
    out[t.name] = {
      dims: [...t.dims],
      data:
        t.data instanceof BigInt64Array
          ? Array.from(t.data, String)
          : t.dtype === "float16"
            ? Array.from(t.data as Uint16Array, fromHalf)
            : t.dtype === "bool"
              ? Array.from(t.data as Uint8Array, (v) => v !== 0)
              : Array.from(t.data as ArrayLike<number>),
    };
  }
  return out;
}

// The element-by-element encoding the fast path replaced: the specification it is tested equal
// to (test/offchain/inference/tensor.test.ts), the big-endian fallback, and the benchmark's
// baseline (scripts/bench/inference.ts). Not for the request path.

function dataBytesElementwise(data: TensorData): Buffer {
  const b = Buffer.alloc(data.length * data.BYTES_PER_ELEMENT);
  data.forEach((v: number | bigint, i: number) => {
    if (data instanceof Float32Array)
      b.writeFloatLE((v as number) === 0 ? 0 : (v as number), i * 4);
    else if (data instanceof Int32Array) b.writeInt32LE(v as number, i * 4);
    else if (data instanceof Uint16Array) b.writeUInt16LE(v === 0x8000 ? 0 : (v as number), i * 2);
    else if (data instanceof Int8Array) b.writeInt8(v as number, i);
    else if (data instanceof Uint8Array) b.writeUInt8(v as number, i);
    else b.writeBigInt64LE(v as bigint, i * 8);
  });
  return b;
}

/** encodeInputs, one element at a time (slow; see above). */
export function encodeInputsElementwise(tensors: readonly InputTensor[]): Buffer {
  const parts = [header(KIND_INPUT, tensors.length)];
  for (const t of byName(tensors)) {
    parts.push(tensorHeader(t.name, DTYPE_CODES[t.dtype], 0, t.dims), dataBytesElementwise(t.data));
  }
  return Buffer.concat(parts);
}

/** encodeOutputs, one element at a time (slow; see above). */
export function encodeOutputsElementwise(tensors: readonly QuantisedTensor[]): Buffer {
  const parts = [header(KIND_OUTPUT, tensors.length)];
  for (const t of byName(tensors)) {
    parts.push(
      tensorHeader(t.name, outputCode(t), t.scale, t.dims),
      dataBytesElementwise(t.values),
    );
  }
  return Buffer.concat(parts);
}

/** keccak-256 (native/, on every request twice) as 0x-prefixed lowercase hex. */
function keccakHex(bytes: Uint8Array): string {
  return `0x${Buffer.from(keccakBytes(bytes)).toString("hex")}`;
}

export function inputHash(tensors: readonly InputTensor[]): string {
  return keccakHex(encodeInputs(tensors));
}

export function outputHash(tensors: readonly QuantisedTensor[]): string {
  return keccakHex(encodeOutputs(tensors));
}

// ---------------------------------------------------------------- JSON forms of quantised outputs

export interface QuantisedTensorJson {
  name: string;
  /** An exact (integer or bool) output's dtype; absent for a quantised float output. */
  dtype?: InputDtype;
  scale: number;
  dims: number[];
  /** int64 values as decimal strings. */
  values: string[];
  /**
   * A recurrent-state output's float32 values, unquantised (relayer responses only; never
   * hashed): what the client feeds back as the next call's state input.
   */
  state?: number[];
}

export function outputsToJson(tensors: readonly QuantisedTensor[]): QuantisedTensorJson[] {
  return tensors.map((t) => ({
    name: t.name,
    ...(t.dtype !== undefined ? { dtype: t.dtype } : {}),
    scale: t.scale,
    dims: [...t.dims],
    values: [...t.values].map(String),
  }));
}

/** Reads quantised outputs sent by a GPU node, checked against the manifest's outputs. */
export function outputsFromJson(manifest: ModelManifest, json: unknown): QuantisedTensor[] {
  const fail = (message: string, details: Record<string, unknown> = {}): never => {
    throw new InferenceInputError(`outputs: ${message}`, {
      details: { model: manifest.name, ...details },
    });
  };
  if (!Array.isArray(json)) return fail("must be a list of { name, scale, dims, values }");
  const list = json as unknown[];
  if (list.length !== manifest.outputs.length) {
    fail(`${list.length} tensors, expected ${manifest.outputs.length}`, {
      expected: manifest.outputs.map((o) => o.name),
    });
  }
  return manifest.outputs.map((spec) => {
    const t = list.find((x) => (x as { name?: unknown } | null)?.name === spec.name) as
      Partial<QuantisedTensorJson> | undefined;
    if (t === undefined) return fail(`missing tensor "${spec.name}"`);
    const scale = scaleOf(manifest, spec);
    if (t.scale !== scale) fail(`"${spec.name}" scale ${String(t.scale)}, expected ${scale}`);
    if (!Array.isArray(t.dims) || !Array.isArray(t.values))
      return fail(`"${spec.name}" needs dims and values lists`);
    if (
      t.dims.length !== spec.shape.length ||
      t.dims.some((d, i) => {
        const want = spec.shape[i];
        return !Number.isSafeInteger(d) || d < 1 || (typeof want === "number" && d !== want);
      })
    ) {
      fail(
        `"${spec.name}" dims [${t.dims.join(", ")}] do not fit shape [${spec.shape.join(", ")}]`,
      );
    }
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (t.values.length !== count)
      fail(`"${spec.name}" has ${t.values.length} values, expected ${count}`);
    const values = new BigInt64Array(count);
    t.values.forEach((v, i) => {
      if (typeof v !== "string" || !/^-?[0-9]{1,19}$/.test(v))
        fail(`"${spec.name}" value ${i} is not a decimal int64 string`);
      values[i] = BigInt(v);
    });
    return {
      name: spec.name,
      ...(isFloatDtype(spec.dtype) ? {} : { dtype: spec.dtype }),
      scale: t.scale as number,
      dims: [...t.dims],
      values,
    };
  });
}

// ---------------------------------------------------------------- tolerance comparison

/** How one output compared (docs/inference-tee.md, "Tolerance"). */
export interface OutputComparison {
  name: string;
  mode: ToleranceMode;
  agree: boolean;
  /** Largest per-element difference in this output (quantised units). */
  maxDiff: bigint;
  /** Where the largest difference is, or, when the output disagrees, why. */
  where: string;
  /** Elements outside the band (every mode counts them; `fraction` judges by them). */
  outside: number;
}

export interface Comparison {
  /** Every tensor has the same name, scale and dims, and every output agrees under its mode. */
  agree: boolean;
  /** Largest per-element difference seen over all outputs (quantised units); -1 when shapes differ. */
  maxDiff: bigint;
  /** Where: the first disagreeing output's reason, else where the largest difference is. */
  where: string;
  /** Each output's result, in name order; empty when the tensors do not match. */
  outputs: OutputComparison[];
}

const absBig = (d: bigint): bigint => (d < 0n ? -d : d);

/**
 * The band around the enclave's value x: abs + floor(rel × |x|) quantised units. |x| ≤ 2^53
 * (quantise refuses more), so rel × |x| is one float64 product, the same on every machine.
 */
export function band(tolerance: Pick<OutputTolerance, "abs" | "rel">, x: bigint): bigint {
  if (tolerance.rel === 0) return BigInt(tolerance.abs);
  return BigInt(tolerance.abs) + BigInt(Math.floor(tolerance.rel * Number(absBig(x))));
}

/**
 * Compares the node's outputs (`candidate`) with the enclave's re-execution (`reference`), each
 * output under its own tolerance (by name); a number means elementwise within that many quantised
 * units for every output (a manifest's single `tolerance`). The band is always taken around the
 * enclave's value, never the node's.
 */
export function compareOutputs(
  reference: readonly QuantisedTensor[],
  candidate: readonly QuantisedTensor[],
  tolerance: number | Readonly<Record<string, OutputTolerance>>,
): Comparison {
  const a = byName(reference);
  const b = byName(candidate);
  if (a.length !== b.length) {
    return {
      agree: false,
      maxDiff: -1n,
      where: `${b.length} tensors, expected ${a.length}`,
      outputs: [],
    };
  }
  const outputs: OutputComparison[] = [];
  for (let t = 0; t < a.length; t++) {
    const x = a[t] as QuantisedTensor;
    const y = b[t] as QuantisedTensor;
    if (
      x.name !== y.name ||
      x.dtype !== y.dtype ||
      x.scale !== y.scale ||
      x.dims.join(",") !== y.dims.join(",") ||
      x.values.length !== y.values.length
    ) {
      return {
        agree: false,
        maxDiff: -1n,
        where: `tensor "${y.name}" does not match "${x.name}" in name, scale or dims`,
        outputs: [],
      };
    }
    const tol =
      typeof tolerance === "number"
        ? { mode: "elementwise" as const, abs: tolerance, rel: 0 }
        : tolerance[x.name];
    if (tol === undefined) {
      return {
        agree: false,
        maxDiff: -1n,
        where: `no tolerance for tensor "${x.name}"`,
        outputs: [],
      };
    }
    outputs.push(compareTensor(x, y, tol));
  }
  let maxDiff = 0n;
  let where = "";
  for (const o of outputs) {
    if (o.maxDiff > maxDiff) {
      maxDiff = o.maxDiff;
      where = o.where;
    }
  }
  const failed = outputs.find((o) => !o.agree);
  return {
    agree: failed === undefined,
    maxDiff,
    where: failed?.where ?? where,
    outputs,
  };
}

function compareTensor(
  x: QuantisedTensor,
  y: QuantisedTensor,
  tol: OutputTolerance,
): OutputComparison {
  let maxDiff = 0n;
  let where = "";
  let outside = 0;
  // The element furthest beyond its band (with rel 0: the largest difference).
  let worst = -1;
  let worstExcess = 0n;
  for (let i = 0; i < x.values.length; i++) {
    const ref = x.values[i] as bigint;
    const d = absBig(ref - (y.values[i] as bigint));
    if (d > maxDiff) {
      maxDiff = d;
      where = `${x.name}[${i}]`;
    }
    const excess = d - band(tol, ref);
    if (excess > 0n) {
      outside++;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  const result = { name: x.name, mode: tol.mode, maxDiff, where, outside };
  switch (tol.mode) {
    case "elementwise":
      return outside === 0
        ? { ...result, agree: true }
        : { ...result, agree: false, where: `${x.name}[${worst}]` };
    case "fraction": {
      const allowed = Math.floor((tol.maxFraction ?? 0) * x.values.length);
      return outside <= allowed
        ? { ...result, agree: true }
        : {
            ...result,
            agree: false,
            where: `${x.name}: ${outside} of ${x.values.length} elements outside the band, at most ${allowed} allowed`,
          };
    }
    case "argmax":
    case "topk": {
      const k = tol.mode === "argmax" ? 1 : (tol.k ?? 1);
      const bad = classMismatch(x, y, k, tol);
      return bad === null ? { ...result, agree: true } : { ...result, agree: false, where: bad };
    }
  }
}

/** The k indices of the largest values of row `r` (ties: the lower index first). */
function topIndices(values: BigInt64Array, start: number, n: number, k: number): number[] {
  const idx = Array.from({ length: n }, (_, j) => j);
  idx.sort((p, q) => {
    const vp = values[start + p] as bigint;
    const vq = values[start + q] as bigint;
    return vp === vq ? p - q : vp > vq ? -1 : 1;
  });
  return idx.slice(0, k);
}

/**
 * Class agreement over the last axis, row by row: every class in the node's top k must be one the
 * enclave also ranks in its top k, up to ties within the band: its enclave value is at least the
 * enclave's k-th largest value less band(k-th value). With no ties and a zero band, that is the
 * two top-k sets being equal. Null when every row agrees, else why the first row does not.
 */
function classMismatch(
  x: QuantisedTensor,
  y: QuantisedTensor,
  k: number,
  tol: OutputTolerance,
): string | null {
  const n = x.dims[x.dims.length - 1] ?? 1;
  const kk = Math.min(k, n);
  for (let start = 0, row = 0; start < x.values.length; start += n, row++) {
    const ref = topIndices(x.values, start, n, kk);
    const kth = x.values[start + (ref[kk - 1] as number)] as bigint;
    const floor = kth - band(tol, kth);
    const theirs = topIndices(y.values, start, n, kk);
    const off = theirs.find((j) => (x.values[start + j] as bigint) < floor);
    if (off !== undefined) {
      return kk === 1
        ? `${x.name} row ${row}: class ${theirs[0]}, expected ${ref[0]}`
        : `${x.name} row ${row}: top ${kk} [${[...theirs].sort((p, q) => p - q).join(", ")}], expected [${[...ref].sort((p, q) => p - q).join(", ")}]`;
    }
  }
  return null;
}
