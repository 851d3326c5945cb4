/**
 * keccak-256 and OpenZeppelin StandardMerkleTree-compatible Merkle trees, built in C++ (Node-API
 * addon in native/src, `npm run build:native`) with a pure-TypeScript fallback when the addon is
 * not built. Trees, roots and proofs are identical to `@openzeppelin/merkle-tree`'s, so any OZ tool
 * (and `MerkleProof.verify` on chain) checks them.
 *
 * All input checking happens here; the backends only receive packed, valid bytes. The backends
 * check their own arguments all the same (native/guard.ts, and native/src/guard.cc in the addon),
 * since they are exported: a bad argument is a TypeError or RangeError, never a crash.
 *
 * ```ts
 * const tree = buildTree([["0xabc…", 10n], ["0xdef…", 20n]], ["address", "uint256"]);
 * tree.root; tree.proof(1); tree.dump(); // StandardMerkleTree.load(tree.dump()) works
 * ```
 */
import { createRequire } from "node:module";

import { AbiCoder, getAddress, getBytes } from "ethers";

import { InputError } from "../offchain/common/errors.js";
import { LeafMode } from "./backend.js";
import type { Backend, BuiltTree } from "./backend.js";
import { fallbackBackend } from "./fallback.js";
import { MAX_ENCODED_STRIDE, MAX_LEAVES, checkBuildArgs, checkKeccakArgs } from "./guard.js";

export type { Backend } from "./backend.js";
export { fallbackBackend } from "./fallback.js";
export { MAX_ENCODED_STRIDE, MAX_LEAVES } from "./guard.js";

/** A leaf value: addresses and hex as strings, integers as bigint, decimal/hex strings or safe numbers. */
export type LeafValue = string | bigint | number | boolean;

/** `StandardMerkleTree.dump()`'s format, loadable with `StandardMerkleTree.load`. */
export interface StandardMerkleTreeData {
  format: "standard-v1";
  leafEncoding: string[];
  tree: string[];
  values: Array<{ value: unknown[]; treeIndex: number }>;
}

export interface MultiProof {
  /** The proven leaves' values (as given), in the order the proof consumes them. */
  leaves: LeafValue[][];
  proof: string[];
  proofFlags: boolean[];
}

// ---------------------------------------------------------------------------------------------
// Backend selection
// ---------------------------------------------------------------------------------------------

function loadNative(): { backend: Backend | null; error: unknown } {
  try {
    const require = createRequire(import.meta.url);
    const addon = require("./build/Release/opg_merkle.node") as {
      keccak256(data: Uint8Array): Uint8Array;
      build(input: Uint8Array, mode: number, stride: number, count: number): BuiltTree;
    };
    return {
      backend: {
        name: "native",
        // The addon checks again (native/src/guard.cc), with the same errors; checking here first
        // keeps the wrapper's contract independent of the binary that happens to be built.
        keccak256: (data) => {
          checkKeccakArgs(data);
          return addon.keccak256(data);
        },
        build: (input, mode, stride, count) => {
          checkBuildArgs(input, mode, stride, count);
          return addon.build(input, mode, stride, count);
        },
      },
      error: null,
    };
  } catch (error) {
    return { backend: null, error };
  }
}

const loaded = loadNative();

/** The C++ addon, or null when it is not built (see `nativeLoadError`). */
export const nativeBackend: Backend | null = loaded.backend;
/** Why the addon could not be loaded (null when it was). */
export const nativeLoadError: unknown = loaded.error;

let warned = false;

/**
 * The backend used when none is passed: the addon, or the fallback when the addon is not built or
 * `OPG_MERKLE_BACKEND=fallback`. Choosing the fallback is said once on stderr.
 */
export function defaultBackend(): Backend {
  const forced = process.env.OPG_MERKLE_BACKEND === "fallback";
  if (nativeBackend !== null && !forced) return nativeBackend;
  if (!warned) {
    warned = true;
    const why = forced
      ? "OPG_MERKLE_BACKEND=fallback"
      : `native addon not built (${nativeLoadError instanceof Error ? nativeLoadError.message.split("\n")[0] : String(nativeLoadError)}); run \`npm run build:native\``;
    console.warn(`[native] using the pure-TypeScript Merkle fallback (slower): ${why}`);
  }
  return fallbackBackend;
}

