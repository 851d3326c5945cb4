// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title RewardsMerkle
/// @notice The claim's Merkle maths in assembly on scratch space: the OpenZeppelin standard leaf of
///         `(address, uint256)` and sorted-pair proof verification over calldata. Same results as
///         `keccak256(bytes.concat(keccak256(abi.encode(account, amount))))` and OpenZeppelin's
///         `MerkleProof.verifyCalldata`, without memory allocation, bounds checks or a function call per
///         level: about 2,200 gas less for a leaf and a 17-node proof (scripts/bench/gas/40-rewards.ts).
/// @dev Both functions only write the scratch space (0x00-0x3f), which Solidity leaves to inline assembly.
library RewardsMerkle {
    /// @notice The StandardMerkleTree leaf of `(account, amount)`: the hash of the hash of its ABI encoding.
    function leaf(address account, uint256 amount) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            // abi.encode(account, amount): two words; `account` is zero-extended like the ABI does.
            mstore(0x00, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(0x20, amount)
            mstore(0x00, keccak256(0x00, 0x40))
            result := keccak256(0x00, 0x20)
        }
    }

    /// @notice Whether `proof` proves `leafHash` against `root`, hashing each pair in sorted order (the smaller
    ///         node first), as OpenZeppelin's `Hashes.commutativeKeccak256`.
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leafHash) internal pure returns (bool) {
        assembly ("memory-safe") {
            if proof.length {
                // The ABI decoder checked that `proof.length` words lie inside the calldata, so `end` cannot
                // overflow. A do-while loop: one test per node.
                let end := add(proof.offset, shl(5, proof.length))
                let p := proof.offset
                for {} 1 {} {
                    // The larger of the two goes second: at 0x20 when `leafHash` is larger, else at 0x00.
                    let slot := shl(5, gt(leafHash, calldataload(p)))
                    mstore(slot, leafHash)
                    mstore(xor(slot, 0x20), calldataload(p))
                    leafHash := keccak256(0x00, 0x40)
                    p := add(p, 0x20)
                    if iszero(lt(p, end)) {
                        break
                    }
                }
            }
        }
        return leafHash == root;
    }
}
