// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IContributorRewards} from "../interfaces/IContributorRewards.sol";

/// @title ContributorRewards
/// @notice Cumulative Merkle distributor with a timelocked, guardian-revocable root. See IContributorRewards.
/// @dev ReentrancyGuardTransient is OpenZeppelin's ReentrancyGuard on EIP-1153 transient storage (same
///      guarantee, ~5k less gas per claim).
contract ContributorRewards is IContributorRewards, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ----------------------------------------------------------------------------------------------------
    // Constants and immutables
    // ----------------------------------------------------------------------------------------------------

    /// @inheritdoc IContributorRewards
    bytes32 public constant UPDATER_ROLE = keccak256("UPDATER_ROLE");
    /// @inheritdoc IContributorRewards
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    /// @inheritdoc IContributorRewards
    uint64 public constant MAX_DELAY = 30 days;
    /// @inheritdoc IContributorRewards
    IERC20 public immutable TOKEN;

    // ----------------------------------------------------------------------------------------------------
    // Storage
    // ----------------------------------------------------------------------------------------------------

    RewardsRoot private _current;
    RewardsRoot private _pending;
    uint64 private _delay;
    uint256 private _totalClaimed;
    mapping(address account => uint256 amount) private _claimed;

    // ----------------------------------------------------------------------------------------------------
    // Constructor
    // ----------------------------------------------------------------------------------------------------

    /// @param token The reward token.
    /// @param admin Governance (the TimelockController): DEFAULT_ADMIN_ROLE, sets the delay and the roles.
    /// @param updater Proposes roots.
    /// @param guardian Revokes pending roots.
    /// @param initialDelay Timelock delay in seconds, at most MAX_DELAY.
    constructor(IERC20 token, address admin, address updater, address guardian, uint64 initialDelay) {
        if (
            address(token) == address(0) ||
            admin == address(0) ||
            updater == address(0) ||
            guardian == address(0)
        ) revert RewardsZeroAddress();
        if (initialDelay > MAX_DELAY) revert RewardsDelayTooLong(initialDelay, MAX_DELAY);
        TOKEN = token;
        _delay = initialDelay;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(UPDATER_ROLE, updater);
        _grantRole(GUARDIAN_ROLE, guardian);
        emit DelaySet(0, initialDelay);
    }

    // ----------------------------------------------------------------------------------------------------
    // Roots
    // ----------------------------------------------------------------------------------------------------

    /// @inheritdoc IContributorRewards
    function proposeRoot(
        bytes32 root,
        uint64 epoch,
        uint256 totalCumulative,
        bytes32 dataHash,
        string calldata uri
    ) external onlyRole(UPDATER_ROLE) {
        // Checks
        if (root == bytes32(0)) revert RewardsZeroRoot();
        if (epoch <= _current.epoch) revert RewardsEpochNotIncreasing(epoch, _current.epoch);
        if (totalCumulative < _current.totalCumulative) {
            revert RewardsCumulativeDecreased(totalCumulative, _current.totalCumulative);
        }
        _checkFunded(totalCumulative);

        // Effects
        uint64 validAt = uint64(block.timestamp) + _delay;
        _pending = RewardsRoot({
            root: root,
            epoch: epoch,
            validAt: validAt,
            totalCumulative: totalCumulative,
            dataHash: dataHash,
            uri: uri
        });
        emit RootProposed(epoch, root, totalCumulative, dataHash, uri, validAt);
    }

    /// @inheritdoc IContributorRewards
    function revokePendingRoot() external onlyRole(GUARDIAN_ROLE) {
        RewardsRoot storage pending = _pending;
        if (pending.root == bytes32(0)) revert RewardsNoPendingRoot();
        uint64 epoch = pending.epoch;
        bytes32 root = pending.root;
        delete _pending;
        emit RootRevoked(epoch, root, msg.sender);
    }

    /// @inheritdoc IContributorRewards
    function acceptRoot() external {
        // Checks
        RewardsRoot memory pending = _pending;
        if (pending.root == bytes32(0)) revert RewardsNoPendingRoot();
        if (block.timestamp < pending.validAt)
            revert RewardsTimelockNotElapsed(pending.validAt, block.timestamp);
        _checkFunded(pending.totalCumulative);

        // Effects
        pending.validAt = uint64(block.timestamp);
        _current = pending;
        delete _pending;
        emit RootAccepted(pending.epoch, pending.root, pending.totalCumulative);
    }

    /// @inheritdoc IContributorRewards
    function setDelay(uint64 newDelay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newDelay > MAX_DELAY) revert RewardsDelayTooLong(newDelay, MAX_DELAY);
        uint64 oldDelay = _delay;
        _delay = newDelay;
        emit DelaySet(oldDelay, newDelay);
    }

    // ----------------------------------------------------------------------------------------------------
    // Claims
    // ----------------------------------------------------------------------------------------------------

    /// @inheritdoc IContributorRewards
    function claim(
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external nonReentrant returns (uint256 amount) {
        bytes32 root = _current.root;
        if (root == bytes32(0)) revert RewardsNoRoot();
        amount = _claim(root, account, cumulativeAmount, proof, true);
    }

    /// @inheritdoc IContributorRewards
    function claimMany(
        address[] calldata accounts,
        uint256[] calldata cumulativeAmounts,
        bytes32[][] calldata proofs
    ) external nonReentrant returns (uint256 total) {
        uint256 count = accounts.length;
        if (cumulativeAmounts.length != count || proofs.length != count) {
            revert RewardsLengthMismatch(count, cumulativeAmounts.length, proofs.length);
        }
        bytes32 root = _current.root;
        if (root == bytes32(0)) revert RewardsNoRoot();
        for (uint256 i = 0; i < count; ++i) {
            total += _claim(root, accounts[i], cumulativeAmounts[i], proofs[i], false);
        }
    }

    // ----------------------------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------------------------

    /// @inheritdoc IContributorRewards
    function delay() external view returns (uint64) {
        return _delay;
    }

    /// @inheritdoc IContributorRewards
    function currentRoot() external view returns (RewardsRoot memory) {
        return _current;
    }

    /// @inheritdoc IContributorRewards
    function pendingRoot() external view returns (RewardsRoot memory) {
        return _pending;
    }

    /// @inheritdoc IContributorRewards
    function claimed(address account) external view returns (uint256) {
        return _claimed[account];
    }

    /// @inheritdoc IContributorRewards
    function totalClaimed() external view returns (uint256) {
        return _totalClaimed;
    }

    /// @inheritdoc IContributorRewards
    function funded() public view returns (uint256) {
        return TOKEN.balanceOf(address(this)) + _totalClaimed;
    }

    // ----------------------------------------------------------------------------------------------------
    // Internal
    // ----------------------------------------------------------------------------------------------------

    /// @dev Verifies the leaf, records the claim and pays the difference. When the account already received
    ///      `cumulativeAmount` or more: reverts if `strict`, else returns 0 and changes nothing.
    function _claim(
        bytes32 root,
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof,
        bool strict
    ) private returns (uint256 amount) {
        // Checks
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf))
            revert RewardsInvalidProof(account, cumulativeAmount);
        uint256 already = _claimed[account];
        if (cumulativeAmount <= already) {
            if (strict) revert RewardsNothingToClaim(account, cumulativeAmount, already);
            return 0;
        }

        // Effects
        unchecked {
            // cumulativeAmount > already, checked above.
            amount = cumulativeAmount - already;
        }
        _claimed[account] = cumulativeAmount;
        // Cannot overflow: every amount added here is transferred out of this contract below (or the whole
        // call reverts), so the sum is bounded by the token's total supply.
        unchecked {
            _totalClaimed += amount;
        }
        emit Claimed(account, amount, cumulativeAmount);

        // Interactions
        TOKEN.safeTransfer(account, amount);
    }

    /// @dev Reverts unless `totalCumulative` fits what the contract holds plus what it already paid.
    function _checkFunded(uint256 totalCumulative) private view {
        uint256 available = funded();
        if (totalCumulative > available) revert RewardsUnderfunded(totalCumulative, available);
    }
}
