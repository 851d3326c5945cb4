/**
 * Pure-TypeScript Merkle backend: the same algorithm as native/src/merkle.cc, hashing with ethers'
 * keccak256. Used when the addon is not built (and by the tests, against the addon). It checks its
 * arguments with native/guard.ts, so it refuses exactly what the addon refuses, with the same errors.
 */
import { getBytes, keccak256 as ethersKeccak } from "ethers";

import { LeafMode } from "./backend.js";
import type { Backend, BuiltTree } from "./backend.js";
import { allocateOrThrow, checkBuildArgs, checkKeccakArgs, plainView } from "./guard.js";

function hash(data: Uint8Array): Uint8Array {
  return getBytes(ethersKeccak(data));
}

function keccak256(data: Uint8Array): Uint8Array {
  checkKeccakArgs(data);
  return hash(plainView(data));
}

/** keccak256 of the two nodes in ascending byte order (OpenZeppelin's commutative hashPair). */
function hashPair(a: Uint8Array, b: Uint8Array): Uint8Array {
  const buf = new Uint8Array(64);
  if (Buffer.compare(a, b) <= 0) {
    buf.set(a, 0);
    buf.set(b, 32);
  } else {
    buf.set(b, 0);
    buf.set(a, 32);
  }
  return hash(buf);
}

function leafHash(input: Uint8Array, mode: LeafMode, stride: number, i: number): Uint8Array {
  const bytes = input.subarray(i * stride, (i + 1) * stride);
  switch (mode) {
    case LeafMode.AddressUint256: {
      const encoded = new Uint8Array(64);
      encoded.set(bytes, 12);
      return hash(hash(encoded));
    }
    case LeafMode.Encoded:
      return hash(hash(bytes));
    case LeafMode.Hashed:
      return bytes;
  }
}

function build(view: Uint8Array, mode: LeafMode, stride: number, count: number): BuiltTree {
  checkBuildArgs(view, mode, stride, count);
  const input = plainView(view);
  // Flat typed arrays, allocated first (as the addon does): a tree too big for this machine is an
  // Error "build: out of memory" at once, not a JavaScript heap exhausted leaf by leaf.
  const nodes = 2 * count - 1;
  const { hashes, order, tree, treeIndex } = allocateOrThrow(() => ({
    hashes: new Uint8Array(count * 32),
    order: new Uint32Array(count),
    tree: new Uint8Array(nodes * 32),
    treeIndex: new Uint32Array(count),
  }));
  for (let i = 0; i < count; i++) {
    hashes.set(leafHash(input, mode, stride, i), i * 32);
    order[i] = i;
  }
  // Sort by hash (bytewise), ties by input position: equal hashes keep their input order, as in
  // OpenZeppelin's (stable) sort.
  order.sort((a, b) => {
    for (let j = 0; j < 32; j++) {
      const d = hashes[a * 32 + j]! - hashes[b * 32 + j]!;
      if (d !== 0) return d;
    }
    return a - b;
  });
  for (let k = 0; k < count; k++) {
    const v = order[k]!;
    const at = nodes - 1 - k;
    tree.set(hashes.subarray(v * 32, v * 32 + 32), at * 32);
    treeIndex[v] = at;
  }
  for (let i = nodes - 1 - count; i >= 0; i--) {
    const left = tree.subarray((2 * i + 1) * 32, (2 * i + 2) * 32);
    const right = tree.subarray((2 * i + 2) * 32, (2 * i + 3) * 32);
    tree.set(hashPair(left, right), i * 32);
  }
  return { tree, treeIndex };
}

export const fallbackBackend: Backend = { name: "fallback", keccak256, build };
