// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAttestationVerifier} from "./IAttestationVerifier.sol";

/// @title IQuorumAttestationVerifier
/// @notice Accepts an attestation when at least `threshold` of the attesters chosen by governance signed (EIP-712)
///         that they verified the Nitro attestation document off chain: its signature chain to the AWS root, that
///         its PCRs hash to `measurement`, that its public_key is `enclaveKey` and that it is the document with hash
///         `documentHash`, issued (checked by them) at `issuedAt`.
/// @dev `attestation` = abi.encode(bytes32 documentHash, uint64 issuedAt, bytes[] signatures), the signatures
///      ordered by strictly increasing signer address (so each attester counts once). Typed data:
///      Attestation(address node,address enclaveKey,bytes32 measurement,bytes32 documentHash,uint64 issuedAt)
///      under the domain {name: "OPG TEE Attestation Quorum", version: "1", chainId, verifyingContract}.
interface IQuorumAttestationVerifier is IAttestationVerifier {
    /// @notice An attester was added.
    event AttesterAdded(address indexed attester);
    /// @notice An attester was removed.
    event AttesterRemoved(address indexed attester);
    /// @notice The number of signatures required changed.
    event ThresholdSet(uint256 threshold);
    /// @notice The maximum attestation age changed.
    event MaxAgeSet(uint256 maxAge);

    /// @notice The attestation is older than `maxAge` seconds.
    error QuorumAttestationStale(uint256 issuedAt, uint256 maxAge);
    /// @notice The attestation claims to be issued after the current block.
    error QuorumAttestationFromFuture(uint256 issuedAt, uint256 now_);
    /// @notice The signature at `index` is malformed.
    error QuorumInvalidSignature(uint256 index);
    /// @notice The signature at `index` is not from an attester.
    error QuorumNotAttester(uint256 index, address signer);
    /// @notice The signature at `index` is out of order (signers must strictly increase), or repeats a signer.
    error QuorumSignersNotSorted(uint256 index, address signer);
    /// @notice Fewer signatures than the threshold.
    error QuorumBelowThreshold(uint256 signatures, uint256 threshold);
    /// @notice The address is already an attester.
    error QuorumAlreadyAttester(address attester);
    /// @notice The address is not an attester.
    error QuorumUnknownAttester(address attester);
    /// @notice The attester is the zero address.
    error QuorumZeroAddress();
    /// @notice The threshold is zero or above the number of attesters.
    error QuorumInvalidThreshold(uint256 threshold, uint256 attesters);
    /// @notice The maximum age is zero or above MAX_ATTESTATION_AGE.
    error QuorumInvalidMaxAge(uint256 maxAge);

    /// @notice Adds an attester. Only GOVERNANCE_ROLE.
    function addAttester(address attester) external;

    /// @notice Removes an attester; the threshold must stay reachable. Only GOVERNANCE_ROLE.
    function removeAttester(address attester) external;

    /// @notice Sets the number of signatures required (1 .. number of attesters). Only GOVERNANCE_ROLE.
    function setThreshold(uint256 threshold) external;

    /// @notice Sets how old (seconds since `issuedAt`) an attestation may be. Only GOVERNANCE_ROLE.
    function setMaxAge(uint256 maxAge) external;

    /// @notice The current attesters.
    function attesters() external view returns (address[] memory);

    /// @notice Whether `account` is an attester.
    function isAttester(address account) external view returns (bool);

    /// @notice The number of signatures required.
    function threshold() external view returns (uint256);

    /// @notice The maximum attestation age in seconds.
    function maxAge() external view returns (uint256);

    /// @notice The EIP-712 digest the attesters sign.
    function attestationDigest(
        address node,
        address enclaveKey,
        bytes32 measurement,
        bytes32 documentHash,
        uint64 issuedAt
    ) external view returns (bytes32);
}
