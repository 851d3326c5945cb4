// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IAttestationVerifier} from "../interfaces/IAttestationVerifier.sol";
import {INodeStaking} from "../interfaces/INodeStaking.sol";
import {INodeStakingCore} from "../interfaces/INodeStakingCore.sol";
import {ITeeRegistry} from "../interfaces/ITeeRegistry.sol";
import {ITeeRegistryCore} from "../interfaces/ITeeRegistryCore.sol";

/// @title TeeRegistry
/// @notice Approved enclave images and the enclave keys of VERIFIER nodes. An enclave is active while its image
///         is approved, its registration is fresh and its node is active in NodeStaking; each condition is read
///         at query time, so revoking an image or jailing a node takes effect at once for every enclave.
contract TeeRegistry is ITeeRegistry, AccessControl {
    /// @notice Approves and revokes measurements, sets the verifier and the registration lifetime.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice The longest a registration or heartbeat keeps an enclave fresh.
    uint256 public constant MAX_REGISTRATION_TTL = 30 days;

    uint256 private constant _PCR_LENGTH = 48;

    INodeStaking private immutable _STAKING;

    IAttestationVerifier private _verifier;
    uint40 private _registrationTtl;
    mapping(bytes32 measurement => bool approved) private _approved;
    mapping(address enclaveKey => Enclave registration) private _enclaves;

    /// @param staking_ The NodeStaking contract.
    /// @param verifier_ The first attestation verifier.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (the deployment moves them to the timelock).
    /// @param ttl The registration lifetime in seconds.
    constructor(address staking_, address verifier_, address admin, uint256 ttl) {
        if (staking_ == address(0) || admin == address(0)) revert TeeZeroAddress();
        _STAKING = INodeStaking(staking_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setVerifier(verifier_);
        _setRegistrationTtl(ttl);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ITeeRegistry
    function approveMeasurement(
        bytes32 measurement,
        string calldata label
    ) external override onlyRole(GOVERNANCE_ROLE) {
        if (measurement == bytes32(0)) revert TeeZeroMeasurement();
        if (_approved[measurement]) revert TeeMeasurementAlreadyApproved(measurement);
        _approved[measurement] = true;
        emit MeasurementApproved(measurement, label);
    }

    /// @inheritdoc ITeeRegistry
    function revokeMeasurement(bytes32 measurement) external override onlyRole(GOVERNANCE_ROLE) {
        if (!_approved[measurement]) revert TeeMeasurementNotApproved(measurement);
        _approved[measurement] = false;
        emit MeasurementRevoked(measurement);
    }

    /// @inheritdoc ITeeRegistry
    function setVerifier(address verifier_) external override onlyRole(GOVERNANCE_ROLE) {
        _setVerifier(verifier_);
    }

    /// @inheritdoc ITeeRegistry
    function setRegistrationTtl(uint256 ttl) external override onlyRole(GOVERNANCE_ROLE) {
        _setRegistrationTtl(ttl);
    }

    /*//////////////////////////////////////////////////////////////
                                 NODES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ITeeRegistry
    function registerEnclave(
        address node,
        address enclaveKey,
        bytes32 measurement,
        bytes calldata attestation
    ) external override {
        // Checks: the caller controls an active VERIFIER node, the key is free, the image approved, and the
        // verifier accepts the attestation (a view call: nothing can re-enter).
        if (enclaveKey == address(0)) revert TeeZeroAddress();
        INodeStakingCore.Role role = _STAKING.roleOf(node);
        if (role != INodeStakingCore.Role.VERIFIER) revert TeeNotVerifierNode(node, role);
        _checkController(node);
        if (!_STAKING.isActive(node)) revert TeeNodeNotActive(node);
        address owner = _enclaves[enclaveKey].node;
        if (owner != address(0) && owner != node) revert TeeEnclaveTaken(enclaveKey, owner);
        if (!_approved[measurement]) revert TeeMeasurementNotApproved(measurement);
        bytes32 documentHash = _verifier.verifyAttestation(node, enclaveKey, measurement, attestation);

        // Effects
        uint40 expiresAt = uint40(block.timestamp + _registrationTtl);
        _enclaves[enclaveKey] = Enclave({node: node, expiresAt: expiresAt, measurement: measurement});
        emit EnclaveRegistered(enclaveKey, node, measurement, documentHash, expiresAt);
    }

    /// @inheritdoc ITeeRegistry
    function heartbeat(address enclaveKey) external override {
        // Checks
        Enclave storage e = _enclaves[enclaveKey];
        address node = e.node;
        if (node == address(0)) revert TeeUnknownEnclave(enclaveKey);
        if (msg.sender != enclaveKey) _checkController(node);
        if (!_approved[e.measurement]) revert TeeMeasurementNotApproved(e.measurement);

        // Effects
        uint40 expiresAt = uint40(block.timestamp + _registrationTtl);
        e.expiresAt = expiresAt;
        emit EnclaveHeartbeat(enclaveKey, expiresAt);
    }

    /// @inheritdoc ITeeRegistry
    function deregisterEnclave(address enclaveKey) external override {
        address node = _enclaves[enclaveKey].node;
        if (node == address(0)) revert TeeUnknownEnclave(enclaveKey);
        _checkController(node);
        delete _enclaves[enclaveKey];
        emit EnclaveDeregistered(enclaveKey, node);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ITeeRegistryCore
    function isActiveEnclave(address enclaveKey) external view override returns (bool) {
        Enclave storage e = _enclaves[enclaveKey];
        address node = e.node;
        if (node == address(0) || block.timestamp >= e.expiresAt || !_approved[e.measurement]) return false;
        return _STAKING.isActive(node);
    }

    /// @inheritdoc ITeeRegistryCore
    function nodeOfEnclave(address enclaveKey) external view override returns (address) {
        return _enclaves[enclaveKey].node;
    }

    /// @inheritdoc ITeeRegistry
    function staking() external view override returns (address) {
        return address(_STAKING);
    }

    /// @inheritdoc ITeeRegistry
    function verifier() external view override returns (address) {
        return address(_verifier);
    }

    /// @inheritdoc ITeeRegistry
    function registrationTtl() external view override returns (uint256) {
        return _registrationTtl;
    }

    /// @inheritdoc ITeeRegistry
    function isMeasurementApproved(bytes32 measurement) external view override returns (bool) {
        return _approved[measurement];
    }

    /// @inheritdoc ITeeRegistry
    function getEnclave(address enclaveKey) external view override returns (Enclave memory) {
        return _enclaves[enclaveKey];
    }

    /// @inheritdoc ITeeRegistry
    function measurementOf(
        bytes calldata pcr0,
        bytes calldata pcr1,
        bytes calldata pcr2
    ) external pure override returns (bytes32) {
        if (pcr0.length != _PCR_LENGTH) revert TeeInvalidPcrLength(0, pcr0.length);
        if (pcr1.length != _PCR_LENGTH) revert TeeInvalidPcrLength(1, pcr1.length);
        if (pcr2.length != _PCR_LENGTH) revert TeeInvalidPcrLength(2, pcr2.length);
        return keccak256(abi.encodePacked(pcr0, pcr1, pcr2));
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _setVerifier(address verifier_) private {
        if (verifier_ == address(0)) revert TeeZeroAddress();
        _verifier = IAttestationVerifier(verifier_);
        emit VerifierSet(verifier_);
    }

    function _setRegistrationTtl(uint256 ttl) private {
        if (ttl == 0 || ttl > MAX_REGISTRATION_TTL) revert TeeInvalidRegistrationTtl(ttl);
        _registrationTtl = uint40(ttl);
        emit RegistrationTtlSet(ttl);
    }

    function _checkController(address node) private view {
        if (msg.sender != _STAKING.operatorOf(node) && msg.sender != _STAKING.signerOf(node)) {
            revert TeeNotNodeController(node, msg.sender);
        }
    }
}
