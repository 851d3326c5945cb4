// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Check, InvariantBase} from "./InvariantBase.sol";

import {INodeStakingTypes} from "../../../contracts/interfaces/INodeStaking.sol";
import {INodeStakingCore} from "../../../contracts/interfaces/INodeStakingCore.sol";
import {NodeStaking} from "../../../contracts/staking/NodeStaking.sol";
import {OPGToken} from "../../../contracts/token/OPGToken.sol";

/// @dev Drives NodeStaking as one operator (itself) and as the slasher, with amounts from 1 wei. Ghost totals
///      record what entered, what left by withdrawal and what slashes took, so the suite can check them against
///      the token balance and the per-node books.
contract StakingHandler is InvariantBase {
    uint256 internal constant MAX_NODES = 6;

    NodeStaking public immutable staking;
    OPGToken public immutable token;
    address public immutable reporter;

    address[] public nodes;

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public ghostSlashed;
    /// @dev Set when a slash of a known node with valid arguments reverted, or took other than its share.
    bool public slashFailed;
    /// @dev Set when a withdrawal paid other than `withdrawable()` or transferred other than it returned.
    bool public withdrawFailed;

    constructor(NodeStaking staking_, OPGToken token_, address reporter_) {
        staking = staking_;
        token = token_;
        reporter = reporter_;
        token_.approve(address(staking_), type(uint256).max);
    }

    function nodeCount() external view returns (uint256) {
        return nodes.length;
    }

    function register(uint256 amount, bool verifier) external {
        if (nodes.length >= MAX_NODES) return;
        amount = bound(amount, 1, 1e24);
        uint256 i = nodes.length + 1;
        address node = address(uint160(0x1000 + i));
        address signer = address(uint160(0x2000 + i));
        INodeStakingCore.Role role =
            verifier ? INodeStakingCore.Role.VERIFIER : INodeStakingCore.Role.INFERENCE;
        staking.register(node, role, signer, amount, "");
        nodes.push(node);
        ghostDeposited += amount;
    }

    function increaseStake(uint256 seed, uint256 amount) external {
        if (nodes.length == 0) return;
        address node = nodes[seed % nodes.length];
        amount = bound(amount, 1, 1e24);
        staking.increaseStake(node, amount);
        ghostDeposited += amount;
    }

    function unbond(uint256 seed, uint256 amount) external {
        if (nodes.length == 0) return;
        address node = nodes[seed % nodes.length];
        (uint256 active, ) = staking.stakeOf(node);
        if (active == 0 || staking.unbondingEntries(node).length >= staking.MAX_UNBONDING_ENTRIES()) return;
        staking.unbond(node, bound(amount, 1, active));
    }

    function withdraw(uint256 seed) external {
        if (nodes.length == 0) return;
        address node = nodes[seed % nodes.length];
        uint256 due = staking.withdrawable(node);
        if (due == 0) return;
        uint256 before = token.balanceOf(address(this));
        uint256 amount = staking.withdraw(node);
        // A mismatch is recorded, not reverted: reverting handler calls are discarded by the fuzzer.
        if (amount != due || token.balanceOf(address(this)) - before != amount) withdrawFailed = true;
        ghostWithdrawn += amount;
    }

    function slash(uint256 seed, uint256 value, bool byAmount) external {
        if (nodes.length == 0) return;
        address node = nodes[seed % nodes.length];
        (uint256 active, uint256 unbonding) = staking.stakeOf(node);
        uint256 total = active + unbonding;
        uint256 expected;
        if (byAmount) {
            value = bound(value, 1, 2e24);
            expected = value < total ? value : total;
        } else {
            value = bound(value, 1, 10_000);
            expected = (total * value) / 10_000;
        }
        try this.doSlash(node, value, byAmount) returns (uint256 slashed) {
            if (slashed != expected) slashFailed = true;
            ghostSlashed += slashed;
        } catch {
            slashFailed = true;
        }
    }

    /// @dev External so that `slash` can catch a revert; only this contract may call it.
    function doSlash(address node, uint256 value, bool byAmount) external returns (uint256) {
        require(msg.sender == address(this), "self only");
        return
            byAmount
                ? staking.slashAmount(node, value, reporter, false, bytes32(0))
                : staking.slash(node, value, reporter, false, bytes32(0));
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 10 days));
    }
}

contract StakingConservationInvariants is InvariantBase {
    NodeStaking internal staking;
    OPGToken internal token;
    StakingHandler internal handler;

    function setUp() public {
        token = new OPGToken(address(this), 1e27);
        INodeStakingTypes.Params memory params = INodeStakingTypes.Params({
            minStakeInference: 1,
            minStakeVerifier: 1,
            unbondingDelay: 7 days,
            vetoWindow: 2 days,
            heartbeatTimeout: 30 days,
            jailCooldown: 1 days,
            bountyBps: 1_000,
            burnSlashed: true,
            treasury: address(0)
        });
        staking = new NodeStaking(address(token), address(this), params);
        handler = new StakingHandler(staking, token, address(0xBEEF));
        token.transfer(address(handler), 1e27);
        staking.grantRole(staking.SLASHER_ROLE(), address(handler));

        bytes4[] memory selectors = new bytes4[](6);
        selectors[0] = StakingHandler.register.selector;
        selectors[1] = StakingHandler.increaseStake.selector;
        selectors[2] = StakingHandler.unbond.selector;
        selectors[3] = StakingHandler.withdraw.selector;
        selectors[4] = StakingHandler.slash.selector;
        selectors[5] = StakingHandler.warp.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// Tokens held by the contract are exactly deposits minus withdrawals minus slashes.
    function invariant_balanceIsDepositsLessWithdrawalsAndSlashes() public view {
        Check.eq(
            token.balanceOf(address(staking)),
            handler.ghostDeposited() - handler.ghostWithdrawn() - handler.ghostSlashed(),
            "staking balance != deposited - withdrawn - slashed"
        );
    }

    /// The per-node books (active + unbonding) sum to the tokens held, and unbonding is the sum of its entries.
    function invariant_booksSumToBalance() public view {
        uint256 sum;
        uint256 count = handler.nodeCount();
        for (uint256 i = 0; i < count; ++i) {
            address node = handler.nodes(i);
            (uint256 active, uint256 unbonding) = staking.stakeOf(node);
            INodeStakingTypes.UnbondingEntry[] memory entries = staking.unbondingEntries(node);
            uint256 queued;
            for (uint256 j = 0; j < entries.length; ++j) queued += entries[j].amount;
            Check.eq(queued, unbonding, "unbonding != sum of entries");
            sum += active + unbonding;
        }
        Check.eq(sum, token.balanceOf(address(staking)), "sum of stakes != staking balance");
    }

    /// A slash of a registered node with valid arguments never reverted and always took its exact share.
    function invariant_validSlashNeverReverts() public view {
        Check.isTrue(!handler.slashFailed(), "a valid slash reverted or took the wrong amount");
    }

    /// A withdrawal pays exactly what `withdrawable()` said, to the operator.
    function invariant_withdrawPaysWithdrawable() public view {
        Check.isTrue(!handler.withdrawFailed(), "withdraw paid other than withdrawable()");
    }
}
