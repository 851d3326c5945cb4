// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
// solhint-disable-next-line max-line-length
import {GovernorVotesQuorumFraction} from "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

import {IOPGGovernor} from "../interfaces/IOPGGovernor.sol";

/// @title OPGGovernor
/// @notice OpenZeppelin's Governor on OPG votes: settings changeable by governance, simple for/against/abstain
///         counting, a quorum as a percentage of the supply at the proposal's snapshot, and execution through the
///         `OPGTimelock`. See IOPGGovernor.
/// @dev Only the two checks of IOPGGovernor are added to OpenZeppelin's code; the overrides below are the ones
///      Solidity requires to combine the extensions.
contract OPGGovernor is
    IOPGGovernor,
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token_ OPGToken (ERC20Votes with a timestamp clock).
    /// @param timelock_ OPGTimelock; this governor must become its proposer, canceller and executor.
    /// @param votingDelay_ Seconds from a proposal to the snapshot of votes and the start of voting.
    /// @param votingPeriod_ Seconds the vote stays open.
    /// @param proposalThreshold_ Votes (wei of OPG) a proposer needs.
    /// @param quorumPercent_ Quorum as a percentage of the total supply at the snapshot (for + abstain votes).
    constructor(
        IVotes token_,
        TimelockController timelock_,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorumPercent_
    )
        Governor("OPGGovernor")
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token_)
        GovernorVotesQuorumFraction(quorumPercent_)
        GovernorTimelockControl(timelock_)
    {
        // Checks: the settings are in seconds, so the token's clock must count seconds.
        string memory mode = CLOCK_MODE();
        if (keccak256(bytes(mode)) != keccak256("mode=timestamp")) revert OPGGovernorClockNotTimestamp(mode);
    }

    /*//////////////////////////////////////////////////////////////
                          OVERRIDES REQUIRED BY SOLIDITY
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc GovernorTimelockControl
    function state(
        uint256 proposalId
    ) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    /// @inheritdoc GovernorTimelockControl
    function proposalNeedsQueuing(
        uint256 proposalId
    ) public view override(Governor, GovernorTimelockControl) returns (bool) {
        return super.proposalNeedsQueuing(proposalId);
    }

    /// @inheritdoc GovernorSettings
    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    /// @dev The quorum can be changed by governance, never to zero.
    function _updateQuorumNumerator(uint256 newQuorumNumerator) internal override {
        if (newQuorumNumerator == 0) revert OPGGovernorZeroQuorum();
        super._updateQuorumNumerator(newQuorumNumerator);
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}
