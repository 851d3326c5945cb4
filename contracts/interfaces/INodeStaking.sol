// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {INodeStakingCore} from "./INodeStakingCore.sol";

/// @title INodeStakingTypes
/// @notice Value types of NodeStaking.
interface INodeStakingTypes {
    /// @notice Why a node was jailed.
    enum JailReason {
        SLASH, // a slash asked for jailing
        MISSED_HEARTBEAT // the node's heartbeat deadline passed
    }

    /// @notice What happened to a governance slash request.
    enum RequestStatus {
        NONE,
        PENDING,
        VETOED,
        EXECUTED
    }

    /// @notice The parameters governance can change.
    /// @param minStakeInference Minimum active stake of an INFERENCE node to be active.
    /// @param minStakeVerifier Minimum active stake of a VERIFIER node to be active.
    /// @param unbondingDelay Seconds between an unbonding request and its withdrawal.
    /// @param vetoWindow Seconds a governance slash request waits before it can be executed.
    /// @param heartbeatTimeout Seconds after the last heartbeat past which anyone can jail the node.
    /// @param jailCooldown Seconds a jailed node waits before its operator can unjail it.
    /// @param bountyBps Share of every slash (basis points) paid to the reporter.
    /// @param burnSlashed True: the rest of a slash is burned; false: it is sent to `treasury`.
    /// @param treasury Receives the rest of a slash when `burnSlashed` is false.
    struct Params {
        uint96 minStakeInference;
        uint96 minStakeVerifier;
        uint40 unbondingDelay;
        uint40 vetoWindow;
        uint40 heartbeatTimeout;
        uint40 jailCooldown;
        uint16 bountyBps;
        bool burnSlashed;
        address treasury;
    }

    /// @notice Everything known about a node, as one view.
    struct NodeView {
        address operator;
        address signer;
        INodeStakingCore.Role role;
        bool jailed;
        bool exited;
        uint16 pendingSlashes;
        uint40 lastHeartbeat;
        uint40 jailedUntil;
        uint96 active;
        uint96 unbonding;
        uint32 unbondingEntries;
    }

    /// @notice A signer key's record: the node it belongs to for good, when it became the node's signer and when
    ///         it was rotated away (0 while it is the current signer).
    struct SignerRecord {
        address node;
        uint40 since;
        uint40 until;
    }

    /// @notice One unbonding entry: what is left of it after slashes, and when it can be withdrawn.
    struct UnbondingEntry {
        uint96 amount;
        uint40 releaseTime;
    }

    /// @notice A governance slash request waiting out its veto window.
    struct SlashRequest {
        address node;
        uint40 executableAt;
        RequestStatus status;
        bool byAmount;
        bool jail;
        address reporter;
        uint256 value;
        bytes32 evidenceHash;
    }
}

