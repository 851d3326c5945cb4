// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title VestingMath
/// @notice The vesting formulas, in one place. The off-chain mirror is offchain/vesting/math.ts; property
///         tests compare the two on random schedules and times.
/// @dev LINEAR, with `cliff` the effective cliff (>= start) and all divisions rounding down:
///        t <  cliff           -> 0
///        t >= end             -> total
///        otherwise            -> cliffAmount + (total - cliffAmount) * (t - start) / (end - start)
///      TRANCHED: the sum of the amounts of the tranches whose timestamp is <= t.
library VestingMath {
    /// @notice Vested amount of a LINEAR schedule at time `t`.
    function linearVestedAt(
        uint128 total,
        uint40 start,
        uint40 cliff,
        uint128 cliffAmount,
        uint40 end,
        uint40 t
    ) internal pure returns (uint256) {
        if (t < cliff) return 0;
        if (t >= end) return total;
        // Here start <= cliff <= t < end, so (t - start) < (end - start) and the quotient stays below
        // (total - cliffAmount): the result never exceeds total.
        unchecked {
            // Cannot overflow: (total - cliffAmount) < 2^128 and (t - start) < 2^40, product < 2^168.
            return cliffAmount + (uint256(total - cliffAmount) * (t - start)) / (end - start);
        }
    }

    /// @notice Packs a tranche into 128 bits: timestamp in the high 32, amount in the low 96.
    function packTranche(uint32 timestamp, uint96 amount) internal pure returns (uint128) {
        return (uint128(timestamp) << 96) | uint128(amount);
    }

    /// @notice Unpacks a tranche packed by `packTranche`.
    function unpackTranche(uint128 packed) internal pure returns (uint32 timestamp, uint96 amount) {
        timestamp = uint32(packed >> 96);
        amount = uint96(packed);
    }
}
