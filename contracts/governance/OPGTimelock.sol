// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title OPGTimelock
/// @notice OpenZeppelin's TimelockController, unchanged: the protocol's governance. The deployment gives it every
///         governance role (staking parameters, enclave measurements, ledger slash parameters, rewards delay, vault
///         ownership), so each change waits out `getMinDelay()` in public before it can be executed.
/// @dev Compiled here because Hardhat builds artifacts only for the project's own files.
contract OPGTimelock is TimelockController {
    /// @param minDelay Seconds a scheduled operation waits before it can be executed.
    /// @param proposers May schedule (and cancel) operations.
    /// @param executors May execute ready operations (address(0) = anyone).
    /// @param admin Optional extra admin of the timelock's own roles (address(0) = none: self-administered).
    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address admin
    ) TimelockController(minDelay, proposers, executors, admin) {}
}