/// @title INodeStakingErrors
/// @notice Errors of NodeStaking; each carries the offending values.
interface INodeStakingErrors {
    /// @notice The node id is not registered.
    error StakingUnknownNode(address node);
    /// @notice The node id is already taken (ids are never reused, even after exit).
    error StakingNodeAlreadyRegistered(address node);
    /// @notice The node has exited and can no longer change its stake, signer or state.
    error StakingNodeExited(address node);
    /// @notice The caller is not the node's operator.
    error StakingNotOperator(address node, address caller, address operator);
    /// @notice The caller is not the node's signer.
    error StakingNotSigner(address node, address caller, address signer);
    /// @notice The node id, the signer or the token is the zero address.
    error StakingZeroAddress();
    /// @notice The role is NONE.
    error StakingInvalidRole(INodeStakingCore.Role role);
    /// @notice The signer key belongs, or once belonged, to a node: a key is registered once, for one node.
    error StakingSignerTaken(address signer, address node);
    /// @notice The stake would be below the role's minimum.
    error StakingInsufficientStake(address node, uint256 stake, uint256 required);
    /// @notice The amount is zero or does not fit in 96 bits.
    error StakingInvalidAmount(uint256 amount);
    /// @notice More is asked to unbond than the node has active.
    error StakingUnbondExceedsActive(address node, uint256 amount, uint256 active);
    /// @notice The unbonding queue is full; withdraw matured entries first.
    error StakingUnbondingQueueFull(address node, uint256 maxEntries);
    /// @notice No unbonding entry has matured yet; the earliest one is released at `nextRelease` (0: none queued).
    error StakingNothingToWithdraw(address node, uint256 nextRelease);
    /// @notice A governance slash against the node is pending; withdrawals wait for it.
    error StakingSlashPending(address node, uint256 pendingSlashes);
    /// @notice Basis points outside 1..10_000.
    error StakingInvalidBps(uint256 bps);
    /// @notice The heartbeat deadline has not passed yet.
    error StakingHeartbeatNotMissed(address node, uint256 deadline);
    /// @notice The node is already jailed.
    error StakingNodeJailed(address node, uint256 jailedUntil);
    /// @notice The node is not jailed.
    error StakingNodeNotJailed(address node);
    /// @notice The jail cool-down has not passed yet.
    error StakingJailCooldown(address node, uint256 jailedUntil);
    /// @notice No such governance slash request.
    error StakingUnknownRequest(uint256 id);
    /// @notice The request is not pending (already vetoed or executed).
    error StakingRequestNotPending(uint256 id, INodeStakingTypes.RequestStatus status);
    /// @notice The veto window is still open.
    error StakingVetoWindowOpen(uint256 id, uint256 executableAt);
    /// @notice The veto window is over: the request can no longer be vetoed.
    error StakingVetoWindowClosed(uint256 id, uint256 executableAt);
    /// @notice A parameter is outside its allowed range.
    error StakingInvalidParameter(bytes32 name, uint256 value);
}

/// @title INodeStakingEvents
/// @notice Events of NodeStaking: one for every state change, so an indexer can follow.
interface INodeStakingEvents {
    /// @notice A node was registered with its first stake.
    event NodeRegistered(
        address indexed node,
        address indexed operator,
        INodeStakingCore.Role role,
        address signer,
        uint256 amount,
        string metadataURI
    );
    /// @notice The operator added stake.
    event StakeIncreased(address indexed node, uint256 amount, uint256 active);
    /// @notice Active stake moved into the unbonding queue.
    event UnbondingRequested(
        address indexed node,
        uint256 indexed index,
        uint256 amount,
        uint256 releaseTime
    );
    /// @notice Matured unbonding entries were paid to the operator.
    event Withdrawn(address indexed node, address indexed operator, uint256 amount, uint256 entries);
    /// @notice The node left: all its active stake went into the unbonding queue.
    event NodeExited(address indexed node, uint256 amount, uint256 releaseTime);
    /// @notice The operator rotated the node's signer key.
    event SignerRotated(address indexed node, address indexed oldSigner, address indexed newSigner);
    /// @notice The operator set where the node's fees are paid (zero: back to the operator).
    event PayeeSet(address indexed node, address indexed payee);
    /// @notice The operator changed the node's metadata (endpoint URI).
    event MetadataUpdated(address indexed node, string metadataURI);
    /// @notice The node proved liveness.
    event HeartbeatSent(address indexed node);
    /// @notice The node was jailed until `until`.
    event NodeJailed(address indexed node, INodeStakingTypes.JailReason reason, uint256 until);
    /// @notice The operator unjailed the node.
    event NodeUnjailed(address indexed node);
    /// @notice Stake was slashed. `slasher` is the SLASHER_ROLE contract, or whoever executed a governance request;
    ///         `remainderTo` is the treasury, or the zero address when the remainder was burned.
    event Slashed(
        address indexed node,
        address indexed slasher,
        bytes32 indexed evidenceHash,
        uint256 fromActive,
        uint256 fromUnbonding,
        address reporter,
        uint256 bounty,
        address remainderTo,
        bool jailed
    );
    /// @notice A governance slash was requested; it can be executed from `executableAt` unless vetoed.
    event SlashRequested(
        uint256 indexed id,
        address indexed node,
        address indexed requester,
        bool byAmount,
        uint256 value,
        address reporter,
        bool jail,
        bytes32 evidenceHash,
        uint256 executableAt
    );
    /// @notice A governance slash request was vetoed.
    event SlashVetoed(uint256 indexed id, address indexed vetoer);
    /// @notice A governance slash request was executed.
    event SlashExecuted(uint256 indexed id, uint256 slashed);
    /// @notice A role's minimum stake changed.
    event MinStakeSet(INodeStakingCore.Role indexed role, uint256 minimum);
    /// @notice The unbonding delay changed (applies to new entries).
    event UnbondingDelaySet(uint256 delay);
    /// @notice The veto window changed (applies to new requests).
    event VetoWindowSet(uint256 window);
    /// @notice The heartbeat timeout changed.
    event HeartbeatTimeoutSet(uint256 timeout);
    /// @notice The jail cool-down changed (applies to new jailings).
    event JailCooldownSet(uint256 cooldown);
    /// @notice The reporter bounty changed.
    event BountyBpsSet(uint256 bps);
    /// @notice Where the rest of a slash goes changed.
    event SlashDestinationSet(bool burn, address treasury);
}

