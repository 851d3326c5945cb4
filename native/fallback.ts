/**
 * Pure-TypeScript Merkle backend: the same algorithm as native/src/merkle.cc, hashing with ethers'
 * keccak256. Used when the addon is not built (and by the tests, against the addon).
 */
import { getBytes, keccak256 as ethersKeccak } from "ethers";

import { LeafMode } from "./backend.js";
import type { Backend, BuiltTree } from "./backend.js";

function keccak256(data: Uint8Array): Uint8Array {
  return getBytes(ethersKeccak(data));
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
  return keccak256(buf);
}

function leafHash(input: Uint8Array, mode: LeafMode, stride: number, i: number): Uint8Array {
  const bytes = input.subarray(i * stride, (i + 1) * stride);
  switch (mode) {
    case LeafMode.AddressUint256: {
      const encoded = new Uint8Array(64);
      encoded.set(bytes, 12);
      return keccak256(keccak256(encoded));
    }
    case LeafMode.Encoded:
      return keccak256(keccak256(bytes));
    case LeafMode.Hashed:
      return bytes.slice();
  }
}

function build(input: Uint8Array, mode: LeafMode, stride: number, count: number): BuiltTree {
  const hashes = Array.from({ length: count }, (_, i) => leafHash(input, mode, stride, i));
  // Stable sort by hash: equal hashes keep their input order, as in OpenZeppelin's sort.
  const order = Array.from({ length: count }, (_, i) => i).sort(
    (a, b) => Buffer.compare(hashes[a]!, hashes[b]!) || a - b,
  );
  const nodes = 2 * count - 1;
  const tree = new Uint8Array(nodes * 32);
  const treeIndex = new Uint32Array(count);
  for (const [k, v] of order.entries()) {
    const at = nodes - 1 - k;
    tree.set(hashes[v]!, at * 32);
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
