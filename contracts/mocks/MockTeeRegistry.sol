// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ITeeRegistryCore} from "../interfaces/ITeeRegistryCore.sol";

/// @title MockTeeRegistry
/// @notice Test double of TeeRegistry's core: an enclave key's VERIFIER node and whether it is active are set
///         directly (inactive stands for a revoked measurement, an expired registration or an inactive node).
contract MockTeeRegistry is ITeeRegistryCore {
    struct Enclave {
        address node;
        bool active;
    }

    mapping(address enclaveKey => Enclave record) private _enclaves;

    /// @notice Sets an enclave key's node and whether it is active.
    function setEnclave(address enclaveKey, address node, bool active) external {
        _enclaves[enclaveKey] = Enclave({node: node, active: active});
    }

    /// @inheritdoc ITeeRegistryCore
    function isActiveEnclave(address enclaveKey) external view returns (bool) {
        return _enclaves[enclaveKey].active;
    }

    /// @inheritdoc ITeeRegistryCore
    function nodeOfEnclave(address enclaveKey) external view returns (address) {
        return _enclaves[enclaveKey].node;
    }
}
