// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ITeeRegistryCore
/// @notice The part of TeeRegistry that InferenceLedger relies on. TeeRegistry's full interface
///         (ITeeRegistry) extends this one.
interface ITeeRegistryCore {
    /// @notice True when the enclave key is registered, its measurement is still approved, its
    ///         registration is fresh (not expired) and its VERIFIER node is active in NodeStaking.
    function isActiveEnclave(address enclaveKey) external view returns (bool);

    /// @notice The VERIFIER node that registered this enclave key (zero if none).
    function nodeOfEnclave(address enclaveKey) external view returns (address);
}
