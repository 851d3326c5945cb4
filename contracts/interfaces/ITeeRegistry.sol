// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ITeeRegistryCore} from "./ITeeRegistryCore.sol";
import {INodeStakingCore} from "./INodeStakingCore.sol";

/// @title ITeeRegistry
/// @notice Enclave measurements approved by governance and the enclave signing keys of VERIFIER nodes.
///         Revoking a measurement disables every enclave running that image at once; a registration expires
///         unless heartbeats renew it.
interface ITeeRegistry is ITeeRegistryCore {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice A registered enclave key.
    struct Enclave {
        address node;
        uint40 expiresAt;
        bytes32 measurement;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Governance approved an enclave image.
    event MeasurementApproved(bytes32 indexed measurement, string label);
    /// @notice Governance revoked an enclave image; every enclave running it is inactive from now on.
    event MeasurementRevoked(bytes32 indexed measurement);
    /// @notice The attestation verifier changed (applies to new registrations).
    event VerifierSet(address indexed verifier);
    /// @notice The registration lifetime changed (applies to new registrations and heartbeats).
    event RegistrationTtlSet(uint256 ttl);
    /// @notice An enclave key was registered (or re-registered) with a checked attestation.
    event EnclaveRegistered(
        address indexed enclaveKey,
        address indexed node,
        bytes32 indexed measurement,
        bytes32 documentHash,
        uint256 expiresAt
    );
    /// @notice An enclave's registration was renewed.
    event EnclaveHeartbeat(address indexed enclaveKey, uint256 expiresAt);
    /// @notice An enclave key was removed by its node.
    event EnclaveDeregistered(address indexed enclaveKey, address indexed node);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice An address argument is zero.
    error TeeZeroAddress();
    /// @notice The measurement is zero.
    error TeeZeroMeasurement();
    /// @notice A PCR is not 48 bytes (SHA-384).
    error TeeInvalidPcrLength(uint256 index, uint256 length);
    /// @notice The measurement is already approved.
    error TeeMeasurementAlreadyApproved(bytes32 measurement);
    /// @notice The measurement is not (or no longer) approved.
    error TeeMeasurementNotApproved(bytes32 measurement);
    /// @notice The caller is neither the node's operator nor its signer (nor, for heartbeats, the enclave key).
    error TeeNotNodeController(address node, address caller);
    /// @notice The node is not a VERIFIER node.
    error TeeNotVerifierNode(address node, INodeStakingCore.Role role);
    /// @notice The node is not active in NodeStaking (unstaked, below minimum, jailed or exited).
    error TeeNodeNotActive(address node);
    /// @notice The enclave key is registered to another node.
    error TeeEnclaveTaken(address enclaveKey, address node);
    /// @notice The enclave key is not registered.
    error TeeUnknownEnclave(address enclaveKey);
    /// @notice The registration lifetime is outside 1 .. MAX_REGISTRATION_TTL.
    error TeeInvalidRegistrationTtl(uint256 ttl);

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @notice Approves an enclave image. Only GOVERNANCE_ROLE.
    /// @param measurement keccak256(PCR0 ‖ PCR1 ‖ PCR2), see `measurementOf`.
    /// @param label A human-readable name (release tag), recorded in the event.
    function approveMeasurement(bytes32 measurement, string calldata label) external;

    /// @notice Revokes an enclave image, disabling every enclave running it. Only GOVERNANCE_ROLE.
    function revokeMeasurement(bytes32 measurement) external;

    /// @notice Sets the attestation verifier. Only GOVERNANCE_ROLE.
    function setVerifier(address verifier) external;

    /// @notice Sets how long a registration or heartbeat keeps an enclave fresh. Only GOVERNANCE_ROLE.
    function setRegistrationTtl(uint256 ttl) external;

    /*//////////////////////////////////////////////////////////////
                                 NODES
    //////////////////////////////////////////////////////////////*/

    /// @notice Registers (or re-registers) `enclaveKey` for the VERIFIER node `node`.
    /// @dev Callable by the node's operator or signer. The node must be active, the measurement approved and the
    ///      attestation accepted by the verifier. The key must not belong to another node.
    function registerEnclave(
        address node,
        address enclaveKey,
        bytes32 measurement,
        bytes calldata attestation
    ) external;

    /// @notice Renews a registration for another `registrationTtl`. Callable by the enclave key itself or the
    ///         node's operator or signer, while the measurement is approved.
    function heartbeat(address enclaveKey) external;

    /// @notice Removes an enclave key. Callable by the node's operator or signer.
    function deregisterEnclave(address enclaveKey) external;

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The NodeStaking contract the registry reads.
    function staking() external view returns (address);

    /// @notice The current attestation verifier.
    function verifier() external view returns (address);

    /// @notice How long a registration or heartbeat keeps an enclave fresh, in seconds.
    function registrationTtl() external view returns (uint256);

    /// @notice Whether the measurement is approved.
    function isMeasurementApproved(bytes32 measurement) external view returns (bool);

    /// @notice The registration of an enclave key (all zero if none).
    function getEnclave(address enclaveKey) external view returns (Enclave memory);

    /// @notice keccak256(PCR0 ‖ PCR1 ‖ PCR2) of an AWS Nitro image; each PCR must be 48 bytes.
    function measurementOf(
        bytes calldata pcr0,
        bytes calldata pcr1,
        bytes calldata pcr2
    ) external pure returns (bytes32);
}
