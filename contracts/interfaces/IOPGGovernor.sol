// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IOPGGovernor
/// @notice The protocol's governance: OPG holders (by their ERC-5805 votes, delegated) propose, vote, and pass
///         changes that then wait out the `OPGTimelock` delay before they run. The governor is the timelock's only
///         proposer, canceller and executor; the timelock holds every governance role of the protocol.
/// @dev Everything else is OpenZeppelin's `Governor` (see IGovernor): `propose`, `castVote`, `queue`, `execute`,
///      `state`, `proposalSnapshot`, `proposalDeadline`, `proposalEta`, `quorum`, `votingDelay`, `votingPeriod`,
///      `proposalThreshold`. The clock is the token's: timestamps (ERC-6372 `mode=timestamp`), so the voting delay
///      and period are in seconds, like the timelock's delay and NodeStaking's unbonding delay they are compared with.
///      A hostile change lands at the earliest `votingDelay + votingPeriod + timelock delay` after it is proposed;
///      the deployment refuses parameters under which a staker who starts unbonding when it is proposed could not
///      withdraw before that (NodeStaking's unbonding delay must be shorter).
interface IOPGGovernor {
    /// @notice Thrown at deployment when the token's votes do not use a timestamp clock: the voting delay and period
    ///         are given in seconds and would mean blocks otherwise.
    error OPGGovernorClockNotTimestamp(string clockMode);

    /// @notice Thrown when the quorum would be zero (any single vote would pass a proposal).
    error OPGGovernorZeroQuorum();
}
