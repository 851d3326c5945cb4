// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {VestingWallet} from "@openzeppelin/contracts/finance/VestingWallet.sol";
import {VestingWalletCliff} from "@openzeppelin/contracts/finance/VestingWalletCliff.sol";

/// @title PeerVestingWalletCliff
/// @notice OpenZeppelin's VestingWalletCliff (abstract) made concrete, unchanged otherwise, as the gas
///         benchmark's peer (scripts/bench/gas/10-vesting.ts). Not deployed anywhere.
contract PeerVestingWalletCliff is VestingWalletCliff {
    /// @param beneficiary Owns the wallet and receives every release.
    /// @param startTimestamp When linear vesting begins.
    /// @param durationSeconds How long it lasts.
    /// @param cliffSeconds Nothing vests before `startTimestamp + cliffSeconds`.
    constructor(
        address beneficiary,
        uint64 startTimestamp,
        uint64 durationSeconds,
        uint64 cliffSeconds
    ) VestingWallet(beneficiary, startTimestamp, durationSeconds) VestingWalletCliff(cliffSeconds) {}
}
