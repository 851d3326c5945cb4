// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ITeeRegistryCore
/// @notice The part of TeeRegistry that InferenceLedger relies on. TeeRegistry's full interface
///         (ITeeRegistry) extends this one.
interface ITeeRegistryCore {
    /// @notice True when the enclave key is registered and not deregistered, its measurement is still approved,
    ///         its registration is fresh (not expired) and its VERIFIER node is active in NodeStaking.
    function isActiveEnclave(address enclaveKey) external view returns (bool);

    /// @notice The VERIFIER node the enclave key is bound to (zero if it never registered). The binding is
    ///         permanent: a key registers once, for one node, and is never deleted or given to another node.
    function nodeOfEnclave(address enclaveKey) external view returns (address);

    /// @notice The node answerable for what the enclave key signed at `signedAt`: its node when the key was
    ///         registered then (registered at or before `signedAt`, not deregistered before it) under an image that
    ///         was not revoked for cause (ever) and was approved at `signedAt` (a retirement voids what was signed
    ///         while it lasted, even if the image is approved again later); zero otherwise. A lapsed registration
    ///         does not void what was signed, so evidence stays valid whatever the registry says later.
    function accountableNodeOf(address enclaveKey, uint256 signedAt) external view returns (address);
}