/** keccak-256 (Ethereum's, 0x01 padding) of `data`. */
export function keccak256(data: Uint8Array, backend: Backend = defaultBackend()): Uint8Array {
  return backend.keccak256(data);
}

// ---------------------------------------------------------------------------------------------
// Input checking and packing
// ---------------------------------------------------------------------------------------------

const UINT256_MAX = (1n << 256n) - 1n;
const HEX_BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const STATIC_TYPE =
  /^(address|bool|bytes([1-9]|[12][0-9]|3[0-2])|u?int(8|16|24|32|40|48|56|64|72|80|88|96|104|112|120|128|136|144|152|160|168|176|184|192|200|208|216|224|232|240|248|256)?)$/;

function leafError(index: number, message: string, value: unknown): InputError {
  return new InputError(`leaf ${index}: ${message}`, { details: { index, value } });
}

const MIXED_CASE = /[a-f].*[A-F]|[A-F].*[a-f]/;

/**
 * Writes the 20 bytes of an address string (any case; mixed case must carry a valid EIP-55
 * checksum) at `offset`. Hot path of a 1M-leaf build: no regex unless the case is mixed.
 */
function writeAddress(
  buf: Buffer,
  offset: number,
  value: unknown,
  index: number,
  backend: Backend,
): void {
  if (
    typeof value !== "string" ||
    value.length !== 42 ||
    value.charCodeAt(0) !== 48 || // "0"
    value.charCodeAt(1) !== 120 || // "x"
    buf.write(value.slice(2), offset, 20, "hex") !== 20
  ) {
    throw leafError(index, "address must be 0x followed by 40 hex digits", value);
  }
  if (MIXED_CASE.test(value)) {
    const body = value.slice(2);
    const hash = Buffer.from(backend.keccak256(Buffer.from(body.toLowerCase(), "ascii"))).toString(
      "hex",
    );
    for (let i = 0; i < 40; i++) {
      const c = body[i]!;
      if (c >= "0" && c <= "9") continue;
      if ((c >= "A" && c <= "F") !== Number.parseInt(hash[i]!, 16) >= 8) {
        throw leafError(index, "address has an invalid EIP-55 checksum", value);
      }
    }
  }
}

/** Parses a uint256 from a bigint, a safe non-negative integer, or a decimal / 0x-hex string. */
export function parseUint256(value: unknown, index: number): bigint {
  let n: bigint;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(value)) n = BigInt(value);
  else
    throw leafError(
      index,
      "amount must be a non-negative integer (bigint, safe number or string)",
      value,
    );
  if (n < 0n || n > UINT256_MAX)
    throw leafError(index, "amount is outside the uint256 range", value);
  return n;
}

/** Writes `n` (0 <= n < 2^256) big-endian into the 32 zeroed bytes at `offset`. */
function writeUint256(buf: Buffer, offset: number, n: bigint): void {
  if (n === 0n) return;
  let digits = n.toString(16);
  if (digits.length % 2 === 1) digits = "0" + digits;
  buf.write(digits, offset + 32 - digits.length / 2, "hex");
}

const WORD_TYPE =
  /^(bytes32|address|uint(8|16|24|32|40|48|56|64|72|80|88|96|104|112|120|128|136|144|152|160|168|176|184|192|200|208|216|224|232|240|248|256)?)$/;

type WordWriter = (buf: Buffer, offset: number, value: unknown, index: number) => void;

