// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IContributorRewards} from "../interfaces/IContributorRewards.sol";
import {IVestingVault} from "../interfaces/IVestingVault.sol";
import {RewardsMerkle} from "./RewardsMerkle.sol";

/// @title ContributorRewards
/// @notice Cumulative Merkle distributor with a timelocked, guardian-revocable root, funded by a VestingVault
///         schedule (the rewards pool) and deposits. See IContributorRewards.
/// @dev A claim reads the root and the account's claimed amount and writes only the latter: funding is
///      counted on the way in (`_deposits`, the vault's `released`), so no running outflow total is kept.
///      ReentrancyGuardTransient is OpenZeppelin's ReentrancyGuard on EIP-1153 transient storage.
contract ContributorRewards is IContributorRewards, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ----------------------------------------------------------------------------------------------------
    // Types
    // ----------------------------------------------------------------------------------------------------

    /// @dev What an account has received, wrapped in a struct so a claim hashes the mapping key once and
    ///      reads and writes through one storage pointer (~70 gas less than indexing the mapping twice).
    struct Received {
        uint256 amount;
    }

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
    IVestingVault private _vault;
    uint256 private _scheduleId;
    uint256 private _releasedAtBinding;
    uint256 private _deposits;
    mapping(address account => Received received) private _claimed;

    // ----------------------------------------------------------------------------------------------------
    // Constructor
    // ----------------------------------------------------------------------------------------------------

    /// @param token The reward token.
    /// @param admin Governance (the TimelockController): DEFAULT_ADMIN_ROLE, binds the rewards pool, sets the
    ///        delay and the roles.
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
    // Funding
    // ----------------------------------------------------------------------------------------------------

    /// @inheritdoc IContributorRewards
    function fund(uint256 amount) external nonReentrant {
        // Checks
        if (amount == 0) revert RewardsZeroAmount();

        // Effects
        _deposits += amount;
        emit Funded(msg.sender, amount);

        // Interactions
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IContributorRewards
    function bindSchedule(IVestingVault vault, uint256 scheduleId) external onlyRole(DEFAULT_ADMIN_ROLE) {
        // Checks (the vault calls are views)
        IVestingVault bound = _vault;
        if (address(bound) != address(0)) revert RewardsScheduleAlreadyBound(bound, _scheduleId);
        if (address(vault) == address(0)) revert RewardsZeroAddress();
        address vaultToken = vault.TOKEN();
        if (vaultToken != address(TOKEN)) revert RewardsVaultTokenMismatch(vaultToken, TOKEN);
        IVestingVault.Schedule memory schedule = vault.getSchedule(scheduleId);
        if (schedule.beneficiary != address(this)) {
            revert RewardsNotScheduleBeneficiary(scheduleId, schedule.beneficiary);
        }

        // Effects
        _vault = vault;
        _scheduleId = scheduleId;
        _releasedAtBinding = schedule.released;
        emit ScheduleBound(vault, scheduleId, schedule.released);
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
    ) external onlyRole(UPDATER_ROLE) nonReentrant {
        // Checks
        if (root == bytes32(0)) revert RewardsZeroRoot();
        uint64 currentEpoch = _current.epoch;
        if (epoch <= currentEpoch) revert RewardsEpochNotIncreasing(epoch, currentEpoch);
        uint256 currentTotal = _current.totalCumulative;
        if (totalCumulative < currentTotal) revert RewardsCumulativeDecreased(totalCumulative, currentTotal);
        // What the pool has vested but not yet released counts: it is pulled in below, in this call.
        IVestingVault vault = _vault;
        uint256 scheduleId = _scheduleId;
        uint256 releasable = address(vault) == address(0) ? 0 : vault.releasable(scheduleId);
        _checkFunded(totalCumulative, funded() + releasable);

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

        // Interactions: the vault pays exactly `releasable` (same block) to this contract, its beneficiary.
        if (releasable > 0) vault.release(scheduleId);
    }

    /// @inheritdoc IContributorRewards
    function revokePendingRoot() external onlyRole(GUARDIAN_ROLE) {
        RewardsRoot storage pending = _pending;
        bytes32 root = pending.root;
        if (root == bytes32(0)) revert RewardsNoPendingRoot();
        uint64 epoch = pending.epoch;
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
        // Cannot fail while `funded()` never decreases (see IContributorRewards); kept as the on-chain cap.
        _checkFunded(pending.totalCumulative, funded());

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
        return _claimed[account].amount;
    }

    /// @inheritdoc IContributorRewards
    function deposits() external view returns (uint256) {
        return _deposits;
    }

    /// @inheritdoc IContributorRewards
    function rewardsPool()
        external
        view
        returns (IVestingVault vault, uint256 scheduleId, uint256 releasedAtBinding)
    {
        return (_vault, _scheduleId, _releasedAtBinding);
    }

    /// @inheritdoc IContributorRewards
    function totalClaimed() external view returns (uint256) {
        uint256 inflow = funded();
        uint256 balance = TOKEN.balanceOf(address(this));
        return inflow > balance ? inflow - balance : 0;
    }

    /// @inheritdoc IContributorRewards
    function funded() public view returns (uint256 total) {
        total = _deposits;
        IVestingVault vault = _vault;
        if (address(vault) != address(0)) {
            // `released` only grows and was `_releasedAtBinding` when bound: no underflow.
            total += vault.getSchedule(_scheduleId).released - _releasedAtBinding;
        }
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
        // Checks: the proof first, so a wrong leaf always reverts with RewardsInvalidProof.
        if (!RewardsMerkle.verify(proof, root, RewardsMerkle.leaf(account, cumulativeAmount))) {
            revert RewardsInvalidProof(account, cumulativeAmount);
        }
        Received storage received = _claimed[account];
        uint256 already = received.amount;
        if (cumulativeAmount <= already) {
            if (strict) revert RewardsNothingToClaim(account, cumulativeAmount, already);
            return 0;
        }

        // Effects
        unchecked {
            // cumulativeAmount > already, checked above.
            amount = cumulativeAmount - already;
        }
        received.amount = cumulativeAmount;
        emit Claimed(account, amount, cumulativeAmount);

        // Interactions
        TOKEN.safeTransfer(account, amount);
    }

    /// @dev Reverts unless `totalCumulative` fits `available`.
    function _checkFunded(uint256 totalCumulative, uint256 available) private pure {
        if (totalCumulative > available) revert RewardsUnderfunded(totalCumulative, available);
    }
}
