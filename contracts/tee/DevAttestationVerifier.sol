// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAttestationVerifier} from "../interfaces/IAttestationVerifier.sol";

/// @title DevAttestationVerifier
/// @notice Development verifier for local chains: accepts any non-empty attestation (the development enclave's
///         Nitro-format document) and returns its hash. It checks nothing else, so it can only be deployed on a
///         local chain (chain id 31337 or 1337).
contract DevAttestationVerifier is IAttestationVerifier {
    /// @notice The contract was deployed on a chain that is not local.
    error DevVerifierNotLocalChain(uint256 chainId);
    /// @notice The attestation is empty.
    error DevVerifierEmptyAttestation();

    constructor() {
        if (block.chainid != 31337 && block.chainid != 1337) revert DevVerifierNotLocalChain(block.chainid);
    }

    /// @inheritdoc IAttestationVerifier
    function verifyAttestation(
        address,
        address,
        bytes32,
        bytes calldata attestation
    ) external pure override returns (bytes32 documentHash) {
        if (attestation.length == 0) revert DevVerifierEmptyAttestation();
        return keccak256(attestation);
    }
}
