// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ITeeRegistryCore} from "../interfaces/ITeeRegistryCore.sol";

/// @title MockTeeRegistry
/// @notice Test double of TeeRegistry's core: an enclave key's VERIFIER node, whether it is active (inactive stands
///         for a revoked measurement, an expired registration or an inactive node) and the window of signing times
///         it is accountable for are set directly.
contract MockTeeRegistry is ITeeRegistryCore {
    struct Enclave {
        address node;
        bool active;
        uint256 accountableFrom;
        uint256 accountableUntil; // 0: no end
    }

    mapping(address enclaveKey => Enclave record) private _enclaves;

    /// @notice Sets an enclave key's node and whether it is active; it is accountable for every signing time.
    function setEnclave(address enclaveKey, address node, bool active) external {
        _enclaves[enclaveKey] = Enclave({
            node: node,
            active: active,
            accountableFrom: 0,
            accountableUntil: 0
        });
    }

    /// @notice Limits the signing times the key answers for to [from, until) (until 0: no end).
    function setAccountable(address enclaveKey, uint256 from, uint256 until) external {
        _enclaves[enclaveKey].accountableFrom = from;
        _enclaves[enclaveKey].accountableUntil = until;
    }

    /// @inheritdoc ITeeRegistryCore
    function isActiveEnclave(address enclaveKey) external view returns (bool) {
        return _enclaves[enclaveKey].active;
    }

    /// @inheritdoc ITeeRegistryCore
    function nodeOfEnclave(address enclaveKey) external view returns (address) {
        return _enclaves[enclaveKey].node;
    }

    /// @inheritdoc ITeeRegistryCore
    function accountableNodeOf(address enclaveKey, uint256 signedAt) external view returns (address) {
        Enclave storage e = _enclaves[enclaveKey];
        if (signedAt < e.accountableFrom || (e.accountableUntil != 0 && signedAt >= e.accountableUntil)) {
            return address(0);
        }
        return e.node;
    }
}
