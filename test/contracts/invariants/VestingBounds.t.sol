// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Check, InvariantBase} from "./InvariantBase.sol";

import {IVestingVault} from "../../../contracts/interfaces/IVestingVault.sol";
import {OPGToken} from "../../../contracts/token/OPGToken.sol";
import {VestingVault} from "../../../contracts/vesting/VestingVault.sol";

/// @dev Owns the vault: creates linear schedules (cliffs, cliff amounts, revocable or not), releases, revokes
///      and moves time. After every action it checks that no schedule's vested amount went down.
contract VestingHandler is InvariantBase {
    uint256 internal constant MAX_SCHEDULES = 8;

    VestingVault public immutable vault;
    OPGToken public immutable token;

    uint256 public ghostFunded;
    uint256 public ghostReleased;
    uint256 public ghostRefunded;
    /// @dev Set when some schedule's vested amount fell between two observations.
    bool public vestedDecreased;
    mapping(uint256 id => uint256 vested) public lastVested;

    constructor(OPGToken token_) {
        token = token_;
        vault = new VestingVault(token_, address(this));
    }

    function approveVault() external {
        token.approve(address(vault), type(uint256).max);
    }

    function create(
        uint128 total,
        uint40 startIn,
        uint40 cliffAfter,
        uint40 length,
        uint128 cliffAmount,
        bool revocable
    ) external {
        if (vault.scheduleCount() >= MAX_SCHEDULES) return;
        total = uint128(bound(total, 1, 1e24));
        uint40 start = uint40(block.timestamp + bound(startIn, 0, 30 days));
        uint40 end = uint40(start + bound(length, 1, 400 days));
        uint40 cliff = uint40(bound(cliffAfter, 0, end - start)) + start;
        IVestingVault.ScheduleParams memory p = IVestingVault.ScheduleParams({
            beneficiary: address(0xB0B),
            category: bytes32("fuzz"),
            total: total,
            start: start,
            cliff: cliff,
            cliffAmount: uint128(bound(cliffAmount, 0, total)),
            end: end,
            revocable: revocable,
            tranches: new IVestingVault.Tranche[](0)
        });
        vault.createSchedule(p);
        ghostFunded += total;
        _sweep();
    }

    function release(uint256 seed) external {
        uint256 count = vault.scheduleCount();
        if (count == 0) return;
        uint256 id = seed % count;
        if (vault.releasable(id) == 0) return;
        ghostReleased += vault.release(id);
        _sweep();
    }

    function revoke(uint256 seed) external {
        uint256 count = vault.scheduleCount();
        if (count == 0) return;
        uint256 id = seed % count;
        IVestingVault.Schedule memory s = vault.getSchedule(id);
        if (!s.revocable || s.revoked) return;
        uint256 before = token.balanceOf(address(0xCAFE));
        vault.revoke(id, address(0xCAFE));
        ghostRefunded += token.balanceOf(address(0xCAFE)) - before;
        _sweep();
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 60 days));
        _sweep();
    }

    function _sweep() private {
        uint256 count = vault.scheduleCount();
        for (uint256 id = 0; id < count; ++id) {
            uint256 vested = vault.vestedAt(id, uint40(block.timestamp));
            if (vested < lastVested[id]) vestedDecreased = true;
            lastVested[id] = vested;
        }
    }
}

contract VestingBoundsInvariants is InvariantBase {
    OPGToken internal token;
    VestingHandler internal handler;
    VestingVault internal vault;

    function setUp() public {
        token = new OPGToken(address(this), 1e27);
        handler = new VestingHandler(token);
        vault = handler.vault();
        token.transfer(address(handler), 1e27);
        handler.approveVault();

        bytes4[] memory selectors = new bytes4[](4);
        selectors[0] = VestingHandler.create.selector;
        selectors[1] = VestingHandler.release.selector;
        selectors[2] = VestingHandler.revoke.selector;
        selectors[3] = VestingHandler.warp.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    /// For every schedule, now: released <= vested <= total.
    function invariant_releasedLeVestedLeTotal() public view {
        uint256 count = vault.scheduleCount();
        for (uint256 id = 0; id < count; ++id) {
            IVestingVault.Schedule memory s = vault.getSchedule(id);
            uint256 vested = vault.vestedAt(id, uint40(block.timestamp));
            Check.le(s.released, vested, "released > vested");
            Check.le(vested, s.total, "vested > total");
        }
    }

    /// No schedule's vested amount ever went down as time moved or the vault was used.
    function invariant_vestedMonotonic() public view {
        Check.isTrue(!handler.vestedDecreased(), "vested amount decreased");
    }

    /// The vault holds exactly funded - released - refunded, and that covers everything not yet released.
    function invariant_balanceCoversUnreleased() public view {
        uint256 balance = token.balanceOf(address(vault));
        Check.eq(
            balance,
            handler.ghostFunded() - handler.ghostReleased() - handler.ghostRefunded(),
            "vault balance != funded - released - refunded"
        );
        Check.le(vault.totalOutstanding(), balance, "outstanding > vault balance");
    }
}
