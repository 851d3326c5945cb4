// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IVestingVault} from "../interfaces/IVestingVault.sol";
import {VestingMath} from "../libraries/VestingMath.sol";

/// @title VestingVault
/// @notice Holds the $OPG of every vesting schedule of the published plan and pays each beneficiary exactly
///         what the plan says, when it says. See IVestingVault.
/// @dev Storage: a schedule takes three slots; tranches are packed two per slot. The owner (a
///      TimelockController in production) creates schedules until `seal`, and revokes revocable ones.
contract VestingVault is IVestingVault, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IVestingVault
    uint256 public constant override MAX_TRANCHES = 64;

    IERC20 private immutable _TOKEN;

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IVestingVault
    bytes32 public override planHash;

    uint64 private _scheduleCount;
    bool private _sealed;

    mapping(uint256 id => Schedule schedule) private _schedules;
    /// @dev Two tranches per word: word i holds tranche 2i in the low 128 bits and 2i+1 in the high 128.
    mapping(uint256 id => mapping(uint256 word => uint256 packed)) private _tranches;
    /// @dev What a revoked schedule had vested when it was revoked: its vesting is capped there.
    mapping(uint256 id => uint128 vested) private _vestedAtRevocation;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token The vested token ($OPG).
    /// @param initialOwner Creates schedules, seals, revokes (a TimelockController on real networks).
    constructor(IERC20 token, address initialOwner) Ownable(initialOwner) {
        _TOKEN = token;
    }

    /*//////////////////////////////////////////////////////////////
                             ADMIN FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IVestingVault
    function createSchedule(ScheduleParams calldata params) external override onlyOwner returns (uint256 id) {
        // Checks and effects: validate and store, extending the plan hash.
        _requireNotSealed();
        id = _scheduleCount;
        _create(id, params);
        _scheduleCount = uint64(id + 1);

        // Interactions: pull the funds.
        _TOKEN.safeTransferFrom(msg.sender, address(this), params.total);
    }

    /// @inheritdoc IVestingVault
    function createSchedules(
        ScheduleParams[] calldata params
    ) external override onlyOwner returns (uint256 firstId) {
        // Checks and effects: validate and store every schedule in order.
        _requireNotSealed();
        if (params.length == 0) revert VestingEmptyBatch();
        firstId = _scheduleCount;
        uint256 sum;
        for (uint256 i = 0; i < params.length; ++i) {
            _create(firstId + i, params[i]);
            sum += params[i].total;
        }
        _scheduleCount = uint64(firstId + params.length);

        // Interactions: pull the summed funds once.
        _TOKEN.safeTransferFrom(msg.sender, address(this), sum);
    }

    /// @inheritdoc IVestingVault
    function seal(bytes32 expectedPlanHash) external override onlyOwner {
        _requireNotSealed();
        bytes32 actual = planHash;
        if (expectedPlanHash != actual) revert VestingPlanHashMismatch(expectedPlanHash, actual);
        _sealed = true;
        emit PlanSealed(actual, _scheduleCount);
    }

    /// @inheritdoc IVestingVault
    function revoke(uint256 id, address refundTo) external override onlyOwner nonReentrant {
        // Checks.
        Schedule storage s = _get(id);
        if (!s.revocable) revert VestingNotRevocable(id);
        if (s.revoked) revert VestingAlreadyRevoked(id);
        if (refundTo == address(0)) revert VestingZeroRefundAddress();

        // Effects: cap vesting at what has vested now; the rest leaves the schedule.
        uint256 vested = _vestedAt(id, s, uint40(block.timestamp));
        uint256 refunded = s.total - vested;
        s.revoked = true;
        _vestedAtRevocation[id] = uint128(vested);
        emit ScheduleRevoked(id, vested, refunded, refundTo);

        // Interactions.
        if (refunded > 0) _TOKEN.safeTransfer(refundTo, refunded);
    }

    /*//////////////////////////////////////////////////////////////
                            PUBLIC FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IVestingVault
    function release(uint256 id) external override nonReentrant returns (uint256 amount) {
        Schedule storage s = _get(id);
        amount = _releasable(id, s, uint40(block.timestamp));
        if (amount == 0) revert VestingNothingToRelease(id, uint40(block.timestamp));
        _pay(id, s, amount);
    }

    /// @inheritdoc IVestingVault
    function releaseMany(uint256[] calldata ids) external override nonReentrant returns (uint256 total) {
        if (ids.length == 0) revert VestingEmptyBatch();
        for (uint256 i = 0; i < ids.length; ++i) {
            Schedule storage s = _get(ids[i]);
            uint256 amount = _releasable(ids[i], s, uint40(block.timestamp));
            if (amount == 0) continue;
            _pay(ids[i], s, amount);
            total += amount;
        }
    }

    /// @inheritdoc IVestingVault
    function transferBeneficiary(uint256 id, address next) external override {
        Schedule storage s = _get(id);
        address previous = s.beneficiary;
        if (msg.sender != previous) revert VestingNotBeneficiary(id, msg.sender, previous);
        if (next == address(0) || next == previous) revert VestingInvalidNewBeneficiary(id, next);
        s.beneficiary = next;
        emit BeneficiaryTransferred(id, previous, next);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IVestingVault
    // solhint-disable-next-line func-name-mixedcase
    function TOKEN() external view override returns (address) {
        return address(_TOKEN);
    }

    /// @inheritdoc IVestingVault
    function isSealed() external view override returns (bool) {
        return _sealed;
    }

    /// @inheritdoc IVestingVault
    function scheduleCount() external view override returns (uint256) {
        return _scheduleCount;
    }

    /// @inheritdoc IVestingVault
    function getSchedule(uint256 id) external view override returns (Schedule memory) {
        return _get(id);
    }

    /// @inheritdoc IVestingVault
    function getTranches(uint256 id) external view override returns (Tranche[] memory tranches) {
        Schedule storage s = _get(id);
        tranches = new Tranche[](s.trancheCount);
        for (uint256 i = 0; i < tranches.length; ++i) {
            (uint32 timestamp, uint96 amount) = _trancheAt(id, i);
            tranches[i] = Tranche(timestamp, amount);
        }
    }

    /// @inheritdoc IVestingVault
    function vestedAt(uint256 id, uint40 t) external view override returns (uint256) {
        return _vestedAt(id, _get(id), t);
    }

    /// @inheritdoc IVestingVault
    function releasableAt(uint256 id, uint40 t) external view override returns (uint256) {
        return _releasable(id, _get(id), t);
    }

    /// @inheritdoc IVestingVault
    function releasable(uint256 id) external view override returns (uint256) {
        return _releasable(id, _get(id), uint40(block.timestamp));
    }

    /// @inheritdoc IVestingVault
    function totalVestedAt(uint40 t) external view override returns (uint256 total) {
        uint256 count = _scheduleCount;
        for (uint256 id = 0; id < count; ++id) total += _vestedAt(id, _schedules[id], t);
    }

    /// @inheritdoc IVestingVault
    function totalReleasableAt(uint40 t) external view override returns (uint256 total) {
        uint256 count = _scheduleCount;
        for (uint256 id = 0; id < count; ++id) total += _releasable(id, _schedules[id], t);
    }

    /// @inheritdoc IVestingVault
    function totalReleased() external view override returns (uint256 total) {
        uint256 count = _scheduleCount;
        for (uint256 id = 0; id < count; ++id) total += _schedules[id].released;
    }

    /// @inheritdoc IVestingVault
    function totalOutstanding() external view override returns (uint256 total) {
        uint256 count = _scheduleCount;
        for (uint256 id = 0; id < count; ++id) {
            Schedule storage s = _schedules[id];
            uint256 owed = s.revoked ? _vestedAtRevocation[id] : s.total;
            total += owed - s.released;
        }
    }

    /// @inheritdoc IVestingVault
    function hashSchedule(uint256 id, ScheduleParams calldata params) public pure override returns (bytes32) {
        return keccak256(abi.encode(id, params));
    }

    /*//////////////////////////////////////////////////////////////
                           INTERNAL FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    /// @dev Validates `p`, stores it as schedule `id`, extends the plan hash and emits ScheduleCreated.
    function _create(uint256 id, ScheduleParams calldata p) private {
        // `index` in errors is the id the schedule would have had: it matches the plan file's order.
        if (p.beneficiary == address(0)) revert VestingZeroBeneficiary(id);
        if (p.total == 0) revert VestingZeroTotal(id);

        Schedule storage s = _schedules[id];
        if (p.tranches.length == 0) _storeLinear(id, s, p);
        else _storeTranches(id, s, p);
        s.beneficiary = p.beneficiary;
        s.start = p.start;
        s.revocable = p.revocable;
        s.total = p.total;

        bytes32 leaf = hashSchedule(id, p);
        bytes32 next = keccak256(abi.encode(planHash, leaf));
        planHash = next;
        emit ScheduleCreated(id, p.beneficiary, p.category, s.kind, p.total, leaf, next);
    }

    /// @dev Validates and stores the LINEAR-specific fields.
    function _storeLinear(uint256 id, Schedule storage s, ScheduleParams calldata p) private {
        uint40 cliff = p.cliff == 0 ? p.start : p.cliff;
        if (p.start >= p.end || cliff < p.start || cliff > p.end) {
            revert VestingInvalidTimes(id, p.start, p.cliff, p.end);
        }
        if (p.cliffAmount > p.total) revert VestingCliffAmountTooLarge(id, p.cliffAmount, p.total);
        s.cliff = cliff;
        s.cliffAmount = p.cliffAmount;
        s.end = p.end;
    }

    /// @dev Validates the tranches and stores them packed two per word.
    function _storeTranches(uint256 id, Schedule storage s, ScheduleParams calldata p) private {
        uint256 n = p.tranches.length;
        if (n > MAX_TRANCHES) revert VestingTrancheCount(id, n, MAX_TRANCHES);
        if (p.cliff != 0 || p.cliffAmount != 0 || p.end != 0) revert VestingLinearFieldOnTranched(id);
        uint256 sum;
        uint256 previous = p.start;
        uint256 word;
        for (uint256 i = 0; i < n; ++i) {
            Tranche calldata tr = p.tranches[i];
            // Strictly increasing; the first may equal start.
            bool ordered = i == 0 ? tr.timestamp >= previous : tr.timestamp > previous;
            if (!ordered || tr.amount == 0) revert VestingInvalidTranche(id, i, tr.timestamp, tr.amount);
            previous = tr.timestamp;
            sum += tr.amount;
            uint256 packed = VestingMath.packTranche(tr.timestamp, tr.amount);
            if (i % 2 == 0) {
                word = packed;
            } else {
                _tranches[id][i / 2] = word | (packed << 128);
            }
        }
        if (n % 2 == 1) _tranches[id][n / 2] = word;
        if (sum != p.total) revert VestingTrancheSumMismatch(id, sum, p.total);
        s.cliff = p.start;
        // Cannot truncate: tranche timestamps are uint32.
        s.end = uint40(previous);
        s.kind = Kind.TRANCHED;
        // Cannot truncate: n <= MAX_TRANCHES.
        s.trancheCount = uint16(n);
    }

    /// @dev Records the payment, then transfers (checks-effects-interactions).
    function _pay(uint256 id, Schedule storage s, uint256 amount) private {
        address beneficiary = s.beneficiary;
        // Cannot truncate: released + amount <= total < 2^128.
        s.released += uint128(amount);
        emit Released(id, beneficiary, amount, msg.sender);
        _TOKEN.safeTransfer(beneficiary, amount);
    }

    function _vestedAt(uint256 id, Schedule storage s, uint40 t) private view returns (uint256 vested) {
        if (s.kind == Kind.LINEAR) {
            vested = VestingMath.linearVestedAt(s.total, s.start, s.cliff, s.cliffAmount, s.end, t);
        } else {
            uint256 n = s.trancheCount;
            for (uint256 i = 0; i < n; ++i) {
                (uint32 timestamp, uint96 amount) = _trancheAt(id, i);
                if (timestamp > t) break;
                vested += amount;
            }
        }
        if (s.revoked) {
            uint256 cap = _vestedAtRevocation[id];
            if (vested > cap) vested = cap;
        }
    }

    function _releasable(uint256 id, Schedule storage s, uint40 t) private view returns (uint256) {
        uint256 vested = _vestedAt(id, s, t);
        uint256 released = s.released;
        // A time before the last release can show less vested than released: nothing is releasable then.
        return vested > released ? vested - released : 0;
    }

    function _trancheAt(uint256 id, uint256 i) private view returns (uint32, uint96) {
        uint256 word = _tranches[id][i / 2];
        return VestingMath.unpackTranche(uint128(i % 2 == 0 ? word : word >> 128));
    }

    function _get(uint256 id) private view returns (Schedule storage) {
        uint256 count = _scheduleCount;
        if (id >= count) revert VestingUnknownSchedule(id, count);
        return _schedules[id];
    }

    function _requireNotSealed() private view {
        if (_sealed) revert VestingPlanSealed(planHash);
    }
}
