// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IVestingVault
/// @notice Many vesting schedules in one contract, committed to a published plan.
/// @dev A schedule is either LINEAR (optional cliff, optional amount unlocked at the cliff, then linear to
///      `end`) or TRANCHED (a list of (timestamp, amount) unlocks). Vesting maths: see VestingMath.
///      The vault keeps a running `planHash` over the canonical encoding of every schedule it creates; once
///      `seal`ed, nothing can be added, and anyone can recompute the hash from the published plan file.
interface IVestingVault {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice How a schedule vests.
    enum Kind {
        LINEAR,
        TRANCHED
    }

    /// @notice One unlock of a TRANCHED schedule.
    struct Tranche {
        uint32 timestamp; // unix seconds
        uint96 amount; // token wei
    }

    /// @notice What a schedule is created from (and what the plan hash commits to).
    /// @dev LINEAR: `start < end`; `cliff` is 0 (no cliff) or in [start, end]; `cliffAmount <= total`;
    ///      `tranches` empty. TRANCHED: `tranches` non-empty with strictly increasing timestamps, all
    ///      amounts > 0, their sum equals `total`, `start` <= the first timestamp, `cliff`, `cliffAmount`
    ///      and `end` zero.
    struct ScheduleParams {
        address beneficiary;
        bytes32 category; // short label, e.g. bytes32("team"); committed to, emitted, not stored
        uint128 total;
        uint40 start;
        uint40 cliff;
        uint128 cliffAmount;
        uint40 end;
        bool revocable;
        Tranche[] tranches;
    }

    /// @notice A schedule as stored.
    struct Schedule {
        address beneficiary;
        uint40 start;
        uint40 cliff; // effective cliff (start when none was given)
        bool revocable;
        bool revoked;
        uint128 total;
        uint128 released;
        uint128 cliffAmount;
        uint40 end; // last tranche timestamp for TRANCHED
        Kind kind;
        uint16 trancheCount;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A schedule was created and funded; `scheduleHash` is its canonical encoding's hash and
    ///         `planHash` the vault's running hash after it.
    event ScheduleCreated(
        uint256 indexed id,
        address indexed beneficiary,
        bytes32 indexed category,
        Kind kind,
        uint128 total,
        bytes32 scheduleHash,
        bytes32 planHash
    );

    /// @notice Vested tokens were paid to the beneficiary (by anyone's call).
    event Released(uint256 indexed id, address indexed beneficiary, uint256 amount, address caller);

    /// @notice A revocable schedule was revoked: `vested` stays for the beneficiary, `refunded` went back.
    event ScheduleRevoked(uint256 indexed id, uint256 vested, uint256 refunded, address refundTo);

    /// @notice The beneficiary moved the schedule to a new address.
    event BeneficiaryTransferred(uint256 indexed id, address indexed previous, address indexed next);

    /// @notice The plan was sealed: no schedule can be created afterwards.
    event PlanSealed(bytes32 planHash, uint256 scheduleCount);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The plan is sealed: schedules can no longer be created.
    error VestingPlanSealed(bytes32 planHash);
    /// @notice `seal` was given a hash that is not the vault's plan hash.
    error VestingPlanHashMismatch(bytes32 expected, bytes32 actual);
    /// @notice No schedule has this id.
    error VestingUnknownSchedule(uint256 id, uint256 scheduleCount);
    /// @notice The zero address cannot be a beneficiary.
    error VestingZeroBeneficiary(uint256 index);
    /// @notice A schedule must hold something.
    error VestingZeroTotal(uint256 index);
    /// @notice A LINEAR schedule's times are out of order (needs start < end and cliff in [start, end]).
    error VestingInvalidTimes(uint256 index, uint40 start, uint40 cliff, uint40 end);
    /// @notice The cliff amount exceeds the total.
    error VestingCliffAmountTooLarge(uint256 index, uint128 cliffAmount, uint128 total);
    /// @notice A TRANCHED schedule has no tranches or more than the maximum.
    error VestingTrancheCount(uint256 index, uint256 count, uint256 max);
    /// @notice A tranche's timestamp is not after the previous one (or before `start`), or its amount is 0.
    error VestingInvalidTranche(uint256 index, uint256 trancheIndex, uint32 timestamp, uint96 amount);
    /// @notice The tranches do not add up to the schedule's total.
    error VestingTrancheSumMismatch(uint256 index, uint256 sum, uint128 total);
    /// @notice A TRANCHED schedule set a LINEAR-only field (cliff, cliffAmount or end).
    error VestingLinearFieldOnTranched(uint256 index);
    /// @notice Nothing is releasable now.
    error VestingNothingToRelease(uint256 id, uint40 at);
    /// @notice Only the schedule's beneficiary may do this.
    error VestingNotBeneficiary(uint256 id, address caller, address beneficiary);
    /// @notice The new beneficiary is the zero address or the current one.
    error VestingInvalidNewBeneficiary(uint256 id, address next);
    /// @notice The schedule was created non-revocable.
    error VestingNotRevocable(uint256 id);
    /// @notice The schedule is already revoked.
    error VestingAlreadyRevoked(uint256 id);
    /// @notice Revoked tokens cannot be refunded to the zero address.
    error VestingZeroRefundAddress();
    /// @notice An empty list was given.
    error VestingEmptyBatch();

