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

    /// @notice A registered enclave key. `expiresAt` is 0 once the key is deregistered (`deregisteredAt`).
    struct Enclave {
        address node;
        uint256 expiresAt;
        uint256 registeredAt;
        uint256 deregisteredAt;
        bytes32 measurement;
    }

    /// @notice What governance decided about an image. A measurement revoked for cause (a broken image) voids
    ///         everything its enclaves ever signed and can never be approved again; one retired without cause only
    ///         stops new work from `revokedAt` on.
    struct Measurement {
        bool approved;
        bool revokedForCause;
        uint256 revokedAt;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Governance approved an enclave image.
    event MeasurementApproved(bytes32 indexed measurement, string label);
    /// @notice Governance revoked an enclave image; every enclave running it is inactive from now on. `forCause`:
    ///         the image is broken, and nothing its enclaves signed counts as evidence any more.
    event MeasurementRevoked(bytes32 indexed measurement, bool forCause);
    /// @notice The attestation verifier changed (applies to new registrations).
    event VerifierSet(address indexed verifier);
    /// @notice The registration lifetime changed (applies to new registrations and heartbeats).
    event RegistrationTtlSet(uint256 ttl);
    /// @notice An enclave key was registered with a checked attestation, or renewed with a fresh one.
    event EnclaveRegistered(
        address indexed enclaveKey,
        address indexed node,
        bytes32 indexed measurement,
        bytes32 documentHash,
        uint256 expiresAt
    );
    /// @notice An enclave's registration was renewed.
    event EnclaveHeartbeat(address indexed enclaveKey, uint256 expiresAt);
    /// @notice An enclave key was retired by its node; it stays bound to the node for good.
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
    /// @notice The enclave key has registered before (to `node`): a key registers once, for one node.
    error TeeEnclaveTaken(address enclaveKey, address node);
    /// @notice The enclave key is not registered.
    error TeeUnknownEnclave(address enclaveKey);
    /// @notice The enclave key was deregistered at `deregisteredAt` and cannot be used again.
    error TeeEnclaveDeregistered(address enclaveKey, uint256 deregisteredAt);
    /// @notice The measurement was revoked for cause and can never be approved again.
    error TeeMeasurementRevokedForCause(bytes32 measurement);
    /// @notice Every one of the `max` measurement ids is taken.
    error TeeTooManyMeasurements(uint256 max);
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
    /// @param forCause True for a broken image: what its enclaves signed no longer counts as evidence, and it can
    ///        never be approved again. False retires it: evidence signed before now stays valid.
    function revokeMeasurement(bytes32 measurement, bool forCause) external;

    /// @notice Sets the attestation verifier. Only GOVERNANCE_ROLE.
    function setVerifier(address verifier) external;

    /// @notice Sets how long a registration or heartbeat keeps an enclave fresh. Only GOVERNANCE_ROLE.
    function setRegistrationTtl(uint256 ttl) external;

    /*//////////////////////////////////////////////////////////////
                                 NODES
    //////////////////////////////////////////////////////////////*/

    /// @notice Registers `enclaveKey` for the VERIFIER node `node`, binding it to that node for good.
    /// @dev Callable by the node's operator or signer. The node must be active, the measurement approved and the
    ///      attestation accepted by the verifier. The key must never have registered before.
    function registerEnclave(
        address node,
        address enclaveKey,
        bytes32 measurement,
        bytes calldata attestation
    ) external;

    /// @notice Renews a registration with a fresh attestation of the same key and image, for another
    ///         `registrationTtl`. Callable by the enclave key itself or the node's operator or signer.
    function renewEnclave(address enclaveKey, bytes calldata attestation) external;

    /// @notice Renews a registration for another `registrationTtl`. Callable by the enclave key itself or the
    ///         node's operator or signer, while the measurement is approved.
    function heartbeat(address enclaveKey) external;

    /// @notice Retires an enclave key: inactive from now on, still bound to its node, never usable again. What it
    ///         signed before stays valid evidence. Callable by the node's operator or signer.
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

    /// @notice Governance's record of a measurement.
    function measurementStatus(bytes32 measurement) external view returns (Measurement memory);

    /// @notice The registration of an enclave key (all zero if none).
    function getEnclave(address enclaveKey) external view returns (Enclave memory);

    /// @notice keccak256(PCR0 ‖ PCR1 ‖ PCR2) of an AWS Nitro image; each PCR must be 48 bytes.
    function measurementOf(
        bytes calldata pcr0,
        bytes calldata pcr1,
        bytes calldata pcr2
    ) external pure returns (bytes32);
}
