// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @dev The few cheatcodes the handlers use, at the address Hardhat's Solidity test runner (EDR) serves them on.
interface Cheats {
    function warp(uint256 newTimestamp) external;
}

/// @dev A minimal stand-in for forge-std's Test + StdInvariant (the npm `forge-std` package is an old build
///      without StdInvariant and without its ds-test dependency, so it does not compile here). The runner
///      finds the fuzz targets by calling `targetContracts()` and `targetSelectors()`, the same ABI as
///      forge-std's getters.
abstract contract InvariantBase {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    Cheats internal constant vm = Cheats(address(uint160(uint256(keccak256("hevm cheat code")))));

    address[] private _targetedContracts;
    FuzzSelector[] private _targetedSelectors;

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory target) internal {
        _targetedSelectors.push(target);
    }

    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    /// @dev Maps any x into [min, max] (max >= min), spreading it evenly like forge-std's `bound`.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + (x % (max - min + 1));
    }
}

/// @dev Assertions that revert with the message and both values, so a failure says what differed.
library Check {
    error CheckFailed(string what, uint256 actual, uint256 expected);

    function eq(uint256 actual, uint256 expected, string memory what) internal pure {
        if (actual != expected) revert CheckFailed(what, actual, expected);
    }

    function le(uint256 actual, uint256 bound_, string memory what) internal pure {
        if (actual > bound_) revert CheckFailed(what, actual, bound_);
    }

    function isTrue(bool ok, string memory what) internal pure {
        if (!ok) revert CheckFailed(what, 0, 1);
    }
}