/// @title INodeStaking
/// @notice Node operators stake OPG to run INFERENCE (GPU) and VERIFIER (TEE) nodes. Stake unbonds through
///         a queue with a delay; slashes reach active stake and every unbonding entry, pay a reporter
///         bounty (never to the offender's own operator, signer keys or payee) and burn the rest or send it to
///         the treasury. Objective-evidence slasher contracts
///         (SLASHER_ROLE) slash at once; the governance slasher's requests wait out a veto window.
interface INodeStaking is INodeStakingCore, INodeStakingTypes, INodeStakingErrors, INodeStakingEvents {
    /*//////////////////////////////////////////////////////////////
                                OPERATORS
    //////////////////////////////////////////////////////////////*/

    /// @notice Registers `node` with the caller as operator, pulling `amount` OPG from the caller.
    /// @dev The caller must have approved `amount`. Node ids are never reused.
    /// @param node The node id (an address chosen by the operator).
    /// @param role INFERENCE or VERIFIER.
    /// @param signer The node's hot key; must not belong to another node.
    /// @param amount The first stake, at least the role's minimum.
    /// @param metadataURI Where the node can be reached (endpoint URI); only recorded in the event.
    function register(
        address node,
        Role role,
        address signer,
        uint256 amount,
        string calldata metadataURI
    ) external;

    /// @notice Adds `amount` OPG from the operator to the node's active stake.
    function increaseStake(address node, uint256 amount) external;

    /// @notice Moves `amount` of active stake into the unbonding queue, releasable after the unbonding delay.
    /// @dev Release times never decrease along the queue, even if the delay is shortened. The queue holds at most
    ///      `MAX_UNBONDING_ENTRIES` entries. Unbonded stake can still be slashed.
    /// @return index The entry's index in the node's queue.
    function unbond(address node, uint256 amount) external returns (uint256 index);

    /// @notice Pays the operator every unbonding entry that has matured.
    /// @dev Reverts while a governance slash against the node is pending.
    /// @return amount What was paid.
    function withdraw(address node) external returns (uint256 amount);

    /// @notice Leaves the network: all active stake goes into the unbonding queue and the node is never active again.
    function exit(address node) external;

    /// @notice Rotates the node's signer key. The new key must never have been used by any node; the old one stays
    ///         the node's for good (evidence it signed before now still counts) and can never be used again. Allowed
    ///         after exit too: a leaked current key must be replaceable while the stake it can get slashed unbonds.
    function rotateSigner(address node, address newSigner) external;

    /// @notice Sets where the node's fees are paid (zero: the operator). Only the operator.
    function setPayee(address node, address payee) external;

    /// @notice Records a new metadata URI for the node (event only).
    function setMetadata(address node, string calldata metadataURI) external;

    /// @notice Unjails the node once its jail cool-down has passed; resets its heartbeat clock.
    function unjail(address node) external;

    /*//////////////////////////////////////////////////////////////
                                LIVENESS
    //////////////////////////////////////////////////////////////*/

