// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title StakingTimelock
/// @notice OpenZeppelin's TimelockController, unchanged, compiled so that the staking tests can deploy governance as
///         the deployment does. Hardhat builds artifacts only for project files; once hardhat.config.ts lists
///         OpenZeppelin's governance/TimelockController.sol in `npmFilesToBuild`, this file can go.
contract StakingTimelock is TimelockController {
    constructor(
        uint256 minDelay,
        address[] memory proposers,
        address[] memory executors,
        address admin
    ) TimelockController(minDelay, proposers, executors, admin) {}
}