/** Writes one value of `type` as its 32-byte ABI word (the buffer is zeroed). */
function wordWriter(backend: Backend): (type: string) => WordWriter {
  return (type) => {
    if (type === "bytes32") {
      return (buf, offset, value, index) => {
        if (typeof value !== "string" || !HEX_BYTES32.test(value)) {
          throw leafError(index, "bytes32 must be 0x followed by 64 hex digits", value);
        }
        buf.write(value.slice(2), offset, 32, "hex");
      };
    }
    if (type === "address") {
      return (buf, offset, value, index) => writeAddress(buf, offset + 12, value, index, backend);
    }
    const bits = type === "uint" ? 256n : BigInt(type.slice(4));
    const max = (1n << bits) - 1n;
    return (buf, offset, value, index) => {
      let n: bigint;
      try {
        n = parseUint256(value, index);
      } catch {
        throw leafError(index, `does not encode as ${type}: not a non-negative integer`, value);
      }
      if (n > max) throw leafError(index, `does not encode as ${type}: out of range`, value);
      writeUint256(buf, offset, n);
    };
  };
}

interface Packed {
  input: Buffer;
  mode: LeafMode;
  stride: number;
  /** Values as they go into `dump()` (normalised: strings, no bigints). */
  normalise: (value: readonly LeafValue[]) => unknown[];
}

/** A build takes at most MAX_LEAVES leaves (the backends' bound). */
function checkCount(count: number): void {
  if (count > MAX_LEAVES) {
    throw new InputError("too many leaves", { details: { count, max: MAX_LEAVES } });
  }
}

function checkShape(leaves: readonly (readonly LeafValue[])[], types: readonly string[]): void {
  if (!Array.isArray(leaves)) throw new InputError("leaves must be an array of value tuples");
  if (leaves.length === 0) throw new InputError("a Merkle tree needs at least one leaf");
  checkCount(leaves.length);
  if (!Array.isArray(types) || types.length === 0 || !types.every((t) => typeof t === "string")) {
    throw new InputError("types must be a non-empty list of Solidity type names", {
      details: { types },
    });
  }
  for (const [i, leaf] of leaves.entries()) {
    if (!Array.isArray(leaf) || leaf.length !== types.length) {
      throw leafError(i, `expected ${types.length} values (${types.join(", ")})`, leaf);
    }
  }
}

function pack(
  leaves: readonly (readonly LeafValue[])[],
  types: readonly string[],
  backend: Backend,
): Packed {
  checkShape(leaves, types);
  const count = leaves.length;
  const signature = types.join(",");

  if (signature === "address,uint256") {
    const input = Buffer.alloc(count * 52);
    for (let i = 0; i < count; i++) {
      const leaf = leaves[i]!;
      writeAddress(input, i * 52, leaf[0], i, backend);
      writeUint256(input, i * 52 + 20, parseUint256(leaf[1], i));
    }
    return {
      input,
      mode: LeafMode.AddressUint256,
      stride: 52,
      normalise: (v) => [
        getAddress(String(v[0])),
        BigInt(v[1] as string | bigint | number).toString(),
      ],
    };
  }

  if (signature === "bytes32") {
    const input = Buffer.alloc(count * 32);
    const write = wordWriter(backend)("bytes32");
    for (let i = 0; i < count; i++) write(input, i * 32, leaves[i]![0], i);
    return {
      input,
      mode: LeafMode.Encoded,
      stride: 32,
      normalise: (v) => [String(v[0]).toLowerCase()],
    };
  }

  // A static tuple is hashed natively up to MAX_ENCODED_STRIDE bytes (1,024 values) a leaf; a wider
  // one goes the dynamic tuples' way below (hashed here).
  const fitsNative = 32 * types.length <= MAX_ENCODED_STRIDE;

  // One 32-byte word per value (bytes32, address, uintN; receipt leaves among them): written here
  // directly, ~20x cheaper than ethers' AbiCoder on the relayer's batch path, same bytes.
  if (fitsNative && types.every((t) => WORD_TYPE.test(t))) {
    const stride = 32 * types.length;
    const writers = types.map(wordWriter(backend));
    const input = Buffer.alloc(count * stride);
    for (let i = 0; i < count; i++) {
      const leaf = leaves[i]!;
      for (let k = 0; k < writers.length; k++) writers[k]!(input, i * stride + 32 * k, leaf[k], i);
    }
    return {
      input,
      mode: LeafMode.Encoded,
      stride,
      normalise: (v) => v.map((x) => (typeof x === "bigint" ? x.toString() : x)),
    };
  }

  // Any other leaf type: ABI-encoded here (ethers checks the values), hashed natively when the
  // encoding is static (and fits), hashed here otherwise.
  const coder = AbiCoder.defaultAbiCoder();
  const encode = (leaf: readonly LeafValue[], i: number): Uint8Array => {
    try {
      return getBytes(coder.encode(types, leaf));
    } catch (cause) {
      throw new InputError(`leaf ${i}: does not encode as (${signature})`, {
        details: { index: i, value: leaf },
        cause,
      });
    }
  };
  const normalise = (v: readonly LeafValue[]) =>
    v.map((x) => (typeof x === "bigint" ? x.toString() : x));
  if (fitsNative && types.every((t) => STATIC_TYPE.test(t))) {
    const stride = 32 * types.length;
    const input = Buffer.alloc(count * stride);
    for (let i = 0; i < count; i++) input.set(encode(leaves[i]!, i), i * stride);
    return { input, mode: LeafMode.Encoded, stride, normalise };
  }
  const input = Buffer.alloc(count * 32);
  for (let i = 0; i < count; i++) {
    input.set(backend.keccak256(backend.keccak256(encode(leaves[i]!, i))), i * 32);
  }
  return { input, mode: LeafMode.Hashed, stride: 32, normalise };
}