    /// @notice Proves the node is alive. Callable by the node's signer.
    function heartbeat(address node) external;

    /// @notice Jails a node whose heartbeat deadline has passed (no slash). Callable by anyone.
    function jailInactive(address node) external;

    /*//////////////////////////////////////////////////////////////
                                SLASHING
    //////////////////////////////////////////////////////////////*/

    /// @notice Slashes `amount` (capped at what the node has), taken pro rata from active stake and every
    ///         unbonding entry. Only SLASHER_ROLE.
    /// @return slashed The total amount taken from the node.
    function slashAmount(
        address node,
        uint256 amount,
        address reporter,
        bool jail,
        bytes32 evidenceHash
    ) external returns (uint256 slashed);

    /// @notice Requests a slash that can be executed once the veto window has passed. Only GOVERNANCE_SLASHER_ROLE.
    /// @dev Withdrawals of the node are frozen while the request is pending, so unbonding cannot escape it.
    /// @param byAmount True: `value` is an amount; false: basis points.
    /// @return id The request id.
    function requestSlash(
        address node,
        bool byAmount,
        uint256 value,
        address reporter,
        bool jail,
        bytes32 evidenceHash
    ) external returns (uint256 id);

    /// @notice Cancels a pending request within its veto window. Only VETO_ROLE.
    function vetoSlash(uint256 id) external;

    /// @notice Executes a pending request once its veto window has passed. Callable by anyone.
    /// @return slashed The total amount taken from the node.
    function executeSlash(uint256 id) external returns (uint256 slashed);

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @notice Sets a role's minimum stake. Only GOVERNANCE_ROLE.
    function setMinStake(Role role, uint256 minimum) external;

    /// @notice Sets the unbonding delay (at most MAX_UNBONDING_DELAY). Only GOVERNANCE_ROLE.
    function setUnbondingDelay(uint256 delay) external;

    /// @notice Sets the veto window (at most MAX_VETO_WINDOW). Only GOVERNANCE_ROLE.
    function setVetoWindow(uint256 window) external;

    /// @notice Sets the heartbeat timeout (1 second .. MAX_HEARTBEAT_TIMEOUT). Only GOVERNANCE_ROLE.
    function setHeartbeatTimeout(uint256 timeout) external;

    /// @notice Sets the jail cool-down (at most MAX_JAIL_COOLDOWN). Only GOVERNANCE_ROLE.
    function setJailCooldown(uint256 cooldown) external;

    /// @notice Sets the reporter bounty (at most MAX_BOUNTY_BPS). Only GOVERNANCE_ROLE.
    function setBountyBps(uint256 bps) external;

    /// @notice Chooses whether the rest of a slash is burned or sent to `treasury`. Only GOVERNANCE_ROLE.
    /// @dev `treasury` must be non-zero when `burn` is false.
    function setSlashDestination(bool burn, address treasury) external;

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The staking token (OPG).
    function token() external view returns (address);

    /// @notice The current parameters.
    function params() external view returns (Params memory);

    /// @notice Everything known about a node (all zero for an unknown node).
    function getNode(address node) external view returns (NodeView memory);

    /// @notice The node's operator (zero for an unknown node).
    function operatorOf(address node) external view returns (address);

    /// @notice The record of a signer key (all zero if it was never used).
    function signerRecordOf(address signer) external view returns (SignerRecord memory);

    /// @notice The node's active stake and the total still unbonding (after slashes).
    function stakeOf(address node) external view returns (uint256 active, uint256 unbonding);

    /// @notice The node's unbonding entries, oldest first.
    function unbondingEntries(address node) external view returns (UnbondingEntry[] memory);

    /// @notice The total of the node's entries that can be withdrawn now.
    function withdrawable(address node) external view returns (uint256);

    /// @notice When anyone may jail the node for a missed heartbeat (its last heartbeat plus the timeout).
    function heartbeatDeadline(address node) external view returns (uint256);

    /// @notice A governance slash request.
    function slashRequest(uint256 id) external view returns (SlashRequest memory);

    /// @notice How many governance slash requests were made (ids are 1..count).
    function slashRequestCount() external view returns (uint256);
}
