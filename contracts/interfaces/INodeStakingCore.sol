// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title INodeStakingCore
/// @notice The part of NodeStaking that other protocol contracts (TeeRegistry, InferenceLedger) rely on.
///         NodeStaking's full interface (INodeStaking) extends this one.
/// @dev A node is identified by an address chosen at registration (its node id). The operator owns the
///      stake; the signer is the node's hot key, rotatable by the operator, that signs receipts.
interface INodeStakingCore {
    /// @notice What a node does in the network.
    enum Role {
        NONE,
        INFERENCE, // GPU node: runs models and signs receipts
        VERIFIER // TEE node: runs an enclave that re-executes and signs batches
    }

    /// @notice Slashes `bps` basis points of everything the node has at stake (active and unbonding).
    /// @dev Only registered slasher contracts (objective evidence checked on chain) may call.
    /// @param node The node to slash.
    /// @param bps Basis points (1..10_000) of active and each unbonding entry.
    /// @param reporter Receives the reporter bounty.
    /// @param jail Whether the node is jailed as well.
    /// @param evidenceHash A hash identifying the evidence, recorded in the event.
    /// @return slashed The total amount taken from the node.
    function slash(
        address node,
        uint256 bps,
        address reporter,
        bool jail,
        bytes32 evidenceHash
    ) external returns (uint256 slashed);

    /// @notice The node's role (NONE for an unknown node).
    function roleOf(address node) external view returns (Role);

    /// @notice The node's current signer key (zero for an unknown node).
    function signerOf(address node) external view returns (address);

    /// @notice The node that the signer key currently belongs to (zero if none, or if it was rotated away).
    function nodeOfSigner(address signer) external view returns (address);

    /// @notice True when `signer` is, or ever was, the node's signer. A key belongs to one node for good: it is
    ///         registered once and never given to another node, even after a rotation.
    function wasSignerOf(address node, address signer) external view returns (bool);

    /// @notice The node's role, and whether `signer` was the node's signer at time `at`: its current signer, or a
    ///         former one that was rotated away after `at`. Evidence signed by a former key counts only for
    ///         statements dated before the rotation, so a leaked old key cannot make new offences.
    /// @return role The node's role (NONE for an unknown node).
    /// @return valid True when the key belonged to the node at `at`.
    function signerStatus(
        address node,
        address signer,
        uint256 at
    ) external view returns (Role role, bool valid);

    /// @notice Where the node's fees are paid: the payee its operator set, else the operator.
    function payeeOf(address node) external view returns (address);

    /// @notice True when the node is registered, not jailed, not exited and its active stake is at least
    ///         its role's minimum.
    function isActive(address node) external view returns (bool);

    /// @notice The node's active stake (not unbonding, after slashes).
    function activeStakeOf(address node) external view returns (uint256);

    /// @notice A role's minimum stake (0 for NONE): the least active stake a node of the role must hold to be active.
    function minStake(Role role) external view returns (uint256);
}
