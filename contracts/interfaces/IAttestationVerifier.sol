// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IAttestationVerifier
/// @notice Checks that an enclave attestation (an AWS Nitro attestation document, or evidence about one) shows
///         the enclave `enclaveKey` running the image `measurement` for the VERIFIER node `node`.
/// @dev Verifying a Nitro document fully on chain (COSE_Sign1, ES384, an X.509 chain) costs tens of millions of
///      gas, so TeeRegistry delegates to a pluggable verifier: an M-of-N quorum of off-chain attesters, a development
///      verifier for local chains, and later a ZK verifier whose `attestation` is a proof with these public inputs.
///      A verifier must be a pure check: it reverts (with its own error) when the attestation does not hold.
interface IAttestationVerifier {
    /// @notice Reverts unless `attestation` proves that `enclaveKey` runs `measurement` for `node`.
    /// @param node The VERIFIER node registering the enclave (bound so that nobody else can claim the key).
    /// @param enclaveKey The enclave's signing key (the Nitro document's public_key, as an Ethereum address).
    /// @param measurement keccak256(PCR0 ‖ PCR1 ‖ PCR2) of the enclave image.
    /// @param attestation Verifier-specific bytes.
    /// @return documentHash keccak-256 of the attestation document that was checked, recorded by the registry.
    function verifyAttestation(
        address node,
        address enclaveKey,
        bytes32 measurement,
        bytes calldata attestation
    ) external view returns (bytes32 documentHash);
}