// ---------------------------------------------------------------------------------------------
// The tree
// ---------------------------------------------------------------------------------------------

function hex(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return "0x" + Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString("hex");
}

/** A built tree. Proofs are computed on demand from the node buffer. */
export class MerkleTree {
  /** The tree's root, 0x-prefixed hex. */
  readonly root: string;

  constructor(
    /** (2n - 1) 32-byte nodes in OpenZeppelin's array layout. */
    readonly nodes: Uint8Array,
    /** treeIndex[v]: where leaf v (input order) sits in `nodes`. */
    readonly treeIndex: Uint32Array,
    readonly leafEncoding: readonly string[],
    private readonly values: readonly (readonly LeafValue[])[],
    private readonly normalise: (value: readonly LeafValue[]) => unknown[],
    readonly backend: Backend,
  ) {
    this.root = hex(nodes, 0, 32);
  }

  /** Number of leaves. */
  get length(): number {
    return this.treeIndex.length;
  }

  private check(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new InputError("leaf index out of range", { details: { index, length: this.length } });
    }
    return this.treeIndex[index]!;
  }

  private node(i: number): string {
    return hex(this.nodes, i * 32, i * 32 + 32);
  }

  /** The values of leaf `index` (input order), as given. */
  at(index: number): readonly LeafValue[] {
    this.check(index);
    return this.values[index]!;
  }

  /** The leaf hash of leaf `index` (input order). */
  leafHash(index: number): string {
    return this.node(this.check(index));
  }

  /** The proof of leaf `index` (input order), bottom-up, as `MerkleProof.verify` expects. */
  proof(index: number): string[] {
    let i = this.check(index);
    const proof: string[] = [];
    while (i > 0) {
      proof.push(this.node(i % 2 === 1 ? i + 1 : i - 1));
      i = Math.floor((i - 1) / 2);
    }
    return proof;
  }

  /** A multiproof for several leaves (OpenZeppelin's algorithm and output order). */
  multiProof(indices: readonly number[]): MultiProof {
    const treeIndices = indices.map((v) => this.check(v)).sort((a, b) => b - a);
    for (let k = 1; k < treeIndices.length; k++) {
      if (treeIndices[k] === treeIndices[k - 1]) {
        throw new InputError("cannot prove a leaf twice in one multiproof", {
          details: { indices },
        });
      }
    }
    const valueOf = new Map<number, number>(indices.map((v) => [this.treeIndex[v]!, v]));
    const stack = [...treeIndices];
    const proof: string[] = [];
    const proofFlags: boolean[] = [];
    while (stack.length > 0 && stack[0]! > 0) {
      const j = stack.shift()!;
      const s = j % 2 === 1 ? j + 1 : j - 1;
      const p = Math.floor((j - 1) / 2);
      if (s === stack[0]) {
        proofFlags.push(true);
        stack.shift();
      } else {
        proofFlags.push(false);
        proof.push(this.node(s));
      }
      stack.push(p);
    }
    if (treeIndices.length === 0) proof.push(this.root);
    return {
      leaves: treeIndices.map((t) => [...this.values[valueOf.get(t)!]!]),
      proof,
      proofFlags,
    };
  }

  /** Whether `proof` proves leaf `index` against this root. */
  verify(index: number, proof: readonly string[]): boolean {
    return processProof(this.leafHash(index), proof, this.backend) === this.root;
  }

  /** OpenZeppelin's `standard-v1` JSON: `StandardMerkleTree.load(tree.dump())` works. */
  dump(): StandardMerkleTreeData {
    const tree: string[] = new Array<string>(this.nodes.length / 32);
    for (let i = 0; i < tree.length; i++) tree[i] = this.node(i);
    return {
      format: "standard-v1",
      leafEncoding: [...this.leafEncoding],
      tree,
      values: this.values.map((value, v) => ({
        value: this.normalise(value),
        treeIndex: this.treeIndex[v]!,
      })),
    };
  }
}

