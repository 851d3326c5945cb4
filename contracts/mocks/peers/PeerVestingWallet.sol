// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {VestingWallet} from "@openzeppelin/contracts/finance/VestingWallet.sol";

/// @title PeerVestingWallet
/// @notice OpenZeppelin's VestingWallet, unchanged, compiled here as the gas benchmark's peer
///         (scripts/bench/gas/10-vesting.ts). Not deployed anywhere.
contract PeerVestingWallet is VestingWallet {
    /// @param beneficiary Owns the wallet and receives every release.
    /// @param startTimestamp When linear vesting begins.
    /// @param durationSeconds How long it lasts.
    constructor(
        address beneficiary,
        uint64 startTimestamp,
        uint64 durationSeconds
    ) VestingWallet(beneficiary, startTimestamp, durationSeconds) {}
}
