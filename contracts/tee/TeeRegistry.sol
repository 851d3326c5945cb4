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
///         A key is bound to its node for good (registered once, never deleted or reassigned), so evidence of what
///         it signed always reaches the node that held it.
contract TeeRegistry is ITeeRegistry, AccessControl {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @dev One slot: everything `isActiveEnclave` needs of the key itself.
    struct EnclaveSlot {
        address node;
        uint40 expiresAt; // 0 once deregistered
        uint40 registeredAt;
        uint16 measurementId;
    }

    /// @dev Slot 0: the measurement; slot 1: its state (the one `isActiveEnclave` reads).
    struct MeasurementRecord {
        bytes32 measurement;
        bool approved;
        bool revokedForCause;
        uint40 revokedAt;
    }

    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Approves and revokes measurements, sets the verifier and the registration lifetime.
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice The longest a registration or heartbeat keeps an enclave fresh.
    uint256 public constant MAX_REGISTRATION_TTL = 30 days;

    uint256 private constant _PCR_LENGTH = 48;

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    INodeStaking private immutable _STAKING;

    IAttestationVerifier private _verifier;
    uint40 private _registrationTtl;
    uint16 private _measurementCount;
    mapping(bytes32 measurement => uint16 id) private _measurementIds;
    mapping(uint16 id => MeasurementRecord record) private _measurements;
    mapping(address enclaveKey => EnclaveSlot registration) private _enclaves;
    mapping(address enclaveKey => uint40 deregisteredAt) private _deregisteredAt;
    /// @dev Every approval and revocation of a measurement, in time order (approved, revoked, approved, ...): the
    ///      image was approved at time t exactly when an odd number of them happened at or before t. Written only
    ///      by governance; read only by `accountableNodeOf` (the evidence paths), never by `isActiveEnclave`.
    mapping(uint16 id => uint40[] changedAt) private _approvalChanges;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

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
        // Checks
        if (measurement == bytes32(0)) revert TeeZeroMeasurement();
        uint16 id = _measurementIds[measurement];
        MeasurementRecord storage m = _measurements[id];
        if (id != 0) {
            if (m.revokedForCause) revert TeeMeasurementRevokedForCause(measurement);
            if (m.approved) revert TeeMeasurementAlreadyApproved(measurement);
        }

        // Effects: a first approval gives the image its id (what an enclave's one-slot record points at).
        if (id == 0) {
            if (_measurementCount == type(uint16).max) revert TeeTooManyMeasurements(type(uint16).max);
            id = ++_measurementCount;
            _measurementIds[measurement] = id;
            m = _measurements[id];
            m.measurement = measurement;
        }
        m.approved = true;
        m.revokedAt = 0;
        _approvalChanges[id].push(uint40(block.timestamp));
        emit MeasurementApproved(measurement, label);
    }

    /// @inheritdoc ITeeRegistry
    function revokeMeasurement(
        bytes32 measurement,
        bool forCause
    ) external override onlyRole(GOVERNANCE_ROLE) {
        // Checks: approved, or retired and now found broken (a retirement can still be escalated to a cause).
        uint16 id = _measurementIds[measurement];
        MeasurementRecord storage m = _measurements[id];
        bool escalation = id != 0 && !m.approved && forCause && !m.revokedForCause;
        if (id == 0 || (!m.approved && !escalation)) revert TeeMeasurementNotApproved(measurement);

        // Effects: an escalation changes no approval window (the image was retired already).
        if (!escalation) _approvalChanges[id].push(uint40(block.timestamp));
        m.approved = false;
        if (forCause) m.revokedForCause = true;
        if (m.revokedAt == 0) m.revokedAt = uint40(block.timestamp);
        emit MeasurementRevoked(measurement, forCause);
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
        // Checks: the caller controls an active VERIFIER node, the key never registered, the image is approved, and
        // the verifier accepts the attestation (a view call: nothing can re-enter).
        if (enclaveKey == address(0)) revert TeeZeroAddress();
        INodeStakingCore.Role role = _STAKING.roleOf(node);
        if (role != INodeStakingCore.Role.VERIFIER) revert TeeNotVerifierNode(node, role);
        _checkController(node);
        if (!_STAKING.isActive(node)) revert TeeNodeNotActive(node);
        address owner = _enclaves[enclaveKey].node;
        if (owner != address(0)) revert TeeEnclaveTaken(enclaveKey, owner);
        uint16 id = _measurementIds[measurement];
        if (id == 0 || !_measurements[id].approved) revert TeeMeasurementNotApproved(measurement);
        bytes32 documentHash = _verifier.verifyAttestation(node, enclaveKey, measurement, attestation);

        // Effects: the key is the node's from now on, for good.
        uint40 expiresAt = uint40(block.timestamp + _registrationTtl);
        _enclaves[enclaveKey] = EnclaveSlot({
            node: node,
            expiresAt: expiresAt,
            registeredAt: uint40(block.timestamp),
            measurementId: id
        });
        emit EnclaveRegistered(enclaveKey, node, measurement, documentHash, expiresAt);
    }

    /// @inheritdoc ITeeRegistry
    function renewEnclave(address enclaveKey, bytes calldata attestation) external override {
        // Checks: a live registration, a controller, the image still approved, a fresh attestation of it.
        EnclaveSlot storage e = _liveEnclave(enclaveKey);
        address node = e.node;
        if (msg.sender != enclaveKey) _checkController(node);
        MeasurementRecord storage m = _measurements[e.measurementId];
        if (!m.approved) revert TeeMeasurementNotApproved(m.measurement);
        bytes32 documentHash = _verifier.verifyAttestation(node, enclaveKey, m.measurement, attestation);

        // Effects
        uint40 expiresAt = uint40(block.timestamp + _registrationTtl);
        e.expiresAt = expiresAt;
        emit EnclaveRegistered(enclaveKey, node, m.measurement, documentHash, expiresAt);
    }

    /// @inheritdoc ITeeRegistry
    function heartbeat(address enclaveKey) external override {
        // Checks
        EnclaveSlot storage e = _liveEnclave(enclaveKey);
        if (msg.sender != enclaveKey) _checkController(e.node);
        MeasurementRecord storage m = _measurements[e.measurementId];
        if (!m.approved) revert TeeMeasurementNotApproved(m.measurement);

        // Effects
        uint40 expiresAt = uint40(block.timestamp + _registrationTtl);
        e.expiresAt = expiresAt;
        emit EnclaveHeartbeat(enclaveKey, expiresAt);
    }

    /// @inheritdoc ITeeRegistry
    function deregisterEnclave(address enclaveKey) external override {
        // Checks
        EnclaveSlot storage e = _liveEnclave(enclaveKey);
        address node = e.node;
        _checkController(node);

        // Effects: inactive from now on; the binding to the node stays.
        e.expiresAt = 0;
        _deregisteredAt[enclaveKey] = uint40(block.timestamp);
        emit EnclaveDeregistered(enclaveKey, node);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ITeeRegistryCore
    function isActiveEnclave(address enclaveKey) external view override returns (bool) {
        EnclaveSlot storage e = _enclaves[enclaveKey];
        address node = e.node;
        if (
            node == address(0) || block.timestamp >= e.expiresAt || !_measurements[e.measurementId].approved
        ) {
            return false;
        }
        return _STAKING.isActive(node);
    }

    /// @inheritdoc ITeeRegistryCore
    function nodeOfEnclave(address enclaveKey) external view override returns (address) {
        return _enclaves[enclaveKey].node;
    }

    /// @inheritdoc ITeeRegistryCore
    function accountableNodeOf(
        address enclaveKey,
        uint256 signedAt
    ) external view override returns (address) {
        EnclaveSlot storage e = _enclaves[enclaveKey];
        address node = e.node;
        if (node == address(0) || signedAt < e.registeredAt) return address(0);
        uint256 deregisteredAt = _deregisteredAt[enclaveKey];
        if (deregisteredAt != 0 && signedAt >= deregisteredAt) return address(0);
        uint16 id = e.measurementId;
        if (_measurements[id].revokedForCause) return address(0);
        if (!_wasApprovedAt(id, signedAt)) return address(0);
        return node;
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
        uint16 id = _measurementIds[measurement];
        return id != 0 && _measurements[id].approved;
    }

    /// @inheritdoc ITeeRegistry
    function measurementStatus(bytes32 measurement) external view override returns (Measurement memory) {
        uint16 id = _measurementIds[measurement];
        if (id == 0) return Measurement({approved: false, revokedForCause: false, revokedAt: 0});
        MeasurementRecord storage m = _measurements[id];
        return
            Measurement({approved: m.approved, revokedForCause: m.revokedForCause, revokedAt: m.revokedAt});
    }

    /// @inheritdoc ITeeRegistry
    function getEnclave(address enclaveKey) external view override returns (Enclave memory) {
        EnclaveSlot storage e = _enclaves[enclaveKey];
        return
            Enclave({
                node: e.node,
                expiresAt: e.expiresAt,
                registeredAt: e.registeredAt,
                deregisteredAt: _deregisteredAt[enclaveKey],
                measurement: e.node == address(0) ? bytes32(0) : _measurements[e.measurementId].measurement
            });
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

    /// @dev The registration of a key that registered and was not deregistered.
    function _liveEnclave(address enclaveKey) private view returns (EnclaveSlot storage e) {
        e = _enclaves[enclaveKey];
        if (e.node == address(0)) revert TeeUnknownEnclave(enclaveKey);
        uint256 deregisteredAt = _deregisteredAt[enclaveKey];
        if (deregisteredAt != 0) revert TeeEnclaveDeregistered(enclaveKey, deregisteredAt);
    }

    /// @dev Whether the measurement was approved at `t`: an odd number of approval changes at or before `t`
    ///      (binary search over the sorted change times; one or two entries in practice).
    function _wasApprovedAt(uint16 id, uint256 t) private view returns (bool) {
        uint40[] storage changes = _approvalChanges[id];
        uint256 low = 0;
        uint256 high = changes.length;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            if (changes[mid] <= t) low = mid + 1;
            else high = mid;
        }
        return low % 2 == 1;
    }

    function _checkController(address node) private view {
        if (msg.sender != _STAKING.operatorOf(node) && msg.sender != _STAKING.signerOf(node)) {
            revert TeeNotNodeController(node, msg.sender);
        }
    }
}