/** Folds `proof` onto `leafHash` with the sorted-pair hash; returns the implied root. */
export function processProof(
  leafHash: string,
  proof: readonly string[],
  backend: Backend = defaultBackend(),
): string {
  const buf = new Uint8Array(64);
  let current = getBytes(leafHash);
  for (const sibling of proof) {
    const s = getBytes(sibling);
    if (current.length !== 32 || s.length !== 32)
      throw new InputError("proof nodes must be 32 bytes");
    const [a, b] = Buffer.compare(current, s) <= 0 ? [current, s] : [s, current];
    buf.set(a, 0);
    buf.set(b, 32);
    current = backend.keccak256(buf);
  }
  return hex(current);
}

/**
 * Builds an OpenZeppelin standard Merkle tree over `leaves`, each a tuple of `types`
 * (fast paths: `["address", "uint256"]` and `["bytes32"]`; any other ABI types work too).
 * Throws `InputError` naming the first bad leaf.
 */
export function buildTree(
  leaves: readonly (readonly LeafValue[])[],
  types: readonly string[],
  options: { backend?: Backend } = {},
): MerkleTree {
  const backend = options.backend ?? defaultBackend();
  const packed = pack(leaves, types, backend);
  const built = backend.build(packed.input, packed.mode, packed.stride, leaves.length);
  return new MerkleTree(built.tree, built.treeIndex, [...types], leaves, packed.normalise, backend);
}

/**
 * Builds a tree over leaf hashes computed by the caller (e.g. the Uniswap MerkleDistributor's
 * `keccak256(abi.encodePacked(index, account, amount))`), with the same layout and sorted-pair
 * hashing. `dump()` of such a tree holds the hashes as `bytes32` values.
 */
export function buildTreeFromHashes(
  hashes: readonly string[],
  options: { backend?: Backend } = {},
): MerkleTree {
  const backend = options.backend ?? defaultBackend();
  if (Array.isArray(hashes)) checkCount(hashes.length);
  const leaves = hashes.map((h) => [h] as const);
  checkShape(leaves, ["bytes32"]);
  const input = Buffer.alloc(hashes.length * 32);
  for (const [i, h] of hashes.entries()) {
    if (typeof h !== "string" || !HEX_BYTES32.test(h))
      throw leafError(i, "hash must be 0x followed by 64 hex digits", h);
    input.write(h.slice(2), i * 32, 32, "hex");
  }
  const built = backend.build(input, LeafMode.Hashed, 32, hashes.length);
  return new MerkleTree(built.tree, built.treeIndex, ["bytes32"], leaves, (v) => [...v], backend);
}
