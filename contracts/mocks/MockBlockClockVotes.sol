// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";

/// @title MockBlockClockVotes
/// @notice Test double: an ERC20Votes token on OpenZeppelin's default clock (block numbers), which OPGGovernor
///         must refuse because its voting delay and period are in seconds.
contract MockBlockClockVotes is ERC20, EIP712, ERC20Votes {
    constructor() ERC20("Block clock", "BLK") EIP712("Block clock", "1") {}

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
