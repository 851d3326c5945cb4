// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

import {IAttestationVerifier} from "../interfaces/IAttestationVerifier.sol";
import {IQuorumAttestationVerifier} from "../interfaces/IQuorumAttestationVerifier.sol";

/// @title QuorumAttestationVerifier
/// @notice M-of-N attesters, chosen by governance, vouch (EIP-712) that they verified a Nitro attestation document
///         off chain. Trust: any `threshold` attesters together can register any enclave key for an approved image;
///         fewer cannot.
contract QuorumAttestationVerifier is IQuorumAttestationVerifier, AccessControl, EIP712 {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice Manages attesters, the threshold and the maximum age.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice The longest `maxAge` can be.
    uint256 public constant MAX_ATTESTATION_AGE = 7 days;
    /// @notice The EIP-712 type hash of an Attestation.
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(address node,address enclaveKey,bytes32 measurement,bytes32 documentHash,uint64 issuedAt)"
    );

    EnumerableSet.AddressSet private _attesters;
    uint256 private _threshold;
    uint256 private _maxAge;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (the deployment moves them to the timelock).
    /// @param initialAttesters The first attesters.
    /// @param threshold_ Signatures required, 1 .. initialAttesters.length.
    /// @param maxAge_ Seconds an attestation stays usable after `issuedAt`.
    constructor(
        address admin,
        address[] memory initialAttesters,
        uint256 threshold_,
        uint256 maxAge_
    ) EIP712("OPG TEE Attestation Quorum", "1") {
        if (admin == address(0)) revert QuorumZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        for (uint256 i = 0; i < initialAttesters.length; ++i) {
            _addAttester(initialAttesters[i]);
        }
        _setThreshold(threshold_);
        _setMaxAge(maxAge_);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IQuorumAttestationVerifier
    function addAttester(address attester) external override onlyRole(GOVERNANCE_ROLE) {
        _addAttester(attester);
    }

    /// @inheritdoc IQuorumAttestationVerifier
    function removeAttester(address attester) external override onlyRole(GOVERNANCE_ROLE) {
        if (!_attesters.remove(attester)) revert QuorumUnknownAttester(attester);
        uint256 remaining = _attesters.length();
        if (_threshold > remaining) revert QuorumInvalidThreshold(_threshold, remaining);
        emit AttesterRemoved(attester);
    }

    /// @inheritdoc IQuorumAttestationVerifier
    function setThreshold(uint256 threshold_) external override onlyRole(GOVERNANCE_ROLE) {
        _setThreshold(threshold_);
    }

    /// @inheritdoc IQuorumAttestationVerifier
    function setMaxAge(uint256 maxAge_) external override onlyRole(GOVERNANCE_ROLE) {
        _setMaxAge(maxAge_);
    }

    /*//////////////////////////////////////////////////////////////
                              VERIFICATION
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAttestationVerifier
    function verifyAttestation(
        address node,
        address enclaveKey,
        bytes32 measurement,
        bytes calldata attestation
    ) external view override returns (bytes32 documentHash) {
        uint64 issuedAt;
        bytes[] memory signatures;
        (documentHash, issuedAt, signatures) = abi.decode(attestation, (bytes32, uint64, bytes[]));

        // Freshness: a signed statement cannot be replayed long after the attesters checked the document.
        if (issuedAt > block.timestamp) revert QuorumAttestationFromFuture(issuedAt, block.timestamp);
        if (block.timestamp - issuedAt > _maxAge) revert QuorumAttestationStale(issuedAt, _maxAge);

        // Quorum: distinct attesters (strictly increasing addresses), at least `threshold` of them.
        bytes32 digest = _digest(node, enclaveKey, measurement, documentHash, issuedAt);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecover(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert QuorumInvalidSignature(i);
            if (signer <= previous) revert QuorumSignersNotSorted(i, signer);
            if (!_attesters.contains(signer)) revert QuorumNotAttester(i, signer);
            previous = signer;
        }
        if (signatures.length < _threshold) revert QuorumBelowThreshold(signatures.length, _threshold);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IQuorumAttestationVerifier
    function attesters() external view override returns (address[] memory) {
        return _attesters.values();
    }

    /// @inheritdoc IQuorumAttestationVerifier
    function isAttester(address account) external view override returns (bool) {
        return _attesters.contains(account);
    }

    /// @inheritdoc IQuorumAttestationVerifier
    function threshold() external view override returns (uint256) {
        return _threshold;
    }

    /// @inheritdoc IQuorumAttestationVerifier
    function maxAge() external view override returns (uint256) {
        return _maxAge;
    }

    /// @inheritdoc IQuorumAttestationVerifier
    function attestationDigest(
        address node,
        address enclaveKey,
        bytes32 measurement,
        bytes32 documentHash,
        uint64 issuedAt
    ) external view override returns (bytes32) {
        return _digest(node, enclaveKey, measurement, documentHash, issuedAt);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _addAttester(address attester) private {
        if (attester == address(0)) revert QuorumZeroAddress();
        if (!_attesters.add(attester)) revert QuorumAlreadyAttester(attester);
        emit AttesterAdded(attester);
    }

    function _setThreshold(uint256 threshold_) private {
        uint256 count = _attesters.length();
        if (threshold_ == 0 || threshold_ > count) revert QuorumInvalidThreshold(threshold_, count);
        _threshold = threshold_;
        emit ThresholdSet(threshold_);
    }

    function _setMaxAge(uint256 maxAge_) private {
        if (maxAge_ == 0 || maxAge_ > MAX_ATTESTATION_AGE) revert QuorumInvalidMaxAge(maxAge_);
        _maxAge = maxAge_;
        emit MaxAgeSet(maxAge_);
    }

    function _digest(
        address node,
        address enclaveKey,
        bytes32 measurement,
        bytes32 documentHash,
        uint64 issuedAt
    ) private view returns (bytes32) {
        return
            _hashTypedDataV4(
                keccak256(
                    abi.encode(ATTESTATION_TYPEHASH, node, enclaveKey, measurement, documentHash, issuedAt)
                )
            );
    }
}
