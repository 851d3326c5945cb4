// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IContributorRewards
/// @notice Cumulative Merkle distributor for data and model contributors. Each epoch an updater proposes a
///         Merkle root over `(address account, uint256 cumulativeAmount)` leaves (OpenZeppelin
///         StandardMerkleTree encoding: `keccak256(bytes.concat(keccak256(abi.encode(account, amount))))`,
///         sorted-pair hashing), where `cumulativeAmount` is everything the account has earned since the
///         first epoch. After a timelock anyone accepts the root; a guardian can revoke it before that.
///         A claim pays the account the difference between its cumulative amount and what it already
///         received, so older proofs stop paying once a newer root is accepted and nothing is paid twice.
/// @dev Funding: the contract simply holds the reward token (a VestingVault schedule pays it by plain
///      transfer). A root's total cumulative amount can never exceed `funded()` = token balance + everything
///      already claimed, checked when the root is proposed (it cannot fall afterwards: tokens only leave
///      through claims, which add what they move to the claimed total).
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

    // ----------------------------------------------------------------------------------------------------
    // Errors
    // ----------------------------------------------------------------------------------------------------

    /// @notice A constructor address (token, admin, updater or guardian) is zero.
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

    // ----------------------------------------------------------------------------------------------------
    // Roots
    // ----------------------------------------------------------------------------------------------------

    /// @notice Proposes the root of `epoch`; it becomes acceptable after `delay()`. Replaces a pending root.
    /// @dev Only UPDATER_ROLE. Reverts when the root is zero, the epoch is not above the accepted epoch, the
    ///      total is below the accepted total, or the total exceeds `funded()`.
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
    /// @dev Permissionless.
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

    /// @notice What all accounts have received so far.
    function totalClaimed() external view returns (uint256);

    /// @notice Token balance plus everything already claimed: the most a root's total may be.
    function funded() external view returns (uint256);
}
