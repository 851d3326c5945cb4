// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {INodeStaking} from "../interfaces/INodeStaking.sol";
import {INodeStakingCore} from "../interfaces/INodeStakingCore.sol";

/// @title NodeStaking
/// @notice Stakes, unbonding queues, slashing and liveness of the network's GPU and TEE nodes.
/// @dev Storage is laid out for the hot paths:
///      - slot 0 of a node holds the signer, the last heartbeat and the flags, so `heartbeat` is one cold read and
///        one write of the same slot, and `isActive` reads slots 0 and 1 only;
///      - amounts are `uint96` (OPG's whole supply, 1e27 wei, is below 2^96 ~ 7.9e28);
///      - the unbonding queue is capped at `MAX_UNBONDING_ENTRIES`, so a slash, which must reach every entry,
///        touches at most that many slots: its cost is bounded and no loop is unbounded.
contract NodeStaking is INodeStaking, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    struct Node {
        // slot 0: read by heartbeat and isActive
        address signer;
        uint40 lastHeartbeat;
        Role role;
        bool jailed;
        bool exited;
        uint16 pendingSlashes;
        // slot 1
        address operator;
        uint96 active;
        // slot 2
        uint96 unbonding; // always the sum of the queued entries' amounts
        uint40 jailedUntil;
        uint32 head; // index of the oldest queued entry
        uint32 tail; // index one past the newest queued entry
    }

    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Changes parameters (held by the TimelockController).
    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");
    /// @notice Cancels governance slash requests within their veto window.
    bytes32 public constant VETO_ROLE = keccak256("VETO_ROLE");
    /// @notice Contracts that slash at once on objective evidence checked on chain.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Requests slashes that wait out the veto window.
    bytes32 public constant GOVERNANCE_SLASHER_ROLE = keccak256("GOVERNANCE_SLASHER_ROLE");

    /// @notice Most unbonding entries a node can have queued at once.
    uint256 public constant MAX_UNBONDING_ENTRIES = 8;
    /// @notice Upper bounds of the parameters.
    uint256 public constant MAX_UNBONDING_DELAY = 365 days;
    uint256 public constant MAX_VETO_WINDOW = 30 days;
    uint256 public constant MAX_HEARTBEAT_TIMEOUT = 30 days;
    uint256 public constant MAX_JAIL_COOLDOWN = 90 days;
    uint256 public constant MAX_BOUNTY_BPS = 5_000;

    uint256 private constant _BPS = 10_000;

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    IERC20 private immutable _TOKEN;

    Params private _params;
    mapping(address node => Node state) private _nodes;
    mapping(address node => mapping(uint256 index => UnbondingEntry entry)) private _entries;
    /// @dev Every signer key ever used: the node it belongs to for good, and when it was current. A key is never
    ///      reused, so what it signed stays attributable to that one node.
    mapping(address signer => SignerRecord record) private _signerRecords;
    mapping(address node => address payee) private _payees;
    mapping(uint256 id => SlashRequest request) private _requests;
    uint256 private _requestCount;

    /*//////////////////////////////////////////////////////////////
                               MODIFIERS
    //////////////////////////////////////////////////////////////*/

    modifier onlyOperator(address node) {
        _checkOperator(node);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param token_ The staking token (OPG). Must be burnable if `initial.burnSlashed` is ever true.
    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE (the deployment moves them to the timelock).
    /// @param initial The first parameters, checked like the setters check them.
    constructor(address token_, address admin, Params memory initial) {
        if (token_ == address(0) || admin == address(0)) revert StakingZeroAddress();
        _TOKEN = IERC20(token_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNANCE_ROLE, admin);
        _setMinStake(Role.INFERENCE, initial.minStakeInference);
        _setMinStake(Role.VERIFIER, initial.minStakeVerifier);
        _setUnbondingDelay(initial.unbondingDelay);
        _setVetoWindow(initial.vetoWindow);
        _setHeartbeatTimeout(initial.heartbeatTimeout);
        _setJailCooldown(initial.jailCooldown);
        _setBountyBps(initial.bountyBps);
        _setSlashDestination(initial.burnSlashed, initial.treasury);
    }

    /*//////////////////////////////////////////////////////////////
                               OPERATORS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeStaking
    function register(
        address node,
        Role role,
        address signer,
        uint256 amount,
        string calldata metadataURI
    ) external override nonReentrant {
        // Checks: a fresh id, a real role, an unused signer, enough stake.
        if (node == address(0) || signer == address(0)) revert StakingZeroAddress();
        if (_nodes[node].operator != address(0)) revert StakingNodeAlreadyRegistered(node);
        if (role == Role.NONE) revert StakingInvalidRole(role);
        address owner = _signerRecords[signer].node;
        if (owner != address(0)) revert StakingSignerTaken(signer, owner);
        uint96 stake = _toAmount(amount);
        uint256 required = _minStake(role);
        if (stake < required) revert StakingInsufficientStake(node, stake, required);

        // Effects: the node starts active, with its heartbeat clock running from now.
        Node storage n = _nodes[node];
        n.signer = signer;
        n.lastHeartbeat = uint40(block.timestamp);
        n.role = role;
        n.operator = msg.sender;
        n.active = stake;
        _signerRecords[signer] = SignerRecord({node: node, since: uint40(block.timestamp), until: 0});
        emit NodeRegistered(node, msg.sender, role, signer, stake, metadataURI);

        // Interactions: pull the stake.
        _TOKEN.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @inheritdoc INodeStaking
    function increaseStake(address node, uint256 amount) external override nonReentrant onlyOperator(node) {
        // Checks
        Node storage n = _nodes[node];
        if (n.exited) revert StakingNodeExited(node);
        uint96 added = _toAmount(amount);
        uint96 active = _toAmount(uint256(n.active) + added);

        // Effects
        n.active = active;
        emit StakeIncreased(node, added, active);

        // Interactions
        _TOKEN.safeTransferFrom(msg.sender, address(this), added);
    }

    /// @inheritdoc INodeStaking
    function unbond(
        address node,
        uint256 amount
    ) external override onlyOperator(node) returns (uint256 index) {
        // Checks
        Node storage n = _nodes[node];
        if (n.exited) revert StakingNodeExited(node);
        uint96 value = _toAmount(amount);
        if (value > n.active) revert StakingUnbondExceedsActive(node, value, n.active);

        // Effects: no tokens move until withdrawal.
        n.active -= value;
        index = _enqueue(node, n, value);
    }

    /// @inheritdoc INodeStaking
    function withdraw(
        address node
    ) external override nonReentrant onlyOperator(node) returns (uint256 amount) {
        // Checks: no pending governance slash, at least one matured entry.
        Node storage n = _nodes[node];
        if (n.pendingSlashes != 0) revert StakingSlashPending(node, n.pendingSlashes);
        uint32 head = n.head;
        uint32 tail = n.tail;
        mapping(uint256 => UnbondingEntry) storage entries = _entries[node];
        uint32 i = head;
        // Release times never decrease along the queue, so the matured entries are a prefix of it.
        // The loop runs at most MAX_UNBONDING_ENTRIES times.
        while (i < tail && entries[i].releaseTime <= block.timestamp) {
            amount += entries[i].amount;
            delete entries[i];
            // unchecked: i < tail <= type(uint32).max.
            unchecked {
                ++i;
            }
        }
        if (i == head) revert StakingNothingToWithdraw(node, head < tail ? entries[head].releaseTime : 0);

        // Effects: amount <= n.unbonding because n.unbonding is the sum of all queued entries.
        n.head = i;
        n.unbonding -= uint96(amount);
        address operator = n.operator;
        emit Withdrawn(node, operator, amount, i - head);

        // Interactions
        if (amount != 0) _TOKEN.safeTransfer(operator, amount);
    }

    /// @inheritdoc INodeStaking
    function exit(address node) external override onlyOperator(node) {
        // Checks
        Node storage n = _nodes[node];
        if (n.exited) revert StakingNodeExited(node);

        // Effects: everything active joins the queue (still slashable) and the node is never active again.
        uint96 amount = n.active;
        uint256 releaseTime;
        if (amount != 0) {
            n.active = 0;
            releaseTime = _entries[node][_enqueue(node, n, amount)].releaseTime;
        }
        n.exited = true;
        emit NodeExited(node, amount, releaseTime);
    }

    /// @inheritdoc INodeStaking
    function rotateSigner(address node, address newSigner) external override onlyOperator(node) {
        // Checks: an exited node may rotate too, since its current key still signs valid evidence against the
        // stake that is unbonding.
        if (newSigner == address(0)) revert StakingZeroAddress();
        Node storage n = _nodes[node];
        address owner = _signerRecords[newSigner].node;
        if (owner != address(0)) revert StakingSignerTaken(newSigner, owner);

        // Effects: the old key stays the node's, current until now; the new one is current from now.
        address oldSigner = n.signer;
        uint40 now_ = uint40(block.timestamp);
        _signerRecords[oldSigner].until = now_;
        _signerRecords[newSigner] = SignerRecord({node: node, since: now_, until: 0});
        n.signer = newSigner;
        emit SignerRotated(node, oldSigner, newSigner);
    }

    /// @inheritdoc INodeStaking
    function setPayee(address node, address payee) external override onlyOperator(node) {
        _payees[node] = payee;
        emit PayeeSet(node, payee);
    }

    /// @inheritdoc INodeStaking
    function setMetadata(address node, string calldata metadataURI) external override onlyOperator(node) {
        if (_nodes[node].exited) revert StakingNodeExited(node);
        emit MetadataUpdated(node, metadataURI);
    }

    /// @inheritdoc INodeStaking
    function unjail(address node) external override onlyOperator(node) {
        // Checks
        Node storage n = _nodes[node];
        if (n.exited) revert StakingNodeExited(node);
        if (!n.jailed) revert StakingNodeNotJailed(node);
        if (block.timestamp < n.jailedUntil) revert StakingJailCooldown(node, n.jailedUntil);

        // Effects: the heartbeat clock restarts, or the node could be jailed again at once.
        n.jailed = false;
        n.lastHeartbeat = uint40(block.timestamp);
        emit NodeUnjailed(node);
    }

    /*//////////////////////////////////////////////////////////////
                                LIVENESS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeStaking
    function heartbeat(address node) external override {
        Node storage n = _nodes[node];
        address signer = n.signer;
        if (signer == address(0)) revert StakingUnknownNode(node);
        if (msg.sender != signer) revert StakingNotSigner(node, msg.sender, signer);
        if (n.exited) revert StakingNodeExited(node);
        n.lastHeartbeat = uint40(block.timestamp);
        emit HeartbeatSent(node);
    }

    /// @inheritdoc INodeStaking
    function jailInactive(address node) external override {
        // Checks
        Node storage n = _nodes[node];
        if (n.operator == address(0)) revert StakingUnknownNode(node);
        if (n.exited) revert StakingNodeExited(node);
        if (n.jailed) revert StakingNodeJailed(node, n.jailedUntil);
        uint256 deadline = uint256(n.lastHeartbeat) + _params.heartbeatTimeout;
        if (block.timestamp <= deadline) revert StakingHeartbeatNotMissed(node, deadline);

        // Effects
        _jail(node, n, JailReason.MISSED_HEARTBEAT);
    }

    /*//////////////////////////////////////////////////////////////
                                SLASHING
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeStakingCore
    function slash(
        address node,
        uint256 bps,
        address reporter,
        bool jail,
        bytes32 evidenceHash
    ) external override nonReentrant onlyRole(SLASHER_ROLE) returns (uint256 slashed) {
        if (bps == 0 || bps > _BPS) revert StakingInvalidBps(bps);
        return _slash(node, false, bps, reporter, jail, evidenceHash);
    }

    /// @inheritdoc INodeStaking
    function slashAmount(
        address node,
        uint256 amount,
        address reporter,
        bool jail,
        bytes32 evidenceHash
    ) external override nonReentrant onlyRole(SLASHER_ROLE) returns (uint256 slashed) {
        if (amount == 0) revert StakingInvalidAmount(amount);
        return _slash(node, true, amount, reporter, jail, evidenceHash);
    }

    /// @inheritdoc INodeStaking
    function requestSlash(
        address node,
        bool byAmount,
        uint256 value,
        address reporter,
        bool jail,
        bytes32 evidenceHash
    ) external override onlyRole(GOVERNANCE_SLASHER_ROLE) returns (uint256 id) {
        // Checks
        Node storage n = _nodes[node];
        if (n.operator == address(0)) revert StakingUnknownNode(node);
        if (byAmount) {
            if (value == 0) revert StakingInvalidAmount(value);
        } else if (value == 0 || value > _BPS) {
            revert StakingInvalidBps(value);
        }

        // Effects: the node's withdrawals freeze until the request is vetoed or executed.
        // unchecked: one request per transaction cannot wrap a uint256.
        unchecked {
            id = ++_requestCount;
        }
        uint40 executableAt = uint40(block.timestamp + _params.vetoWindow);
        _requests[id] = SlashRequest({
            node: node,
            executableAt: executableAt,
            status: RequestStatus.PENDING,
            byAmount: byAmount,
            jail: jail,
            reporter: reporter,
            value: value,
            evidenceHash: evidenceHash
        });
        n.pendingSlashes += 1;
        emit SlashRequested(
            id,
            node,
            msg.sender,
            byAmount,
            value,
            reporter,
            jail,
            evidenceHash,
            executableAt
        );
    }

    /// @inheritdoc INodeStaking
    function vetoSlash(uint256 id) external override onlyRole(VETO_ROLE) {
        // Checks
        SlashRequest storage request = _pendingRequest(id);
        if (block.timestamp >= request.executableAt) revert StakingVetoWindowClosed(id, request.executableAt);

        // Effects
        request.status = RequestStatus.VETOED;
        _nodes[request.node].pendingSlashes -= 1;
        emit SlashVetoed(id, msg.sender);
    }

    /// @inheritdoc INodeStaking
    function executeSlash(uint256 id) external override nonReentrant returns (uint256 slashed) {
        // Checks
        SlashRequest storage request = _pendingRequest(id);
        if (block.timestamp < request.executableAt) revert StakingVetoWindowOpen(id, request.executableAt);

        // Effects, then the slash itself (its own effects and interactions).
        request.status = RequestStatus.EXECUTED;
        address node = request.node;
        _nodes[node].pendingSlashes -= 1;
        slashed = _slash(
            node,
            request.byAmount,
            request.value,
            request.reporter,
            request.jail,
            request.evidenceHash
        );
        emit SlashExecuted(id, slashed);
    }

    /*//////////////////////////////////////////////////////////////
                               GOVERNANCE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeStaking
    function setMinStake(Role role, uint256 minimum) external override onlyRole(GOVERNANCE_ROLE) {
        _setMinStake(role, minimum);
    }

    /// @inheritdoc INodeStaking
    function setUnbondingDelay(uint256 delay) external override onlyRole(GOVERNANCE_ROLE) {
        _setUnbondingDelay(delay);
    }

    /// @inheritdoc INodeStaking
    function setVetoWindow(uint256 window) external override onlyRole(GOVERNANCE_ROLE) {
        _setVetoWindow(window);
    }

    /// @inheritdoc INodeStaking
    function setHeartbeatTimeout(uint256 timeout) external override onlyRole(GOVERNANCE_ROLE) {
        _setHeartbeatTimeout(timeout);
    }

    /// @inheritdoc INodeStaking
    function setJailCooldown(uint256 cooldown) external override onlyRole(GOVERNANCE_ROLE) {
        _setJailCooldown(cooldown);
    }

    /// @inheritdoc INodeStaking
    function setBountyBps(uint256 bps) external override onlyRole(GOVERNANCE_ROLE) {
        _setBountyBps(bps);
    }

    /// @inheritdoc INodeStaking
    function setSlashDestination(bool burn, address treasury) external override onlyRole(GOVERNANCE_ROLE) {
        _setSlashDestination(burn, treasury);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc INodeStakingCore
    function roleOf(address node) external view override returns (Role) {
        return _nodes[node].role;
    }

    /// @inheritdoc INodeStakingCore
    function signerOf(address node) external view override returns (address) {
        return _nodes[node].signer;
    }

    /// @inheritdoc INodeStakingCore
    function nodeOfSigner(address signer) external view override returns (address) {
        SignerRecord storage r = _signerRecords[signer];
        return r.until == 0 ? r.node : address(0);
    }

    /// @inheritdoc INodeStakingCore
    function wasSignerOf(address node, address signer) external view override returns (bool) {
        return signer != address(0) && _signerRecords[signer].node == node;
    }

    /// @inheritdoc INodeStakingCore
    function signerStatus(
        address node,
        address signer,
        uint256 at
    ) external view override returns (Role role, bool valid) {
        // One slot read on the common path: the node's current signer and role share slot 0.
        Node storage n = _nodes[node];
        role = n.role;
        if (signer == address(0)) return (role, false);
        if (n.signer == signer) return (role, true);
        SignerRecord storage r = _signerRecords[signer];
        valid = r.node == node && r.until != 0 && at < r.until;
    }

    /// @inheritdoc INodeStakingCore
    function payeeOf(address node) external view override returns (address) {
        address payee = _payees[node];
        return payee != address(0) ? payee : _nodes[node].operator;
    }

    /// @inheritdoc INodeStaking
    function signerRecordOf(address signer) external view override returns (SignerRecord memory) {
        return _signerRecords[signer];
    }

    /// @inheritdoc INodeStakingCore
    function isActive(address node) external view override returns (bool) {
        Node storage n = _nodes[node];
        Role role = n.role;
        if (role == Role.NONE || n.jailed || n.exited) return false;
        return n.active >= _minStake(role);
    }

    /// @inheritdoc INodeStaking
    function token() external view override returns (address) {
        return address(_TOKEN);
    }

    /// @inheritdoc INodeStaking
    function params() external view override returns (Params memory) {
        return _params;
    }

    /// @inheritdoc INodeStakingCore
    function minStake(Role role) external view override returns (uint256) {
        return _minStake(role);
    }

    /// @inheritdoc INodeStakingCore
    function activeStakeOf(address node) external view override returns (uint256) {
        return _nodes[node].active;
    }

    /// @inheritdoc INodeStaking
    function getNode(address node) external view override returns (NodeView memory) {
        Node storage n = _nodes[node];
        return
            NodeView({
                operator: n.operator,
                signer: n.signer,
                role: n.role,
                jailed: n.jailed,
                exited: n.exited,
                pendingSlashes: n.pendingSlashes,
                lastHeartbeat: n.lastHeartbeat,
                jailedUntil: n.jailedUntil,
                active: n.active,
                unbonding: n.unbonding,
                unbondingEntries: n.tail - n.head
            });
    }

    /// @inheritdoc INodeStaking
    function operatorOf(address node) external view override returns (address) {
        return _nodes[node].operator;
    }

    /// @inheritdoc INodeStaking
    function stakeOf(address node) external view override returns (uint256 active, uint256 unbonding) {
        Node storage n = _nodes[node];
        return (n.active, n.unbonding);
    }

    /// @inheritdoc INodeStaking
    function unbondingEntries(address node) external view override returns (UnbondingEntry[] memory entries) {
        Node storage n = _nodes[node];
        uint32 head = n.head;
        entries = new UnbondingEntry[](n.tail - head);
        for (uint256 i = 0; i < entries.length; ++i) {
            entries[i] = _entries[node][head + i];
        }
    }

    /// @inheritdoc INodeStaking
    function withdrawable(address node) external view override returns (uint256 amount) {
        Node storage n = _nodes[node];
        for (uint256 i = n.head; i < n.tail; ++i) {
            UnbondingEntry memory e = _entries[node][i];
            if (e.releaseTime > block.timestamp) break;
            amount += e.amount;
        }
    }

    /// @inheritdoc INodeStaking
    function heartbeatDeadline(address node) external view override returns (uint256) {
        Node storage n = _nodes[node];
        if (n.operator == address(0)) revert StakingUnknownNode(node);
        return uint256(n.lastHeartbeat) + _params.heartbeatTimeout;
    }

    /// @inheritdoc INodeStaking
    function slashRequest(uint256 id) external view override returns (SlashRequest memory) {
        return _requests[id];
    }

    /// @inheritdoc INodeStaking
    function slashRequestCount() external view override returns (uint256) {
        return _requestCount;
    }

    /*//////////////////////////////////////////////////////////////
                           INTERNAL: SLASHING
    //////////////////////////////////////////////////////////////*/

    /// @dev Takes `value` (an amount, or basis points of everything the node has) pro rata from active stake and
    ///      every queued entry, then pays the bounty and burns or forwards the rest. Callers checked `value`.
    ///
    ///      Pro rata with no dust: the parts (active, entry 0, entry 1, ...) are walked with a running total
    ///      `cum`; the part's share is floor(cum_i * amount / total) - floor(cum_{i-1} * amount / total). The
    ///      shares sum to exactly `amount`, and each is at most its part (amount <= total), so the node never
    ///      loses more than it has and the slash is exact.
    function _slash(
        address node,
        bool byAmount,
        uint256 value,
        address reporter,
        bool jail,
        bytes32 evidenceHash
    ) private returns (uint256 amount) {
        Node storage n = _nodes[node];
        if (n.operator == address(0)) revert StakingUnknownNode(node);

        // Effects: take from the node, jail it if asked.
        uint256 fromActive;
        (amount, fromActive) = _take(node, n, byAmount, value);
        if (jail) _jail(node, n, JailReason.SLASH);

        // Where it goes: the bounty to the reporter (none to the offender's own operator, signer keys or payee:
        // reporting yourself must never pay), the rest burned or sent to the treasury.
        uint256 bounty = _isInsider(node, n, reporter) ? 0 : (amount * _params.bountyBps) / _BPS;
        address remainderTo = _params.burnSlashed ? address(0) : _params.treasury;
        emit Slashed(
            node,
            msg.sender,
            evidenceHash,
            fromActive,
            amount - fromActive,
            reporter,
            bounty,
            remainderTo,
            jail
        );

        // Interactions
        _payOut(reporter, bounty, remainderTo, amount - bounty);
    }

    /// @dev Removes the slashed amount from active stake and every entry; returns it and the active part.
    function _take(
        address node,
        Node storage n,
        bool byAmount,
        uint256 value
    ) private returns (uint256 amount, uint256 fromActive) {
        // What is taken: never more than the node has.
        uint256 active = n.active;
        uint256 total = active + n.unbonding;
        amount = byAmount ? (value < total ? value : total) : (total * value) / _BPS;
        if (amount == 0) return (0, 0);

        // Active first, then each entry in queue order, pro rata with a running total (see `_slash`).
        fromActive = (active * amount) / total;
        n.active = uint96(active - fromActive);
        uint256 cum = active;
        uint256 taken = fromActive;
        mapping(uint256 => UnbondingEntry) storage entries = _entries[node];
        uint256 tail = n.tail;
        // At most MAX_UNBONDING_ENTRIES iterations.
        for (uint256 i = n.head; i < tail; ++i) {
            UnbondingEntry storage e = entries[i];
            cum += e.amount;
            uint256 takenSoFar = (cum * amount) / total;
            uint256 part = takenSoFar - taken;
            if (part != 0) e.amount -= uint96(part);
            taken = takenSoFar;
        }
        // The entries' parts sum to amount - fromActive, which is at most their sum, n.unbonding.
        n.unbonding -= uint96(amount - fromActive);
    }

    /// @dev Pays the bounty and burns the remainder (`remainderTo` zero) or sends it to the treasury.
    function _payOut(address reporter, uint256 bounty, address remainderTo, uint256 remainder) private {
        if (bounty != 0) _TOKEN.safeTransfer(reporter, bounty);
        if (remainder == 0) return;
        if (remainderTo == address(0)) ERC20Burnable(address(_TOKEN)).burn(remainder);
        else _TOKEN.safeTransfer(remainderTo, remainder);
    }

    function _jail(address node, Node storage n, JailReason reason) private {
        uint40 until = uint40(block.timestamp + _params.jailCooldown);
        // A second jailing never shortens the first one.
        if (until < n.jailedUntil) until = n.jailedUntil;
        n.jailed = true;
        n.jailedUntil = until;
        emit NodeJailed(node, reason, until);
    }

    /*//////////////////////////////////////////////////////////////
                          INTERNAL: PARAMETERS
    //////////////////////////////////////////////////////////////*/

    function _setMinStake(Role role, uint256 minimum) private {
        if (role == Role.NONE) revert StakingInvalidRole(role);
        if (minimum == 0 || minimum > type(uint96).max) revert StakingInvalidParameter("minStake", minimum);
        if (role == Role.INFERENCE) _params.minStakeInference = uint96(minimum);
        else _params.minStakeVerifier = uint96(minimum);
        emit MinStakeSet(role, minimum);
    }

    function _setUnbondingDelay(uint256 delay) private {
        if (delay > MAX_UNBONDING_DELAY) revert StakingInvalidParameter("unbondingDelay", delay);
        _params.unbondingDelay = uint40(delay);
        emit UnbondingDelaySet(delay);
    }

    function _setVetoWindow(uint256 window) private {
        if (window > MAX_VETO_WINDOW) revert StakingInvalidParameter("vetoWindow", window);
        _params.vetoWindow = uint40(window);
        emit VetoWindowSet(window);
    }

    function _setHeartbeatTimeout(uint256 timeout) private {
        if (timeout == 0 || timeout > MAX_HEARTBEAT_TIMEOUT)
            revert StakingInvalidParameter("heartbeatTimeout", timeout);
        _params.heartbeatTimeout = uint40(timeout);
        emit HeartbeatTimeoutSet(timeout);
    }

    function _setJailCooldown(uint256 cooldown) private {
        if (cooldown > MAX_JAIL_COOLDOWN) revert StakingInvalidParameter("jailCooldown", cooldown);
        _params.jailCooldown = uint40(cooldown);
        emit JailCooldownSet(cooldown);
    }

    function _setBountyBps(uint256 bps) private {
        if (bps > MAX_BOUNTY_BPS) revert StakingInvalidParameter("bountyBps", bps);
        _params.bountyBps = uint16(bps);
        emit BountyBpsSet(bps);
    }

    function _setSlashDestination(bool burn, address treasury) private {
        if (!burn && treasury == address(0)) revert StakingZeroAddress();
        _params.burnSlashed = burn;
        _params.treasury = treasury;
        emit SlashDestinationSet(burn, treasury);
    }
    /*//////////////////////////////////////////////////////////////
                           INTERNAL: HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev Appends an entry of `amount` releasing after the unbonding delay, never before the previous entry.
    function _enqueue(address node, Node storage n, uint96 amount) private returns (uint256 index) {
        uint32 head = n.head;
        uint32 tail = n.tail;
        if (tail - head >= MAX_UNBONDING_ENTRIES)
            revert StakingUnbondingQueueFull(node, MAX_UNBONDING_ENTRIES);
        uint40 releaseTime = uint40(block.timestamp + _params.unbondingDelay);
        if (tail != head) {
            uint40 previous = _entries[node][tail - 1].releaseTime;
            if (previous > releaseTime) releaseTime = previous;
        }
        _entries[node][tail] = UnbondingEntry({amount: amount, releaseTime: releaseTime});
        n.tail = tail + 1;
        n.unbonding += amount;
        emit UnbondingRequested(node, tail, amount, releaseTime);
        return tail;
    }

    /// @dev True for no reporter, and for the node's operator, payee or any signer key it ever had.
    function _isInsider(address node, Node storage n, address reporter) private view returns (bool) {
        return
            reporter == address(0) ||
            reporter == n.operator ||
            reporter == _payees[node] ||
            _signerRecords[reporter].node == node;
    }

    function _pendingRequest(uint256 id) private view returns (SlashRequest storage request) {
        request = _requests[id];
        if (request.status == RequestStatus.NONE) revert StakingUnknownRequest(id);
        if (request.status != RequestStatus.PENDING) revert StakingRequestNotPending(id, request.status);
    }

    function _checkOperator(address node) private view {
        address operator = _nodes[node].operator;
        if (operator == address(0)) revert StakingUnknownNode(node);
        if (operator != msg.sender) revert StakingNotOperator(node, msg.sender, operator);
    }

    function _minStake(Role role) private view returns (uint256) {
        if (role == Role.INFERENCE) return _params.minStakeInference;
        if (role == Role.VERIFIER) return _params.minStakeVerifier;
        return 0;
    }

    function _toAmount(uint256 amount) private pure returns (uint96) {
        if (amount == 0 || amount > type(uint96).max) revert StakingInvalidAmount(amount);
        return uint96(amount);
    }
}
