// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {INodeStakingCore} from "../interfaces/INodeStakingCore.sol";

/// @title MockNodeStaking
/// @notice Test double of NodeStaking's core: roles, signers, activity and stakes are set directly; `slash` only
///         accepts registered slashers, takes `bps` of the node's stake, and records every call.
contract MockNodeStaking is INodeStakingCore {
    /// @notice One recorded `slash` call.
    struct SlashCall {
        address node;
        uint256 bps;
        address reporter;
        bool jail;
        bytes32 evidenceHash;
        uint256 slashed;
    }

    struct Node {
        Role role;
        address signer;
        bool active;
        uint256 stake;
    }

    /// @notice Emitted for every accepted slash.
    event Slashed(
        address indexed node,
        uint256 bps,
        address indexed reporter,
        bool jail,
        bytes32 evidenceHash
    );

    /// @notice The caller is not a registered slasher.
    error MockNotSlasher(address caller);

    /// @notice Slash basis points outside 1..10,000.
    error MockInvalidBps(uint256 bps);

    mapping(address node => Node record) private _nodes;
    mapping(address signer => address node) private _nodeOfSigner;
    /// @dev When each former signer was rotated away (0: never a former signer of that node).
    mapping(address node => mapping(address signer => uint256 rotatedAt)) private _formerSigners;
    mapping(address node => address payee) private _payees;
    mapping(address slasher => bool allowed) public isSlasher;
    /// @notice What `minStake` answers for every role but NONE (0 unless set).
    uint256 public minimumStake;
    SlashCall[] private _slashes;

    /// @notice Sets everything about a node at once (replaces its previous signer's mapping).
    function setNode(address node, Role role, address signer, bool active, uint256 stake) external {
        delete _nodeOfSigner[_nodes[node].signer];
        _nodes[node] = Node({role: role, signer: signer, active: active, stake: stake});
        if (signer != address(0)) _nodeOfSigner[signer] = node;
    }

    /// @notice Sets what `minStake` answers.
    function setMinimumStake(uint256 minimum) external {
        minimumStake = minimum;
    }

    /// @notice Marks a node active or not (jailed, unbonded, under-staked).
    function setActive(address node, bool active) external {
        _nodes[node].active = active;
    }

    /// @notice Rotates a node's signer now (the old one stays a former signer until now, as in NodeStaking).
    function setSigner(address node, address signer) external {
        _formerSigners[node][_nodes[node].signer] = block.timestamp;
        delete _nodeOfSigner[_nodes[node].signer];
        _nodes[node].signer = signer;
        if (signer != address(0)) _nodeOfSigner[signer] = node;
    }

    /// @notice Sets where the node's fees go (zero: nowhere set, `payeeOf` answers zero too).
    function setPayee(address node, address payee) external {
        _payees[node] = payee;
    }

    /// @notice Allows or forbids a slasher contract.
    function setSlasher(address slasher, bool allowed) external {
        isSlasher[slasher] = allowed;
    }

    /// @inheritdoc INodeStakingCore
    function roleOf(address node) external view returns (Role) {
        return _nodes[node].role;
    }

    /// @inheritdoc INodeStakingCore
    function signerOf(address node) external view returns (address) {
        return _nodes[node].signer;
    }

    /// @inheritdoc INodeStakingCore
    function nodeOfSigner(address signer) external view returns (address) {
        return _nodeOfSigner[signer];
    }

    /// @inheritdoc INodeStakingCore
    function wasSignerOf(address node, address signer) external view returns (bool) {
        return signer != address(0) && (_nodes[node].signer == signer || _formerSigners[node][signer] != 0);
    }

    /// @inheritdoc INodeStakingCore
    function signerStatus(
        address node,
        address signer,
        uint256 at
    ) external view returns (Role role, bool valid) {
        role = _nodes[node].role;
        if (signer == address(0)) return (role, false);
        uint256 rotatedAt = _formerSigners[node][signer];
        valid = _nodes[node].signer == signer || (rotatedAt != 0 && at < rotatedAt);
    }

    /// @inheritdoc INodeStakingCore
    function payeeOf(address node) external view returns (address) {
        return _payees[node];
    }

    /// @inheritdoc INodeStakingCore
    function isActive(address node) external view returns (bool) {
        return _nodes[node].active;
    }

    /// @notice The node's remaining stake.
    function stakeOf(address node) external view returns (uint256) {
        return _nodes[node].stake;
    }

    /// @inheritdoc INodeStakingCore
    function activeStakeOf(address node) external view returns (uint256) {
        return _nodes[node].stake;
    }

    /// @inheritdoc INodeStakingCore
    function minStake(Role role) external view returns (uint256) {
        return role == Role.NONE ? 0 : minimumStake;
    }

    /// @inheritdoc INodeStakingCore
    function slash(
        address node,
        uint256 bps,
        address reporter,
        bool jail,
        bytes32 evidenceHash
    ) external returns (uint256 slashed) {
        if (!isSlasher[msg.sender]) revert MockNotSlasher(msg.sender);
        if (bps == 0 || bps > 10_000) revert MockInvalidBps(bps);
        Node storage record = _nodes[node];
        slashed = (record.stake * bps) / 10_000;
        record.stake -= slashed;
        if (jail) record.active = false;
        _slashes.push(SlashCall(node, bps, reporter, jail, evidenceHash, slashed));
        emit Slashed(node, bps, reporter, jail, evidenceHash);
    }

    /// @notice The number of recorded slashes.
    function slashCount() external view returns (uint256) {
        return _slashes.length;
    }

    /// @notice The recorded slash at `index`.
    function slashAt(uint256 index) external view returns (SlashCall memory) {
        return _slashes[index];
    }
}