    /*//////////////////////////////////////////////////////////////
                             ADMIN FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Creates one schedule and pulls its `total` from the caller (who must have approved it).
    /// @dev Only the owner, only before `seal`. Extends `planHash`.
    /// @return id The new schedule's id (0, 1, 2, ...).
    function createSchedule(ScheduleParams calldata params) external returns (uint256 id);

    /// @notice Creates several schedules in order and pulls their summed total once.
    /// @return firstId The id of the first schedule created.
    function createSchedules(ScheduleParams[] calldata params) external returns (uint256 firstId);

    /// @notice Seals the plan: no schedule can be created afterwards.
    /// @param expectedPlanHash The plan hash computed from the published file; the call reverts with
    ///        `VestingPlanHashMismatch` if the vault's differs, so a plan is only sealed as published.
    function seal(bytes32 expectedPlanHash) external;

    /// @notice Revokes a revocable schedule: what has vested stays releasable by the beneficiary, the rest
    ///         is sent to `refundTo`.
    function revoke(uint256 id, address refundTo) external;

    /*//////////////////////////////////////////////////////////////
                            PUBLIC FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Pays the schedule's releasable amount to its beneficiary. Anyone may call.
    /// @return amount What was paid.
    function release(uint256 id) external returns (uint256 amount);

    /// @notice Releases several schedules; schedules with nothing releasable are skipped.
    /// @return total What was paid in all.
    function releaseMany(uint256[] calldata ids) external returns (uint256 total);

    /// @notice Moves a schedule to a new beneficiary address. Only the current beneficiary.
    function transferBeneficiary(uint256 id, address next) external;

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The vested token.
    function TOKEN() external view returns (address);

    /// @notice The most tranches a schedule may have.
    function MAX_TRANCHES() external view returns (uint256);

    /// @notice Running hash over all schedules' canonical encodings: h0 = 0, h(i+1) = keccak256(h(i), leaf(i)).
    function planHash() external view returns (bytes32);

    /// @notice Whether the plan is sealed.
    function isSealed() external view returns (bool);

    /// @notice How many schedules exist.
    function scheduleCount() external view returns (uint256);

    /// @notice A schedule as stored.
    function getSchedule(uint256 id) external view returns (Schedule memory);

    /// @notice A TRANCHED schedule's tranches (empty for LINEAR).
    function getTranches(uint256 id) external view returns (Tranche[] memory);

    /// @notice What the schedule has vested at time `t` (any past or future time).
    function vestedAt(uint256 id, uint40 t) external view returns (uint256);

    /// @notice What could be released at time `t`, given what has been released so far.
    function releasableAt(uint256 id, uint40 t) external view returns (uint256);

    /// @notice What can be released now.
    function releasable(uint256 id) external view returns (uint256);

    /// @notice The sum of `vestedAt` over all schedules.
    function totalVestedAt(uint40 t) external view returns (uint256);

    /// @notice The sum of `releasableAt` over all schedules.
    function totalReleasableAt(uint40 t) external view returns (uint256);

    /// @notice Tokens released so far from all schedules.
    function totalReleased() external view returns (uint256);

    /// @notice Tokens the vault owes (created minus released minus refunded).
    function totalOutstanding() external view returns (uint256);

    /// @notice The canonical hash of one schedule's parameters (the leaf folded into `planHash`).
    function hashSchedule(uint256 id, ScheduleParams calldata params) external pure returns (bytes32);
}
