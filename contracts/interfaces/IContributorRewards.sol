// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IVestingVault} from "./IVestingVault.sol";

/// @title IContributorRewards
/// @notice Cumulative Merkle distributor for data and model contributors. Each epoch an updater proposes a
///         Merkle root over `(address account, uint256 cumulativeAmount)` leaves (OpenZeppelin
///         StandardMerkleTree encoding: `keccak256(bytes.concat(keccak256(abi.encode(account, amount))))`,
///         sorted-pair hashing), where `cumulativeAmount` is everything the account has earned since the
///         first epoch. After a timelock anyone accepts the root; a guardian can revoke it before that.
///         A claim pays the account the difference between its cumulative amount and what it already
///         received, so older proofs stop paying once a newer root is accepted and nothing is paid twice.
/// @dev Funding is counted as it comes in, never as it goes out, so a claim writes nothing but the
///      account's claimed amount:
///      `funded()` = `deposits()` (tokens pulled by `fund`) + what the bound rewards-pool schedule of the
///      VestingVault has released since it was bound (`getSchedule(id).released - releasedAtBinding`).
///      The rewards pool is a VestingVault schedule whose beneficiary governance rotated to this contract
///      (`transferBeneficiary`), then bound here with `bindSchedule`: emissions follow the published vesting
///      calendar. Tokens sent to this contract by plain `transfer` are NOT counted (they cannot be told
///      apart from anything else without an outflow counter); send them through `fund` instead.
///      A root's total cumulative amount can never exceed `funded()`, checked on chain when it is proposed
///      and again when it is accepted. `funded()` never decreases (deposits only add up and the vault's
///      `released` only grows), so a total that fitted once always fits.
interface IContributorRewards {
    /// @notice A root with its metadata.
    /// @param root Merkle root of the epoch's cumulative amounts.
    /// @param epoch Rewards epoch (strictly increasing from root to root).
    /// @param validAt When a pending root may be accepted (for the accepted root: when it was accepted).
    /// @param totalCumulative Sum of all cumulative amounts in the tree.
    /// @param dataHash Hash of the data the tree was computed from (lets anyone recompute the epoch).
    /// @param uri Where the tree and its inputs are published.
    struct RewardsRoot {
        bytes32 root;
        uint64 epoch;
        uint64 validAt;
        uint256 totalCumulative;
        bytes32 dataHash;
        string uri;
    }

    // ----------------------------------------------------------------------------------------------------
    // Events
    // ----------------------------------------------------------------------------------------------------

