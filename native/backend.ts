/**
 * What a Merkle backend (the C++ addon or the pure-TypeScript fallback) provides. Both take the
 * leaves already packed by native/index.ts, which checks the leaves; each backend still checks its
 * own arguments (native/guard.ts), with the same TypeError or RangeError, since both are exported.
 */

/** How the packed input bytes of one leaf become its 32-byte leaf hash. Mirrors native/src/merkle.h. */
export const LeafMode = {
  /** 52 bytes: address (20) + uint256 big-endian (32); keccak256(keccak256(abi.encode(address, uint256))). */
  AddressUint256: 0,
  /** `stride` bytes (a multiple of 32) of a static ABI encoding; keccak256(keccak256(bytes)). */
  Encoded: 1,
  /** 32 bytes: the leaf hash itself. */
  Hashed: 2,
} as const;
export type LeafMode = (typeof LeafMode)[keyof typeof LeafMode];

export interface BuiltTree {
  /** (2n - 1) nodes of 32 bytes in OpenZeppelin's array layout; node 0 is the root. */
  tree: Uint8Array;
  /** treeIndex[v]: where input leaf v sits in `tree`. */
  treeIndex: Uint32Array;
}

export interface Backend {
  readonly name: "native" | "fallback";
  keccak256(data: Uint8Array): Uint8Array;
  build(input: Uint8Array, mode: LeafMode, stride: number, count: number): BuiltTree;
}