    /// @notice A root was proposed; it can be accepted from `validAt` on. Replaces any pending root.
    event RootProposed(
        uint64 indexed epoch,
        bytes32 indexed root,
        uint256 totalCumulative,
        bytes32 dataHash,
        string uri,
        uint64 validAt
    );
    /// @notice The guardian revoked the pending root.
    event RootRevoked(uint64 indexed epoch, bytes32 indexed root, address indexed guardian);
    /// @notice The pending root became the accepted (claimable) root.
    event RootAccepted(uint64 indexed epoch, bytes32 indexed root, uint256 totalCumulative);
    /// @notice `account` received `amount`, bringing what it has received to `cumulativeAmount`.
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount);
    /// @notice Governance changed the timelock delay.
    event DelaySet(uint64 oldDelay, uint64 newDelay);
    /// @notice `from` deposited `amount` through `fund`; `deposits()` grew by `amount`.
    event Funded(address indexed from, uint256 amount);
    /// @notice The rewards-pool schedule `scheduleId` of `vault` was bound; its releases from
    ///         `releasedAtBinding` on count as funding.
    event ScheduleBound(IVestingVault indexed vault, uint256 indexed scheduleId, uint256 releasedAtBinding);

    // ----------------------------------------------------------------------------------------------------
    // Errors
    // ----------------------------------------------------------------------------------------------------

    /// @notice An address argument (token, admin, updater, guardian or vault) is zero.
    error RewardsZeroAddress();
    /// @notice The timelock delay is above `MAX_DELAY`.
    error RewardsDelayTooLong(uint64 delay, uint64 maxDelay);
    /// @notice A proposed root is zero.
    error RewardsZeroRoot();
    /// @notice A proposed epoch is not above the accepted root's epoch.
    error RewardsEpochNotIncreasing(uint64 epoch, uint64 currentEpoch);
    /// @notice A proposed total is below the accepted root's total (cumulative amounts never decrease).
    error RewardsCumulativeDecreased(uint256 totalCumulative, uint256 currentTotalCumulative);
    /// @notice A root's total cumulative amount exceeds what the contract was funded with.
    error RewardsUnderfunded(uint256 totalCumulative, uint256 funded);
    /// @notice There is no pending root to accept or revoke.
    error RewardsNoPendingRoot();
    /// @notice The pending root's timelock has not elapsed.
    error RewardsTimelockNotElapsed(uint64 validAt, uint256 timestamp);
    /// @notice No root has been accepted yet.
    error RewardsNoRoot();
    /// @notice The proof does not prove `(account, cumulativeAmount)` against the accepted root.
    error RewardsInvalidProof(address account, uint256 cumulativeAmount);
    /// @notice The account already received `cumulativeAmount` or more.
    error RewardsNothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed);
    /// @notice `claimMany` got arrays of different lengths.
    error RewardsLengthMismatch(uint256 accounts, uint256 cumulativeAmounts, uint256 proofs);
    /// @notice `fund` was called with a zero amount.
    error RewardsZeroAmount();
    /// @notice A rewards-pool schedule is already bound (`scheduleId` of `vault`); binding happens once.
    error RewardsScheduleAlreadyBound(IVestingVault vault, uint256 scheduleId);
    /// @notice The vault vests `vaultToken`, not this contract's reward token.
    error RewardsVaultTokenMismatch(address vaultToken, IERC20 token);
    /// @notice The schedule's beneficiary is `beneficiary`, not this contract: rotate it first.
    error RewardsNotScheduleBeneficiary(uint256 scheduleId, address beneficiary);

    // ----------------------------------------------------------------------------------------------------
    // Funding
    // ----------------------------------------------------------------------------------------------------

    /// @notice Pulls `amount` of the reward token from the caller (who approved it) and counts it as funding.
    /// @dev Anyone. The only way, besides the bound schedule, to add to `funded()`: a plain `transfer` to this
    ///      contract is not counted. Reverts with `RewardsZeroAmount` for 0. The token must not charge
    ///      transfer fees ($OPG does not): the full `amount` is counted.
    /// @param amount Token wei to deposit.
    function fund(uint256 amount) external;

    /// @notice Binds the rewards pool: the VestingVault schedule whose releases fund this contract.
    /// @dev Only DEFAULT_ADMIN_ROLE, once. The schedule's beneficiary must already be this contract (the
    ///      schedule's previous beneficiary calls `vault.transferBeneficiary(scheduleId, address(this))`
    ///      first, ideally in the same governance batch: tokens released to this contract before the binding
    ///      are not counted). Records the schedule's `released` as the baseline. Reverts with
    ///      `RewardsZeroAddress`, `RewardsScheduleAlreadyBound`, `RewardsVaultTokenMismatch`,
    ///      `RewardsNotScheduleBeneficiary`, or the vault's `VestingUnknownSchedule`.
    /// @param vault The VestingVault.
    /// @param scheduleId The rewards-pool schedule's id.
    function bindSchedule(IVestingVault vault, uint256 scheduleId) external;

    // ----------------------------------------------------------------------------------------------------
    // Roots
    // ----------------------------------------------------------------------------------------------------

    /// @notice Proposes the root of `epoch`; it becomes acceptable after `delay()`. Replaces a pending root.
    /// @dev Only UPDATER_ROLE. Reverts when the root is zero, the epoch is not above the accepted epoch, the
    ///      total is below the accepted total, or the total exceeds `funded()` plus what the bound schedule
    ///      can release now. When that releasable amount is above zero, the call then pulls it in
    ///      (`vault.release(scheduleId)`, which pays this contract), so emissions arrive on the calendar.
    /// @param root Merkle root over (account, cumulativeAmount) leaves.
    /// @param epoch The epoch, above the accepted root's epoch.
    /// @param totalCumulative Sum of the tree's cumulative amounts.
    /// @param dataHash Hash of the chain data the tree was computed from.
    /// @param uri Where the tree is published.
    function proposeRoot(
        bytes32 root,
        uint64 epoch,
        uint256 totalCumulative,
        bytes32 dataHash,
        string calldata uri
    ) external;

    /// @notice Revokes the pending root. Claims against the accepted root continue.
    /// @dev Only GUARDIAN_ROLE. Reverts when there is no pending root.
    function revokePendingRoot() external;

    /// @notice Makes the pending root the accepted, claimable root once its timelock has elapsed.
    /// @dev Permissionless. Checks the total against `funded()` again.
    function acceptRoot() external;

    /// @notice Sets the timelock delay for roots proposed from now on.
    /// @dev Only DEFAULT_ADMIN_ROLE (governance). At most `MAX_DELAY`.
    function setDelay(uint64 newDelay) external;

    // ----------------------------------------------------------------------------------------------------
    // Claims
    // ----------------------------------------------------------------------------------------------------

    /// @notice Pays `account` its `cumulativeAmount` minus what it already received. Callable by anyone;
    ///         the tokens always go to `account`.
    /// @param account The leaf's account.
    /// @param cumulativeAmount The leaf's cumulative amount.
    /// @param proof Proof of the leaf against the accepted root.
    /// @return amount The amount paid.
    function claim(
        address account,
        uint256 cumulativeAmount,
        bytes32[] calldata proof
    ) external returns (uint256 amount);

    /// @notice Claims for several accounts at once. Accounts with nothing new to claim are skipped (so one
    ///         front-run claim does not undo the batch); an invalid proof reverts the whole batch.
    /// @return total The total amount paid.
    function claimMany(
        address[] calldata accounts,
        uint256[] calldata cumulativeAmounts,
        bytes32[][] calldata proofs
    ) external returns (uint256 total);

    // ----------------------------------------------------------------------------------------------------
    // Roles and constants
    // ----------------------------------------------------------------------------------------------------

    /// @notice Role that proposes roots (the rewards service).
    function UPDATER_ROLE() external view returns (bytes32);

    /// @notice Role that can revoke a pending root.
    function GUARDIAN_ROLE() external view returns (bytes32);

    /// @notice The longest timelock delay governance may set.
    function MAX_DELAY() external view returns (uint64);

    /// @notice The reward token.
    function TOKEN() external view returns (IERC20);

    // ----------------------------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------------------------

    /// @notice The timelock delay, in seconds.
    function delay() external view returns (uint64);

    /// @notice The accepted root (all zero before the first acceptance).
    function currentRoot() external view returns (RewardsRoot memory);

    /// @notice The pending root (all zero when none).
    function pendingRoot() external view returns (RewardsRoot memory);

    /// @notice What `account` has received so far.
    function claimed(address account) external view returns (uint256);

    /// @notice Everything deposited through `fund`.
    function deposits() external view returns (uint256);

    /// @notice The bound rewards-pool schedule (zero vault before `bindSchedule`).
    /// @return vault The VestingVault.
    /// @return scheduleId The schedule's id.
    /// @return releasedAtBinding The schedule's `released` when it was bound: releases above it count.
    function rewardsPool()
        external
        view
        returns (IVestingVault vault, uint256 scheduleId, uint256 releasedAtBinding);

    /// @notice Everything that came in as funding: `deposits()` plus what the bound schedule has released
    ///         since it was bound. The most a root's total may be.
    function funded() external view returns (uint256);

    /// @notice What all accounts have received so far, derived as `funded()` minus the token balance (no
    ///         claim writes a running total).
    /// @dev Exact while nobody sends tokens by plain `transfer`: every such token lowers it by one (it is
    ///      floored at 0). The exact figure is the sum of the `Claimed` events' amounts.
    function totalClaimed() external view returns (uint256);
}
